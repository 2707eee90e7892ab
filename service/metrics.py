"""Prometheus metrics of the service (names are part of the contract: ARCHITECTURE §7).

Works in prometheus-client's multiprocess mode (`engagement serve --workers N` sets
PROMETHEUS_MULTIPROC_DIR): counters and histograms are summed over the workers by the
/metrics endpoint, and every gauge says how to combine the workers' values.
Labels are bounded: kind, source, outcome, route template, method, status code; never ids.
"""

from __future__ import annotations

import collections
import os
from collections.abc import Iterable
from typing import Any

from litestar import Litestar
from litestar.routes import HTTPRoute
from litestar.types import Scope
from prometheus_client import Counter, Gauge, Histogram, multiprocess

from service.fastpath.prometheus import UpdateBuffer

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
FOREIGN_ORIGIN_SOURCE = "foreign_origin"  # 403: a page of another site (service.origins)
# The key of a route handler's `opt` naming the event kind its requests track: their 4xx
# answers are counted as rejected events of that kind.
EVENT_KIND = "event_kind"
# Route template (as litestar reports it) -> event kind, for counting rejected requests;
# read off the handlers when an app is built (count_rejections_of), so no path is repeated.
TRACKING_ROUTES: dict[str, str] = {}
HTTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
BUFFER = UpdateBuffer()


def count_rejections_of(app: Litestar) -> None:
    """Learn the route templates of the app's handlers that name an EVENT_KIND."""
    for route in app.routes:
        for handler in route.route_handlers if isinstance(route, HTTPRoute) else ():
            kind = handler.opt.get(EVENT_KIND)
            if kind is not None:
                TRACKING_ROUTES[route.path_format] = kind


def count_event(kind: str, source: str, outcome: str, amount: int = 1) -> None:
    BUFFER.inc(EVENTS, (kind, source, outcome), amount)


# track-click's outcomes, kept as they come until the next flush (_collect_clicks).
_CLICKS: list[tuple[str, int | None, bool]] = []


def count_click(source: str, position: int | None, stored: bool) -> None:
    _CLICKS.append((source, position, stored))
    BUFFER.schedule()


@BUFFER.collector
def _collect_clicks() -> None:
    clicks = _CLICKS.copy()
    _CLICKS.clear()
    for source, position, stored in clicks:
        BUFFER._inc(EVENTS, ("click", source, "recorded" if stored else "skipped"), 1)
        if stored and position is not None:
            BUFFER._observe(CLICK_POSITION, (source,), position, 1)


def count_batch(kind: str, items: Iterable[tuple[str, bool]]) -> None:
    """One counter update per (source, outcome) of a batch."""
    totals = collections.Counter((source, "recorded" if stored else "skipped") for source, stored in items)
    BUFFER.inc_many(EVENTS, (((kind, source, outcome), amount)
                             for (source, outcome), amount in totals.items()))


def observe_positions(clicks: Iterable[tuple[str, int | None, bool]]) -> None:
    """The feed position of each stored click that has one (one update per distinct one)."""
    counts = collections.Counter((source, position) for source, position, stored in clicks
                                 if stored and position is not None)
    BUFFER.observe_many(CLICK_POSITION, (((source,), position, times)
                                         for (source, position), times in counts.items()))


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


# Each request's answer (method, route template, status, seconds) and the scopes of the
# requests in flight, kept as they come by the outermost layer (service/fastpath/asgi.py);
# _collect_http turns them into the metrics at
# every flush.
HTTP_ANSWERED: list[tuple[str, str, int, float]] = []
# The method label is one of these or "other": the HTTP parser passes on any token as a
# method (PROPFIND, MKCOL, made-up ones), and each would add series of its own.
HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS",
                          "CONNECT", "TRACE"})
HTTP_IN_FLIGHT: dict[int, tuple[str, Scope]] = {}
_IN_FLIGHT_WRITTEN: dict[tuple[str, str], int] = {}


@BUFFER.collector
def _collect_http() -> None:
    answered = HTTP_ANSWERED.copy()
    HTTP_ANSWERED.clear()
    for method, path, status, seconds in answered:
        labels = (method, path, str(status))
        BUFFER._inc(HTTP_REQUESTS, labels, 1)
        BUFFER._observe(HTTP_DURATION, labels, seconds, 1)
        kind = TRACKING_ROUTES.get(path)
        # 404s are counted as "skipped" by the handlers themselves (unknown project).
        if kind and 400 <= status < 500 and status != 404:
            source = (RATE_LIMITED_SOURCE if status == 429
                      else FOREIGN_ORIGIN_SOURCE if status == 403 else REJECTED_SOURCE)
            BUFFER._inc(EVENTS, (kind, source, "rejected"), 1)
    in_flight = collections.Counter((method, scope.get("path_template", "other"))
                                    for method, scope in HTTP_IN_FLIGHT.values())
    # Every route seen gets a sample, 0 when nothing is in flight.
    seen = {(method, path) for method, path, _, _ in answered}
    for route in in_flight.keys() | _IN_FLIGHT_WRITTEN.keys() | seen:
        count = in_flight.get(route, 0)
        if _IN_FLIGHT_WRITTEN.get(route) != count:
            BUFFER._set(HTTP_IN_PROGRESS, route, count)
            _IN_FLIGHT_WRITTEN[route] = count


def mark_worker_stopped(*_: Any) -> None:
    """Write out pending updates, drop this worker's live gauges (shutdown hook)."""
    BUFFER.flush()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.mark_process_dead(os.getpid())
