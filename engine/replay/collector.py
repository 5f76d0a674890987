"""The cyclic garbage collector, off while a replay evaluates.

A replay allocates millions of containers that stay alive (every prospect's state) and
makes almost no cyclic garbage (20 unreachable objects after 200,000 events of the
generated year): what it drops, reference counting frees. Each young-generation collection
walks every container allocated since the last one, so with the collector on a replay
spends about 7% of its time walking state that is alive. `paused()` turns it off for the
evaluation; on the way out what the replay left alive is frozen (`gc.freeze`: never walked
again, still freed by reference counting), so the next collection does not walk millions of
objects at once. Only the command-line processes and their forked workers call it; the
daemon never replays in its own process.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def paused() -> Iterator[None]:
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if was_enabled:
            gc.enable()
