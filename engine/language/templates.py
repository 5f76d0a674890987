"""Message templates: Jinja2 in a sandbox, `rules/templates/NAME.md` or `NAME.txt`.

A template whose first line starts with `Subject:` carries its own e-mail subject; the rest
is the body. A missing trait renders as empty and is false (`traits.name or prospect`), so
templates work for prospects who told us little; unknown variables are caught by `check`. `problems()` reports templates that do not compile and references to variables
the engine does not provide, with the template's position.
"""

from __future__ import annotations

import html
import os
import re
from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import (
    ChainableUndefined,
    FileSystemLoader,
    TemplateSyntaxError,
    Undefined,
    meta,
    nodes,
)
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment
from markdown_it import MarkdownIt

from leadrules.engine.errors import Problem

TEMPLATE_VARIABLES = frozenset(
    {
        "prospect",
        "traits",
        "score",
        "stage",
        "rule",
        "channel",
        "template",
        "reasons",
        "recent",
        "sequence",
        "step",
        "at",
        "sla_deadline",
        "reject_reason",
        "event",
        "account",  # account decisions only (core.accounts.account_view)
    }
)
SUFFIXES = (".md", ".txt")
MAX_SIZE = 100_000  # longest string or list `*` may build, largest result `**` may give


class _Sandbox(ImmutableSandboxedEnvironment):
    """Jinja2's immutable sandbox (no `_`-attributes, no mutation of the variables, bounded
    `range`) that also bounds `*` and `**`, so a template cannot build a giant string."""

    intercepted_binops = frozenset({"*", "**"})

    def unsafe_undefined(self, obj: Any, attribute: str) -> Any:
        # Jinja2 answers an unsafe attribute with an undefined value, which our chainable
        # undefined renders as empty text: refuse loudly instead, so the message dead-letters
        # with the reason rather than going out with a hole in it.
        raise SecurityError(f"access to attribute {attribute!r} of a template value is refused")

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "**":
            if isinstance(right, int) and abs(right) > 64:
                raise SecurityError(f"exponent {right} is too large for a template")
            return left**right
        if isinstance(left, int) and isinstance(right, (str, list, tuple)):
            left, right = right, left
        sized = isinstance(left, (str, list, tuple)) and isinstance(right, int)
        if sized and len(left) * right > MAX_SIZE:
            raise SecurityError("a template may not build a value that large")
        return left * right


def unsafe_access(tree: nodes.Template) -> list[tuple[int, str]]:
    """(line, attribute) of every `_`-attribute a template names (`x.__class__`,
    `x["__globals__"]`): the sandbox refuses them at render; `check` reports them."""
    found = []
    for node in tree.find_all((nodes.Getattr, nodes.Getitem)):
        if isinstance(node, nodes.Getattr):
            name = node.attr
        elif (
            isinstance(node, nodes.Getitem)
            and isinstance(node.arg, nodes.Const)
            and isinstance(node.arg.value, str)
        ):
            name = node.arg.value
        else:
            continue
        if name.startswith("_"):
            found.append((node.lineno, name))
    return found


class TemplateSet:
    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self.env = _Sandbox(
            loader=FileSystemLoader(str(self.directory)),
            undefined=ChainableUndefined,
            keep_trailing_newline=True,
            autoescape=False,
        )
        self._html_env = _Sandbox(
            loader=FileSystemLoader(str(self.directory)),
            undefined=ChainableUndefined,
            keep_trailing_newline=True,
            autoescape=False,
            finalize=markdown_escape,
        )
        self._files: dict[str, Path] = {}
        if self.directory.is_dir():
            for path in sorted(self.directory.rglob("*")):
                if path.suffix in SUFFIXES and path.is_file():
                    name = path.relative_to(self.directory).with_suffix("").as_posix()
                    self._files.setdefault(name, path)

    def names(self) -> list[str]:
        return list(self._files)

    def paths(self) -> dict[str, str]:
        return {name: str(path) for name, path in self._files.items()}

    def problems(self) -> list[Problem]:
        out = []
        for path in self._files.values():
            shown = os.path.relpath(path)
            try:
                source = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                out.append(Problem(shown, 1, 1, f"cannot read template: {exc}"))
                continue
            out += [Problem(shown, *found) for found in source_problems(source)]
        return out

    def render_html(self, name: str, context: dict[str, Any]) -> str:
        """The body of template `name` as HTML (an e-mail's HTML part): Markdown rendered by
        markdown-it with raw HTML off, every `{{ value }}` Markdown-escaped first. Values come
        from prospect data, so `<b>` or `[link](https://…)` in a trait stays text."""
        path = self._files[name]
        text = self._html_env.get_template(path.relative_to(self.directory).as_posix()).render(
            context
        )
        first, _, rest = text.partition("\n")
        body = rest.lstrip("\n") if first.startswith("Subject:") else text
        if path.suffix == ".txt":  # plain text: paragraphs, nothing interpreted
            paragraphs = [p for p in body.split("\n\n") if p.strip()]
            return "".join(
                f"<p>{html.escape(p).replace(chr(10), '<br>')}</p>\n" for p in paragraphs
            )
        return str(_MARKDOWN.render(body))

    def render(self, name: str, context: dict[str, Any]) -> tuple[str | None, str]:
        """(subject or None, body) of template `name` rendered with `context`."""
        text = self.env.get_template(
            self._files[name].relative_to(self.directory).as_posix()
        ).render(context)
        first, _, rest = text.partition("\n")
        if first.startswith("Subject:"):
            return first[len("Subject:") :].strip(), rest.lstrip("\n")
        return None, text


