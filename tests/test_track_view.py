"""track-view: statuses, dedup window, identity and privacy, against the real database."""

import time

from service.identity import IdentityResolver
from tests.support import user_token


def stored_views(db):
    return db.execute(
        "SELECT project_id, user_id, session_key, source FROM project_views ORDER BY created_at"
    ).fetchall()


def test_first_view_is_recorded_with_its_source(api, db):
    api.put_project(1)
    r = api.view(1, "explore")
    assert r.status_code == 201
    assert r.json() == {"status": "recorded"}
    assert [row[3] for row in stored_views(db)] == ["explore"]


def test_view_without_body_defaults_to_direct(api, db):
    api.put_project(1)
    r = api.client.post("/api/v1/projects/1/track-view/", headers={"X-Session-Key": "abc"})
    assert r.status_code == 201
    assert stored_views(db)[0][3] == "direct"


def test_second_view_within_window_is_deduplicated(api, db):
    api.put_project(1)
    assert api.view(1, session="same").status_code == 201
    second = api.view(1, session="same")
    assert second.status_code == 200
    assert second.json() == {"status": "deduplicated"}
    assert len(stored_views(db)) == 1


def test_another_viewer_is_recorded(api, db):
    api.put_project(1)
    assert api.view(1, session="a").status_code == 201
    assert api.view(1, session="b").status_code == 201
    assert len(stored_views(db)) == 2


def test_same_viewer_other_project_is_recorded(api, db):
    api.put_project(1)
    api.put_project(2)
    assert api.view(1, session="a").status_code == 201
    assert api.view(2, session="a").status_code == 201


def test_view_after_the_window_is_recorded_again(make_settings, db):
    from tests.support import serving

    with serving(make_settings(view_dedup_seconds=1.0)) as api:
        assert api.view(1, session="a").status_code == 201
        assert api.view(1, session="a").status_code == 200
        time.sleep(1.2)
        assert api.view(1, session="a").status_code == 201
    assert len(stored_views(db)) == 2


def test_unknown_project_is_404(api, db):
    r = api.view(999)
    assert r.status_code == 404
    assert r.json()["detail"] == "project not found"
    assert stored_views(db) == []


def test_private_project_tracked_only_for_its_owner(api, db, settings):
    api.put_project(5, owner_id=77, is_private=True)
    assert api.view(5, session="anon").status_code == 404
    assert api.view(5, user=78).status_code == 404
    owner = api.view(5, user=77)
    assert owner.status_code == 201
    assert [(r[0], r[1]) for r in stored_views(db)] == [(5, 77)]


def test_private_404_is_identical_to_missing_project(api):
    api.put_project(5, owner_id=77, is_private=True)
    private, missing = api.view(5), api.view(6)
    assert private.status_code == missing.status_code == 404
    assert private.json() == missing.json()


def test_signed_in_user_is_deduplicated_across_sessions(api, db):
    api.put_project(1)
    assert api.view(1, user=10, session="a").status_code == 201
    assert api.view(1, user=10, session="b").status_code == 200
    assert len(stored_views(db)) == 1


def test_session_key_is_stored_only_as_keyed_hash(api, db, settings):
    api.put_project(1)
    api.view(1, session="raw-session-value")
    (_, _, session_key, _), = stored_views(db)
    expected = IdentityResolver(settings.jwt_secret, settings.session_secret).hash_session(
        "raw-session-value")
    assert session_key == expected
    assert len(session_key) == 40
    dump = str(db.execute("SELECT * FROM project_views").fetchall())
    dump += str(db.execute("SELECT * FROM view_dedup").fetchall())
    assert "raw-session-value" not in dump


def test_sessionid_cookie_wins_over_header(api, db, settings):
    api.put_project(1)
    api.client.cookies.set("sessionid", "from-cookie")
    r = api.client.post("/api/v1/projects/1/track-view/", json={},
                        headers={"X-Session-Key": "from-header"})
    assert r.status_code == 201
    resolver = IdentityResolver(settings.jwt_secret, settings.session_secret)
    assert stored_views(db)[0][2] == resolver.hash_session("from-cookie")


