"""Hourly counts equal raw counts in every profile, through imports, live events, deletions."""

import random
import threading
from datetime import UTC, datetime, timedelta
from typing import get_args

import psycopg
import pytest

from scheduler.jobs import JobContext, run_job
from service.sources import ClickSource, ViewSource
from tests.support import run_retention

VIEW_SOURCES = get_args(ViewSource)
CLICK_SOURCES = get_args(ClickSource)

RAW_VS_HOURLY = {
    "project_views_hourly": (
        "SELECT date_trunc('hour', created_at, 'UTC'), project_id, source, count(*) "
        "FROM project_views GROUP BY 1, 2, 3",
        "SELECT bucket, project_id, source, views FROM project_views_hourly",
    ),
    "project_clicks_hourly": (
        "SELECT date_trunc('hour', created_at, 'UTC'), project_id, source, position, count(*) "
        "FROM project_clicks GROUP BY 1, 2, 3, 4",
        "SELECT bucket, project_id, source, position, clicks FROM project_clicks_hourly",
    ),
    "project_likes_hourly": (
        "SELECT date_trunc('hour', created_at, 'UTC'), project_id, "
        "count(*) FILTER (WHERE action = 1), count(*) FILTER (WHERE action = -1) "
        "FROM project_likes GROUP BY 1, 2",
        "SELECT bucket, project_id, likes, unlikes FROM project_likes_hourly",
    ),
    "project_impressions_hourly": (
        "SELECT date_trunc('hour', created_at, 'UTC'), project_id, source, position, variant, "
        "count(*) FROM project_impressions GROUP BY 1, 2, 3, 4, 5",
        "SELECT bucket, project_id, source, position, variant, impressions "
        "FROM project_impressions_hourly",
    ),
    "feed_impressions_hourly": (
        "SELECT date_trunc('hour', created_at, 'UTC'), source, position, variant, count(*) "
        "FROM project_impressions GROUP BY 1, 2, 3, 4",
        "SELECT bucket, source, position, variant, impressions FROM feed_impressions_hourly",
    ),
    "feed_clicks_hourly": (
        "SELECT date_trunc('hour', created_at, 'UTC'), source, position, variant, count(*) "
        "FROM project_clicks GROUP BY 1, 2, 3, 4",
        "SELECT bucket, source, position, variant, clicks FROM feed_clicks_hourly",
    ),
    "feed_impressions_daily": (
        "SELECT date_trunc('day', created_at, 'UTC'), source, position, variant, count(*) "
        "FROM project_impressions GROUP BY 1, 2, 3, 4",
        "SELECT day, source, position, variant, impressions FROM feed_impressions_daily",
    ),
    "feed_clicks_daily": (
        "SELECT date_trunc('day', created_at, 'UTC'), source, position, variant, count(*) "
        "FROM project_clicks GROUP BY 1, 2, 3, 4",
        "SELECT day, source, position, variant, clicks FROM feed_clicks_daily",
    ),
    "site_views_hourly": (
        "SELECT date_trunc('hour', created_at, 'UTC'), source, count(*) "
        "FROM project_views GROUP BY 1, 2",
        "SELECT bucket, source, views FROM site_views_hourly",
    ),
    "project_engagement_hourly": (
        """SELECT bucket, project_id, sum(v)::bigint, sum(c)::bigint, sum(l)::bigint,
                  sum(u)::bigint
           FROM (SELECT date_trunc('hour', created_at, 'UTC') bucket, project_id,
                        1 v, 0 c, 0 l, 0 u FROM project_views
                 UNION ALL SELECT date_trunc('hour', created_at, 'UTC'), project_id,
                        0, 1, 0, 0 FROM project_clicks
                 UNION ALL SELECT date_trunc('hour', created_at, 'UTC'), project_id,
                        0, 0, (action = 1)::int, (action = -1)::int FROM project_likes) x
           GROUP BY 1, 2""",
        "SELECT bucket, project_id, views, clicks, likes, unlikes FROM project_engagement_hourly",
    ),
}


def refresh(settings, profile):
    run_job("refresh-rollups", JobContext(settings, profile))


def assert_hourly_equals_raw(db):
    for name, (raw_sql, hourly_sql) in RAW_VS_HOURLY.items():
        raw = sorted(db.execute(raw_sql).fetchall(), key=repr)
        hourly = sorted(db.execute(hourly_sql).fetchall(), key=repr)
        assert hourly == raw, f"{name} differs from raw counts"


def random_history(rng, project_ids, now, n):
    views, clicks, likes = [], [], []
    for _ in range(n):
        pid = rng.choice(project_ids)
        at = (now - timedelta(minutes=rng.randrange(5, 5 * 24 * 60))).isoformat()
        kind = rng.random()
        if kind < 0.55:
            views.append({"project_id": pid, "created_at": at,
                          "source": rng.choice(VIEW_SOURCES)})
        elif kind < 0.9:
            position = rng.choice([None, *range(12)])
            item = {"project_id": pid, "created_at": at, "source": rng.choice(CLICK_SOURCES)}
            if position is not None:
                item["position"] = position
            clicks.append(item)
        else:
            likes.append({"project_id": pid, "user_id": rng.randrange(1, 30), "created_at": at,
                          "action": rng.choice(["like", "like", "unlike"])})
    return views, clicks, likes


