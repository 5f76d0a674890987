"""Message templates: Jinja2 in a sandbox, `rules/templates/NAME.md` or `NAME.txt`.

A template whose first line starts with `Subject:` carries its own e-mail subject; the rest
is the body. A missing trait renders as empty and is false (`traits.name or prospect`), so
templates work for prospects who told us little; unknown variables are caught by `check`. `problems()` reports templates that do not compile and references to variables
the engine does not provide, with the template's position.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from jinja2 import ChainableUndefined, FileSystemLoader, TemplateSyntaxError, meta, nodes
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment

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
        known = TEMPLATE_VARIABLES | set(self.env.globals)
        for path in self._files.values():
            shown = os.path.relpath(path)
            try:
                source = path.read_text(encoding="utf-8")
                tree = self.env.parse(source)
            except TemplateSyntaxError as exc:
                out.append(
                    Problem(shown, exc.lineno or 1, 1, f"template does not compile: {exc.message}")
                )
                continue
            except (OSError, UnicodeDecodeError) as exc:
                out.append(Problem(shown, 1, 1, f"cannot read template: {exc}"))
                continue
            lines = source.splitlines()
            for line, name in sorted(unsafe_access(tree)):
                text = lines[line - 1] if 0 < line <= len(lines) else ""
                out.append(
                    Problem(
                        shown,
                        line,
                        text.find(name) + 1 or 1,
                        f"template reads attribute {name!r}: attributes starting with `_` "
                        "are refused by the sandbox",
                    )
                )
            for variable in sorted(meta.find_undeclared_variables(tree) - known):
                line = next(
                    (i for i, text in enumerate(source.splitlines(), 1) if variable in text), 1
                )
                out.append(
                    Problem(
                        shown,
                        line,
                        1,
                        f"unknown template variable {variable!r}; "
                        f"templates get {', '.join(sorted(TEMPLATE_VARIABLES))}",
                    )
                )
        return out

    def render(self, name: str, context: dict[str, Any]) -> tuple[str | None, str]:
        """(subject or None, body) of template `name` rendered with `context`."""
        text = self.env.get_template(
            self._files[name].relative_to(self.directory).as_posix()
        ).render(context)
        first, _, rest = text.partition("\n")
        if first.startswith("Subject:"):
            return first[len("Subject:") :].strip(), rest.lstrip("\n")
        return None, text
