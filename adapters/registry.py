"""Adapters are found by entry point (`leadrules.adapters`), so a third-party package can add
a channel without forking: `[project.entry-points."leadrules.adapters"] mychan = "pkg:Cls"`."""

from __future__ import annotations

from functools import cache
from importlib.metadata import entry_points

from leadrules.adapters.base import Adapter

GROUP = "leadrules.adapters"

# The built-ins, so a source checkout that was never pip-installed still finds them.
_BUILTIN = {
    "console": "leadrules.adapters.console:ConsoleAdapter",
    "memory": "leadrules.adapters.memory:MemoryAdapter",
    "slack": "leadrules.adapters.slack:SlackAdapter",
    "smtp": "leadrules.adapters.smtp:SmtpAdapter",
    "webhook": "leadrules.adapters.webhook:WebhookAdapter",
}


@cache
def _targets() -> dict[str, str]:
    targets = dict(_BUILTIN)
    for ep in entry_points(group=GROUP):
        targets[ep.name] = ep.value
    return targets


def adapter_names() -> list[str]:
    """Every adapter name that can be used in `config/channels.yaml`."""
    return sorted(_targets())


def adapter_class(name: str) -> type[Adapter]:
    """The adapter class registered under `name`; KeyError when there is none."""
    target = _targets()[name]
    module_name, _, attr = target.partition(":")
    module = __import__(module_name, fromlist=[attr])
    cls = getattr(module, attr)
    if not (isinstance(cls, type) and issubclass(cls, Adapter)):
        raise TypeError(f"{target} is not an Adapter subclass")
    return cls


def refresh() -> None:
    """Forget cached entry points (after installing a plug-in at run time, in tests)."""
    _targets.cache_clear()
