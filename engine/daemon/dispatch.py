"""The outbox dispatcher: delivers each decision through its channel's adapter, at least once,
with the same idempotency key on every attempt; retries with exponential backoff and full
jitter; a dead letter after `max_attempts`. The retry policy lives here and only here.

A receiver's `Retry-After` (on 429 or 503) is honoured: the next attempt is not before it.
Error texts are stripped of the channel's credentials (secrets, passwords, tokens, webhook
URLs, header values) before they reach the log or the outbox's `last_error`.
"""

from __future__ import annotations

import contextlib
import logging
import random
import re
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

import orjson
from sqlalchemy import bindparam, update
from sqlmodel import Session, col, select

from leadrules.adapters.base import Adapter, Message
from leadrules.adapters.registry import adapter_class
from leadrules.engine.clock import Clock
from leadrules.engine.core.ruleset import RuleSet
from leadrules.engine.daemon.store import DecisionRow, DecisionStatus, Store
from leadrules.engine.envrefs import MissingEnv, resolve
from leadrules.engine.errors import DeliveryError
from leadrules.engine.language.templates import TemplateSet
from leadrules.engine.timefmt import US_PER_S

log = logging.getLogger("leadrules.dispatch")
OnDelivered = Callable[[DecisionRow, int], None]
OnFailed = Callable[[DecisionRow, str, bool], None]
SECRET_SETTING = re.compile(r"secret|password|token|key|webhook_url|auth", re.IGNORECASE)


def secrets_of(settings: Any) -> list[str]:
    """The credentials among an adapter's settings, resolved: values of settings whose name
    says secret, password, token, key, auth or webhook_url, and every header value."""
    found: list[str] = []

    def visit(name: str, value: Any, secret: bool) -> None:
        if isinstance(value, dict):
            for key, inner in value.items():
                visit(str(key), inner, secret or name == "headers")
        elif isinstance(value, str) and (secret or SECRET_SETTING.search(name)):
            values = [value]
            with contextlib.suppress(MissingEnv):
                values.append(resolve(value))
            for one in values:
                found.append(one)
                parts = urlsplit(one)
                if parts.scheme and parts.netloc:  # a receiver may echo only the path
                    found.extend((parts.path, parts.query))

    dumped = settings.model_dump() if hasattr(settings, "model_dump") else settings
    for name, value in dict(dumped or {}).items():
        visit(name, value, False)
    return sorted({s for s in found if len(s) >= 4}, key=len, reverse=True)


