"""`engagement scheduler`: one active APScheduler process, chosen by a PostgreSQL lock.

Every instance connects and tries a session advisory lock. The holder runs the jobs; the
others poll until the holder's session ends (the process died or lost its connection),
then one of them takes over. The holder checks its lock connection on the same beat and
stops scheduling the moment it is gone.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
import time
from datetime import UTC, datetime

import psycopg
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from prometheus_client import CollectorRegistry, start_http_server

from engagement.db.migrations import current_profile
from engagement.db.profiles import profile_named
from engagement.exposition import exposition_registry
from engagement.settings import Settings
from scheduler import metrics
from scheduler.gauges import DatabaseGauges
from scheduler.jobs import JOBS, JobContext, run_job

log = logging.getLogger("engagement.scheduler")

LEADER_LOCK = 7_361_000


def job_intervals(settings: Settings, profile: str) -> dict[str, int]:
    intervals = {
        "compute-trending": settings.trending_interval_seconds,
        "prune-dedup": settings.prune_interval_seconds,
        # On timescale this refreshes what TimescaleDB logged as invalidated (imports and
        # late events older than the policies' 30 days included) within raw retention.
        "refresh-rollups": settings.rollup_interval_seconds,
    }
    if profile_named(profile).retention_job:  # not where it is the database's own policy
        intervals["retention"] = settings.retention_interval_seconds
    return intervals


def _safe_run(name: str, ctx: JobContext) -> None:
    with contextlib.suppress(Exception):  # run_job logged and counted it; next run retries
        run_job(name, ctx)


def build_scheduler(ctx: JobContext) -> BackgroundScheduler:
    scheduler = BackgroundScheduler(
        executors={"default": ThreadPoolExecutor(4)},
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 60},
        timezone="UTC",
    )
    for name, seconds in job_intervals(ctx.settings, ctx.profile).items():
        # next_run_time=now: a new leader catches up at once instead of a full interval later
        scheduler.add_job(_safe_run, "interval", seconds=seconds, id=name, name=name,
                          args=(name, ctx), next_run_time=datetime.now(UTC))
    return scheduler


class Leader:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.conn: psycopg.Connection | None = None

    def try_acquire(self) -> bool:
        try:
            if self.conn is None or self.conn.closed:
                self.conn = psycopg.connect(self.settings.database_url, autocommit=True,
                                            connect_timeout=5,
                                            application_name="engagement-scheduler-leader")
            row = self.conn.execute("SELECT pg_try_advisory_lock(%s)", (LEADER_LOCK,)).fetchone()
            return bool(row and row[0])
        except psycopg.Error as exc:
            log.warning("leader lock: database unavailable (%s)", type(exc).__name__)
            self.release()
            return False

    def still_held(self) -> bool:
        try:
            assert self.conn is not None
            self.conn.execute("SELECT 1")
            return True
        except (psycopg.Error, AssertionError):
            return False

    def release(self) -> None:
        if self.conn is not None:
            with contextlib.suppress(psycopg.Error):
                self.conn.close()
        self.conn = None


def metrics_registry(settings: Settings) -> CollectorRegistry:
    """What /metrics shows: the database's gauges, read at each scrape, and this process's
    own metrics (job runs and durations, leadership)."""
    registry = CollectorRegistry(support_collectors_without_names=True)
    registry.register(DatabaseGauges(settings.database_url))
    registry.register(exposition_registry())
    return registry


def run_scheduler(settings: Settings, *, metrics_port: int | None = None) -> None:
    port = settings.scheduler_port if metrics_port is None else metrics_port
    # APScheduler's INFO lines (each job added, each run started and ended: about 20 at
    # start, 6 a minute) repeat run_job's one line a run; its warnings (missed runs) stay.
    apscheduler = logging.getLogger("apscheduler")
    if not apscheduler.isEnabledFor(logging.DEBUG):
        apscheduler.setLevel(logging.WARNING)
    metrics.declare_jobs(JOBS)
    if port:
        start_http_server(port, addr=settings.host, registry=metrics_registry(settings))
        log.info("scheduler metrics on http://%s:%d/metrics", settings.host, port)
    stop = threading.Event()

    abandon = threading.Event()

    def _stop(signum: int, _frame: object) -> None:
        if stop.is_set():  # a second signal: do not wait for the running jobs
            log.info("signal %d again: abandoning the running jobs", signum)
            abandon.set()
            return
        log.info("signal %d: stopping after the running jobs (at most %g s)", signum,
                 settings.scheduler_shutdown_grace_seconds)
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    leader = Leader(settings)
    waiting_logged = False
    while not stop.is_set():
        if not leader.try_acquire():
            if not waiting_logged:
                log.info("another scheduler is active; standing by")
                waiting_logged = True
            stop.wait(settings.leader_poll_seconds)
            continue
        waiting_logged = False
        profile = current_profile(settings.database_url)
        if profile is None:
            log.error("database is not migrated; run `engagement migrate` first")
            leader.release()
            stop.wait(settings.leader_poll_seconds)
            continue
        log.info("became the active scheduler (profile %s)", profile)
        metrics.SCHEDULER_LEADER.set(1)
        scheduler = build_scheduler(JobContext(settings, profile))
        scheduler.start()
        while not stop.is_set() and leader.still_held():
            stop.wait(settings.leader_poll_seconds)
        if not stop.is_set():
            log.warning("lost the leader lock connection; pausing jobs")
        if stop.is_set():
            finished = _finish_jobs(scheduler, settings.scheduler_shutdown_grace_seconds, abandon)
        else:
            scheduler.shutdown(wait=False)
            finished = True
        metrics.SCHEDULER_LEADER.set(0)
        leader.release()
        if not finished:
            # A job thread cannot be stopped from outside; ending the process closes its
            # connection, and PostgreSQL rolls its transaction back: nothing half-done stays.
            log.warning("running jobs did not finish in time; abandoned (rolled back)")
            logging.shutdown()
            os._exit(0)
    log.info("scheduler stopped")


def _finish_jobs(scheduler: BackgroundScheduler, grace_seconds: float,
                 abandon: threading.Event) -> bool:
    """Let running jobs finish (each is one transaction) for up to the grace period."""
    finisher = threading.Thread(target=scheduler.shutdown, kwargs={"wait": True}, daemon=True)
    finisher.start()
    deadline = time.monotonic() + grace_seconds
    while finisher.is_alive() and time.monotonic() < deadline and not abandon.is_set():
        finisher.join(0.1)
    return not finisher.is_alive()
