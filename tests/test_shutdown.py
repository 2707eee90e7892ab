"""Graceful shutdown with real processes: SIGTERM drains requests; jobs finish or roll back."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time

import httpx
import psycopg
import pytest

from cli.dev.embedded import free_port
from tests.processes import ROOT, process_env, stop, wait_until_healthy

pytestmark = pytest.mark.slow

BROWSER = "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0"
TRENDING_LOCK = 7_361_002  # the advisory lock compute-trending takes first


def wait_for(condition, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def waiting_on_locks(db, application: str) -> int:
    return db.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name = %s "
                      "AND wait_event_type = 'Lock'", (application,)).fetchone()[0]


def test_sigterm_drains_in_flight_requests(settings, db):
    db.execute("INSERT INTO projects VALUES (1, 1, false, now(), NULL)")
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "cli.main", "serve", "--host", "127.0.0.1", "--port",
         str(port), "--workers", "2"],
        env=process_env(settings, ENGAGEMENT_WRITE_TIMEOUT_SECONDS="10"), cwd=ROOT)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_healthy(base + "/healthz", proc)
        with psycopg.connect(settings.database_url) as locker:
            # Inserts wait behind this lock: the requests are in flight when SIGTERM comes.
            locker.execute("LOCK TABLE project_clicks IN ACCESS EXCLUSIVE MODE")

            async def clicks() -> list[httpx.Response]:
                async with httpx.AsyncClient(base_url=base, timeout=20,
                                             headers={"User-Agent": BROWSER}) as client:
                    calls = [asyncio.create_task(client.post(
                        "/api/v1/projects/track-click/",
                        json={"project_id": 1, "source": "search"},
                        headers={"X-Session-Key": f"drain-{i}"})) for i in range(20)]
                    await asyncio.to_thread(
                        wait_for, lambda: waiting_on_locks(db, "engagement-writer") >= 1, 10,
                        "inserts waiting on the lock")
                    await asyncio.sleep(0.3)  # let every request reach a worker
                    proc.send_signal(signal.SIGTERM)
                    await asyncio.sleep(1.0)
                    assert proc.poll() is None, "the service quit with requests in flight"
                    locker.rollback()  # the database answers again
                    return list(await asyncio.gather(*calls))

            answers = asyncio.run(clicks())
        assert [r.status_code for r in answers] == [201] * 20
        assert proc.wait(timeout=20) == 0
    finally:
        stop(proc)
    assert db.execute("SELECT count(*) FROM project_clicks").fetchone()[0] == 20


def start_scheduler(settings, grace: float) -> subprocess.Popen[bytes]:  # type: ignore[no-untyped-def]
    env = process_env(settings, ENGAGEMENT_LOG_LEVEL="info", ENGAGEMENT_SCHEDULER_PORT="0",
                      ENGAGEMENT_LEADER_POLL_SECONDS="0.2",
                      ENGAGEMENT_SCHEDULER_SHUTDOWN_GRACE_SECONDS=str(grace))
    return subprocess.Popen([sys.executable, "-m", "cli.main", "scheduler"], env=env,
                            cwd=ROOT, stderr=subprocess.PIPE)


def test_sigterm_lets_the_running_job_finish(settings, db):
    with psycopg.connect(settings.database_url, autocommit=True) as holder:
        holder.execute("SELECT pg_advisory_lock(%s)", (TRENDING_LOCK,))
        proc = start_scheduler(settings, grace=30)
        try:
            wait_for(lambda: waiting_on_locks(db, "engagement-scheduler") >= 1, 20,
                     "compute-trending to start")
            proc.send_signal(signal.SIGTERM)
            time.sleep(1.0)
            assert proc.poll() is None, "the scheduler quit while its job was running"
            holder.execute("SELECT pg_advisory_unlock(%s)", (TRENDING_LOCK,))
            code = proc.wait(timeout=20)
        finally:
            stop(proc)
    log = proc.stderr.read().decode() if proc.stderr else ""
    assert code == 0
    assert "job compute-trending ok" in log
    assert "scheduler stopped" in log


def test_sigterm_abandons_a_stuck_job_and_rolls_it_back(settings, db):
    db.execute("INSERT INTO projects VALUES (1, 1, false, now(), NULL)")
    db.execute("INSERT INTO trending_scores VALUES (1, 1, 1, 1, 1, 1, 1, 1, 1, 1, now())")
    with psycopg.connect(settings.database_url) as holder:
        # compute-trending empties trending_scores, then waits for `projects`: forever.
        holder.execute("LOCK TABLE projects IN ACCESS EXCLUSIVE MODE")
        proc = start_scheduler(settings, grace=1)
        try:
            wait_for(lambda: waiting_on_locks(db, "engagement-scheduler") >= 1, 20,
                     "a job to block")
            started = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            code = proc.wait(timeout=15)
            took = time.monotonic() - started
        finally:
            stop(proc)
        holder.rollback()
    log = proc.stderr.read().decode() if proc.stderr else ""
    assert code == 0
    assert took < 5, f"abandoning took {took:.1f}s with a 1 s grace period"
    assert "abandoned" in log
    # Its transaction rolled back: the old row is still there, and nothing of it lingers.
    assert db.execute("SELECT count(*) FROM trending_scores").fetchone()[0] == 1
    wait_for(lambda: db.execute("SELECT count(*) FROM pg_stat_activity WHERE "
                                "application_name LIKE 'engagement-scheduler%'").fetchone()[0]
             == 0, 10, "the scheduler's sessions to end")
