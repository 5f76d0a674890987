"""`${VAR}` references: one resolver (`leadrules.engine.envrefs`) for every setting that takes
them — write keys, channel settings, webhook headers — with one rule: unset or empty is
missing."""

from __future__ import annotations

import pytest

from leadrules.adapters.base import Message
from leadrules.adapters.webhook import WebhookAdapter
from leadrules.engine.envrefs import MissingEnv, resolve
from leadrules.engine.errors import DeliveryError
from leadrules.engine.language.settings import IngestSettings, Settings
from tests.receivers import HttpReceiver

RECORD = {"at": "2026-03-04T10:00:00Z", "prospect": "u1", "action": "notify", "rule": "r"}


def message() -> Message:
    return Message("k/0", "crm", "sales", RECORD, "subject", "text")


def test_resolve_replaces_every_reference_and_keeps_the_rest() -> None:
    env = {"A": "1", "B_2": "two"}
    assert resolve("x-${A}-${B_2}-${A}", env) == "x-1-two-1"
    assert resolve("no references", env) == "no references"
    assert resolve("$A ${ A} $${A}", env) == "$A ${ A} $1"


@pytest.mark.parametrize("env", [{}, {"A": ""}])
def test_an_unset_or_empty_variable_is_missing_and_named(env: dict[str, str]) -> None:
    with pytest.raises(MissingEnv) as caught:
        resolve("Bearer ${A}", env)
    assert caught.value.name == "A"


def test_write_keys_leave_out_keys_whose_variable_is_missing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("KEY_ONE", "k1")
    monkeypatch.setenv("KEY_EMPTY", "")
    monkeypatch.delenv("KEY_UNSET", raising=False)
    settings = Settings(
        ingest=IngestSettings(write_keys=["${KEY_ONE}", "${KEY_EMPTY}", "${KEY_UNSET}", "plain"])
    )
    assert settings.resolved_write_keys() == ["k1", "plain"]


@pytest.mark.integration
def test_webhook_headers_resolve_references_when_sending(
    http: HttpReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CRM_TOKEN", "t0k3n")
    adapter = WebhookAdapter(
        "crm", {"url": http.url, "headers": {"Authorization": "Bearer ${CRM_TOKEN}"}}
    )
    adapter.send(message())
    assert http.requests[0].headers["authorization"] == "Bearer t0k3n"


@pytest.mark.integration
def test_a_webhook_header_whose_variable_is_missing_is_a_final_error_naming_it(
    http: HttpReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CRM_TOKEN", raising=False)
    adapter = WebhookAdapter(
        "crm", {"url": http.url, "headers": {"Authorization": "Bearer ${CRM_TOKEN}"}}
    )
    with pytest.raises(DeliveryError) as caught:
        adapter.send(message())
    assert not caught.value.retryable
    assert "headers.Authorization" in str(caught.value) and "CRM_TOKEN" in str(caught.value)
    assert http.requests == []
