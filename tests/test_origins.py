"""Foreign origins are refused on the track endpoints; own and allowed origins still work."""

from __future__ import annotations

import re

import pytest
from litestar.testing import TestClient

from service.app import create_app
from tests.support import Api

EVIL = "https://evil.example"


def foreign_total(api: Api) -> float:
    text = api.client.get("/metrics").text
    pattern = (r'^engagement_events_total{[^}]*outcome="rejected"[^}]*source="foreign_origin"'
               r'[^}]*} (\S+)$|^engagement_events_total{[^}]*source="foreign_origin"'
               r'[^}]*outcome="rejected"[^}]*} (\S+)$')
    return sum(float(a or b) for a, b in re.findall(pattern, text, re.MULTILINE))


def count(db, table: str) -> int:
    return db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


@pytest.fixture
def allowing(make_settings):
    settings = make_settings(cors_origins=("https://site.example", "https://*.partner.example"))
    with TestClient(create_app(settings)) as client:
        api = Api(client, settings)
        api.put_project(1)
        yield api


CALLS = [
    ("/api/v1/projects/1/track-view/", {"source": "direct"}),
    ("/api/v1/projects/track-click/", {"project_id": 1, "source": "search"}),
    ("/api/v1/projects/track-clicks/", {"clicks": [{"project_id": 1, "source": "search"}]}),
    ("/api/v1/projects/track-impressions/",
     {"impressions": [{"project_id": 1, "source": "search", "position": 0}]}),
]


@pytest.mark.parametrize("path, body", CALLS)
def test_foreign_origin_is_refused_with_403_and_nothing_is_stored(api, db, path, body):
    api.put_project(1)
    before = foreign_total(api)
    r = api.client.post(path, json=body, headers={"Origin": EVIL, "X-Session-Key": "s"})
    assert r.status_code == 403
    assert r.json()["status_code"] == 403
    assert "ENGAGEMENT_CORS_ORIGINS" in r.json()["detail"]
    assert EVIL in r.json()["detail"]
    for table in ("project_views", "project_clicks", "project_impressions"):
        assert count(db, table) == 0
    assert foreign_total(api) == before + 1


def test_beacon_style_text_plain_from_a_foreign_origin_is_refused(api, db):
    api.put_project(1)
    r = api.client.post("/api/v1/projects/1/track-view/", content=b'{"source":"direct"}',
                        headers={"Origin": EVIL, "Content-Type": "text/plain;charset=UTF-8"})
    assert r.status_code == 403
    assert count(db, "project_views") == 0


def test_no_origin_is_unaffected(api, db):
    api.put_project(1)
    assert api.view(1).status_code == 201
    assert count(db, "project_views") == 1


def test_own_origin_is_accepted_whatever_the_scheme(api, db):
    api.put_project(1)
    for i, origin in enumerate(("http://testserver.local", "https://testserver.local")):
        r = api.client.post("/api/v1/projects/1/track-view/", json={},
                            headers={"Origin": origin, "X-Session-Key": f"s{i}"})
        assert r.status_code == 201, r.text
    assert count(db, "project_views") == 2


@pytest.mark.parametrize("origin", ["null", "https://testserver.local.evil.example",
                                    "https://testserver.local:444", "not a url"])
def test_lookalike_and_opaque_origins_are_foreign(api, origin):
    api.put_project(1)
    r = api.client.post("/api/v1/projects/1/track-view/", json={}, headers={"Origin": origin})
    assert r.status_code == 403


@pytest.mark.parametrize("origin", ["https://site.example", "https://shop.partner.example"])
def test_origins_allowed_by_cors_are_accepted(allowing, db, origin):
    r = allowing.client.post("/api/v1/projects/1/track-view/", json={},
                             headers={"Origin": origin, "X-Session-Key": "s"})
    assert r.status_code == 201, r.text
    assert r.headers["access-control-allow-origin"] == origin


def test_an_origin_not_in_the_cors_list_is_refused(allowing, db):
    r = allowing.client.post("/api/v1/projects/track-click/",
                             json={"project_id": 1, "source": "search"},
                             headers={"Origin": EVIL})
    assert r.status_code == 403
    assert count(db, "project_clicks") == 0


def test_preflight_from_an_allowed_origin_still_works(allowing):
    r = allowing.client.options("/api/v1/projects/1/track-view/", headers={
        "Origin": "https://site.example", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type"})
    assert r.status_code in (200, 204)
    assert r.headers["access-control-allow-origin"] == "https://site.example"


def test_the_403_is_in_the_openapi(api):
    spec = api.client.get("/schema/openapi.json").json()
    assert "403" in spec["paths"]["/api/v1/projects/track-click"]["post"]["responses"]
