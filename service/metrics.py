"""Prometheus metrics of the service (names are part of the contract: ARCHITECTURE §7).

Works in prometheus-client's multiprocess mode (`engagement serve --workers N` sets
PROMETHEUS_MULTIPROC_DIR): counters and histograms are summed over the workers by the
/metrics endpoint, and every gauge says how to combine the workers' values.
Labels are bounded: kind, source, outcome, route template, method, status code; never ids.
"""

from __future__ import annotations

import asyncio
import collections
import os
import time
from bisect import bisect_left
from collections.abc import Callable, Iterable
from typing import Any

from litestar.types import ASGIApp, HTTPResponseStartEvent, Message, Receive, Scope, Send
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
FOREIGN_ORIGIN_SOURCE = "foreign_origin"  # 403: a page of another site (service.origins)
# Route template (as litestar reports it) -> event kind, for counting rejected requests.
TRACKING_ROUTES = {
    "/api/v1/projects/{project_id}/track-view": "view",
    "/api/v1/projects/track-click": "click",
    "/api/v1/projects/track-clicks": "click",
    "/api/v1/projects/track-impressions": "impression",
    "/api/v1/internal/likes": "like",
}
HTTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
# How long a worker's request-path updates may wait in memory before they reach the
# metric files: far below any scrape interval, long enough to add up hundreds of requests.
FLUSH_SECONDS = 0.05


class UpdateBuffer:
    """The request path's metric updates, added up in memory and written out together.

    In multiprocess mode every prometheus-client update takes a lock, checks the pid and
    writes a memory-mapped file; a tracking call made six of them (about 15 µs), a batch
    of 50 clicks over fifty. Here an update is a dict addition; the sums are written
    FLUSH_SECONDS after the first one (or at once without a running event loop), when this
    worker serves /metrics, and at shutdown. Totals are exactly the same, only later.
    """

    def __init__(self) -> None:
        self._children: dict[tuple[Any, tuple[str, ...]], Any] = {}
        self._counts: dict[Any, float] = {}
        self._observed: dict[Any, list[float]] = {}  # child -> [sum, count per bucket...]
        self._bounds: dict[Any, list[float]] = {}
        self._levels: dict[Any, float] = {}  # live gauges: this worker's current value
        self._dirty: set[Any] = set()
        self._timer: asyncio.TimerHandle | None = None
        self._timer_loop: asyncio.AbstractEventLoop | None = None
        self._collectors: list[Callable[[], None]] = []

    def collector(self, collect: Callable[[], None]) -> Callable[[], None]:
        """Register `collect`, run at every flush before the sums are written out.

        For updates the request path keeps rawer still (a tuple appended to a list, then
        `schedule()`): the collector turns them into `_inc`/`_observe`/`_set` calls, once
        per flush instead of once per request.
        """
        self._collectors.append(collect)
        return collect

    def _child(self, metric: Any, labels: tuple[str, ...]) -> Any:
        child = self._children.get((metric, labels))
        if child is None:  # label values are bounded, so this dict is too
            child = self._children[(metric, labels)] = metric.labels(*labels)
        return child

    def inc(self, counter: Counter, labels: tuple[str, ...], amount: float = 1) -> None:
        self._inc(counter, labels, amount)
        self._schedule()

    def inc_many(self, counter: Counter, amounts: Iterable[tuple[tuple[str, ...], float]]) -> None:
        """inc for each (labels, amount), scheduling the flush once: each scheduling looks
        up the running loop, which costs a getpid system call."""
        for labels, amount in amounts:
            self._inc(counter, labels, amount)
        self._schedule()

    def observe(self, histogram: Histogram, labels: tuple[str, ...], value: float,
                times: int = 1) -> None:
        """`times` observations of `value`."""
        self._observe(histogram, labels, value, times)
        self._schedule()

    def observe_many(self, histogram: Histogram,
                     observations: Iterable[tuple[tuple[str, ...], float, int]]) -> None:
        """observe for each (labels, value, times); the flush is scheduled once."""
        for labels, value, times in observations:
            self._observe(histogram, labels, value, times)
        self._schedule()

    def _inc(self, counter: Counter, labels: tuple[str, ...], amount: float) -> None:
        child = self._child(counter, labels)
        self._counts[child] = self._counts.get(child, 0) + amount

    def _observe(self, histogram: Histogram, labels: tuple[str, ...], value: float,
                 times: int) -> None:
        child = self._child(histogram, labels)
        entry = self._observed.get(child)
        if entry is None:
            bounds = self._bounds.get(child)
            if bounds is None:
                bounds = self._bounds[child] = list(child._upper_bounds)
            entry = self._observed[child] = [0.0] * (len(bounds) + 1)
        entry[0] += value * times
        # The first bucket whose upper bound is >= value, as Histogram.observe picks it.
        entry[1 + bisect_left(self._bounds[child], value)] += times

    def _set(self, gauge: Gauge, labels: tuple[str, ...], value: float) -> None:
        child = self._child(gauge, labels)
        self._levels[child] = value
        self._dirty.add(child)

    def _schedule(self) -> None:
        timer_loop = self._timer_loop
        if self._timer is not None and timer_loop is not None and not timer_loop.is_closed():
            # A flush is due. Looking up the running loop here would cost a getpid system
            # call on every update; a loop that is not closed will still run the timer
            # (only in-process test clients close theirs, and each one starts a new loop).
            return
        # asyncio's C-level lookup: no exception to raise and catch when there is no loop.
        loop = asyncio._get_running_loop()
        if loop is None:  # no event loop (a script): nothing to wait for
            self.flush()
            return
        # First update since the last flush, or the loop that held the timer is gone (each
        # in-process test client runs its own loop).
        self._timer_loop = loop
        self._timer = loop.call_later(FLUSH_SECONDS, self.flush)

    # For collectors' owners: they have something new, so a flush must be due.
    schedule = _schedule

    def flush(self) -> None:
        """Write every pending update to the metrics (the files, in multiprocess mode)."""
        if self._timer is not None:
            if self._timer_loop is not None and not self._timer_loop.is_closed():
                self._timer.cancel()
            self._timer = None
        for collect in self._collectors:
            collect()
        counts, self._counts = self._counts, {}
        observed, self._observed = self._observed, {}
        dirty, self._dirty = self._dirty, set()
        for child, amount in counts.items():
            child.inc(amount)
        for child, entry in observed.items():
            # Histogram.observe adds to _sum and to one bucket; so does this, n at a time.
            child._sum.inc(entry[0])
            for bucket, n in zip(child._buckets, entry[1:], strict=True):
                if n:
                    bucket.inc(n)
        for child in dirty:
            child.set(self._levels[child])


