"""`ingest.require_reject_reason`: a `Lead Rejected` without a reason is refused at ingest
with an error naming `properties.reason`; other messages of the batch are kept."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.daemon.harness import KEY, Daemon
from tests.daemon.ingest_daemon import ingest_daemon, stored_messages

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    root = tmp_path_factory.mktemp("reasons")
    with ingest_daemon(root, {"require_reject_reason": True}) as (d, _):
        yield d


def _rejected(who: str, **properties: object) -> dict[str, object]:
    return {"type": "track", "userId": who, "event": "Lead Rejected", "properties": properties}


def test_a_setting_can_require_a_reason_the_message_is_then_rejected_at_ingest(
    daemon: Daemon,
) -> None:
    batch = [
        _rejected("r-1"),
        _rejected("r-2", reason="no budget"),
        _rejected("r-3", reason=""),
        {"type": "track", "userId": "r-4", "event": "Lead Rejected"},
    ]
    answer = httpx.post(f"{daemon.url}/v1/batch", json={"batch": batch}, auth=(KEY, ""))
    assert answer.status_code == 400
    errors = answer.json()["errors"]
    assert [(e["index"], e["field"]) for e in errors] == [
        (0, "properties.reason"),
        (2, "properties.reason"),
        (3, "properties.reason"),
    ]
    assert "needs a reason" in errors[0]["message"]
    kept = {m.get("userId") for m in stored_messages(daemon)}
    assert "r-2" in kept and not kept & {"r-1", "r-3", "r-4"}
