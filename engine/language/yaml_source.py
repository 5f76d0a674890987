"""YAML with real positions: data plus the line and column of every key and value.

PyYAML's composer gives every node its start mark; the data is built from the nodes here, so
each problem can be reported at the position the parser saw, never a guessed one.

Rule and config files are plain data, and building them is where hostile YAML would do harm,
so the builder refuses (each as a positioned problem, never an exception):
- every tag but the plain ones the safe schema resolves by itself (`!!str`, `!!int`,
  `!!float`, `!!bool`, `!!null`, `!!timestamp`, `!!seq`, `!!map`), and those on a value they do
  not fit (`!!bool 7d`, `!!map 1`); nothing is ever constructed from a tag;
- merge keys (`<<: *base`);
- integers that do not fit in 64 bits (`MAX_INT`);
- an alias inside the collection it names (`a: &x [*x]`), and aliases that would copy more
  than `MAX_ALIAS_COPIES` values in all (the "billion laughs": a few hundred bytes that
  expand to gigabytes), nesting deeper than `MAX_DEPTH`, and files above `MAX_FILE_BYTES`.
Policies and figures: docs/rules.md, "Limits".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from yaml.constructor import SafeConstructor

try:
    from yaml import CSafeLoader as _Loader
except ImportError:  # pragma: no cover - the C loader is in PyYAML's wheels
    from yaml import SafeLoader as _Loader  # type: ignore[assignment]

from leadrules.engine.errors import Problem

Path_ = tuple[Any, ...]

MAX_INT = 2**63 - 1  # integers in files are signed 64-bit
MAX_ALIAS_COPIES = 10_000  # values that aliases may copy in one file
MAX_DEPTH = 100  # nesting of mappings and lists
MAX_FILE_BYTES = 10_000_000

_CORE = "tag:yaml.org,2002:"
_SCALAR_TAGS = {f"{_CORE}{t}" for t in ("null", "bool", "int", "float", "str", "timestamp")}
_SEQ, _MAP, _MERGE = f"{_CORE}seq", f"{_CORE}map", f"{_CORE}merge"
_PLAIN = "files hold plain strings, numbers, booleans, null, lists and mappings"


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


def _shown_tag(tag: str) -> str:
    return "!!" + tag[len(_CORE) :] if tag.startswith(_CORE) else tag


def _collection_tag(tag: str, expected: str) -> str:
    if tag in _SCALAR_TAGS or tag in (_SEQ, _MAP):
        return f"tag {_shown_tag(tag)!r} does not fit a {'mapping' if expected == _MAP else 'list'}"
    kind = "unknown tag" if tag.startswith("!") else "tag"
    return f"{kind} {_shown_tag(tag)!r} is not allowed: {_PLAIN}"


class _Refused(Exception):
    """A node the builder will not turn into data; the message says why."""

    def __init__(self, node: yaml.Node, message: str) -> None:
        super().__init__(message)
        self.node = node
        self.message = message


_CONSTRUCTOR = SafeConstructor()
_SKIP: Any = object()  # stands for a refused scalar (the problem is recorded)


def _scalar(node: yaml.ScalarNode) -> Any:
    """A plain scalar; anything else is refused. Only the safe schema's scalar constructors
    are ever called, on a node whose tag is one of them."""
    tag = node.tag
    if tag == _MERGE:
        raise _Refused(
            node, "merge keys (<<) are not supported: write the keys out, or share a whole value"
        )
    if tag in (_SEQ, _MAP):
        raise _Refused(node, f"tag {_shown_tag(tag)!r} does not fit a plain value")
    if tag not in _SCALAR_TAGS:
        kind = "unknown tag" if tag.startswith("!") else "tag"
        raise _Refused(node, f"{kind} {_shown_tag(tag)!r} is not allowed: {_PLAIN}")
    text = str(node.value)
    if tag == f"{_CORE}int" and len(text) > 40:
        raise _Refused(node, "integer does not fit in 64 bits")
    try:
        # the constructor function itself: construct_object would cache every node it saw
        value = SafeConstructor.yaml_constructors[tag](_CONSTRUCTOR, node)
    except Exception:  # each constructor fails its own way (KeyError, ValueError, ...)
        raise _Refused(node, f"{text[:40]!r} is not a valid {_shown_tag(tag)}") from None
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_INT:
        raise _Refused(node, "integer does not fit in 64 bits")
    return value


def load(path: Path, shown_as: str) -> tuple[Source, list[Problem]]:
    """Parse one YAML file. Syntax errors and refused nodes become positioned problems."""
    src = Source(shown_as)
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            return src, [Problem(shown_as, 1, 1, f"file larger than {MAX_FILE_BYTES} bytes")]
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return src, [Problem(shown_as, 1, 1, f"cannot read: {exc}")]
    return parse(text, shown_as)


def parse(text: str, shown_as: str) -> tuple[Source, list[Problem]]:
    """`load` on text already read (`shown_as` names it in problems)."""
    src = Source(shown_as)
    try:
        node = yaml.compose(text, Loader=_Loader)
    except yaml.reader.ReaderError as exc:
        line, col = _line_col(text, exc.position)
        char = exc.character
        what = f"#x{ord(char) if isinstance(char, str) else int(char):04x}"
        return src, [Problem(shown_as, line, col, f"invalid YAML: {exc.reason} ({what})")]
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        return src, [Problem(shown_as, line, col, f"invalid YAML: {exc.problem or exc.context}")]
    except yaml.YAMLError as exc:
        return src, [Problem(shown_as, 1, 1, f"invalid YAML: {exc}")]
    except (RecursionError, MemoryError):
        return src, [Problem(shown_as, 1, 1, "invalid YAML: nested too deeply")]
    if node is None:  # an empty file, or only comments
        src.data = {}
        return src, []
    problems: list[Problem] = []
    try:
        data = _Builder(src, problems).build(node, (), 0)
        src.data = {} if data is None or data is _SKIP else data  # `~` alone: empty
    except _Refused as refused:
        line, col = _mark(refused.node)
        return src, [*problems, Problem(shown_as, line, col, refused.message)]
    return src, problems


def _line_col(text: str, offset: int) -> tuple[int, int]:
    return text.count("\n", 0, offset) + 1, offset - (text.rfind("\n", 0, offset) + 1) + 1


class _Builder:
    """Nodes -> data and positions. Problems that leave the rest readable (a duplicate key)
    are collected; the ones that make the file unusable stop the build (`_Refused`)."""

    def __init__(self, src: Source, problems: list[Problem]) -> None:
        self.src = src
        self.problems = problems
        self.built: set[int] = set()  # ids of collection nodes built once already
        self.open: set[int] = set()  # ids of the collections being built (the path down)
        self.copies = 0

    def build(self, n: yaml.Node, path: Path_, depth: int) -> Any:
        self.src.values[path] = _mark(n)
        if isinstance(n, yaml.ScalarNode):
            return self.scalar(n)
        if depth >= MAX_DEPTH:
            raise _Refused(n, f"nested more than {MAX_DEPTH} levels deep")
        if id(n) in self.open:
            raise _Refused(n, "an alias refers to the list or mapping that contains it")
        expected = _MAP if isinstance(n, yaml.MappingNode) else _SEQ
        if n.tag != expected:
            raise _Refused(n, _collection_tag(n.tag, expected))
        if id(n) in self.built:  # an alias: the value is copied
            self.copies += len(n.value)
            if self.copies > MAX_ALIAS_COPIES:
                raise _Refused(
                    n,
                    f"aliases copy more than {MAX_ALIAS_COPIES} values in this file "
                    "(an alias bomb?); write the values out",
                )
        self.built.add(id(n))
        self.open.add(id(n))
        try:
            if isinstance(n, yaml.MappingNode):
                return self.mapping(n, path, depth)
            return [self.build(item, (*path, i), depth + 1) for i, item in enumerate(n.value)]
        finally:
            self.open.discard(id(n))

    def scalar(self, n: yaml.ScalarNode) -> Any:
        """A scalar, or `_SKIP` with a problem: a refused scalar spoils only itself, so every
        one of them in the file is reported at once."""
        try:
            return _scalar(n)
        except _Refused as refused:
            line, col = _mark(n)
            self.problems.append(Problem(self.src.path, line, col, refused.message))
            return _SKIP

    def mapping(self, n: yaml.MappingNode, path: Path_, depth: int) -> dict[Any, Any]:
        out: dict[Any, Any] = {}
        for key_node, value_node in n.value:
            if not isinstance(key_node, yaml.ScalarNode):
                line, col = _mark(key_node)
                self.problems.append(
                    Problem(self.src.path, line, col, "a key must be a plain value")
                )
                continue
            key = self.scalar(key_node)
            if key is _SKIP:
                continue
            if key in out:
                line, col = _mark(key_node)
                self.problems.append(Problem(self.src.path, line, col, f"duplicate key {key!r}"))
                continue
            self.src.keys[(*path, key)] = _mark(key_node)
            out[key] = self.build(value_node, (*path, key), depth + 1)
        return out
