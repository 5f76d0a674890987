"""The shadow rule set's `World`: its prospects, aliases and timers in memory, apart from
live's tables (the core's `InMemoryWorld`). The event log's unique messageIds already
dropped duplicates, as for `DbWorld`, so `seen` remembers nothing."""

from __future__ import annotations

from leadrules.engine.core.memory_world import InMemoryWorld


class ShadowWorld(InMemoryWorld):
    pass
