"""The browser tracking client: its Node unit tests, how the service serves it, CORS, demo page."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from litestar.testing import TestClient

from cli.dev.demo_page import DEMO_PROJECTS, create_demo_app
from service.app import create_app

ROOT = Path(__file__).resolve().parent.parent
JS_TESTS = sorted((ROOT / "tests" / "js").glob("*.test.mjs"))
SITE = "https://site.example"


def test_node_unit_tests_of_the_module_pass():
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is missing: install the Debian package `nodejs`")
    assert JS_TESTS, "no tests/js/*.test.mjs found"
    # explicit files: `node --test DIR` means different things across Node versions
    run = subprocess.run([node, "--test", *map(str, JS_TESTS)], cwd=ROOT, capture_output=True,
                         text=True, timeout=120)
    summary = [line for line in run.stdout.splitlines() if line.startswith(("# pass", "# fail"))]
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert "# fail 0" in summary and any(not s.endswith(" 0") for s in summary), summary


def test_module_and_types_are_served_with_their_media_types(client):
    js = client.get("/static/tracking.js")
    assert js.status_code == 200
    assert js.headers["content-type"].startswith("text/javascript")
    assert "export function trackProjectView" in js.text
    assert "max-age=300" in js.headers["cache-control"]
    dts = client.get("/static/tracking.d.ts")
    assert dts.status_code == 200
    assert dts.headers["content-type"].startswith("application/typescript")
    assert "export function trackProjectClick" in dts.text
    assert client.get("/static/nope.js").status_code == 404
    assert client.get("/static/%2e%2e/browser_client.py").status_code == 404


def test_beacon_bodies_sent_as_text_plain_are_accepted(api, db):
    api.put_project(1)
    r = api.client.post("/api/v1/projects/track-clicks/",
                        content=b'{"clicks":[{"project_id":1,"source":"explore_new","position":2}]}',
                        headers={"content-type": "text/plain;charset=UTF-8"})
    assert r.status_code == 201, r.text
    assert r.json() == {"count": 1, "skipped": 0}
    r = api.client.post("/api/v1/projects/1/track-view/", content=b'{"source":"explore"}',
                        headers={"content-type": "text/plain;charset=UTF-8"})
    assert r.status_code == 201, r.text
    assert db.execute("SELECT source, position FROM project_clicks").fetchall() == [
        ("explore_new", 2)]
    assert db.execute("SELECT source FROM project_views").fetchall() == [("explore",)]


@pytest.fixture
def cors_client(make_settings):
    settings = make_settings(cors_origins=(SITE, "https://*.preview.example"))
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def test_preflight_from_an_allowed_origin_allows_credentials_and_client_headers(cors_client):
    r = cors_client.options("/api/v1/projects/track-clicks/", headers={
        "Origin": SITE, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type, idempotency-key, authorization",
    })
    assert r.status_code in (200, 204)
    assert r.headers["access-control-allow-origin"] == SITE
    assert r.headers["access-control-allow-credentials"] == "true"
    allowed = {h.strip().lower() for h in r.headers["access-control-allow-headers"].split(",")}
    assert {"content-type", "idempotency-key", "authorization", "x-session-key"} <= allowed
    assert "POST" in r.headers["access-control-allow-methods"]


def test_cors_answers_carry_the_origin_even_for_errors(cors_client):
    ok = cors_client.post("/api/v1/projects/track-click/", json={"project_id": 1, "source": "x"},
                          headers={"Origin": "https://pr-7.preview.example"})
    assert ok.status_code == 400
    # without the header the browser would hide the 400 and the client would retry it
    assert ok.headers["access-control-allow-origin"] == "https://pr-7.preview.example"
    assert ok.headers["access-control-allow-credentials"] == "true"
    module = cors_client.get("/static/tracking.js", headers={"Origin": SITE})
    assert module.headers["access-control-allow-origin"] == SITE  # module scripts load via CORS


def test_other_origins_get_no_cors_headers(cors_client):
    r = cors_client.options("/api/v1/projects/track-clicks/", headers={
        "Origin": "https://evil.example", "Access-Control-Request-Method": "POST"})
    assert "access-control-allow-origin" not in r.headers
    r = cors_client.get("/healthz", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in r.headers


def test_no_cors_without_allowed_origins(client):
    r = client.get("/healthz", headers={"Origin": SITE})
    assert "access-control-allow-origin" not in r.headers


def test_demo_page_is_off_by_default(client):
    assert client.get("/demo/").status_code == 404


@pytest.fixture
def demo_client(make_settings):
    with TestClient(create_demo_app(make_settings(demo_page=True))) as test_client:
        yield test_client


def test_demo_page_registers_its_projects_and_serves_both_pages(demo_client, db, api):
    feed = demo_client.get("/demo/")
    assert feed.status_code == 200
    assert feed.headers["content-type"].startswith("text/html")
    assert "/demo/assets/demo.js" in feed.text
    # the project page's view source comes from the referrer: the page must not suppress it
    assert feed.headers["referrer-policy"] == "strict-origin-when-cross-origin"
    ids = [row[0] for row in db.execute("SELECT id FROM projects ORDER BY id")]
    assert ids == [p.id for p in DEMO_PROJECTS] == list(range(9001, 9013))
    assert demo_client.get("/demo/projects/9003/").status_code == 200
    listed = demo_client.get("/demo/projects.json").json()
    assert [p["id"] for p in listed] == ids
    assert demo_client.get("/demo/assets/demo.js").status_code == 200


def test_demo_seed_leaves_existing_projects_alone(demo_client, db, settings):
    db.execute("INSERT INTO projects (id, owner_id, is_private, created_at) "
               "VALUES (9001, 77, true, '2020-01-01')")
    assert demo_client.get("/demo/").status_code == 200
    assert db.execute("SELECT owner_id, is_private FROM projects WHERE id = 9001").fetchone() == (
        77, True)
    assert db.execute("SELECT count(*) FROM projects").fetchone()[0] == 12


def test_the_root_index_links_the_demo_page_where_it_is_mounted(demo_client):
    assert demo_client.get("/").json()["links"]["demo"] == "/demo/"