_CHECKER = _Sandbox()  # parses only: the checks below need no loader
_MARKDOWN = MarkdownIt("commonmark", {"html": False})
_MARKDOWN_PUNCTUATION = re.compile(r"([!-/:-@\[-`{-~])")  # CommonMark's escapable ASCII


def markdown_escape(value: Any) -> Any:
    """`finalize` of the HTML rendering: a value's text with every ASCII punctuation mark
    backslash-escaped, so Markdown shows it literally (`*`, `[`, `<`, `#`, ...)."""
    if isinstance(value, Undefined):
        return value
    return _MARKDOWN_PUNCTUATION.sub(r"\\\1", str(value))


_TAGS = re.compile(r"\{\{.*?\}\}|\{%.*?%\}", re.DOTALL)


@lru_cache(maxsize=512)
def source_problems(source: str) -> tuple[tuple[int, int, str], ...]:
    """(line, column, message) of each problem in one template's text. Cached by text, so a
    `check` or reload that finds the templates unchanged does not parse them again."""
    try:
        tree = _CHECKER.parse(source)
    except TemplateSyntaxError as exc:
        return ((exc.lineno or 1, 1, f"template does not compile: {exc.message}"),)
    except RecursionError:
        return ((1, 1, "template does not compile: nested too deeply"),)
    out = []
    lines = source.splitlines()
    for line, name in sorted(unsafe_access(tree)):
        text = lines[line - 1] if 0 < line <= len(lines) else ""
        out.append(
            (
                line,
                text.find(name) + 1 or 1,
                f"template reads attribute {name!r}: attributes starting with `_` "
                "are refused by the sandbox",
            )
        )
    known = TEMPLATE_VARIABLES | set(_CHECKER.globals)
    unknown = meta.find_undeclared_variables(tree) - known
    for variable, (line, col) in sorted(_first_uses(tree, source, unknown).items()):
        out.append(
            (
                line,
                col,
                f"unknown template variable {variable!r}; "
                f"templates get {', '.join(sorted(TEMPLATE_VARIABLES))}",
            )
        )
    return tuple(out)


def _first_uses(tree: nodes.Template, source: str, names: set[str]) -> dict[str, tuple[int, int]]:
    """Where each of `names` is first read: Jinja gives the line of each use; the column is
    that of the name as a whole word inside a `{{ }}` or `{% %}` on that line (not a word
    in the text around the tags, nor an attribute such as `traits.name`)."""
    starts = [0]
    for line_text in source.splitlines(keepends=True):
        starts.append(starts[-1] + len(line_text))
    tags = [m.span() for m in _TAGS.finditer(source)]
    first: dict[str, tuple[int, int]] = {}
    for node in tree.find_all(nodes.Name):
        if node.ctx != "load" or node.name not in names:
            continue
        line = node.lineno
        begin = starts[line - 1] if 0 < line <= len(starts) - 1 else 0
        end = starts[line] if 0 < line < len(starts) else len(source)
        col = 1
        word = re.compile(rf"(?<![\w.]){re.escape(node.name)}(?!\w)")
        for found in word.finditer(source, begin, end):
            if any(a <= found.start() < b for a, b in tags):
                col = found.start() - begin + 1
                break
        if node.name not in first or (line, col) < first[node.name]:
            first[node.name] = (line, col)
    for name in names - set(first):  # read only where find_all does not look
        first[name] = (1, 1)
    return first
