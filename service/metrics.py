"""Prometheus metrics of the service (names are part of the contract: ARCHITECTURE §7).

Works in prometheus-client's multiprocess mode (`engagement serve --workers N` sets
PROMETHEUS_MULTIPROC_DIR): counters and histograms are summed over the workers by the
/metrics endpoint, and every gauge says how to combine the workers' values.
Labels are bounded: kind, source, outcome, route template, method, status code; never ids.
"""

from __future__ import annotations

import collections
import os
import time
from collections.abc import Iterable
from typing import Any

from litestar.middleware.base import DefineMiddleware
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from prometheus_client import Counter, Gauge, Histogram, multiprocess

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

# Tracking calls the service refused: the source is unknown (or was the invalid part), so
# the source label says why instead: malformed (4xx) or over the client's rate limit (429).
REJECTED_SOURCE = "invalid"
RATE_LIMITED_SOURCE = "rate_limited"
# Route template (as litestar reports it) -> event kind, for counting rejected requests.
TRACKING_ROUTES = {
    "/api/v1/projects/{project_id}/track-view": "view",
    "/api/v1/projects/track-click": "click",
    "/api/v1/projects/track-clicks": "click",
    "/api/v1/projects/track-impressions": "impression",
    "/api/v1/internal/likes": "like",
}
HTTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


def count_event(kind: str, source: str, outcome: str, amount: int = 1) -> None:
    EVENTS.labels(kind, source, outcome).inc(amount)


def count_click(source: str, position: int | None, stored: bool) -> None:
    EVENTS.labels("click", source, "recorded" if stored else "skipped").inc()
    if stored and position is not None:
        CLICK_POSITION.labels(source).observe(position)


def count_batch(kind: str, items: Iterable[tuple[str, bool]]) -> None:
    """One counter update per (source, outcome) of a batch, not one per item.

    In multiprocess mode every update writes a memory-mapped file, so a 50-item batch
    would otherwise pay 50 writes on the request path.
    """
    totals = collections.Counter((source, "recorded" if stored else "skipped") for source, stored in items)
    for (source, outcome), amount in totals.items():
        EVENTS.labels(kind, source, outcome).inc(amount)


HTTP_REQUESTS = Counter(
    "engagement_http_requests",
    "HTTP requests by method, route template and status code.",
    ["method", "path", "status_code"],
)
HTTP_DURATION = Histogram(
    "engagement_http_request_duration_seconds",
    "HTTP request duration by method, route template and status code.",
    ["method", "path", "status_code"],
    buckets=HTTP_BUCKETS,
)
HTTP_IN_PROGRESS = Gauge(
    "engagement_http_requests_in_progress",
    "HTTP requests being handled, summed over the workers.",
    ["method", "path"],
    multiprocess_mode="livesum",
)


class HttpMetricsMiddleware:
    """Request count and latency by route template; 4xx answers to tracking calls as rejected.

    Not litestar's PrometheusMiddleware: that one records an exception raised by an inner
    middleware (the rate limiter's 429) as a 200.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method, path = str(scope.get("method")), scope.get("path_template", "other")
        status, answered = 500, False

        async def capture(message: Message) -> None:
            nonlocal status, answered
            if message["type"] == "http.response.start":
                status, answered = message["status"], True
            await send(message)

        in_progress = HTTP_IN_PROGRESS.labels(method, path)
        in_progress.inc()
        started = time.perf_counter()
        try:
            await self.app(scope, receive, capture)
        except Exception as exc:
            if not answered:  # the app's exception handler will answer with this status
                status = getattr(exc, "status_code", 500)
            raise
        finally:
            in_progress.dec()
            code = str(status)
            HTTP_REQUESTS.labels(method, path, code).inc()
            HTTP_DURATION.labels(method, path, code).observe(time.perf_counter() - started)
            _count_rejected(path, status)


def _count_rejected(path: str, status: int) -> None:
    kind = TRACKING_ROUTES.get(path)
    # 404s are counted as "skipped" by the handlers themselves (unknown project).
    if kind and 400 <= status < 500 and status != 404:
        count_event(kind, RATE_LIMITED_SOURCE if status == 429 else REJECTED_SOURCE, "rejected")


HTTP_METRICS_MIDDLEWARE = DefineMiddleware(HttpMetricsMiddleware)


def mark_worker_stopped(*_: Any) -> None:
    """Drop this worker's live gauges from the multiprocess directory (shutdown hook)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.mark_process_dead(os.getpid())
