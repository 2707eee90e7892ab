"""POST /api/v1/projects/track-impressions/ and the A/B `variant` on clicks: what is stored."""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest

from scheduler.jobs import JobContext, run_job
from tests.support import run_retention, user_token
from tests.test_rollups import assert_hourly_equals_raw

IMPRESSIONS = "/api/v1/projects/track-impressions/"
GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"


def batch(*items):
    return {"impressions": [dict(zip(("project_id", "source", "position", "variant"), i,
                                     strict=False)) for i in items]}


def stored(db):
    return db.execute("SELECT project_id, source, position, variant FROM project_impressions "
                      "ORDER BY project_id, position NULLS LAST, variant").fetchall()


def events_total(api, **labels: str) -> float:
    text = api.client.get("/metrics").text
    total = 0.0
    for line in text.splitlines():
        if line.startswith("engagement_events_total{") and all(
                f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_batch_of_impressions_is_stored_with_source_position_and_variant(api, db):
    api.put_project(1)
    api.put_project(2)
    r = api.client.post(IMPRESSIONS, json=batch((1, "explore_trending", 0, "ranker-v2"),
                                                 (2, "explore_trending", 1),
                                                 (1, "search")))
    assert r.status_code == 201, r.text
    assert r.json() == {"count": 3, "skipped": 0}
    assert stored(db) == [(1, "explore_trending", 0, "ranker-v2"), (1, "search", None, None),
                          (2, "explore_trending", 1, None)]


def test_impressions_keep_no_viewer_identity(api, db):
    columns = {r[0] for r in db.execute(
        "SELECT column_name FROM information_schema.columns "
        "WHERE table_name = 'project_impressions'")}
    assert columns == {"created_at", "project_id", "source", "position", "variant"}


def test_unknown_and_invisible_projects_are_skipped_and_counted(api, db):
    api.put_project(1)
    api.put_project(2, owner_id=7, is_private=True)
    before = events_total(api, kind="impression", source="related", outcome="skipped")
    r = api.client.post(IMPRESSIONS, json=batch((1, "related", 0), (404, "related", 1),
                                                 (2, "related", 2)))
    assert r.status_code == 201
    assert r.json() == {"count": 1, "skipped": 2}
    assert stored(db) == [(1, "related", 0, None)]
    assert events_total(api, kind="impression", source="related", outcome="skipped") == before + 2


def test_private_project_impression_counts_for_its_owner(api, db, settings):
    api.put_project(2, owner_id=7, is_private=True)
    r = api.client.post(IMPRESSIONS, json=batch((2, "profile", 0)),
                        headers={"Authorization": f"Bearer {user_token(settings, 7)}"})
    assert r.json() == {"count": 1, "skipped": 0}
    assert stored(db) == [(2, "profile", 0, None)]


def test_recorded_impressions_are_counted_in_metrics(api):
    api.put_project(1)
    before = events_total(api, kind="impression", source="explore_new", outcome="recorded")
    api.client.post(IMPRESSIONS, json=batch(*[(1, "explore_new", i) for i in range(7)]))
    after = events_total(api, kind="impression", source="explore_new", outcome="recorded")
    assert after == before + 7


@pytest.mark.parametrize(("body", "problem"), [
    ({"impressions": []}, "impressions"),
    ({}, "impressions"),
    ({"impressions": "x"}, "impressions"),
    ({"impressions": [{"project_id": 1, "source": "search"}] * 51}, "50"),
    (batch((1, "search", 0), (1, "nowhere", 1)), "impressions[1].source"),
    (batch((1, "search", -1)), "impressions[0].position"),
    (batch((1, "search", 0, "Bad Variant")), "impressions[0].variant"),
    (batch((1, "search", 0, "x" * 33)), "impressions[0].variant"),
    (batch((0, "search")), "impressions[0].project_id"),
    ({"impressions": [{"source": "search"}]}, "project_id"),
])
def test_invalid_batch_is_400_and_stores_nothing(api, db, body, problem):
    api.put_project(1)
    r = api.client.post(IMPRESSIONS, json=body)
    assert r.status_code == 400, r.text
    assert problem in r.json()["detail"]
    assert stored(db) == []


def test_rejected_batches_are_counted(api):
    before = events_total(api, kind="impression", outcome="rejected")
    api.client.post(IMPRESSIONS, json={"impressions": []})
    assert events_total(api, kind="impression", outcome="rejected") == before + 1


def test_known_bot_is_ignored(api, db):
    api.put_project(1)
    r = api.client.post(IMPRESSIONS, json=batch((1, "search", 0)),
                        headers={"User-Agent": GOOGLEBOT})
    assert r.status_code == 200
    assert r.json() == {"count": 0, "skipped": 0, "status": "ignored"}
    assert stored(db) == []


def test_idempotency_key_repeat_is_stored_once(api, db):
    api.put_project(1)
    headers = {"Idempotency-Key": "imp-0001-abcdef", "X-Session-Key": "s1"}
    body = batch((1, "search", 0), (1, "search", 1))
    first = api.client.post(IMPRESSIONS, json=body, headers=headers)
    again = api.client.post(IMPRESSIONS, json=body, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json() == {"count": 2, "skipped": 0}
    assert len(stored(db)) == 2


def test_concurrent_batches_are_all_stored(api, db):
    for pid in range(1, 6):
        api.put_project(pid)

    def send(i: int) -> int:
        r = api.client.post(IMPRESSIONS, json=batch(*[(1 + (i + k) % 5, "explore_for_you", k)
                                                       for k in range(10)]))
        return r.json()["count"]

    with ThreadPoolExecutor(8) as pool:
        counts = list(pool.map(send, range(40)))
    assert counts == [10] * 40
    assert db.execute("SELECT count(*) FROM project_impressions").fetchone()[0] == 400


def test_click_variant_is_stored(api, db):
    api.put_project(1)
    one = api.client.post("/api/v1/projects/track-click/",
                          json={"project_id": 1, "source": "search", "position": 3,
                                "variant": "control"})
    many = api.client.post("/api/v1/projects/track-clicks/", json={"clicks": [
        {"project_id": 1, "source": "search", "position": 1, "variant": "fresh_2"},
        {"project_id": 1, "source": "search"}]})
    assert one.status_code == many.status_code == 201
    assert db.execute("SELECT position, variant FROM project_clicks "
                      "ORDER BY position NULLS LAST").fetchall() == [
        (1, "fresh_2"), (3, "control"), (None, None)]


@pytest.mark.parametrize("variant", ["", "UPPER", "with space", "x" * 33, "é", 5])
def test_invalid_click_variant_is_400(api, db, variant):
    api.put_project(1)
    r = api.client.post("/api/v1/projects/track-click/",
                        json={"project_id": 1, "source": "search", "variant": variant})
    assert r.status_code == 400
    assert "variant" in r.json()["detail"]
    assert db.execute("SELECT count(*) FROM project_clicks").fetchone()[0] == 0


def test_database_refuses_a_bad_variant_too(db, api):
    api.put_project(1)
    with pytest.raises(Exception, match=re.compile("variant_check")):
        db.execute("INSERT INTO project_impressions (project_id, source, variant) "
                   "VALUES (1, 'search', 'NOPE')")


def test_hourly_impressions_equal_raw_after_live_batches(api, db, settings, profile):
    for pid in (1, 2, 3):
        api.put_project(pid)
    for i in range(12):
        api.client.post(IMPRESSIONS, json=batch(*[(1 + k % 3, "explore_trending", k % 4,
                                                   ["a", "b", None][(i + k) % 3])
                                                  for k in range(9)]))
        api.client.post("/api/v1/projects/track-click/",
                        json={"project_id": 1 + i % 3, "source": "explore_trending",
                              "position": i % 4, "variant": ["a", "b"][i % 2]})
    run_job("refresh-rollups", JobContext(settings, profile))
    assert_hourly_equals_raw(db)
    assert db.execute("SELECT sum(impressions) FROM feed_impressions_hourly").fetchone()[0] == 108
    assert db.execute("SELECT sum(clicks) FROM feed_clicks_hourly "
                      "WHERE variant IS NOT NULL").fetchone()[0] == 12


def test_import_backfills_impressions_and_click_variants(api, db):
    api.put_project(1)
    at = "2026-01-01T10:30:00+00:00"
    recent = (datetime.now(UTC) - timedelta(days=2)).isoformat()
    r = api.import_events(
        impressions=[{"project_id": 1, "created_at": recent, "source": "search", "position": 2,
                      "variant": "b"},
                     {"project_id": 404, "created_at": recent, "source": "search"}],
        clicks=[{"project_id": 1, "created_at": recent, "source": "search", "position": 2,
                 "variant": "b"}])
    assert r.status_code == 201, r.text
    assert r.json() == {"views": 0, "clicks": 1, "likes": 0, "impressions": 1, "skipped": 1}
    assert stored(db) == [(1, "search", 2, "b")]
    assert db.execute("SELECT variant FROM project_clicks").fetchall() == [("b",)]
    future = api.import_events(impressions=[{"project_id": 1, "source": "search",
                                             "created_at": "2999-01-01T00:00:00+00:00"}])
    assert future.status_code == 400
    assert "impressions[0].created_at" in future.json()["detail"]
    bad = api.import_events(impressions=[{"project_id": 1, "source": "search", "created_at": at,
                                          "variant": "NO"}])
    assert bad.status_code == 400 and "variant" in bad.json()["detail"]


def test_retention_drops_old_impressions_but_keeps_their_hourly_counts(api, db, settings,
                                                                       make_settings, profile):
    api.put_project(1)
    db.execute("INSERT INTO project_impressions (created_at, project_id, source) "
               "VALUES (now() - interval '85 days', 1, 'search'), (now(), 1, 'search')")
    run_job("refresh-rollups", JobContext(settings, profile))
    shorter = make_settings(raw_retention_days=80)
    run_retention(db, shorter, profile)
    run_job("refresh-rollups", JobContext(shorter, profile))
    assert db.execute("SELECT count(*) FROM project_impressions").fetchone()[0] == 1
    assert db.execute("SELECT sum(impressions) FROM feed_impressions_hourly").fetchone()[0] == 2
