"""YAML with real positions: data plus the line and column of every key and value.

PyYAML's composer gives every node its start mark; the data is built from the nodes here, so
each problem can be reported at the position the parser saw, never a guessed one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

try:
    from yaml import CSafeLoader as _Loader
except ImportError:  # pragma: no cover - the C loader is in PyYAML's wheels
    from yaml import SafeLoader as _Loader  # type: ignore[assignment]

from leadrules.engine.errors import Problem

Path_ = tuple[Any, ...]


@dataclass
class Source:
    """One parsed YAML file: its data and where each piece of it stands."""

    path: str
    data: Any = None
    values: dict[Path_, tuple[int, int]] = field(default_factory=dict)  # path -> value position
    keys: dict[Path_, tuple[int, int]] = field(default_factory=dict)  # path -> key position

    def at(self, path: Path_, message: str, *, key: bool = False) -> Problem:
        """A problem at `path` (the key's position with `key`, else the value's), falling
        back to the nearest enclosing node that has a position."""
        table = self.keys if key else self.values
        probe = tuple(path)
        while probe:
            if probe in table:
                line, col = table[probe]
                return Problem(self.path, line, col, message)
            if probe in self.values:
                line, col = self.values[probe]
                return Problem(self.path, line, col, message)
            probe = probe[:-1]
        line, col = self.values.get((), (1, 1))
        return Problem(self.path, line, col, message)


def _mark(node: yaml.Node) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1


_SCALARS = _Loader("")


def _scalar(node: yaml.Node) -> Any:
    return _SCALARS.construct_object(node, deep=True)


def load(path: Path, shown_as: str) -> tuple[Source, list[Problem]]:
    """Parse one YAML file. Syntax errors become problems at the parser's mark."""
    src = Source(shown_as)
    problems: list[Problem] = []
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return src, [Problem(shown_as, 1, 1, f"cannot read: {exc}")]
    try:
        node = yaml.compose(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        return src, [Problem(shown_as, line, col, f"invalid YAML: {exc.problem or exc.context}")]
    except yaml.YAMLError as exc:
        return src, [Problem(shown_as, 1, 1, f"invalid YAML: {exc}")]
    if node is None:
        src.data = {}
        return src, []
    src.data = _build_tree(node, src, problems)
    return src, problems


def _build_tree(node: yaml.Node, src: Source, problems: list[Problem]) -> Any:
    def build(n: yaml.Node, path: Path_) -> Any:
        src.values[path] = _mark(n)
        if isinstance(n, yaml.MappingNode):
            out: dict[Any, Any] = {}
            for key_node, value_node in n.value:
                if not isinstance(key_node, yaml.ScalarNode):
                    line, col = _mark(key_node)
                    problems.append(Problem(src.path, line, col, "a key must be a plain value"))
                    continue
                key = _scalar(key_node)
                if key in out:
                    line, col = _mark(key_node)
                    problems.append(Problem(src.path, line, col, f"duplicate key {key!r}"))
                    continue
                src.keys[(*path, key)] = _mark(key_node)
                out[key] = build(value_node, (*path, key))
            return out
        if isinstance(n, yaml.SequenceNode):
            return [build(item, (*path, i)) for i, item in enumerate(n.value)]
        return _scalar(n)

    return build(node, ())
