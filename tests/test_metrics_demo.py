"""`engagement demo`: the traffic it makes and what it leaves behind in a running service."""

from __future__ import annotations

import os
import random
import subprocess
import sys
from collections import Counter

import httpx
import pytest

from cli.dev.demo import daily_rhythm, feed_position, run_demo
from cli.main import main
from tests.processes import service_process


def test_traffic_follows_a_daily_rhythm_with_quieter_weekends():
    assert daily_rhythm(17, 2) == max(daily_rhythm(h, 2) for h in range(24))
    assert daily_rhythm(5, 2) == min(daily_rhythm(h, 2) for h in range(24))
    assert daily_rhythm(17, 6) < daily_rhythm(17, 2)


def test_clicks_decay_with_feed_position():
    rng = random.Random(2)
    counts = Counter(feed_position(rng) for _ in range(20_000))
    assert counts[0] > counts[1] > counts[3] > counts[10] > 0
    assert max(counts) <= 29


@pytest.mark.slow
def test_demo_fills_trending_through_the_api_and_the_jobs(settings):
    with service_process(settings) as base:
        report = run_demo(base, settings.service_token, projects=5, days=2, live_seconds=0.5,
                          rate=30, database_url=settings.database_url, seed=3,
                          log=lambda _: None)
    assert report.projects == 5
    assert min(report.imported.values()) > 0
    assert [job.split(":")[0] for job in report.jobs] == ["refresh-rollups", "compute-trending"]
    trending = [row["project_id"] for row in report.trending]
    assert sorted(trending) == [9001, 9002, 9003, 9004]  # the private 9005 is never listed
    answers = set(report.live)
    assert {"view 201", "view 200", "click 201", "invalid 400", "unknown 404"} <= answers


def test_demo_needs_the_service_token(monkeypatch, tmp_path, capsys):
    monkeypatch.chdir(tmp_path)  # no .engagement/dev.env to fall back on
    monkeypatch.delenv("ENGAGEMENT_SERVICE_TOKEN", raising=False)
    assert main(["demo", "--live-seconds", "0"]) == 2
    assert "ENGAGEMENT_SERVICE_TOKEN" in capsys.readouterr().err


def test_demo_reports_an_unreachable_service(monkeypatch, capsys):
    from cli.dev.embedded import free_port

    monkeypatch.setenv("ENGAGEMENT_SERVICE_TOKEN", "x")
    assert main(["demo", "--url", f"http://127.0.0.1:{free_port()}", "--no-jobs"]) == 1
    assert "ConnectError" in capsys.readouterr().err


def _demo(cwd, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items()
             if not k.startswith("ENGAGEMENT_") and k != "DATABASE_URL"}
    return subprocess.run([sys.executable, "-m", "cli.main", "demo", "--projects", "4",
                           "--days", "1", "--live-seconds", "1", *args],
                          cwd=cwd, env={**clean, **env}, capture_output=True, text=True,
                          timeout=180)


def _ages(db) -> list[tuple[int, object]]:
    return db.execute("SELECT id, created_at FROM projects WHERE id BETWEEN 9001 AND 9004 "
                      "ORDER BY id").fetchall()


@pytest.mark.slow
def test_demo_next_to_make_run_prints_a_summary_with_fresh_trending_and_keeps_ages(
        settings, db, tmp_path):
    # What `make run` leaves in .engagement/dev.env: the demo needs nothing else.
    (tmp_path / ".engagement").mkdir()
    (tmp_path / ".engagement" / "dev.env").write_text(
        f"ENGAGEMENT_SERVICE_TOKEN={settings.service_token}\n"
        f"DATABASE_URL={settings.database_url}\n")
    with service_process(settings) as base:
        first = _demo(tmp_path, "--url", base, "--seed", "5")
        assert first.returncode == 0, first.stderr
        ages = _ages(db)
        second = _demo(tmp_path, "--url", base, "--seed", "6")
        assert second.returncode == 0, second.stderr
    output = first.stdout + first.stderr
    assert "HTTP Request" not in output and "httpx" not in output
    assert len(output.splitlines()) <= 15
    assert "this run's events counted" in first.stdout and "  #1 project 90" in first.stdout
    assert "demo done" in first.stdout
    assert len(ages) == 4 and _ages(db) == ages
    assert "their ages kept" in second.stdout


@pytest.mark.slow
def test_demo_without_jobs_prints_a_hint_that_works_as_printed(settings, tmp_path):
    with service_process(settings) as base:
        result = _demo(tmp_path, "--url", base, "--no-jobs",
                       ENGAGEMENT_SERVICE_TOKEN=settings.service_token,
                       DATABASE_URL=settings.database_url)
        assert result.returncode == 0, result.stderr
        line = next(line for line in result.stdout.splitlines() if "at once: " in line)
        hint = line.split("at once: ", 1)[1]
        ran = subprocess.run(["sh", "-c", hint], cwd=tmp_path, capture_output=True, text=True,
                             env={k: v for k, v in os.environ.items() if k != "DATABASE_URL"},
                             timeout=120)
        assert ran.returncode == 0, ran.stderr
        assert "projects" in ran.stdout
        assert httpx.get(base + "/api/v1/trending/").json()["results"]
