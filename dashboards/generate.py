"""The Grafana dashboards as code: `python dashboards/generate.py` writes grafana/dashboards/*.json.

`--check` exits non-zero when a committed JSON file differs from what this code generates
(tests/test_dashboards.py runs it). Plain Python, no dependencies: a panel is a dict in
Grafana's dashboard JSON model (schema 39, Grafana 11).

SQL panels read only the hourly relations (project_views_hourly, project_clicks_hourly,
project_likes_hourly, project_engagement_hourly, and for click-through rates
project_impressions_hourly, feed_impressions_hourly, feed_clicks_hourly) and trending_scores,
and use only Grafana's macros and date_trunc/extract, so they run unchanged on TimescaleDB and
plain PostgreSQL.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
OUT_DIR = HERE / "grafana" / "dashboards"

PROMETHEUS = {"type": "prometheus", "uid": "engagement-prometheus"}
TIMESCALE = {"type": "grafana-postgresql-datasource", "uid": "engagement-timescaledb"}

# The project variable: every project by default. Its "All" value is 0, which is never a
# project id, so `(0 IN ($project) OR project_id IN ($project))` needs no huge IN list.
PROJECT_FILTER = "(0 IN ($project) OR project_id IN ($project))"
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
HOURS = tuple(f"{h:02d}" for h in range(24))
POSITIONS = tuple(str(p) for p in range(20))
CLICK_FEEDS = ("explore_for_you", "explore_trending", "explore_new", "explore_news", "search",
               "profile", "related")
# Long enough for jobs that run every few minutes (compute-trending: 5 min).
JOB_WINDOW = "15m"


@dataclass
class Query:
    """One panel query; `columns` is what the panel reads (the tests check the SQL returns it)."""

    target: dict[str, Any]
    columns: tuple[str, ...] = ()


@dataclass
class Layout:
    """Places panels left to right on Grafana's 24-column grid."""

    x: int = 0
    y: int = 0
    row_height: int = 0
    next_id: int = 1
    panels: list[dict[str, Any]] = field(default_factory=list)

    def add(self, panel: dict[str, Any], w: int, h: int) -> None:
        if self.x + w > 24:
            self.x, self.y, self.row_height = 0, self.y + self.row_height, 0
        panel["id"] = self.next_id
        panel["gridPos"] = {"h": h, "w": w, "x": self.x, "y": self.y}
        self.next_id += 1
        self.x += w
        self.row_height = max(self.row_height, h)
        self.panels.append(panel)

    def row(self, title: str) -> None:
        if self.x:
            self.x, self.y, self.row_height = 0, self.y + self.row_height, 0
        self.panels.append({"type": "row", "title": title, "id": self.next_id, "collapsed": False,
                            "gridPos": {"h": 1, "w": 24, "x": 0, "y": self.y}, "panels": []})
        self.next_id += 1
        self.y += 1


# --- queries --------------------------------------------------------------------------------

# rawSql -> the columns its panel reads, for tests/test_dashboards.py.
SQL_COLUMNS: dict[str, tuple[str, ...]] = {}


def sql(raw: str, columns: tuple[str, ...], fmt: str = "table", ref: str = "A") -> Query:
    SQL_COLUMNS[raw.strip()] = columns
    return Query({"datasource": TIMESCALE, "editorMode": "code", "format": fmt,
                  "rawQuery": True, "rawSql": raw.strip(), "refId": ref}, columns)


def promql(expr: str, legend: str = "__auto", ref: str = "A", fmt: str = "time_series") -> Query:
    target = {"datasource": PROMETHEUS, "editorMode": "code", "expr": expr,
              "legendFormat": legend, "range": True, "refId": ref}
    if fmt != "time_series":
        target["format"] = fmt
    return Query(target)


# --- panels ---------------------------------------------------------------------------------

def _panel(kind: str, title: str, description: str, datasource: dict[str, str],
           queries: list[Query], defaults: dict[str, Any], options: dict[str, Any],
           overrides: list[dict[str, Any]] | None = None, **extra: Any) -> dict[str, Any]:
    return {
        "type": kind, "title": title, "description": description, "datasource": datasource,
        "targets": [q.target for q in queries],
        "fieldConfig": {"defaults": defaults, "overrides": overrides or []},
        "options": options, **extra,
    }


