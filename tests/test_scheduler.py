"""The scheduler process: one active instance, failover, and run-job."""

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

import pytest

from scheduler.main import job_intervals
from tests.conftest import TEST_SECRETS
from tests.processes import ROOT, scheduler_process, stop

FAST = {"ENGAGEMENT_TRENDING_INTERVAL_SECONDS": "1", "ENGAGEMENT_LEADER_POLL_SECONDS": "0.5",
        "ENGAGEMENT_ROLLUP_INTERVAL_SECONDS": "1"}


def computed_at(db):
    row = db.execute("SELECT value::timestamptz FROM engagement_meta "
                     "WHERE key = 'trending_computed_at'").fetchone()
    return row[0] if row else None


def wait_for(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")




def test_scheduler_recomputes_trending_from_fresh_events(api, db, settings):
    now = datetime.now(UTC)
    api.put_project(1)
    api.import_events(views=[{"project_id": 1, "created_at": (now - timedelta(hours=2)).isoformat()}])
    proc = scheduler_process(settings, **FAST)
    try:
        wait_for(lambda: db.execute("SELECT count(*) FROM trending_scores").fetchone()[0] == 1,
                 20, "the scheduler to list the project")
    finally:
        stop(proc)
    assert proc.returncode == 0


def test_second_scheduler_waits_and_takes_over_after_sigkill(api, db, settings):
    first = scheduler_process(settings, **FAST)
    second = None
    try:
        wait_for(lambda: computed_at(db) is not None, 20, "the first scheduler to run")
        second = scheduler_process(settings, **FAST)
        time.sleep(2)
        assert second.poll() is None
        assert db.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
                          "AND objid = 7361000 AND granted").fetchone()[0] == 1
        first.send_signal(signal.SIGKILL)
        first.wait()
        killed_at = datetime.now(UTC)
        wait_for(lambda: (computed_at(db) or killed_at) > killed_at + timedelta(seconds=0.5), 60,
                 "the standby to take over and recompute trending")
        # and it keeps recomputing, not just once
        later = computed_at(db)
        wait_for(lambda: computed_at(db) > later, 10, "another recomputation")
    finally:
        stop(first)
        if second is not None:
            stop(second)


def test_job_intervals_follow_the_profile(settings):
    assert set(job_intervals(settings, "postgres")) == {
        "compute-trending", "refresh-rollups", "prune-dedup", "retention"}
    assert set(job_intervals(settings, "timescale")) == {"compute-trending", "prune-dedup",
                                                         "refresh-rollups"}
    assert job_intervals(settings, "postgres")["compute-trending"] == 300


def run_job_cli(database, name):
    env = {**os.environ, **TEST_SECRETS, "DATABASE_URL": database}
    return subprocess.run([sys.executable, "-m", "cli.main", "run-job", name], env=env,
                          capture_output=True, text=True, cwd=ROOT)


@pytest.mark.parametrize("job", ["compute-trending", "refresh-rollups", "prune-dedup", "retention"])
def test_run_job_succeeds(database, job):
    out = run_job_cli(database, job)
    assert out.returncode == 0, out.stderr


def test_run_job_unknown_name_fails(database):
    out = run_job_cli(database, "nope")
    assert out.returncode != 0
    assert "unknown job" in out.stderr


def test_run_job_fails_nonzero_when_the_job_fails(database, db):
    db.execute("ALTER TABLE trending_scores RENAME TO trending_scores_gone")
    out = run_job_cli(database, "compute-trending")
    assert out.returncode == 1
    assert "failed" in out.stderr


def test_prune_dedup_forgets_old_viewers(api, db, database):
    api.put_project(1)
    api.view(1, session="a")
    db.execute("UPDATE view_dedup SET last_view_at = now() - interval '10 minutes'")
    assert run_job_cli(database, "prune-dedup").returncode == 0
    assert db.execute("SELECT count(*) FROM view_dedup").fetchone()[0] == 0
    assert api.view(1, session="a").status_code == 201


@pytest.mark.timescale
def test_scheduler_counts_an_import_older_than_30_days(api, db, settings):
    """History 40 days old (the refresh policies of earlier releases looked back 30),
    imported into hours the continuous aggregates have already materialised past, is
    counted by the running scheduler, the only refresher."""
    from scheduler.jobs import JobContext, run_job

    now = datetime.now(UTC)
    api.put_project(1)
    assert api.import_events(views=[{"project_id": 1, "source": "embed",
                                     "created_at": (now - timedelta(hours=3)).isoformat()}]
                             ).status_code == 201
    run_job("refresh-rollups", JobContext(settings, "timescale"))  # watermark: this hour
    old = now - timedelta(days=40)
    assert api.import_events(views=[{"project_id": 1, "source": "direct",
                                     "created_at": old.isoformat()}] * 3).status_code == 201

    def counted():
        return db.execute("SELECT coalesce(sum(views), 0) FROM project_views_hourly "
                          "WHERE bucket = date_trunc('hour', %s::timestamptz)",
                          (old,)).fetchone()[0]

    assert counted() == 0  # below the watermark: nothing real-time shows it yet
    proc = scheduler_process(settings, **FAST)
    try:
        wait_for(lambda: counted() == 3, 30, "the scheduler to count the 40-day-old import")
    finally:
        stop(proc)
    assert proc.returncode == 0
    assert db.execute("SELECT sum(views) FROM site_views_hourly WHERE bucket = "
                      "date_trunc('hour', %s::timestamptz)", (old,)).fetchone() == (3,)
