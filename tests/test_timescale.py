"""The timescale profile: hypertables, real-time continuous aggregates and policies."""

from datetime import timedelta

import pytest


@pytest.fixture(autouse=True)
def _needs_timescale(profile):
    if profile != "timescale":
        pytest.skip(f"TimescaleDB Community is not loaded in the test database (profile "
                    f"{profile}); point TEST_DATABASE_URL at a server that preloads it")


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


def test_refresh_retention_and_compression_policies_exist(db, settings):
    jobs = db.execute(
        "SELECT proc_name, hypertable_name, config FROM timescaledb_information.jobs "
        "WHERE proc_name IN ('policy_refresh_continuous_aggregate', 'policy_retention', "
        "'policy_compression')").fetchall()
    by_proc: dict[str, list] = {}
    for proc, _table, config in jobs:
        by_proc.setdefault(proc, []).append(config)
    assert len(by_proc["policy_retention"]) == 4
    assert len(by_proc["policy_compression"]) == 4
    assert len(by_proc["policy_refresh_continuous_aggregate"]) == 9
    for config in by_proc["policy_retention"]:
        assert config["drop_after"] == f"{settings.raw_retention_days} days"
    for config in by_proc["policy_refresh_continuous_aggregate"]:
        # the refresh window must stay inside raw retention or it would erase counts
        assert config["start_offset"] == f"{settings.cagg_refresh_start_days} days"
        assert settings.cagg_refresh_start_days < settings.raw_retention_days
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