def timeseries(title: str, description: str, queries: list[Query], *, unit: str = "short",
               stack: bool = False, datasource: dict[str, str] = PROMETHEUS,
               bars: bool = False, **extra: Any) -> dict[str, Any]:
    custom = {
        "drawStyle": "bars" if bars else "line", "lineWidth": 1,
        "fillOpacity": 80 if bars else (25 if stack else 8), "showPoints": "never",
        "spanNulls": False, "stacking": {"group": "A", "mode": "normal" if stack else "none"},
        "axisSoftMin": 0,
    }
    return _panel("timeseries", title, description, datasource, queries,
                  {"custom": custom, "unit": unit, "min": 0},
                  {"legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
                   "tooltip": {"mode": "multi", "sort": "desc"}}, **extra)


def stat(title: str, description: str, queries: list[Query], *, unit: str = "short",
         datasource: dict[str, str] = PROMETHEUS, thresholds: list[dict[str, Any]] | None = None,
         calc: str = "lastNotNull", **extra: Any) -> dict[str, Any]:
    steps = thresholds or [{"color": "green", "value": None}]
    return _panel("stat", title, description, datasource, queries,
                  {"unit": unit, "thresholds": {"mode": "absolute", "steps": steps},
                   "color": {"mode": "thresholds"}},
                  {"reduceOptions": {"calcs": [calc], "fields": "", "values": False},
                   "colorMode": "value", "graphMode": "area", "justifyMode": "auto",
                   "orientation": "auto", "textMode": "auto"}, **extra)


