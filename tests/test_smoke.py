def test_healthz(client):
    assert client.get("/healthz").json() == {"status": "ok"}


def test_readyz_reports_profile(client, profile):
    r = client.get("/readyz")
    assert r.status_code == 200
    assert r.json()["profile"] == profile


def test_view_recorded(api, db):
    assert api.put_project(1).status_code == 201
    r = api.view(1, "explore")
    assert r.status_code == 201, r.text
    assert r.json() == {"status": "recorded"}
    assert api.view(1, "explore").json() == {"status": "deduplicated"}
    assert db.execute("SELECT count(*) FROM project_views").fetchone()[0] == 1


def test_the_root_answers_with_an_index_of_the_service_pages(client):
    r = client.get("/")
    assert r.status_code == 200
    links = r.json()["links"]
    assert links["api_docs"] == "/schema" and links["openapi"] == "/schema/openapi.json"
    assert {"metrics", "ready"} <= set(links) and "demo" not in links
    for path in links.values():
        assert client.get(path).status_code in (200, 503), path  # /readyz: 503 is fine here


def test_every_guard_runs_on_the_event_loop(client):
    """litestar runs a guard that is a plain function in a worker thread: a thread hop on
    every call it guards (every track call), for work that never waits."""
    from litestar.handlers import HTTPRouteHandler
    from litestar.utils.sync import AsyncCallable

    guarded = 0
    for route in client.app.routes:
        for handler in getattr(route, "route_handlers", ()):
            if isinstance(handler, HTTPRouteHandler):
                guards = handler.resolve_guards()
                guarded += bool(guards)
                assert not any(isinstance(g, AsyncCallable) for g in guards), handler
    assert guarded >= 4  # the track calls and the internal endpoints at least
