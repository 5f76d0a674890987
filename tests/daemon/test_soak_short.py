"""A short chaos soak in CI (`make soak` runs the long one): a real daemon under steady load,
SIGKILLed five times and SIGTERMed twice, with a receiver failing one request in ten.
Nothing acknowledged is lost, every decision is delivered, none acts twice at a receiver that
dedupes by key, and the live decisions equal a replay of the exported log."""

from __future__ import annotations

from argparse import Namespace
from pathlib import Path

import pytest

from bench.soak import soak

pytestmark = pytest.mark.integration


def test_short_soak_loses_nothing_and_sends_nothing_twice(tmp_path: Path) -> None:
    options = Namespace(
        duration=12.0,
        kills=5,
        rate=40,
        batch=10,
        fail_rate=0.1,
        seed=5,
        settle=120.0,
        postgres=False,
        database_url=None,
        workdir=str(tmp_path),
    )
    result = soak(options)
    assert (result["sigkills"], result["sigterms"]) == (5, 2)
    assert result["events_acknowledged"] > 300
    assert result["receiver_failures_injected"] > 0  # the faults really happened
    assert result["decisions_to_deliver"] > 5
    for figure in (
        "accepted_events_lost",
        "lost_right_after_a_sigkill",
        "lost_after_sigterm_under_load",
        "decisions_never_delivered",
        "unknown_keys_at_receiver",
        "effects_twice",
        "bad_signatures",
    ):
        assert result[figure] == 0, (figure, result)
    assert result["live_equals_replay"], result
    assert result["tracebacks_in_log"] == 0, (tmp_path / "daemon.log").read_text()[-3000:]
