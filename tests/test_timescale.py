"""The timescale profile: hypertables, real-time continuous aggregates and policies."""

from datetime import UTC, datetime, timedelta

import pytest

from engagement.db.migrations import migrate
from scheduler.jobs import JobContext, materialised_lag, run_job

pytestmark = pytest.mark.timescale


def test_raw_event_tables_are_hypertables_with_the_configured_chunk_interval(db, settings):
    rows = db.execute(
        "SELECT hypertable_name FROM timescaledb_information.hypertables ORDER BY 1").fetchall()
    assert [r[0] for r in rows] == ["project_clicks", "project_impressions", "project_likes",
                                    "project_views"]
    intervals = db.execute(
        "SELECT DISTINCT time_interval FROM timescaledb_information.dimensions "
        "WHERE hypertable_name LIKE 'project_%'").fetchall()
    assert intervals == [(timedelta(days=settings.chunk_interval_days),)]


def test_hourly_counts_are_real_time_continuous_aggregates(db):
    rows = db.execute(
        "SELECT view_name, materialized_only FROM timescaledb_information.continuous_aggregates "
        "ORDER BY 1").fetchall()
    assert rows == [("feed_clicks_daily", False), ("feed_clicks_hourly", False),
                    ("feed_impressions_daily", False), ("feed_impressions_hourly", False),
                    ("project_clicks_hourly", False), ("project_impressions_hourly", False),
                    ("project_likes_hourly", False), ("project_views_hourly", False),
                    ("site_views_hourly", False)]


def test_retention_and_compression_policies_exist_and_no_refresh_policy(db, settings):
    jobs = db.execute(
        "SELECT proc_name, hypertable_name, config FROM timescaledb_information.jobs "
        "WHERE proc_name IN ('policy_refresh_continuous_aggregate', 'policy_retention', "
        "'policy_compression')").fetchall()
    by_proc: dict[str, list] = {}
    for proc, _table, config in jobs:
        by_proc.setdefault(proc, []).append(config)
    assert len(by_proc["policy_retention"]) == 4
    assert len(by_proc["policy_compression"]) == 4
    # refresh-rollups is the only refresher: a policy's refreshes would go unlogged for the
    # trending job (caggs/0205), and could reach outside raw retention
    assert "policy_refresh_continuous_aggregate" not in by_proc
    for config in by_proc["policy_retention"]:
        assert config["drop_after"] == f"{settings.raw_retention_days} days"
    segment = db.execute(
        "SELECT DISTINCT attname FROM timescaledb_information.compression_settings "
        "WHERE segmentby_column_index IS NOT NULL").fetchall()
    assert segment == [("project_id",)]


def test_latest_partial_hour_is_visible_without_a_refresh(api, db):
    api.put_project(1)
    assert api.view(1, "embed").status_code == 201
    assert api.click(1, "search", 2).status_code == 201
    assert db.execute("SELECT views FROM project_views_hourly WHERE project_id = 1 "
                      "AND bucket = date_trunc('hour', now())").fetchone() == (1,)
    assert db.execute("SELECT views, clicks FROM project_engagement_hourly "
                      "WHERE project_id = 1").fetchone() == (1, 1)


def test_refresh_materialises_the_current_hour_and_the_next_counts_what_came_after(
        api, db, settings):
    """As the rollup tables hold it on the other profiles: the current hour as of the last
    refresh-rollups, events since then at the next one, and the trending job's window
    totals reused meanwhile (only the live hours change)."""
    api.put_project(1, created_at=datetime.now(UTC) - timedelta(days=2))
    ctx = JobContext(settings, "timescale")
    now = datetime.now(UTC)
    views = [{"project_id": 1, "created_at": now.isoformat()}]
    assert api.import_events(views=views * 2).status_code == 201

    def current_hour():
        return db.execute("SELECT coalesce(sum(views), 0) FROM project_views_hourly "
                          "WHERE bucket = date_trunc('hour', now())").fetchone()[0]

    assert current_hour() == 2  # real-time: nothing materialised yet
    run_job("refresh-rollups", ctx)
    first = run_job("compute-trending", ctx)
    assert api.import_events(views=views * 3).status_code == 201
    assert current_hour() == 2  # materialised as it stood; the 3 wait for the next refresh
    run_job("refresh-rollups", ctx)
    assert current_hour() == 5
    second = run_job("compute-trending", ctx)
    assert db.execute("SELECT recent_views FROM trending_scores WHERE project_id = 1"
                      ).fetchone() == (5,)
    if datetime.now(UTC).replace(minute=0, second=0, microsecond=0) == now.replace(
            minute=0, second=0, microsecond=0):
        assert first.endswith("(rebuilt window totals)")
        assert second.endswith("(reused window totals)")