def test_anonymous_without_session_gets_et_sid_cookie_and_is_deduplicated(api, db, settings):
    api.put_project(1)
    api.client.cookies.clear()
    first = api.client.post("/api/v1/projects/1/track-view/", json={})
    assert first.status_code == 201
    issued = first.cookies.get("et_sid")
    assert issued
    assert "httponly" in first.headers["set-cookie"].lower()
    api.client.cookies.set("et_sid", issued)
    second = api.client.post("/api/v1/projects/1/track-view/", json={})
    assert second.status_code == 200
    resolver = IdentityResolver(settings.jwt_secret, settings.session_secret)
    assert stored_views(db)[0][2] == resolver.hash_session(issued)


def test_invalid_token_is_401_never_anonymous(api, db, settings):
    api.put_project(1)
    bad = api.client.post("/api/v1/projects/1/track-view/", json={},
                          headers={"Authorization": "Bearer not-a-jwt"})
    assert bad.status_code == 401
    expired = user_token(settings, 3, expires_in=-60)
    r = api.client.post("/api/v1/projects/1/track-view/", json={},
                        headers={"Authorization": f"Bearer {expired}"})
    assert r.status_code == 401
    assert "expired" in r.json()["detail"]
    forged = user_token(settings, 3, secret="some-other-secret-of-sufficient-length")
    r = api.client.post("/api/v1/projects/1/track-view/", json={},
                        headers={"Authorization": f"Bearer {forged}"})
    assert r.status_code == 401
    assert stored_views(db) == []


def test_token_without_exp_is_401(api, settings):
    import jwt

    api.put_project(1)
    token = jwt.encode({"sub": "3"}, settings.jwt_secret, algorithm="HS256")
    r = api.client.post("/api/v1/projects/1/track-view/", json={},
                        headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 401


def test_alg_none_token_is_401(api):
    import base64
    import json

    api.put_project(1)

    def b64(obj):
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()

    token = f"{b64({'alg': 'none', 'typ': 'JWT'})}.{b64({'sub': '3', 'exp': 9999999999})}."
    r = api.client.post("/api/v1/projects/1/track-view/", json={},
                        headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 401


def test_invalid_source_is_400_naming_the_field(api, db):
    api.put_project(1)
    r = api.view(1, "twitter")
    assert r.status_code == 400
    assert "source" in r.json()["detail"]
    assert stored_views(db) == []


def test_non_integer_project_id_is_400(api):
    r = api.client.post("/api/v1/projects/abc/track-view/", json={})
    assert r.status_code == 400
    assert "project_id" in r.json()["detail"]


def test_out_of_range_project_id_is_400(api):
    r = api.client.post("/api/v1/projects/99999999999999999999/track-view/", json={})
    assert r.status_code == 400
    r = api.client.post("/api/v1/projects/0/track-view/", json={})
    assert r.status_code == 400


def test_no_raw_session_id_anywhere_in_the_database(api, database):
    import subprocess

    from cli.dev.embedded import find_bindir

    api.put_project(1)
    raw = "RAW-SESSION-abc123-should-never-be-stored"
    api.view(1, "explore", session=raw)
    api.client.post("/api/v1/projects/track-click/", headers={"X-Session-Key": raw},
                    json={"project_id": 1, "source": "search", "position": 1})
    api.client.cookies.set("sessionid", raw + "-cookie")
    api.client.post("/api/v1/projects/track-clicks/",
                    json={"clicks": [{"project_id": 1, "source": "related"}]})
    dump = subprocess.run([str(find_bindir() / "pg_dump"), "--data-only", database],
                          capture_output=True, text=True, check=True).stdout
    assert "project_clicks" in dump
    assert raw not in dump