def redact(text: str, secrets: list[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, "[redacted]")
    return text


# Delivery outcomes are committed together per group of this many sends: a crash (or the
# database going away) between a send and its group's commit sends that group's messages
# again, under the same idempotency keys (delivery is at least once), so the group is kept
# small; a commit per message would cost an fsync each.
RECORD_EVERY = 5


@dataclass
class Outcome:
    """One delivery attempt: the row with its new state, its attempts before, when, and the
    error (redacted) when it failed."""

    row: DecisionRow
    attempts_before: int
    at: int
    error: str | None


_RECORD = (
    update(DecisionRow)
    .where(
        col(DecisionRow.seq) == bindparam("b_seq"),
        col(DecisionRow.status) == "pending",
        col(DecisionRow.attempts) == bindparam("b_attempts_before"),
    )
    .values(
        attempts=bindparam("b_attempts"),
        status=bindparam("b_status"),
        sent_at=bindparam("b_sent_at"),
        last_error=bindparam("b_last_error"),
        next_attempt_at=bindparam("b_next_attempt_at"),
    )
)


class Dispatcher:
    def __init__(
        self,
        store: Store,
        rules: RuleSet,
        templates: TemplateSet,
        clock: Clock,
        *,
        max_attempts: int = 8,
        backoff_base_us: int = 2 * US_PER_S,
        backoff_max_us: int = 600 * US_PER_S,
        rng: random.Random | None = None,
    ) -> None:
        self.store = store
        self.clock = clock
        self.max_attempts = max_attempts
        self.backoff_base_us = backoff_base_us
        self.backoff_max_us = backoff_max_us
        self.rng = rng or random.Random()
        self.on_delivered: OnDelivered | None = None
        self.on_failed: OnFailed | None = None
        self._adapters: dict[str, Adapter] = {}
        self._secrets: dict[str, list[str]] = {}
        self.use_rules(rules, templates)

    def use_rules(self, rules: RuleSet, templates: TemplateSet) -> None:
        """New channels and templates (after a reload); adapters are built again on use."""
        self.close()
        self._secrets = {}
        self.rules = rules
        self.templates = templates

    def _adapter(self, channel: str) -> Adapter:
        if channel not in self._adapters:
            spec = self.rules.channels.get(channel)
            if spec is None:
                raise DeliveryError(f"unknown channel {channel!r}", retryable=False)
            self._secrets[channel] = secrets_of(spec.settings)
            self._adapters[channel] = adapter_class(spec.adapter)(channel, spec.settings)
        return self._adapters[channel]

    def secrets(self, channel: str) -> list[str]:
        """The channel's credentials (for redaction), whether or not its adapter was built."""
        if channel not in self._secrets:
            spec = self.rules.channels.get(channel)
            self._secrets[channel] = secrets_of(spec.settings) if spec is not None else []
        return self._secrets[channel]

    def message(self, row: DecisionRow) -> Message:
        record = orjson.loads(row.record)
        context: dict[str, Any] = orjson.loads(row.context) if row.context else {}
        template = record.get("template")
        subject, body, html = None, "", None
        if template is not None and template in self.templates.names():
            try:
                subject, body = self.templates.render(template, context)
                # The HTML part (e-mail) from the template itself, every value escaped before
                # the Markdown is rendered, so a filter's output cannot become markup either.
                html = self.templates.render_html(template, context)
            except Exception as exc:  # a template error is the message's, not the daemon's
                raise DeliveryError(
                    f"template {template!r} failed: {exc}", retryable=False
                ) from exc
        elif template is not None:
            raise DeliveryError(f"unknown template {template!r}", retryable=False)
        if subject is None:
            subject = f"{record['action']}: {record['prospect']} ({record['rule']})"
        audience: Literal["sales", "prospect"] = (
            "prospect" if record["action"] == "send" else "sales"
        )
        email = (context.get("traits") or {}).get("email")
        return Message(
            key=row.key,
            channel=record.get("channel") or "",
            audience=audience,
            record=record,
            subject=subject,
            text=body,
            html=html,
            to=email if audience == "prospect" else None,
            context=context,
        )

    def backoff(self, attempts: int) -> int:
        """Full jitter: uniform in [0, min(max, base * 2**attempts)]."""
        ceiling = min(self.backoff_max_us, self.backoff_base_us * (2 ** min(attempts, 30)))
        return int(self.rng.uniform(0, ceiling))

    def drain(self, limit: int = 100) -> int:
        """Deliver due messages; the number attempted. The outcomes of each group of
        `RECORD_EVERY` deliveries are recorded in one transaction (`_record`)."""
        now = self.clock.now_us()
        with self.store.session() as session:
            rows = session.exec(
                select(DecisionRow)
                .where(
                    col(DecisionRow.status) == "pending", col(DecisionRow.next_attempt_at) <= now
                )
                .order_by(col(DecisionRow.seq))
                .limit(limit)
            ).all()
        for start in range(0, len(rows), RECORD_EVERY):
            outcomes = [self._send(row) for row in rows[start : start + RECORD_EVERY]]
            self._record(outcomes)
            for outcome in outcomes:
                self._report(outcome)
        return len(rows)

    def _send(self, row: DecisionRow) -> Outcome:
        """One attempt through the channel's adapter, and the row's next state."""
        error: DeliveryError | None = None
        secrets = self.secrets(row.channel or "")
        try:
            message = self.message(row)
            self._adapter(row.channel or "").send(message)
        except DeliveryError as exc:
            error = exc
        except Exception as exc:  # an adapter bug or an unmapped failure: try again later
            log.error(
                "adapter raised for %s:\n%s", row.key, redact(traceback.format_exc(), secrets)
            )
            error = DeliveryError(f"{type(exc).__name__}: {exc}", retryable=True)
        now = self.clock.now_us()
        outcome = Outcome(row, row.attempts, now, None)
        row.attempts += 1
        if error is None:
            row.status, row.sent_at, row.last_error = "sent", now, None
            return outcome
        outcome.error = row.last_error = redact(str(error), secrets)
        if not error.retryable or row.attempts >= self.max_attempts:
            row.status = "dead"
        else:
            wait = self.backoff(row.attempts)
            if error.retry_after is not None:
                wait = max(wait, int(error.retry_after * US_PER_S))
            row.next_attempt_at = now + wait
        return outcome

    def _record(self, outcomes: list[Outcome], session: Session | None = None) -> None:
        """Write the outcomes in one transaction: one statement, its rows sent together
        (psycopg's executemany pipelines them). A row changed meanwhile (deleted by `forget`,
        say) is left as it is. With `session`, in that transaction (the caller commits)."""
        if not outcomes:
            return
        params = [
            {
                "b_seq": o.row.seq,
                "b_attempts_before": o.attempts_before,
                "b_attempts": o.row.attempts,
                "b_status": o.row.status,
                "b_sent_at": o.row.sent_at,
                "b_last_error": o.row.last_error,
                "b_next_attempt_at": o.row.next_attempt_at,
            }
            for o in outcomes
        ]
        if session is not None:
            session.connection().execute(_RECORD, params)
            return
        with self.store.session() as own:
            own.connection().execute(_RECORD, params)
            own.commit()

    def _report(self, outcome: Outcome) -> None:
        row = outcome.row
        if outcome.error is None:
            if self.on_delivered is not None:
                self.on_delivered(row, outcome.at)
            return
        log.warning("delivery of %s failed (%s): %s", row.key, row.status, outcome.error)
        if self.on_failed is not None:
            self.on_failed(row, outcome.error, row.status == "dead")

    def close(self) -> None:
        for adapter in self._adapters.values():
            adapter.close()
        self._adapters = {}


def outbox(
    store: Store, status: DecisionStatus | None = None, limit: int = 100
) -> list[DecisionRow]:
    """Decisions in the outbox, newest first (for `leadrules outbox`)."""
    with store.session() as session:
        query = select(DecisionRow).order_by(col(DecisionRow.seq).desc()).limit(limit)
        if status is not None:
            query = query.where(col(DecisionRow.status) == status)
        return list(session.exec(query).all())


def _dead_letters(session: Session, key: str | None) -> list[DecisionRow]:
    query = select(DecisionRow).where(col(DecisionRow.status) == "dead")
    if key is not None:
        query = query.where(col(DecisionRow.key) == key)
    return list(session.exec(query).all())


def retry_dead(store: Store, now_us: int, key: str | None = None) -> int:
    """Send dead letters again (all, or the one with `key`)."""
    with store.session() as session:
        rows = _dead_letters(session, key)
        for row in rows:
            row.status, row.attempts, row.next_attempt_at = "pending", 0, now_us
            session.add(row)
        session.commit()
        return len(rows)


def drop_dead(store: Store, key: str | None = None) -> int:
    """Give up on dead letters (they stay in the table, marked `dropped`)."""
    with store.session() as session:
        rows = _dead_letters(session, key)
        for row in rows:
            row.status = "dropped"
            session.add(row)
        session.commit()
        return len(rows)
