"""Internal endpoints: auth, project registry, likes, history import, user erasure."""

from datetime import UTC, datetime, timedelta

import pytest

NOW = datetime.now(UTC)


def count(db, table, where="true"):
    return db.execute(f"SELECT count(*) FROM {table} WHERE {where}").fetchone()[0]


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"},
                                     {"Authorization": "Basic dGVzdA=="}])
def test_internal_endpoints_need_the_service_token(api, headers):
    r = api.client.put("/api/v1/internal/projects/1", headers=headers,
                       json={"owner_id": 1, "is_private": False, "created_at": NOW.isoformat()})
    assert r.status_code == 401
    assert r.json()["status_code"] == 401
    assert api.client.delete("/api/v1/internal/projects/1", headers=headers).status_code == 401
    assert api.client.post("/api/v1/internal/likes/", headers=headers, json={}).status_code == 401


def test_a_user_jwt_is_not_a_service_token(api, settings):
    from tests.support import user_token

    r = api.client.delete("/api/v1/internal/projects/1",
                          headers={"Authorization": f"Bearer {user_token(settings, 1)}"})
    assert r.status_code == 401


def test_project_upsert_201_then_200(api, db):
    assert api.put_project(7, owner_id=1).status_code == 201
    r = api.put_project(7, owner_id=2, is_private=True)
    assert r.status_code == 200
    assert r.json() == {"project_id": 7, "status": "updated"}
    assert db.execute("SELECT owner_id, is_private, updated_at IS NOT NULL FROM projects "
                      "WHERE id = 7").fetchone() == (2, True, True)


@pytest.mark.parametrize("body", [
    {"owner_id": 1, "is_private": False},
    {"owner_id": 1, "is_private": "no", "created_at": NOW.isoformat()},
    {"owner_id": 1, "is_private": False, "created_at": "2026-01-01T00:00:00"},
    {"owner_id": -1, "is_private": False, "created_at": NOW.isoformat()},
])
def test_project_upsert_rejects_bad_bodies(api, body):
    r = api.client.put("/api/v1/internal/projects/7", headers=api.internal, json=body)
    assert r.status_code == 400


def test_delete_project_cascades_to_its_events(api, db):
    api.put_project(1)
    api.put_project(2)
    api.view(1)
    api.click(1)
    api.like(1, 5)
    api.view(2)
    r = api.client.delete("/api/v1/internal/projects/1", headers=api.internal)
    assert r.status_code == 204
    for table in ("project_views", "project_clicks", "project_likes", "project_like_state"):
        assert count(db, table, "project_id = 1") == 0
    assert count(db, "project_views", "project_id = 2") == 1
    assert api.client.delete("/api/v1/internal/projects/1", headers=api.internal).status_code == 204


def test_like_twice_records_once_and_unlike_restores(api, db):
    api.put_project(1)
    first = api.like(1, 5)
    assert first.status_code == 201
    assert first.json() == {"status": "recorded"}
    again = api.like(1, 5)
    assert again.status_code == 200
    assert again.json() == {"status": "unchanged"}
    assert api.like(1, 5, "unlike").status_code == 201
    assert api.like(1, 5, "unlike").status_code == 200
    assert db.execute("SELECT action FROM project_likes ORDER BY created_at").fetchall() == [
        (1,), (-1,)]


def test_unlike_without_like_is_a_noop(api, db):
    api.put_project(1)
    assert api.like(1, 5, "unlike").status_code == 200
    assert count(db, "project_likes") == 0


def test_like_of_unknown_project_is_404(api):
    assert api.like(404, 5).status_code == 404
    assert api.like(404, 5, "unlike").status_code == 404


def test_like_with_bad_action_is_400(api):
    api.put_project(1)
    r = api.client.post("/api/v1/internal/likes/", headers=api.internal,
                        json={"project_id": 1, "user_id": 5, "action": "love"})
    assert r.status_code == 400


def test_import_stores_history_with_explicit_timestamps_without_dedup(api, db):
    api.put_project(1)
    t = (NOW - timedelta(days=2)).replace(microsecond=0)
    views = [{"project_id": 1, "created_at": t.isoformat(), "source": "search",
              "session_key": "old-django-session"}] * 3
    clicks = [{"project_id": 1, "created_at": t.isoformat(), "source": "related", "position": 2,
               "user_id": 8}]
    likes = [{"project_id": 1, "user_id": 8, "action": "like", "created_at": t.isoformat()}]
    r = api.import_events(views=views, clicks=clicks, likes=likes)
    assert r.status_code == 201, r.text
    assert r.json() == {"views": 3, "clicks": 1, "likes": 1, "impressions": 0, "skipped": 0}
    assert db.execute("SELECT DISTINCT created_at FROM project_views").fetchall() == [(t,)]
    keys = db.execute("SELECT DISTINCT session_key FROM project_views").fetchall()
    assert keys[0][0] != "old-django-session" and len(keys[0][0]) == 40
    # imported like state: a live like of the same user is now a no-op
    assert api.like(1, 8).status_code == 200


def test_import_skips_unknown_projects(api, db):
    api.put_project(1)
    t = (NOW - timedelta(hours=3)).isoformat()
    r = api.import_events(views=[{"project_id": 1, "created_at": t},
                                 {"project_id": 2, "created_at": t}])
    assert r.json() == {"views": 1, "clicks": 0, "likes": 0, "impressions": 0, "skipped": 1}


@pytest.mark.parametrize("views, needle", [
    ([{"project_id": 1, "created_at": "2026-01-01T00:00:00"}], "created_at"),
    ([{"project_id": 1, "created_at": (NOW + timedelta(days=1)).isoformat()}], "future"),
    ([{"project_id": 1, "created_at": (NOW - timedelta(days=400)).isoformat()}], "retention"),
    ([{"project_id": 1, "created_at": NOW.isoformat(), "source": "nope"}], "source"),
])
def test_import_rejects_bad_items_and_stores_nothing(api, db, views, needle):
    api.put_project(1)
    r = api.import_events(views=views)
    assert r.status_code == 400
    assert needle in r.json()["detail"]
    assert count(db, "project_views") == 0


def test_import_limit_is_10000_items(api, db):
    api.put_project(1)
    t = (NOW - timedelta(hours=1)).isoformat()
    item = {"project_id": 1, "created_at": t}
    r = api.import_events(views=[item] * 10_001)
    assert r.status_code == 400
    assert "10000" in r.json()["detail"]
    assert api.import_events(views=[item] * 10_000).json()["views"] == 10_000


def test_empty_import_is_400(api):
    assert api.import_events().status_code == 400


def test_anonymize_user_keeps_events_but_drops_user_id(api, db):
    api.put_project(1)
    api.put_project(2)
    api.view(1, user=42)
    api.click(1, user=42)
    api.like(2, 42)
    api.view(2, user=43)
    r = api.client.delete("/api/v1/internal/users/42/events", headers=api.internal)
    assert r.status_code == 200
    assert r.json() == {"anonymized": 3}
    assert count(db, "project_views") == 2
    assert count(db, "project_views", "user_id = 42") == 0
    assert count(db, "project_clicks", "user_id IS NULL") == 1
    assert count(db, "project_likes", "user_id = 42") == 0
    assert count(db, "project_likes") == 1
    assert count(db, "view_dedup", "viewer_key = 'u:42'") == 0
    assert count(db, "project_views", "user_id = 43") == 1


def test_anonymize_rejects_bad_user_id(api):
    r = api.client.delete("/api/v1/internal/users/x/events", headers=api.internal)
    assert r.status_code == 400
