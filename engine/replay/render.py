"""`leadrules replay --render`: every notify and send of the dry run rendered with its
template, as the daemon would render it for delivery, so a template that fails at render
time (`{{ score // (score - score) }}` compiles and passes `check`) fails in the dry run,
with the template's line, instead of becoming a dead letter in production.
"""

from __future__ import annotations

import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO

from leadrules.engine.core.state import Decision
from leadrules.engine.core.turn import Options
from leadrules.engine.language.templates import TemplateSet


def _template_line(exc: BaseException, path: str) -> int:
    """The line of the template being rendered when `exc` was raised (Jinja maps template
    frames to the template's file and line); 1 when the traceback does not say."""
    line = 1
    tb: TracebackType | None = exc.__traceback__
    resolved = str(Path(path).resolve())
    while tb is not None:
        filename = tb.tb_frame.f_code.co_filename
        if filename in (path, resolved):
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


@dataclass
class Renderer:
    """Renders the messages of a replay's decisions; counts failures by template and error."""

    templates: TemplateSet
    out: IO[str] = field(default_factory=lambda: sys.stderr)
    quiet: bool = False  # count and report errors only
    rendered: int = 0
    failures: Counter[str] = field(default_factory=Counter)
    examples: dict[str, str] = field(default_factory=dict)
    options: Options = field(default_factory=lambda: Options(capture_context=True))
    # Keys already rendered: a replay that restarts (input too far out of order) hands the
    # same decisions over again, and each message is shown once.
    done: set[str] = field(default_factory=set)

    def __call__(self, decisions: list[Decision]) -> None:
        for decision in decisions:
            record = decision.record
            name = record.get("template")
            if name is None or decision.context is None or decision.key in self.done:
                continue
            self.done.add(decision.key)
            self.render_one(record, name, decision)

    def render_one(self, record: dict[str, object], name: str, decision: Decision) -> None:
        paths = self.templates.paths()
        head = (
            f"--- {record['at']} {record['action']} {record.get('channel') or '-'} "
            f"{name} -> {record['prospect']} ({record['rule']})"
        )
        if name not in paths:
            self._fail(name, f"{name}: no such template", head)
            return
        try:
            subject, body = self.templates.render(name, decision.context or {})
        except Exception as exc:
            shown = paths[name]
            where = f"{shown}:{_template_line(exc, shown)}"
            self._fail(name, f"{where}: {type(exc).__name__}: {exc}", head)
            return
        self.rendered += 1
        if not self.quiet:
            print(head, file=self.out)
            if subject is not None:
                print(f"Subject: {subject}", file=self.out)
            print(body.rstrip("\n"), file=self.out)

    def _fail(self, name: str, message: str, head: str) -> None:
        if message not in self.failures:
            self.examples[message] = head
        self.failures[message] += 1
        if not self.quiet:
            print(head, file=self.out)
            print(f"template error: {message}", file=self.out)

    def summary(self) -> list[str]:
        lines = [f"messages rendered: {self.rendered}; failed: {sum(self.failures.values())}"]
        for message, n in self.failures.most_common():
            lines.append(
                f"template error: {message} ({n} messages, first: {self.examples[message][4:]})"
            )
        return lines
