"""Prometheus metrics of the daemon, in a registry of its own (served at /metrics)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.events_accepted = Counter(
            "leadrules_events_accepted", "Messages stored by ingest", registry=r
        )
        self.events_rejected = Counter(
            "leadrules_events_rejected", "Messages refused by ingest", ["field"], registry=r
        )
        self.events_duplicate = Counter(
            "leadrules_events_duplicate", "Messages with a known messageId", registry=r
        )
        self.decisions = Counter(
            "leadrules_decisions", "Decisions made", ["action", "rule"], registry=r
        )
        self.deliveries = Counter(
            "leadrules_deliveries", "Messages delivered", ["channel"], registry=r
        )
        self.delivery_failures = Counter(
            "leadrules_delivery_failures",
            "Failed delivery attempts",
            ["channel", "final"],
            registry=r,
        )
        self.outbox_depth = Gauge(
            "leadrules_outbox_depth", "Decisions waiting for delivery", registry=r
        )
        self.pending_events = Gauge(
            "leadrules_pending_events", "Stored events not yet evaluated", registry=r
        )
        self.event_to_decision = Histogram(
            "leadrules_event_to_decision_seconds",
            "From receipt of an event to its decisions committed",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.event_to_delivery = Histogram(
            "leadrules_event_to_delivery_seconds",
            "From receipt of an event to delivery of its message",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.reloads = Counter("leadrules_rule_reloads", "Rule reloads", ["result"], registry=r)
        self.set_aside = Counter(
            "leadrules_set_aside",
            "Events and timers taken out of evaluation: held (evaluating them raised) or "
            "obsolete (a timer whose sequence or trigger a reload removed)",
            ["kind", "status"],
            registry=r,
        )
        self.held = Gauge(
            "leadrules_held_items",
            "Events and timers held after an error, waiting for `leadrules quarantine`",
            registry=r,
        )
