"""Hostile Segment messages and request bodies for the fuzz tests of the HTTP and replay
doors: valid messages (known ids, traits the example rules compare) and one message broken
in one field with a wrong type, a deep or huge value, odd text, a bad timestamp, a missing id
or a duplicate id; and bodies that are not JSON, not UTF-8, gzip bombs, NaN, lone surrogates.
"""

from __future__ import annotations

import gzip
import json
from typing import Any

from hypothesis import strategies as st

FIELDS = (
    "type",
    "event",
    "userId",
    "anonymousId",
    "previousId",
    "messageId",
    "timestamp",
    "originalTimestamp",
    "name",
    "properties",
    "traits",
    "context",
)

ODD_TEXT = st.sampled_from(
    [
        "",
        "\x00",
        "a\x00b",
        "\u202e\u200b\ufeff",
        "\U0001f600" * 50,
        "ǅ̶̷̸" * 20,
        "\uffff",
        "x" * 300,
        "x" * 40_000,
        "../../etc/passwd",
        "{{ 7 * 7 }}",
        "<script>alert(1)</script>",
        "/" + "a" * 30 + "!",
        "vp of \x00 sales",
    ]
)
TIMESTAMPS = st.sampled_from(
    [
        "9999-12-31T23:59:59Z",
        "9999-12-31T23:59:59-23:59",
        "0001-01-01T00:00:00+01:00",
        "1969-12-31T23:59:59Z",
        "1970-01-01T00:00:00Z",
        "2100-01-01T00:00:00Z",
        "2026-02-30T00:00:00Z",
        "yesterday",
        "2026-01-01T25:00:00Z",
        "+002021-01-01",
        "2026-01-01T00:00:00+99:00",
        "2026-03-01T10:00:00.123456789Z",
        "",
    ]
)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**64 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=30),
    ODD_TEXT,
)
JSONISH = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.text(max_size=8), inner, max_size=4),
    ),
    max_leaves=12,
)


def nested(depth: int, leaf: Any = 1) -> Any:
    value = leaf
    for level in range(depth):
        value = [value] if level % 2 else {"k": value}
    return value


HOSTILE_VALUES = st.one_of(
    JSONISH,
    TIMESTAMPS,
    st.integers(min_value=200, max_value=1100).map(nested),
    st.just({"type": "track"}),
    st.just([["track"]]),
)


def valid_message(tag: str, number: int) -> dict[str, Any]:
    """A valid message whose `messageId` is known, varied over the kinds the rules see."""
    user = f"fuzz-{tag}-{number % 7}"
    kind = ("page", "track", "identify")[number % 3]
    message: dict[str, Any] = {
        "type": kind,
        "userId": user,
        "messageId": f"ok-{tag}-{number}",
        "timestamp": f"2026-03-0{1 + number % 9}T10:{number % 60:02d}:00Z",
    }
    if kind == "page":
        message["properties"] = {"path": "/pricing", "title": "Pricing"}
    elif kind == "track":
        message["event"] = "Demo Requested"
    else:
        message["traits"] = {"title": "VP Sales", "company": {"size": 500}, "industry": "fintech"}
    return message


@st.composite
def hostile_message(draw: st.DrawFn, tag: str) -> Any:
    """One message broken in one way (it may still happen to be valid)."""
    how = draw(st.sampled_from(["replace", "drop", "trait", "whole", "duplicate"]))
    base = valid_message(tag, draw(st.integers(0, 10_000)))
    base["messageId"] = f"bad-{tag}-{draw(st.integers(0, 10**9))}"
    if how == "replace":
        base[draw(st.sampled_from(FIELDS))] = draw(HOSTILE_VALUES)
    elif how == "drop":
        base.pop(draw(st.sampled_from(["type", "userId", "event", "messageId", "timestamp"])), None)
    elif how == "trait":  # a hostile value where a rule compares it
        base["type"] = "identify"
        key = draw(st.sampled_from(["title", "industry", "company"]))
        base["traits"] = {key: draw(HOSTILE_VALUES)}
    elif how == "whole":
        return draw(st.one_of(JSONISH, st.integers(200, 1100).map(nested)))
    else:
        base["messageId"] = f"ok-{tag}-{draw(st.integers(0, 5))}"  # a known id again
    return base


GZIP_BOMB = gzip.compress(b"\x20" * (64 * 1024 * 1024), compresslevel=9)  # 64 MB of spaces

RAW_BODIES = st.one_of(
    st.binary(max_size=200),
    st.sampled_from(
        [
            b"",
            b"{",
            b'{"batch": [',
            b'{"batch": [{"type": "track"}]',
            b'{"batch": [NaN]}',
            b'{"batch": [{"type": "track", "event": Infinity}]}',
            b'{"batch": [{"type": "track", "userId": "\\ud800", "event": "x"}]}',
            b'{"batch": [{"type": "track", "userId": "\xff\xfe", "event": "x"}]}',
            b'{"batch": [{"type": "page", "userId": "u", "properties": {"n": 1e400}}]}',
            b"\xef\xbb\xbf{}",
            b"[" * 5000 + b"]" * 5000,
            b'{"batch": ' + b"[" * 1100 + b"]" * 1100 + b"}",
            b'{"batch": "not a list"}',
            b'{"batch": [], "context": "text"}',
            b'{"batch": [{"type": "page", "userId": "u", "context": 7}], "context": {"ip": "1"}}',
            b"null",
            b"true",
            b"[]",
            b'"text"',
        ]
    ),
)


def body_of(payload: Any) -> bytes:
    return json.dumps(payload, ensure_ascii=False).encode("utf-8", "surrogatepass")
