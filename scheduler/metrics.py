"""Prometheus metrics of the scheduler process (ARCHITECTURE §7); the gauges that describe
the database are read from it at scrape time (scheduler/gauges.py).

The scheduler is one process, but each gauge still names its multiprocess mode so the
numbers stay right if it ever runs with PROMETHEUS_MULTIPROC_DIR set.
"""

from collections.abc import Iterable

from prometheus_client import Counter, Gauge, Histogram

JOB_RUNS = Counter("engagement_job_runs", "Job runs by outcome.", ["job_name", "outcome"])
JOB_DURATION = Histogram(
    "engagement_job_duration_seconds", "Job run duration.", ["job_name"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
)
TRENDING_WINDOW_TOTALS = Counter(
    "engagement_trending_runs",
    "Trending runs by what they did with the window totals: reused, shifted or rebuilt.",
    ["mode"],
)
SCHEDULER_LEADER = Gauge(
    "engagement_scheduler_leader", "1 while this scheduler holds the leader lock.",
    multiprocess_mode="livemax",
)


def declare_jobs(names: Iterable[str]) -> None:
    """Start every job's counters at 0 so failures and runs have a series before the first."""
    for name in names:
        for outcome in ("success", "failure"):
            JOB_RUNS.labels(name, outcome)
        JOB_DURATION.labels(name)
    for mode in ("reused", "shifted", "rebuilt"):
        TRENDING_WINDOW_TOTALS.labels(mode)
