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

from jinja2 import ChainableUndefined, FileSystemLoader, TemplateSyntaxError, meta
from jinja2.sandbox import SandboxedEnvironment

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


class TemplateSet:
    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self.env = SandboxedEnvironment(
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
