"""Prometheus metrics of the scheduler (ARCHITECTURE §7)."""

from prometheus_client import Counter, Gauge, Histogram

JOB_RUNS = Counter("engagement_job_runs", "Job runs by outcome.", ["job", "outcome"])
JOB_DURATION = Histogram(
    "engagement_job_duration_seconds", "Job run duration.", ["job"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
)
JOB_LAST_SUCCESS = Gauge(
    "engagement_job_last_success_timestamp_seconds", "Unix time of the last successful run.",
    ["job"],
)
TRENDING_PROJECTS = Gauge("engagement_trending_projects", "Rows in the latest trending table.")
ROLLUP_LAG = Gauge(
    "engagement_rollup_lag_seconds",
    "Age of the oldest event not yet in the hourly counts (0 when they are current).",
)
SCHEDULER_LEADER = Gauge(
    "engagement_scheduler_leader", "1 while this scheduler holds the leader lock."
)
