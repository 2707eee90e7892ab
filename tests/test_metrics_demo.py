"""`engagement demo`: the traffic it makes and what it leaves behind in a running service."""

from __future__ import annotations

import random
from collections import Counter

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