def insert_feed_events(db, rng, now, n):
    """Impressions and A/B clicks straight into the raw tables (the API has no backfill for them)."""
    project_ids = [r[0] for r in db.execute("SELECT id FROM projects ORDER BY id")]
    rows = []
    for _ in range(n):
        rows.append((now - timedelta(minutes=rng.randrange(0, 5 * 24 * 60)), rng.choice(project_ids),
                     rng.choice(CLICK_SOURCES), rng.choice([None, *range(8)]),
                     rng.choice([None, "control", "fresh-v2"])))
    with db.cursor() as cur:
        cur.executemany("INSERT INTO project_impressions (created_at, project_id, source, position, "
                        "variant) VALUES (%s, %s, %s, %s, %s)", rows)
        cur.executemany("INSERT INTO project_clicks (created_at, project_id, source, position, "
                        "variant) VALUES (%s, %s, %s, %s, %s)", rows[: n // 5])


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_hourly_counts_equal_raw_counts_after_imports_live_events_and_deletions(
        api, db, settings, profile, seed):
    rng = random.Random(seed)
    now = datetime.now(UTC)
    project_ids = list(range(1, 16))
    for pid in project_ids:
        api.put_project(pid, owner_id=pid % 4, created_at=now - timedelta(days=10))
    for round_ in range(3):
        views, clicks, likes = random_history(rng, project_ids, now, 400)
        r = api.import_events(views=views, clicks=clicks, likes=likes)
        assert r.status_code == 201, r.text
        for i in range(30):  # live events land in the current hour
            pid = rng.choice(project_ids)
            api.view(pid, rng.choice(VIEW_SOURCES), session=f"r{round_}-{i}")
            api.click(pid, rng.choice(CLICK_SOURCES), rng.randrange(20))
            api.like(pid, 100 + i, rng.choice(["like", "unlike"]))
        insert_feed_events(db, rng, now, 300)
        victim = project_ids.pop(rng.randrange(len(project_ids)))
        assert api.client.delete(f"/api/v1/internal/projects/{victim}",
                                 headers=api.internal).status_code == 204
        refresh(settings, profile)
        assert_hourly_equals_raw(db)
    assert db.execute("SELECT count(*) FROM project_engagement_hourly").fetchone()[0] > 100
    assert db.execute("SELECT count(*) FROM feed_impressions_hourly").fetchone()[0] > 100


def test_refresh_without_new_events_changes_nothing(api, db, settings, profile):
    api.put_project(1)
    api.view(1)
    refresh(settings, profile)
    before = db.execute("SELECT * FROM project_views_hourly").fetchall()
    refresh(settings, profile)
    assert db.execute("SELECT * FROM project_views_hourly").fetchall() == before



def test_events_committed_late_are_counted_by_the_next_refresh(api, db, database, settings,
                                                                profile):
    api.put_project(1)
    api.view(1, session="early")
    late = psycopg.connect(database)
    try:
        late.execute("INSERT INTO project_views (created_at, project_id, source) "
                     "VALUES (now(), 1, 'embed')")  # transaction stays open
        refresh(settings, profile)  # runs while the late insert is uncommitted
        late.commit()
    finally:
        late.close()
    refresh(settings, profile)
    assert_hourly_equals_raw(db)
    assert db.execute("SELECT sum(views) FROM project_views_hourly").fetchone()[0] == 2


def test_refresh_runs_safely_alongside_itself_and_ingest(api, db, settings, profile):
    for pid in range(1, 6):
        api.put_project(pid)
    errors: list[BaseException] = []
    stop = threading.Event()

    def refresher():
        while not stop.is_set():
            try:
                refresh(settings, profile)
            except BaseException as exc:
                errors.append(exc)
                return

    threads = [threading.Thread(target=refresher) for _ in range(2)]
    for t in threads:
        t.start()
    try:
        for i in range(150):
            api.click(1 + i % 5, "search", i % 7)
            if i % 3 == 0:
                api.view(1 + i % 5, session=f"c{i}")
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert errors == []
    refresh(settings, profile)
    assert_hourly_equals_raw(db)


def test_retention_drops_old_raw_events_but_keeps_hourly_counts(api, db, database, settings,
                                                                 make_settings, profile):
    api.put_project(1)
    with psycopg.connect(database, autocommit=True) as conn:
        conn.execute("INSERT INTO project_views (created_at, project_id, source) "
                     "VALUES (now() - interval '85 days', 1, 'direct'), (now(), 1, 'direct')")
    refresh(settings, profile)
    shorter = make_settings(raw_retention_days=80)
    run_retention(db, shorter, profile)
    refresh(shorter, profile)  # and a refresh after it keeps the dropped hour's count
    assert db.execute("SELECT count(*) FROM project_views").fetchone()[0] == 1
    assert db.execute("SELECT sum(views) FROM project_views_hourly").fetchone()[0] == 2