BUFFER = UpdateBuffer()


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
# requests in flight, kept as they come; _collect_http turns them into the metrics at
# every flush.
_HTTP_ANSWERED: list[tuple[str, str, int, float]] = []
# The method label is one of these or "other": the HTTP parser passes on any token as a
# method (PROPFIND, MKCOL, made-up ones), and each would add series of its own.
HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS",
                          "CONNECT", "TRACE"})
_HTTP_IN_FLIGHT: dict[int, tuple[str, Scope]] = {}
_HTTP_IN_FLIGHT_WRITTEN: dict[tuple[str, str], int] = {}


class HttpMetricsMiddleware:
    """Request count and latency by route template; 4xx answers to tracking calls as rejected.

    The app's outermost layer: create_app wraps litestar's own handler (`asgi_handler`:
    CORS, exception handling, routing) in it, so it sees every answer, routed or not (404,
    405, preflights; unrouted ones as path "other"), after exceptions became responses:
    an inner middleware's 429 is a 429. `on_start` may edit each response's start message
    (the security headers): one send wrapper for both. A litestar middleware would cost a
    second exception handler around every route and a before_send hook a second wrapper.
    Runs on every request, so it only appends what happened; the counts are worked out
    once per flush (_collect_http).
    """

    def __init__(self, app: ASGIApp,
                 on_start: Callable[[HTTPResponseStartEvent], None] | None = None) -> None:
        self.app = app
        self.on_start = on_start

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method = scope.get("method")
        if method not in HTTP_METHODS:
            method = "other"
        status = 500  # unless an answer starts
        on_start = self.on_start

        async def capture(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                if on_start is not None:
                    on_start(message)
            await send(message)

        key = id(scope)
        _HTTP_IN_FLIGHT[key] = (method, scope)
        BUFFER.schedule()
        started = time.perf_counter()
        try:
            await self.app(scope, receive, capture)
        finally:
            del _HTTP_IN_FLIGHT[key]
            # The router has set the route template by now (if any route matched).
            _HTTP_ANSWERED.append((method, scope.get("path_template", "other"), status,
                                   time.perf_counter() - started))
            BUFFER.schedule()


@BUFFER.collector
def _collect_http() -> None:
    answered = _HTTP_ANSWERED.copy()
    _HTTP_ANSWERED.clear()
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
                                    for method, scope in _HTTP_IN_FLIGHT.values())
    # Every route seen gets a sample, 0 when nothing is in flight.
    seen = {(method, path) for method, path, _, _ in answered}
    for route in in_flight.keys() | _HTTP_IN_FLIGHT_WRITTEN.keys() | seen:
        count = in_flight.get(route, 0)
        if _HTTP_IN_FLIGHT_WRITTEN.get(route) != count:
            BUFFER._set(HTTP_IN_PROGRESS, route, count)
            _HTTP_IN_FLIGHT_WRITTEN[route] = count


def mark_worker_stopped(*_: Any) -> None:
    """Write out pending updates, drop this worker's live gauges (shutdown hook)."""
    BUFFER.flush()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.mark_process_dead(os.getpid())
