"""The scheduler's gauges of the database, read from it whenever /metrics is scraped.

engagement_trending_projects, engagement_rollup_lag_seconds and
engagement_job_last_success_timestamp_seconds describe the database, not this process: a
job run by any process (this scheduler, another instance, `engagement run-job`) shows at
the next scrape. engagement_database_up says whether the database answered that read.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field

import psycopg
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from engagement.db.profiles import StorageProfile, profile_named, recorded_profile
from engagement.db.queries import q
from scheduler.jobs import materialised_lag

log = logging.getLogger("engagement.scheduler")

# A scrape waits at most about twice this for the database (connecting, then the queries;
# libpq's connect timeout is whole seconds, at least 2), well inside Prometheus's 10 s.
TIMEOUT_SECONDS = 2

DATABASE_UP = ("engagement_database_up",
               "1 when the database answered the scheduler's read at scrape time.")
TRENDING_PROJECTS = ("engagement_trending_projects", "Rows in the trending table.")
ROLLUP_LAG = ("engagement_rollup_lag_seconds",
              "Age of the oldest event not yet in the hourly counts (0 when they are current).")
JOB_LAST_SUCCESS = ("engagement_job_last_success_timestamp_seconds",
                    "Unix time of the job's last successful run, by any process.")


@dataclass(frozen=True, slots=True)
class Reading:
    trending_projects: int
    rollup_lag_seconds: float
    last_success: dict[str, float] = field(default_factory=dict)  # by job name


def read(conn: psycopg.Connection, storage: StorageProfile) -> Reading:
    """The gauges' values as the database holds them now."""
    row = conn.execute(q("scheduler_gauges")).fetchone()
    assert row is not None
    trending, jobs, times = row
    if storage.continuous_aggregates:
        lag = materialised_lag(conn)
    else:
        lag_row = conn.execute(q("rollup_lag")).fetchone()
        lag = lag_row[0] if lag_row else 0.0
    return Reading(trending, lag, dict(zip(jobs, times, strict=True)))


class DatabaseGauges(Collector):
    """Reads the database at scrape time; never raises into the scrape. When the database
    does not answer: engagement_database_up 0, and the other gauges keep their last values."""

    def __init__(self, database_url: str) -> None:
        self.database_url = database_url
        self.storage: StorageProfile | None = None  # recorded once, by `engagement migrate`
        self.last: Reading | None = None
        self.up = True

    def describe(self) -> Iterator[GaugeMetricFamily]:
        for name, documentation in (DATABASE_UP, TRENDING_PROJECTS, ROLLUP_LAG, JOB_LAST_SUCCESS):
            yield GaugeMetricFamily(name, documentation)

    def collect(self) -> Iterator[GaugeMetricFamily]:
        up = self._refresh()
        yield GaugeMetricFamily(*DATABASE_UP, value=1.0 if up else 0.0)
        last = self.last
        if last is None:  # nothing read yet, or the database is not migrated
            return
        yield GaugeMetricFamily(*TRENDING_PROJECTS, value=last.trending_projects)
        yield GaugeMetricFamily(*ROLLUP_LAG, value=last.rollup_lag_seconds)
        succeeded = GaugeMetricFamily(*JOB_LAST_SUCCESS, labels=["job_name"])
        for job_name, timestamp in sorted(last.last_success.items()):
            succeeded.add_metric([job_name], timestamp)
        yield succeeded

    def _refresh(self) -> bool:
        """Read the database into `last`; whether it answered."""
        try:
            with psycopg.connect(self.database_url, autocommit=True,
                                 connect_timeout=TIMEOUT_SECONDS,
                                 application_name="engagement-scheduler-metrics") as conn:
                conn.execute("SELECT set_config('statement_timeout', %s, false)",
                             (f"{TIMEOUT_SECONDS}s",))
                if self.storage is None:
                    profile = recorded_profile(conn)
                    if profile is None:
                        return self._answered(True)
                    self.storage = profile_named(profile)
                self.last = read(conn, self.storage)
        except Exception as exc:  # whatever it is, the scrape still answers
            if self.up:
                log.warning("metrics: the database did not answer (%s: %s); "
                            "showing the last values read", type(exc).__name__, exc)
            return self._answered(False)
        return self._answered(True)

    def _answered(self, up: bool) -> bool:
        if up and not self.up:
            log.info("metrics: the database answers again")
        self.up = up
        return up
