"""Prometheus-client updates added up in memory: the bypass of its per-update locking.

Relies on prometheus-client's private fields of a labelled child (`Histogram._upper_bounds`,
`_sum`, `_buckets`, as Histogram.observe uses them) and on `asyncio._get_running_loop`
(guarded by tests/test_fastpath_guards.py; the pin is in pyproject.toml).
"""

from __future__ import annotations

import asyncio
from bisect import bisect_left
from collections.abc import Callable, Iterable
from typing import Any

from prometheus_client import Counter, Gauge, Histogram

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