def table(title: str, description: str, queries: list[Query], *,
          datasource: dict[str, str] = TIMESCALE, defaults: dict[str, Any] | None = None,
          overrides: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    base = {"custom": {"align": "auto", "cellOptions": {"type": "auto"}, "inspect": False}}
    return _panel("table", title, description, datasource, queries, {**base, **(defaults or {})},
                  {"showHeader": True, "cellHeight": "sm",
                   "footer": {"show": False, "reducer": ["sum"], "fields": ""}},
                  overrides)


def by_name(name: str, **properties: Any) -> dict[str, Any]:
    return {"matcher": {"id": "byName", "options": name},
            "properties": [{"id": key.replace("__", "."), "value": value}
                           for key, value in properties.items()]}


def heat_table(title: str, description: str, query: Query, label: str, *,
               unit: str = "short", decimals: int = 0) -> dict[str, Any]:
    """A heatmap as a table whose cells are coloured on one scale across the whole grid.

    Grafana's heatmap panel needs time on its x axis; hour of day x weekday has none.
    """
    defaults = {
        "custom": {"align": "center", "cellOptions": {"type": "color-background",
                                                      "mode": "gradient"},
                   "inspect": False, "minWidth": 34},
        "color": {"mode": "continuous-YlRd"}, "decimals": decimals, "unit": unit,
        "fieldMinMax": False,  # one colour scale for every cell, not per column
    }
    return table(title, description, [query], defaults=defaults, overrides=[
        by_name(label, custom__cellOptions={"type": "auto"}, custom__width=130,
                custom__align="left"),
    ])


# --- the Engagement dashboard (TimescaleDB / PostgreSQL) -----------------------------------

def _hour_weekday_sql(relation: str, value: str) -> str:
    columns = ",\n       ".join(
        f'coalesce(sum(n) FILTER (WHERE hour = {int(h)}), 0) AS "{h}"' for h in HOURS)
    days = ", ".join(f"({i + 1}, '{d}')" for i, d in enumerate(WEEKDAYS))
    return f"""
WITH counts AS (
    SELECT extract(isodow FROM bucket AT TIME ZONE 'UTC')::int AS dow,
           extract(hour FROM bucket AT TIME ZONE 'UTC')::int AS hour,
           sum({value}) AS n
    FROM {relation}
    WHERE $__timeFilter(bucket) AND {PROJECT_FILTER}
    GROUP BY 1, 2
)
SELECT d.day AS "Weekday",
       {columns}
FROM (VALUES {days}) AS d (dow, day)
LEFT JOIN counts AS c ON c.dow = d.dow
GROUP BY d.dow, d.day
ORDER BY d.dow"""


def _position_sql() -> str:
    columns = ",\n       ".join(
        f'coalesce(sum(clicks) FILTER (WHERE position = {p}), 0) AS "{p}"' for p in POSITIONS)
    last = len(POSITIONS)
    return f"""
SELECT source AS "Feed",
       {columns},
       coalesce(sum(clicks) FILTER (WHERE position >= {last}), 0) AS "{last}+",
       coalesce(sum(clicks) FILTER (WHERE position IS NULL), 0) AS "none"
FROM project_clicks_hourly
WHERE $__timeFilter(bucket) AND {PROJECT_FILTER}
GROUP BY source
ORDER BY sum(clicks) DESC"""


# Impressions and clicks of the selected projects: with "All" the per-feed relations (a few
# thousand rows a month), else the per-project ones. Grafana writes $project in as literals,
# so PostgreSQL prunes the branch that does not apply when it plans the query.
FEED_EVENTS_SQL = f"""
    SELECT bucket, source, position, variant, impressions, 0 AS clicks
    FROM feed_impressions_hourly WHERE $__timeFilter(bucket) AND 0 IN ($project)
    UNION ALL
    SELECT bucket, source, position, variant, 0, clicks
    FROM feed_clicks_hourly WHERE $__timeFilter(bucket) AND 0 IN ($project)
    UNION ALL
    SELECT bucket, source, position, variant, impressions, 0
    FROM project_impressions_hourly
    WHERE $__timeFilter(bucket) AND NOT 0 IN ($project) AND {PROJECT_FILTER}
    UNION ALL
    SELECT bucket, source, position, NULL, 0, clicks
    FROM project_clicks_hourly
    WHERE $__timeFilter(bucket) AND NOT 0 IN ($project) AND {PROJECT_FILTER}"""
# Per-variant counts exist per feed only (clicks per project carry no variant).
VARIANT_EVENTS_SQL = """
    SELECT bucket, source, variant, impressions, 0 AS clicks
    FROM feed_impressions_hourly WHERE $__timeFilter(bucket) AND variant IS NOT NULL
    UNION ALL
    SELECT bucket, source, variant, 0, clicks
    FROM feed_clicks_hourly WHERE $__timeFilter(bucket) AND variant IS NOT NULL"""


def _ctr_position_sql() -> str:
    def ctr(condition: str) -> str:
        return (f"sum(clicks) FILTER (WHERE {condition})::float8 / "
                f"nullif(sum(impressions) FILTER (WHERE {condition}), 0)")

    last = len(POSITIONS)
    columns = ",\n       ".join(f'{ctr(f"position = {p}")} AS "{p}"' for p in POSITIONS)
    return f"""
SELECT source AS "Feed",
       {columns},
       {ctr(f"position >= {last}")} AS "{last}+",
       sum(clicks)::float8 / nullif(sum(impressions), 0) AS "All"
FROM ({FEED_EVENTS_SQL}
) AS events
GROUP BY source
ORDER BY sum(impressions) DESC, source"""


# Wilson score 95 % interval of clicks/impressions, as GET /api/v1/insights/variants/ gives it.
VARIANTS_SQL = f"""
SELECT source AS "Feed", variant AS "Variant", n AS "Impressions", x AS "Clicks",
       x / nullif(n, 0) AS "CTR",
       CASE WHEN n > 0 AND x <= n THEN
           (x / n + z * z / (2 * n) - z * sqrt(x / n * (1 - x / n) / n + z * z / (4 * n * n)))
           / (1 + z * z / n) END AS "CTR low",
       CASE WHEN n > 0 AND x <= n THEN
           (x / n + z * z / (2 * n) + z * sqrt(x / n * (1 - x / n) / n + z * z / (4 * n * n)))
           / (1 + z * z / n) END AS "CTR high"
FROM (
    SELECT source, variant, sum(impressions)::float8 AS n, sum(clicks)::float8 AS x
    FROM ({VARIANT_EVENTS_SQL}
    ) AS events
    GROUP BY source, variant
) AS v
CROSS JOIN (VALUES (1.959963984540054::float8)) AS c (z)
ORDER BY source, variant"""

VARIANT_SERIES_SQL = f"""
SELECT $__timeGroupAlias(bucket, $__interval, 0), source || ': ' || variant AS metric,
       sum(clicks)::float8 / sum(impressions) AS value
FROM ({VARIANT_EVENTS_SQL}
) AS events
GROUP BY 1, 2
HAVING sum(impressions) > 0
ORDER BY 1"""


def _total_sql(relation: str, value: str, alias: str) -> Query:
    return sql(f"""
SELECT coalesce(sum({value}), 0) AS "{alias}"
FROM {relation}
WHERE $__timeFilter(bucket) AND {PROJECT_FILTER}""", (alias,))


TRENDING_SQL = f"""
SELECT row_number() OVER (ORDER BY t.score DESC, t.recent_views DESC, t.project_id) AS "Rank",
       t.project_id AS "Project",
       t.score AS "Score",
       t.velocity AS "Velocity",
       t.like_velocity AS "Like velocity",
       t.view_velocity AS "View velocity",
       t.recent_views AS "Views 24h",
       t.previous_views AS "Views 24-48h",
       t.recent_likes AS "Likes 24h",
       t.previous_likes AS "Likes 24-48h",
       t.days_old AS "Days old",
       t.computed_at AS "Computed at"
FROM trending_scores AS t
JOIN projects AS p ON p.id = t.project_id AND NOT p.is_private
WHERE {PROJECT_FILTER.replace("project_id", "t.project_id")}
ORDER BY t.score DESC, t.recent_views DESC, t.project_id
LIMIT 50"""

PROJECTS_SQL = "SELECT id AS __value, id::text AS __text FROM projects ORDER BY id"
SQL_COLUMNS[PROJECTS_SQL] = ("__value", "__text")


def engagement_dashboard() -> dict[str, Any]:
    g = Layout()
    g.row("Totals in the selected range")
    g.add(stat("Views", "Recorded (deduplicated) views.",
               [_total_sql("project_views_hourly", "views", "Views")],
               datasource=TIMESCALE, calc="sum"), 6, 4)
    g.add(stat("Clicks", "Clicks on project cards in feeds.",
               [_total_sql("project_clicks_hourly", "clicks", "Clicks")],
               datasource=TIMESCALE, calc="sum"), 6, 4)
    g.add(stat("Likes (net)", "Likes minus unlikes.",
               [_total_sql("project_likes_hourly", "likes - unlikes", "Likes")],
               datasource=TIMESCALE, calc="sum"), 6, 4)
    g.add(stat("Trending computed", "When the scheduler last recomputed trending_scores.",
               # epoch milliseconds: the stat panel reduces numeric fields only
               [sql('SELECT extract(epoch FROM max(computed_at)) * 1000 AS "Computed at" '
                    "FROM trending_scores", ("Computed at",))],
               datasource=TIMESCALE, unit="dateTimeFromNow",
               thresholds=[{"color": "blue", "value": None}]), 6, 4)

    g.row("When people engage (UTC)")
    for relation, value, noun in (("project_views_hourly", "views", "Views"),
                                  ("project_clicks_hourly", "clicks", "Clicks"),
                                  ("project_likes_hourly", "likes", "Likes")):
        g.add(heat_table(f"{noun} by hour of day and weekday",
                         f"{noun} summed per UTC hour of day (columns) and weekday (rows) over "
                         "the selected range; darker is more.",
                         sql(_hour_weekday_sql(relation, value), ("Weekday", *HOURS)),
                         "Weekday"), 24, 8)

    g.row("Sources and feeds")
    for title, description, value, relation in (
            ("Views by source", "Hourly recorded views per source (explore, profile, direct, ...).",
             "views", "project_views_hourly"),
            ("Clicks by feed", "Hourly clicks per feed (click source).",
             "clicks", "project_clicks_hourly")):
        g.add(timeseries(title, description, [sql(f"""
SELECT $__timeGroupAlias(bucket, $__interval, 0), source AS metric, sum({value}) AS value
FROM {relation}
WHERE $__timeFilter(bucket) AND {PROJECT_FILTER}
GROUP BY 1, 2
ORDER BY 1""", ("time", "metric", "value"), fmt="time_series")],
            datasource=TIMESCALE, stack=True, interval="1h"), 12, 9)
    g.add(heat_table(
        "Clicks by feed and position",
        "Clicks per feed (rows) and 0-based card position (columns): how fast attention decays "
        "down each feed. `none`: the frontend sent no position.",
        sql(_position_sql(), ("Feed", *POSITIONS, f"{len(POSITIONS)}+", "none")), "Feed"),
        24, 8)
    g.add(timeseries(
        "Engagement per hour", "Views, clicks, likes and unlikes per hour "
        "(project_engagement_hourly).",
        [sql(f"""
SELECT $__timeGroupAlias(bucket, $__interval, 0),
       sum(views) AS views, sum(clicks) AS clicks, sum(likes) AS likes, sum(unlikes) AS unlikes
FROM project_engagement_hourly
WHERE $__timeFilter(bucket) AND {PROJECT_FILTER}
GROUP BY 1
ORDER BY 1""", ("time", "views", "clicks", "likes", "unlikes"), fmt="time_series")],
        datasource=TIMESCALE, interval="1h"), 24, 8)

    g.row("Click-through rate (impressions from the browser client)")
    g.add(heat_table(
        "CTR by feed and position",
        "Clicks / impressions per feed (rows) and 0-based card position (columns) over the "
        "selected range: how much a card's place in the feed matters. Empty where no "
        "impressions were reported.",
        sql(_ctr_position_sql(), ("Feed", *POSITIONS, f"{len(POSITIONS)}+", "All")), "Feed",
        unit="percentunit", decimals=1), 24, 8)
    g.add(table(
        "A/B variants: CTR with 95 % interval",
        "Clicks / impressions per feed and variant (all projects), with the Wilson score "
        "interval; GET /api/v1/insights/variants/ adds each variant's difference from the "
        "control.",
        [sql(VARIANTS_SQL, ("Feed", "Variant", "Impressions", "Clicks", "CTR", "CTR low",
                            "CTR high"))],
        overrides=[by_name(name, unit="percentunit", decimals=2)
                   for name in ("CTR", "CTR low", "CTR high")]), 10, 8)
    g.add(timeseries(
        "CTR per variant", "Clicks / impressions per feed and A/B variant over time "
        "(all projects).",
        [sql(VARIANT_SERIES_SQL, ("time", "metric", "value"), fmt="time_series")],
        datasource=TIMESCALE, unit="percentunit", interval="1h"), 14, 8)

    g.row("Trending")
    g.add(table(
        "Trending now", "trending_scores as GET /api/v1/trending/ serves it (public projects, "
        "ranked by score, recent views, id).",
        [sql(TRENDING_SQL, ("Rank", "Project", "Score", "Velocity", "Like velocity",
                            "View velocity", "Views 24h", "Views 24-48h", "Likes 24h",
                            "Likes 24-48h", "Days old", "Computed at"))],
        overrides=[by_name(name, decimals=3) for name in
                   ("Score", "Velocity", "Like velocity", "View velocity")]), 24, 10)

    return _dashboard(
        "engagement", "Engagement", "Views, clicks and likes from the hourly counts; trending.",
        g, time_from="now-7d", refresh="5m",
        variables=[{
            "name": "project", "label": "Project", "type": "query", "datasource": TIMESCALE,
            "definition": PROJECTS_SQL, "query": PROJECTS_SQL, "refresh": 1, "sort": 3,
            "multi": True, "includeAll": True, "allValue": "0", "regex": "", "hide": 0,
            "current": {"selected": True, "text": ["All"], "value": ["$__all"]}, "options": [],
        }])


# --- the Service dashboard (Prometheus) -----------------------------------------------------

HTTP = "engagement_http_requests_total"
DURATION = "engagement_http_request_duration_seconds_bucket"
EVENTS = "engagement_events_total"


def service_dashboard() -> dict[str, Any]:
    g = Layout()
    g.row("HTTP")
    g.add(timeseries("Requests by route", "Requests per second by route template.", [
        promql(f"sum by (path) (rate({HTTP}[$__rate_interval]))", "{{path}}"),
    ], unit="reqps"), 12, 8)
    g.add(timeseries("Latency by route", "p50, p95 and p99 request latency by route template.", [
        promql(f"histogram_quantile({q}, sum by (path, le) "
               f"(rate({DURATION}[$__rate_interval])))", f"{{{{path}}}} p{pct}", ref)
        for q, pct, ref in ((0.5, 50, "A"), (0.95, 95, "B"), (0.99, 99, "C"))
    ], unit="s"), 12, 8)
    g.add(timeseries("Errors by route", "4xx and 5xx answers per second by route and status.", [
        promql(f'sum by (path, status_code) (rate({HTTP}{{status_code=~"4..|5.."}}'
               "[$__rate_interval]))", "{{path}} {{status_code}}"),
    ], unit="reqps"), 12, 8)
    g.add(timeseries("5xx ratio by route", "Share of answers that are server errors.", [
        promql(f'(sum by (path) (rate({HTTP}{{status_code=~"5.."}}[$__rate_interval])) '
               f"or sum by (path) (rate({HTTP}[$__rate_interval])) * 0) "
               f"/ sum by (path) (rate({HTTP}[$__rate_interval]))", "{{path}}"),
    ], unit="percentunit"), 12, 8)

    g.row("Events")
    g.add(timeseries("Events by kind, source and outcome",
                     "Tracking events per second (engagement_events_total).", [
        promql(f"sum by (kind, source, outcome) (rate({EVENTS}[$__rate_interval]))",
               "{{kind}} {{source}} {{outcome}}"),
    ], unit="ops"), 12, 9)
    g.add(timeseries("Events by outcome", "recorded, deduplicated, skipped (unknown project), "
                     "rejected (malformed), ignored.", [
        promql(f"sum by (kind, outcome) (rate({EVENTS}[$__rate_interval]))",
               "{{kind}} {{outcome}}"),
    ], unit="ops", stack=True), 12, 9)
    g.add(stat("View dedup ratio", "Share of view calls deduplicated (same viewer, same "
               "project, within the dedup window).", [
        promql(f'(sum(rate({EVENTS}{{kind="view", outcome="deduplicated"}}[$__rate_interval])) '
               "or vector(0)) / "
               f'sum(rate({EVENTS}{{kind="view", outcome=~"recorded|deduplicated"}}'
               "[$__rate_interval]))", "dedup ratio"),
    ], unit="percentunit"), 6, 8)
    g.add(timeseries("Dedup ratio", "Deduplicated share of view calls over time.", [
        promql(f'(sum(rate({EVENTS}{{kind="view", outcome="deduplicated"}}[$__rate_interval])) '
               "or vector(0)) / "
               f'sum(rate({EVENTS}{{kind="view", outcome=~"recorded|deduplicated"}}'
               "[$__rate_interval]))", "deduplicated"),
    ], unit="percentunit"), 6, 8)
    g.add(_position_heatmap(), 12, 8)
    g.add(timeseries("Click position by feed", "Median and p90 feed position of recorded clicks.",
                     [promql("histogram_quantile(0.5, sum by (source, le) "
                             "(rate(engagement_click_position_bucket[$__rate_interval])))",
                             "{{source}} p50", "A"),
                      promql("histogram_quantile(0.9, sum by (source, le) "
                             "(rate(engagement_click_position_bucket[$__rate_interval])))",
                             "{{source}} p90", "B")], unit="none"), 12, 8)
    g.add(timeseries("Requests in flight", "Requests being handled, summed over workers.", [
        promql("sum(engagement_http_requests_in_progress)", "in flight"),
    ]), 12, 8)
    g.add(timeseries("Abuse: capped views and foreign origins",
                     "Anonymous views past the cap of their network fingerprint (answered "
                     "deduplicated, not stored) as a share of recorded views, and tracking "
                     "calls refused with 403 for a foreign Origin, per second.", [
        promql(f'(sum(rate({EVENTS}{{kind="view", outcome="capped"}}[$__rate_interval])) '
               "or vector(0)) / "
               f'sum(rate({EVENTS}{{kind="view", outcome="recorded"}}[$__rate_interval]))',
               "capped / recorded views", "A"),
        promql(f'sum(rate({EVENTS}{{outcome="rejected", source="foreign_origin"}}'
               "[$__rate_interval])) or vector(0)", "foreign Origin (403/s)", "B"),
    ], unit="short"), 12, 8)

    g.row("Scheduler")
    g.add(timeseries("Age of last successful run", "Seconds since each job last succeeded.", [
        promql("time() - max by (job_name) (engagement_job_last_success_timestamp_seconds)",
               "{{job_name}}"),
    ], unit="s"), 12, 8)
    g.add(timeseries("Job duration (p95)", f"95th percentile run time over {JOB_WINDOW}.", [
        promql("histogram_quantile(0.95, sum by (job_name, le) "
               f"(increase(engagement_job_duration_seconds_bucket[{JOB_WINDOW}])))", "{{job_name}}"),
    ], unit="s"), 12, 8)
    g.add(timeseries("Job failures", f"Failed runs per job over {JOB_WINDOW}.", [
        promql("sum by (job_name) (increase(engagement_job_runs_total"
               f'{{outcome="failure"}}[{JOB_WINDOW}]))', "{{job_name}}"),
    ]), 8, 8)
    g.add(timeseries("Job runs", f"Runs per job and outcome over {JOB_WINDOW}.", [
        promql(f"sum by (job_name, outcome) (increase(engagement_job_runs_total[{JOB_WINDOW}]))",
               "{{job_name}} {{outcome}}"),
    ]), 8, 8)
    g.add(timeseries("Trending projects and rollup lag",
                     "Rows in the latest trending table; age of the oldest event not yet "
                     "in the hourly counts.", [
        promql("max(engagement_trending_projects)", "trending projects", "A"),
        promql("max(engagement_rollup_lag_seconds)", "rollup lag (s)", "B"),
    ]), 8, 8)
    g.add(stat("Active scheduler", "Schedulers holding the leader lock (should be 1).", [
        promql("sum(engagement_scheduler_leader)", "leaders"),
    ], thresholds=[{"color": "red", "value": None}, {"color": "green", "value": 1},
                   {"color": "red", "value": 2}]), 8, 5)
    g.add(stat("Database reachable", "1 when every process's last database probe answered.", [
        promql("min(engagement_database_up)", "database up"),
    ], thresholds=[{"color": "red", "value": None}, {"color": "green", "value": 1}]), 8, 5)
    g.add(stat("Targets up", "Scrape targets answering /metrics.", [
        promql('sum(up{job=~"engagement-service|engagement-scheduler"})', "up"),
    ], thresholds=[{"color": "red", "value": None}, {"color": "green", "value": 2}]), 8, 5)

    return _dashboard("engagement-service", "Engagement service",
                      "Requests, latency, events, dedup, click positions, scheduler jobs.",
                      g, time_from="now-1h", refresh="30s")


def _position_heatmap() -> dict[str, Any]:
    query = promql("sum by (le) (increase(engagement_click_position_bucket[$__rate_interval]))",
                   "{{le}}", fmt="heatmap")
    return _panel(
        "heatmap", "Click positions over time",
        "Clicks per feed position bucket (engagement_click_position histogram).",
        PROMETHEUS, [query], {"custom": {"hideFrom": {"legend": False, "tooltip": False,
                                                       "viz": False}}},
        {"calculate": False, "cellGap": 1, "rowsFrame": {"layout": "le"},
         "color": {"mode": "scheme", "scheme": "Oranges", "scale": "exponential",
                   "exponent": 0.5, "steps": 64, "fill": "dark-orange", "reverse": False},
         "yAxis": {"axisPlacement": "left", "axisLabel": "feed position", "unit": "none",
                   "reverse": False},
         "cellValues": {"unit": "short"}, "filterValues": {"le": 1e-9},
         "legend": {"show": True}, "showValue": "never",
         "tooltip": {"mode": "single", "yHistogram": True, "showColorScale": False},
         "exemplars": {"color": "rgba(255,0,255,0.7)"}})


def _dashboard(uid: str, title: str, description: str, layout: Layout, *, time_from: str,
               refresh: str, variables: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {
        "uid": uid, "title": title, "description": description, "tags": ["engagement"],
        "timezone": "utc", "editable": True, "graphTooltip": 1, "schemaVersion": 39,
        "version": 1, "refresh": refresh, "time": {"from": time_from, "to": "now"},
        "templating": {"list": variables or []}, "annotations": {"list": []},
        "links": [{"title": "Engagement dashboards", "type": "dashboards", "tags": ["engagement"],
                   "asDropdown": True, "includeVars": False, "keepTime": True}],
        "panels": layout.panels,
    }


DASHBOARDS = {"engagement.json": engagement_dashboard, "service.json": service_dashboard}


def render(dashboard: dict[str, Any]) -> str:
    return json.dumps(dashboard, indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str]) -> int:
    check = "--check" in argv
    stale = []
    for name, build in DASHBOARDS.items():
        path, text = OUT_DIR / name, render(build())
        if check:
            if not path.exists() or path.read_text() != text:
                stale.append(name)
        else:
            OUT_DIR.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
    if stale:
        print("out of date: " + ", ".join(stale) + " (run `python dashboards/generate.py`)",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
