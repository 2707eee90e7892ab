"""Prometheus metrics of the service (names are part of the contract: ARCHITECTURE §7)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

EVENTS = Counter(
    "engagement_events",
    "Tracking events by kind, source and outcome.",
    ["kind", "source", "outcome"],
)
CLICK_POSITION = Histogram(
    "engagement_click_position",
    "Feed position of recorded clicks.",
    ["source"],
    buckets=(0, 1, 2, 3, 4, 5, 7, 10, 15, 20, 30, 50, 100),
)


def count_event(kind: str, source: str, outcome: str, amount: int = 1) -> None:
    EVENTS.labels(kind, source, outcome).inc(amount)


def count_click(source: str, position: int | None, stored: bool) -> None:
    EVENTS.labels("click", source, "recorded" if stored else "skipped").inc()
    if stored and position is not None:
        CLICK_POSITION.labels(source).observe(position)