HOURLY_RELATIONS = {  # every hourly relation (project, feed, site, daily) and its rows
    "project_views_hourly": "SELECT bucket, project_id, source, views",
    "project_clicks_hourly": "SELECT bucket, project_id, source, position, clicks",
    "project_likes_hourly": "SELECT bucket, project_id, likes, unlikes",
    "project_impressions_hourly": "SELECT bucket, project_id, source, position, variant, "
                                  "impressions",
    "feed_impressions_hourly": "SELECT bucket, source, position, variant, impressions",
    "feed_clicks_hourly": "SELECT bucket, source, position, variant, clicks",
    "site_views_hourly": "SELECT bucket, source, views",
    "feed_impressions_daily": "SELECT day, source, position, variant, impressions",
    "feed_clicks_daily": "SELECT day, source, position, variant, clicks",
    "project_engagement_hourly": "SELECT bucket, project_id, views, clicks, likes, unlikes",
}


def hourly_counts(db) -> dict[str, list[tuple]]:
    return {name: sorted(db.execute(f"{columns} FROM {name}").fetchall(), key=repr)
            for name, columns in HOURLY_RELATIONS.items()}


def import_history(api, db, days_back: list[float]) -> None:
    """Views, clicks and likes through the internal import, impressions and A/B clicks
    straight into the raw tables, at each of `days_back` days ago."""
    now = datetime.now(UTC)
    for pid in (1, 2):
        api.put_project(pid)
    views, clicks, likes = [], [], []
    for i, days in enumerate(days_back):
        at = now - timedelta(days=days)
        views += [{"project_id": 1 + i % 2, "created_at": at.isoformat(), "source": "embed"},
                  {"project_id": 1, "created_at": at.isoformat(), "source": "direct"}]
        clicks.append({"project_id": 2, "created_at": at.isoformat(), "source": "search",
                       "position": i % 4})
        likes.append({"project_id": 1, "user_id": 10 + i, "created_at": at.isoformat(),
                      "action": "like"})
        db.execute("INSERT INTO project_impressions (created_at, project_id, source, position, "
                   "variant) VALUES (%s, 1, 'search', 1, 'control')", (at,))
        db.execute("INSERT INTO project_clicks (created_at, project_id, source, position, "
                   "variant) VALUES (%s, 1, 'search', 1, 'control')", (at,))
    assert api.import_events(views=views, clicks=clicks, likes=likes).status_code == 201


def test_no_refresh_erases_counts_of_raw_events_that_retention_dropped(api, db, settings):
    """History 85 days back, counted; chunks older than 80 days dropped as retention would;
    then `engagement migrate` and refresh-rollups must leave every count as it was."""
    import_history(api, db, [85, 84.5, 83, 40, 2])
    run_job("refresh-rollups", JobContext(settings, "timescale"))
    before = hourly_counts(db)
    old_views = db.execute("SELECT sum(views) FROM project_views_hourly "
                           "WHERE bucket < now() - INTERVAL '80 days'").fetchone()[0]
    assert old_views == 6  # the three oldest imports are counted
    for name, rows in before.items():
        assert rows, f"{name} counted nothing"
    for table in ("project_views", "project_clicks", "project_likes", "project_impressions"):
        db.execute("SELECT drop_chunks(%s::regclass, older_than => now() - INTERVAL '80 days')",
                   (table,))
    assert db.execute("SELECT count(*) FROM project_views "
                      "WHERE created_at < now() - INTERVAL '80 days'").fetchone() == (0,)
    migrate(settings)
    run_job("refresh-rollups", JobContext(settings, "timescale"))
    assert hourly_counts(db) == before


def test_rollup_lag_log_and_metric_agree_and_ignore_aggregates_without_data(api, db, settings):
    from engagement.db.profiles import TIMESCALE
    from scheduler.gauges import read

    api.put_project(1)
    old = (datetime.now(UTC) - timedelta(days=3)).isoformat()
    assert api.import_events(views=[{"project_id": 1, "created_at": old,
                                     "source": "embed"}]).status_code == 201
    summary = run_job("refresh-rollups", JobContext(settings, "timescale"))
    # likes, clicks and impressions have no data: their aggregates must not count as behind
    assert "(materialised lag 0 s)" in summary, summary
    assert read(db, TIMESCALE).rollup_lag_seconds == 0  # what /metrics shows
    assert db.execute("SELECT sum(views) FROM project_views_hourly").fetchone() == (1,)
    # a newer event not yet materialised is lag, measured up to the hour it fell in from
    # where TimescaleDB put its invalidation threshold; where that lies after the first
    # refresh depends on the time of day (40 h at 01:17 UTC), so only its sign is certain
    db.execute("INSERT INTO project_views (created_at, project_id, source) "
               "VALUES (now() - INTERVAL '3 hours', 1, 'embed')")
    lag = materialised_lag(db)
    assert lag >= 3600 and lag % 3600 == 0, lag
    assert read(db, TIMESCALE).rollup_lag_seconds == lag  # what /metrics shows
    run_job("refresh-rollups", JobContext(settings, "timescale"))
    assert materialised_lag(db) == 0
