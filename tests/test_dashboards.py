"""Grafana dashboards: generated JSON is committed, provisioning matches, every SQL query runs.

The SQL panels are run against the real test database after importing events, with Grafana's
macros expanded the way Grafana's PostgreSQL datasource expands them (both its plain
PostgreSQL form and, where the test database has TimescaleDB, its time_bucket form).
"""

from __future__ import annotations

import importlib.util
import json
import random
import re
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from cli.dev.demo import chunks, history, sample_projects
from scheduler.jobs import JobContext, run_job

ROOT = Path(__file__).resolve().parents[1]
GRAFANA = ROOT / "dashboards" / "grafana"
MACRO = re.compile(r"\$__(\w+)\(([^()]*)\)")


def load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("dashboards_generate",
                                                  ROOT / "dashboards" / "generate.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


generate = load_generator()


def dashboards() -> dict[str, dict[str, Any]]:
    return {path.name: json.loads(path.read_text())
            for path in sorted((GRAFANA / "dashboards").glob("*.json"))}


def panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in dashboard["panels"]:
        yield panel
        yield from panel.get("panels", [])


def interval_seconds(raw: str) -> int:
    number, unit = re.fullmatch(r"'?(\d+)([smhd])'?", raw.strip()).groups()  # type: ignore[union-attr]
    return int(number) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[unit]


def expand(raw_sql: str, *, start: datetime, end: datetime, project: str,
           interval: str = "1h", timescaledb: bool = False) -> str:
    """Grafana's template variables, then its PostgreSQL macros (pkg/tsdb/grafana-postgresql-datasource)."""
    text = raw_sql.replace("$__interval", interval).replace("$project", project)
    frm = start.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    to = end.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    def macro(match: re.Match[str]) -> str:
        name, args = match.group(1), [a.strip() for a in match.group(2).split(",")]
        if name == "timeFilter":
            return f"{args[0]} BETWEEN '{frm}' AND '{to}'"
        if name == "timeFrom":
            return f"'{frm}'"
        if name == "timeTo":
            return f"'{to}'"
        if name == "time":
            return f'{args[0]} AS "time"'
        if name in ("timeGroup", "timeGroupAlias"):
            seconds = interval_seconds(args[1])
            group = (f"time_bucket('{seconds}s',{args[0]})" if timescaledb
                     else f"floor(extract(epoch from {args[0]})/{seconds})*{seconds}")
            return group + (' AS "time"' if name == "timeGroupAlias" else "")
        raise AssertionError(f"the test's expander does not know $__{name}")

    text = MACRO.sub(macro, text)
    assert "$" not in text, f"unexpanded variable or macro in:\n{text}"
    return text


def sql_queries() -> list[tuple[str, str, str]]:
    """(dashboard, panel title, rawSql) of every SQL query, variables included."""
    found = []
    for name, dashboard in dashboards().items():
        for panel in panels(dashboard):
            for target in panel.get("targets", []):
                if "rawSql" in target:
                    found.append((name, panel["title"], target["rawSql"]))
        for variable in dashboard["templating"]["list"]:
            if variable.get("datasource", {}).get("uid") == generate.TIMESCALE["uid"]:
                found.append((name, f"${variable['name']}", variable["query"]))
    return found


def promql_queries() -> list[tuple[str, str]]:
    return [(panel["title"], target["expr"])
            for dashboard in dashboards().values() for panel in panels(dashboard)
            for target in panel.get("targets", []) if "expr" in target]


# --- the files ------------------------------------------------------------------------------

def test_committed_json_is_what_the_generator_makes():
    for name, build in generate.DASHBOARDS.items():
        committed = (GRAFANA / "dashboards" / name).read_text()
        assert committed == generate.render(build()), (
            f"{name} is out of date: run `python dashboards/generate.py`")
    assert generate.main(["--check"]) == 0
    assert set(generate.DASHBOARDS) == set(dashboards())


def test_dashboards_use_the_provisioned_datasources():
    provisioned = yaml.safe_load(
        (GRAFANA / "provisioning" / "datasources" / "engagement.yml").read_text())
    uids = {d["uid"]: d["type"] for d in provisioned["datasources"]}
    for name, dashboard in dashboards().items():
        refs = [p["datasource"] for p in panels(dashboard) if "datasource" in p]
        refs += [t["datasource"] for p in panels(dashboard) for t in p.get("targets", [])]
        refs += [v["datasource"] for v in dashboard["templating"]["list"] if "datasource" in v]
        assert refs, name
        for ref in refs:
            assert uids.get(ref["uid"]) == ref["type"], (name, ref)


def test_dashboard_provider_loads_the_json_folder():
    provider = yaml.safe_load(
        (GRAFANA / "provisioning" / "dashboards" / "engagement.yml").read_text())
    (only,) = provider["providers"]
    assert only["type"] == "file"
    assert only["options"]["path"] == "/etc/grafana/dashboards"


def test_panels_have_unique_ids_and_fit_the_grid():
    for name, dashboard in dashboards().items():
        ids = [p["id"] for p in panels(dashboard)]
        assert len(ids) == len(set(ids)), name
        assert len({dashboard["uid"] for dashboard in dashboards().values()}) == len(dashboards())
        for panel in panels(dashboard):
            pos = panel["gridPos"]
            assert pos["x"] + pos["w"] <= 24, (name, panel["title"])


def test_engagement_dashboard_has_the_panels_the_issue_asks_for():
    dashboard = dashboards()["engagement.json"]
    titles = {p["title"] for p in panels(dashboard)}
    for wanted in ("Views by hour of day and weekday", "Clicks by hour of day and weekday",
                   "Likes by hour of day and weekday", "Views by source",
                   "Clicks by feed and position", "Trending now"):
        assert wanted in titles
    (project,) = dashboard["templating"]["list"]
    assert project["name"] == "project" and project["includeAll"]
    assert project["current"]["value"] == ["$__all"]


def test_service_dashboard_covers_http_events_and_jobs():
    exprs = " ".join(expr for _, expr in promql_queries())
    for series in ("engagement_http_requests_total", "engagement_http_request_duration_seconds",
                   "engagement_events_total", "engagement_click_position_bucket",
                   "engagement_job_last_success_timestamp_seconds",
                   "engagement_job_duration_seconds", "engagement_job_runs_total",
                   "engagement_trending_projects", "engagement_rollup_lag_seconds"):
        assert series in exprs, series
    heatmaps = [p for p in panels(dashboards()["service.json"]) if p["type"] == "heatmap"]
    assert heatmaps and heatmaps[0]["targets"][0]["format"] == "heatmap"


def test_sql_avoids_time_bucket_and_uses_only_hourly_relations():
    allowed = {"project_views_hourly", "project_clicks_hourly", "project_likes_hourly",
               "project_engagement_hourly", "trending_scores", "projects",
               "project_impressions_hourly", "feed_impressions_hourly", "feed_clicks_hourly"}
    for _, title, raw in sql_queries():
        assert "time_bucket" not in raw, title
        # not functions; minus the CTE and extract(... FROM bucket)
        names = re.findall(r"\b(?:FROM|JOIN)\s+([a-z_]+)\b(?!\s*\()", raw)
        relations = set(names) - {"counts", "bucket"}
        assert relations <= allowed, (title, relations - allowed)


# --- the SQL against a real database -------------------------------------------------------

@pytest.fixture
def engagement_data(api, settings, profile) -> list[int]:
    """A few projects with two days of imported history, rollups and trending computed."""
    now = datetime.now(UTC)
    rng = random.Random(5)
    projects = sample_projects(4, 70_001, now, rng, scale=2.0)
    for p in projects:
        response = api.put_project(p.project_id, owner_id=p.owner_id, is_private=p.is_private,
                                   created_at=p.created_at)
        assert response.status_code == 201
    for body in chunks(history(projects, 2, now, rng)):
        assert api.import_events(**body).status_code == 201, body
    # A live click without a position: the "none" column of the position table.
    assert api.click(projects[0].project_id, "related").status_code == 201
    ctx = JobContext(settings, profile)
    run_job("refresh-rollups", ctx)
    run_job("compute-trending", ctx)
    return [p.project_id for p in projects]


@pytest.mark.parametrize("timescaledb", [False, True], ids=["postgres-macros", "timescale-macros"])
def test_every_sql_query_runs_and_returns_its_panel_columns(db, engagement_data, profile,
                                                            timescaledb):
    if timescaledb and not profile.startswith("timescale"):
        pytest.skip("time_bucket expansion needs TimescaleDB in the test database")
    end = datetime.now(UTC)
    start = end - timedelta(days=7)
    one = f"'{engagement_data[0]}'"
    two = ",".join(f"'{pid}'" for pid in engagement_data[:2])
    queries = sql_queries()
    assert len(queries) >= 12
    kinds = {p["title"]: p["type"] for d in dashboards().values() for p in panels(d)}
    for dashboard, title, raw in queries:
        expected = generate.SQL_COLUMNS[raw]
        for project in ("0", one, two):  # All, one project, two projects
            text = expand(raw, start=start, end=end, project=project, timescaledb=timescaledb)
            cur = db.execute(text)
            columns = tuple(c.name for c in cur.description or ())
            rows = cur.fetchall()
            assert columns == expected, (dashboard, title)
            assert rows, (dashboard, title, project)
            if kinds.get(title) == "stat":  # a stat panel reduces numeric fields only
                assert all(isinstance(v, int | Decimal | float) for r in rows for v in r), title
            if expected[0] == "time":
                # timestamptz, or epoch seconds (numeric) from the plain $__timeGroup form
                assert all(isinstance(r[0], datetime | Decimal | float) for r in rows), title
                assert all(isinstance(v, int | Decimal | float)
                           for r in rows for v in r[1:] if not isinstance(v, str)), title


def test_sql_panels_show_the_imported_engagement(db, engagement_data):
    end = datetime.now(UTC)
    start = end - timedelta(days=7)
    by_title = {title: raw for _, title, raw in sql_queries()}

    def run(title: str, project: str = "0") -> list[tuple[Any, ...]]:
        return db.execute(expand(by_title[title], start=start, end=end, project=project)
                          ).fetchall()

    views = db.execute("SELECT count(*) FROM project_views").fetchone()[0]
    assert run("Views")[0][0] == views > 0
    heat = run("Views by hour of day and weekday")
    assert [r[0] for r in heat] == ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
    assert sum(sum(r[1:]) for r in heat) == views
    positions = run("Clicks by feed and position")
    clicks = db.execute("SELECT count(*) FROM project_clicks").fetchone()[0]
    assert sum(sum(r[1:]) for r in positions) == clicks
    assert sum(r[-1] for r in positions) == 1  # the click sent without a position
    # Clicks decay with position: position 0 beats position 10 in the demo's traffic.
    assert sum(r[1] for r in positions) > sum(r[11] for r in positions)
    trending = run("Trending now")
    public = engagement_data[:-1]  # the demo makes the last project private
    assert sorted(r[1] for r in trending) == sorted(public)
    assert [r[0] for r in trending] == list(range(1, len(trending) + 1))
    only = run("Trending now", f"'{public[0]}'")
    assert [r[1] for r in only] == [public[0]]
    per_source = run("Views by source", f"'{public[0]}'")
    assert sum(r[2] for r in per_source) == db.execute(
        "SELECT count(*) FROM project_views WHERE project_id = %s", (public[0],)).fetchone()[0]
