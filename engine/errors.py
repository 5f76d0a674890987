"""One exception tree for the whole engine.

Load-time problems (`RuleError`, `ConfigError`) carry a source position so the CLI can print
`path:line:col: message`; evaluation and delivery problems are separate classes.
"""

from __future__ import annotations

from dataclasses import dataclass


class LeadrulesError(Exception):
    """Root of every error the engine raises on purpose."""


@dataclass(frozen=True, order=True)
class Problem:
    """One problem found in a rule or config file, with its 1-based position."""

    path: str
    line: int
    col: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.col}: {self.message}"


class RuleError(LeadrulesError):
    """Rule files (or the config they reference) are invalid; holds every problem found."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = sorted(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class ConfigError(RuleError):
    """The deployment settings under `config/` are invalid."""


class EventError(LeadrulesError):
    """A message is not a valid Segment message; `field` names the offending field."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}")


class PatternTimeout(LeadrulesError):
    """A `matches` search ran past its time bound. The item being evaluated is not decided
    as "no match" (that answer would depend on the machine's load, and a replay of the same
    events could decide otherwise): the daemon sets it aside, a replay stops, both naming it."""

    def __init__(self, pattern: str, seconds: float) -> None:
        self.pattern = pattern
        super().__init__(f"`matches: {pattern!r}` took longer than {seconds:g} s on one value")


class DeliveryError(LeadrulesError):
    """An adapter could not deliver a message. `retryable` tells the dispatcher what to do."""

    def __init__(
        self, message: str, *, retryable: bool = True, retry_after: float | None = None
    ) -> None:
        self.retryable = retryable
        self.retry_after = retry_after  # seconds the receiver asked us to wait (Retry-After)
        super().__init__(message)
