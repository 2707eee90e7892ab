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
