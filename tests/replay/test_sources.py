"""Reading replay input: order, gzip, stdin, rejections."""

from __future__ import annotations

import gzip
import heapq
import io
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from leadrules.engine.errors import LeadrulesError
from leadrules.engine.replay.sources import (
    EventFile,
    Item,
    OutOfOrder,
    Rejected,
    _reordered,
    ordered,
    parse_lines,
)

BASE = "2026-03-02T09:00:{:02d}Z"


def msg(second: int, mid: str) -> str:
    return json.dumps(
        {
            "type": "track",
            "event": "E",
            "userId": "u",
            "timestamp": BASE.format(second),
            "messageId": mid,
        }
    )


def ids(items: list) -> list[str]:
    return [item[3].message_id for item in items]


def test_a_nearly_sorted_file_streams_in_timestamp_order(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    path.write_text("\n".join([msg(1, "a"), msg(3, "c"), msg(2, "b"), msg(4, "d")]) + "\n")
    assert ids(list(ordered([EventFile(str(path))], print, full_sort=False, window=2))) == [
        "a",
        "b",
        "c",
        "d",
    ]


def test_input_too_far_out_of_order_raises_for_a_full_sort(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    path.write_text("\n".join([msg(5, "e"), msg(6, "f"), msg(7, "g"), msg(1, "a")]) + "\n")
    with pytest.raises(OutOfOrder):
        list(ordered([EventFile(str(path))], print, full_sort=False, window=1))
    assert ids(list(ordered([EventFile(str(path))], print, full_sort=True))) == ["a", "e", "f", "g"]


def test_files_merge_and_ties_keep_file_then_line_order(tmp_path: Path) -> None:
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    a.write_text("\n".join([msg(1, "a1"), msg(2, "a2")]) + "\n")
    b.write_text("\n".join([msg(1, "b1"), msg(1, "b2")]) + "\n")
    assert ids(list(ordered([EventFile(str(a)), EventFile(str(b))], print, full_sort=False))) == [
        "a1",
        "b1",
        "b2",
        "a2",
    ]


def test_gzip_is_detected_by_content(tmp_path: Path) -> None:
    path = tmp_path / "events.data"
    with gzip.open(path, "wt") as handle:
        handle.write(msg(1, "z") + "\n")
    assert ids(list(ordered([EventFile(str(path))], print, full_sort=False))) == ["z"]


def test_stdin_is_spooled_so_it_can_be_read_twice() -> None:
    source = EventFile("-", stdin=io.BytesIO((msg(2, "b") + "\n" + msg(1, "a") + "\n").encode()))
    try:
        assert ids(list(ordered([source], print, full_sort=True))) == ["a", "b"]
        assert ids(list(ordered([source], print, full_sort=True))) == ["a", "b"]
    finally:
        source.close()
    assert not source.path.exists()


def test_rejected_lines_name_file_line_and_field(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    path.write_text(msg(1, "a") + "\n\n" + '{"type": "page"}\n' + "[1]\n")
    rejected: list[Rejected] = []
    assert ids(list(ordered([EventFile(str(path))], rejected.append, full_sort=False))) == ["a"]
    assert [str(r) for r in rejected] == [
        f"{path}:3: userId: one of userId or anonymousId is required",
        f"{path}:4: message: must be a JSON object, got list",
    ]


def test_a_text_file_starting_with_gzips_two_magic_bytes_is_read_as_text(tmp_path: Path) -> None:
    """Only a start that inflates marks gzip; a text file that happens to start with gzip's
    magic number and method is JSON Lines with a bad first line, and the rest is kept."""
    path = tmp_path / "events.jsonl"
    good = b'{"type": "track", "userId": "u", "event": "X", "timestamp": "2026-03-01T10:00:00Z"}'
    path.write_bytes(b"\x1f\x8b\x08\n" + good + b"\n")
    rejected: list[Rejected] = []
    items = list(parse_lines(EventFile(str(path)), 0, rejected.append))
    assert [r.line for r in rejected] == [1]
    assert len(items) == 1


def test_a_truncated_gzip_file_is_an_error_naming_the_file_and_line(tmp_path: Path) -> None:
    lines = b"".join(
        b'{"type": "track", "userId": "u", "event": "X", "messageId": "m%d", '
        b'"timestamp": "2026-03-01T10:00:00Z"}\n' % i
        for i in range(2000)
    )
    data = gzip.compress(lines)
    path = tmp_path / "events.jsonl.gz"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(LeadrulesError, match=r"events\.jsonl\.gz: not valid gzip after line \d+"):
        list(parse_lines(EventFile(str(path)), 0, lambda item: None))


def _one_heap(items: list[Item], window: int) -> list[Item]:
    """The bounded reorder buffer as one heap: what `_reordered` must emit (until it finds
    an item less than one it emitted, and raises)."""
    heap: list[Item] = []
    out: list[Item] = []
    for item in items:
        heapq.heappush(heap, item)
        if len(heap) > window:
            out.append(heapq.heappop(heap))
    out.extend(sorted(heap))
    return out


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.integers(0, 60), max_size=80, unique=True).flatmap(
        lambda stamps: st.permutations(stamps)
    ),
    st.integers(1, 12),
)
def test_the_reorder_buffer_emits_what_one_heap_of_the_window_would(
    stamps: list[int], window: int
) -> None:
    items: list[Item] = [(ts, 0, n, None) for n, ts in enumerate(stamps)]
    expected = _one_heap(items, window)
    got: list[Item] = []
    try:
        for item in _reordered(iter(items), window):
            got.append(item)
    except OutOfOrder:
        assert expected != sorted(expected)  # raised only when the window is too small
        assert got == expected[: len(got)] == sorted(got)
        assert expected[len(got)] < got[-1]  # and at the first item out of order
        return
    assert got == expected == sorted(expected)
