"""Prometheus metrics of the service (names are part of the contract: ARCHITECTURE §7).

Works in prometheus-client's multiprocess mode (`engagement serve --workers N` sets
PROMETHEUS_MULTIPROC_DIR): counters and histograms are summed over the workers by the
/metrics endpoint, and every gauge says how to combine the workers' values.
Labels are bounded: kind, source, outcome, route template, method, status code; never ids.
"""

from __future__ import annotations

import os
from typing import Any

from litestar.plugins.prometheus import PrometheusConfig, PrometheusMiddleware
from litestar.types import Message, Receive, Scope, Send
from prometheus_client import Counter, Histogram, multiprocess

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

# Requests the service refused before it could tell what was in them: the source is unknown
# (or was the invalid part), so they all carry this one value.
REJECTED_SOURCE = "invalid"
# Route template (as litestar reports it) -> event kind, for counting rejected requests.
TRACKING_ROUTES = {
    "/api/v1/projects/{project_id}/track-view": "view",
    "/api/v1/projects/track-click": "click",
    "/api/v1/projects/track-clicks": "click",
    "/api/v1/internal/likes": "like",
}
HTTP_BUCKETS: list[str | float] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]


def count_event(kind: str, source: str, outcome: str, amount: int = 1) -> None:
    EVENTS.labels(kind, source, outcome).inc(amount)


def count_click(source: str, position: int | None, stored: bool) -> None:
    EVENTS.labels("click", source, "recorded" if stored else "skipped").inc()
    if stored and position is not None:
        CLICK_POSITION.labels(source).observe(position)


class HttpMetricsMiddleware(PrometheusMiddleware):
    """Litestar's request metrics, plus outcome="rejected" for 4xx answers to tracking calls."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        status = 0

        async def capture(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        await super().__call__(scope, receive, capture)
        kind = TRACKING_ROUTES.get(scope.get("path_template", ""))
        # 404s are counted as "skipped" by the handlers themselves (unknown project).
        if kind and 400 <= status < 500 and status != 404:
            count_event(kind, REJECTED_SOURCE, "rejected")


HTTP_METRICS = PrometheusConfig(
    app_name="engagement",
    prefix="engagement_http",  # engagement_http_requests_total, ..._request_duration_seconds
    group_path=True,  # label by route template, never by the raw path (it carries ids)
    buckets=HTTP_BUCKETS,
    middleware_class=HttpMetricsMiddleware,
)


def mark_worker_stopped(*_: Any) -> None:
    """Drop this worker's live gauges from the multiprocess directory (shutdown hook)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.mark_process_dead(os.getpid())
