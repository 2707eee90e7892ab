"""A real Prometheus scrapes a running service (2 workers) and scheduler with the project's own
scrape config and alert rules: every PromQL panel returns data, every alert rule evaluates.
"""

from __future__ import annotations

import math
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from cli.dev.demo import run_demo
from cli.dev.embedded import free_port
from tests.conftest import Server, Template, _copy, _drop, _settings_for
from tests.processes import scheduler_process, service_process, stop, wait_until_healthy
from tests.test_dashboards import promql_queries

PROMETHEUS_DIR = Path(__file__).resolve().parents[1] / "dashboards" / "prometheus"
SCRAPE_SECONDS = 1
# What Grafana puts in for $__rate_interval: 4 scrape intervals at least.
RATE_INTERVAL = f"{4 * SCRAPE_SECONDS + 2}s"

pytestmark = pytest.mark.slow


@dataclass
class Stack:
    prometheus: str
    started: float


def prometheus_config(service: str, scheduler: str, rules: Path) -> dict[str, Any]:
    """dashboards/prometheus/prometheus.yml with loopback targets and a 1 s scrape interval."""
    config = yaml.safe_load((PROMETHEUS_DIR / "prometheus.yml").read_text())
    config["global"].update(scrape_interval=f"{SCRAPE_SECONDS}s",
                            evaluation_interval=f"{SCRAPE_SECONDS}s")
    config["rule_files"] = [str(rules)]
    targets = {"engagement-service": service, "engagement-scheduler": scheduler}
    for job in config["scrape_configs"]:
        job["static_configs"] = [{"targets": [targets[job["job_name"]]]}]
    return config


def query_range(base: str, expr: str, start: float) -> list[dict[str, Any]]:
    response = httpx.get(f"{base}/api/v1/query_range", params={
        "query": expr, "start": start, "end": time.time(), "step": f"{SCRAPE_SECONDS}s"})
    body = response.json()
    assert response.status_code == 200 and body["status"] == "success", (expr, body)
    result: list[dict[str, Any]] = body["data"]["result"]
    return result


def has_numbers(result: list[dict[str, Any]]) -> bool:
    return any(not math.isnan(float(v)) for series in result for _, v in series["values"])


@pytest.fixture(scope="module")
def stack(pg_server: Server, template: Template, tmp_path_factory) -> Iterator[Stack]:
    binary = shutil.which("prometheus") or "/usr/bin/prometheus"
    if not Path(binary).exists():
        pytest.skip("prometheus not installed (Debian package `prometheus`)")
    name = _copy(pg_server, template.name)
    settings = _settings_for(pg_server.url(name))
    tmp = tmp_path_factory.mktemp("prometheus")
    scheduler_port, prometheus_port = free_port(), free_port()
    scheduler = scheduler_process(
        settings, metrics_port=scheduler_port, ENGAGEMENT_TRENDING_INTERVAL_SECONDS="1",
        ENGAGEMENT_ROLLUP_INTERVAL_SECONDS="1", ENGAGEMENT_PRUNE_INTERVAL_SECONDS="2",
        ENGAGEMENT_LEADER_POLL_SECONDS="0.5")
    prometheus = None
    try:
        with service_process(settings, workers=2) as service:
            wait_until_healthy(f"http://127.0.0.1:{scheduler_port}/metrics", scheduler)
            config = prometheus_config(service.removeprefix("http://"),
                                       f"127.0.0.1:{scheduler_port}",
                                       PROMETHEUS_DIR / "alerts.yml")
            (tmp / "prometheus.yml").write_text(yaml.safe_dump(config))
            started = time.time()
            prometheus = subprocess.Popen(
                [binary, f"--config.file={tmp / 'prometheus.yml'}",
                 f"--storage.tsdb.path={tmp / 'data'}",
                 f"--web.listen-address=127.0.0.1:{prometheus_port}",
                 "--log.level=warn"],
                stdout=subprocess.DEVNULL, stderr=(tmp / "prometheus.log").open("w"))
            base = f"http://127.0.0.1:{prometheus_port}"
            wait_until_healthy(f"{base}/-/ready", prometheus)
            # Demo traffic while Prometheus scrapes: history, then live calls for a few seconds.
            run_demo(service, settings.service_token, projects=4, days=1, live_seconds=6,
                     rate=40, seed=11, log=lambda _: None)
            time.sleep(3 * SCRAPE_SECONDS)
            yield Stack(base, started)
    finally:
        if prometheus is not None:
            stop(prometheus)
        stop(scheduler)
        _drop(pg_server, name)


def test_prometheus_scrapes_both_processes(stack):
    up = query_range(stack.prometheus, "up", stack.started)
    jobs = {s["metric"]["job"]: s["values"][-1][1] for s in up}
    assert jobs == {"engagement-service": "1", "engagement-scheduler": "1"}
    # the job's name is in job_name; job is the scrape target's, with no exported_job
    runs = query_range(stack.prometheus, "engagement_job_runs_total", stack.started)
    assert {"compute-trending", "refresh-rollups"} <= {s["metric"]["job_name"] for s in runs}
    assert {s["metric"]["job"] for s in runs} == {"engagement-scheduler"}
    assert not any("exported_job" in s["metric"] for s in runs)


def test_every_service_dashboard_query_returns_data(stack):
    queries = promql_queries()
    assert len(queries) >= 15
    empty = []
    for title, expr in queries:
        result = query_range(stack.prometheus, expr.replace("$__rate_interval", RATE_INTERVAL),
                             stack.started)
        if not has_numbers(result):
            empty.append((title, expr))
    assert not empty, empty


def test_service_metrics_move_with_the_demo_traffic(stack):
    def latest(expr: str) -> float:
        result = query_range(stack.prometheus, expr, stack.started)
        return max(float(s["values"][-1][1]) for s in result)

    assert latest('sum(engagement_events_total{kind="view", outcome="recorded"})') > 0
    assert latest('sum(engagement_events_total{kind="view", outcome="deduplicated"})') > 0
    assert latest('sum(engagement_events_total{outcome="rejected"})') > 0
    assert latest("sum(engagement_click_position_count)") > 0
    assert latest("max(engagement_trending_projects)") == 3  # 4 minus the private one
    assert latest("min(engagement_database_up)") == 1


def test_alert_rules_evaluate_and_stay_quiet_on_a_healthy_stack(stack):
    deadline = time.monotonic() + 10
    while True:
        body = httpx.get(f"{stack.prometheus}/api/v1/rules").json()
        rules = [r for g in body["data"]["groups"] for r in g["rules"]]
        if rules and all(r.get("lastEvaluation", "").startswith("20") for r in rules):
            break
        assert time.monotonic() < deadline, rules
        time.sleep(0.5)
    names = {r["name"] for r in rules}
    assert {"EngagementSchedulerStalled", "EngagementTrendingStale", "EngagementIngestErrors",
            "EngagementDatabaseUnavailable"} <= names
    for rule in rules:
        assert rule["health"] == "ok", rule
        assert rule["state"] == "inactive", rule
