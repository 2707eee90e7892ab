"""The scheduler's gauges reflect the database at scrape time, whichever process ran a job."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from prometheus_client.core import Metric
from prometheus_client.parser import text_string_to_metric_families

from cli.dev.embedded import free_port
from engagement.db.profiles import profile_named
from scheduler.gauges import DatabaseGauges
from scheduler.jobs import JobContext, run_job
from tests.conftest import TEST_SECRETS
from tests.processes import ROOT, scheduler_process, stop, wait_until_healthy


def samples(families: list[Metric]) -> dict[tuple[str, tuple[str, ...]], float]:
    return {(s.name, tuple(s.labels.values())): s.value for f in families for s in f.samples}


def scrape(url: str) -> dict[tuple[str, tuple[str, ...]], float]:
    return samples(list(text_string_to_metric_families(httpx.get(url, timeout=10).text)))


def wait_for_scrape(url: str, predicate, timeout: float = 30):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while True:
        seen = scrape(url)
        if predicate(seen) or time.monotonic() > deadline:
            return seen
        time.sleep(0.2)


def run_job_cli(database: str, name: str) -> None:
    env = {**os.environ, **TEST_SECRETS, "DATABASE_URL": database,
           "ENGAGEMENT_LOG_LEVEL": "warning"}
    done = subprocess.run([sys.executable, "-m", "cli.main", "run-job", name], env=env,
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


TRENDING = ("engagement_trending_projects", ())
UP = ("engagement_database_up", ())
TRENDING_SUCCESS = ("engagement_job_last_success_timestamp_seconds", ("compute-trending",))


def test_a_job_run_by_another_process_shows_at_the_next_scrape(api, db, settings, pg_server):
    port = free_port()
    url = f"http://127.0.0.1:{port}/metrics"
    # Default intervals: after its first runs, the scheduler's own next compute-trending is
    # 5 minutes away.
    scheduler = scheduler_process(settings, metrics_port=port,
                                  ENGAGEMENT_LEADER_POLL_SECONDS="0.5")
    try:
        wait_until_healthy(url, scheduler)
        first = wait_for_scrape(url, lambda seen: TRENDING_SUCCESS in seen)
        assert first[TRENDING] == 0 and first[UP] == 1

        now = datetime.now(UTC)
        for project_id in (1, 2, 3):
            api.put_project(project_id)
        api.put_project(4, is_private=True)  # never trending
        views = [{"project_id": p, "created_at": (now - timedelta(hours=2)).isoformat()}
                 for p in (1, 2, 3, 4)]
        assert api.import_events(views=views).status_code == 201
        started = db.execute("SELECT extract(epoch FROM statement_timestamp())").fetchone()[0]
        run_job_cli(settings.database_url, "refresh-rollups")
        run_job_cli(settings.database_url, "compute-trending")

        seen = scrape(url)
        assert seen[TRENDING] == 3
        assert seen[TRENDING_SUCCESS] >= float(started)
        assert seen[("engagement_job_last_success_timestamp_seconds", ("refresh-rollups",))] \
            >= float(started)
        assert seen[UP] == 1
        # what the trending table holds, as every process sees it
        assert db.execute("SELECT count(*) FROM trending_scores").fetchone()[0] == 3
        # ?name[]= still narrows the answer to the gauges asked for
        only = httpx.get(url, params={"name[]": "engagement_trending_projects"}).text
        assert samples(list(text_string_to_metric_families(only))) == {TRENDING: 3}

        # The database refuses connections: up 0, the last values read stay.
        with pg_server.admin() as admin:
            admin.execute(f'ALTER DATABASE "{db.info.dbname}" WITH ALLOW_CONNECTIONS false')
            try:
                down = scrape(url)
            finally:
                admin.execute(f'ALTER DATABASE "{db.info.dbname}" WITH ALLOW_CONNECTIONS true')
        assert down[UP] == 0
        assert down[TRENDING] == 3
        assert scrape(url)[UP] == 1
    finally:
        stop(scheduler)
    assert scheduler.returncode == 0


def test_rollup_lag_is_the_age_of_the_oldest_uncounted_change(api, db, settings, profile):
    if profile_named(profile).continuous_aggregates:
        pytest.skip("on timescale the lag is the materialisation's (tests/test_timescale.py)")
    gauges = DatabaseGauges(settings.database_url)
    api.put_project(1)
    api.view(1)
    db.execute("UPDATE rollup_invalidations SET recorded_at = now() - INTERVAL '1 hour'")
    lag = samples(list(gauges.collect()))[("engagement_rollup_lag_seconds", ())]
    assert 3600 <= lag < 3660
    run_job("refresh-rollups", JobContext(settings, profile))
    assert samples(list(gauges.collect()))[("engagement_rollup_lag_seconds", ())] == 0


def test_a_database_that_does_not_answer_never_breaks_the_scrape(api, settings, profile):
    gauges = DatabaseGauges(settings.database_url)
    api.put_project(1)
    api.view(1)
    run_job("refresh-rollups", JobContext(settings, profile))
    run_job("compute-trending", JobContext(settings, profile))
    read = samples(list(gauges.collect()))
    assert read[UP] == 1 and read[TRENDING] == 1 and TRENDING_SUCCESS in read

    nowhere = replace(settings, database_url=f"postgresql://x@127.0.0.1:{free_port()}/none")
    started = time.monotonic()
    gauges.database_url = nowhere.database_url
    down = samples(list(gauges.collect()))
    assert time.monotonic() - started < 5
    assert down == {**read, UP: 0}  # the last values read

    never_read = samples(list(DatabaseGauges(nowhere.database_url).collect()))
    assert never_read == {UP: 0}


def test_an_unmigrated_database_shows_only_that_it_answers(fresh_server_db):
    assert samples(list(DatabaseGauges(fresh_server_db).collect())) == {UP: 1}
