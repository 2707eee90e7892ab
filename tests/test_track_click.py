"""track-click and track-clicks: statuses, batches, privacy and bad input."""

import pytest


def stored_clicks(db):
    return db.execute(
        "SELECT project_id, user_id, source, position FROM project_clicks ORDER BY position"
    ).fetchall()


def test_click_is_recorded_with_source_and_position(api, db):
    api.put_project(1)
    r = api.click(1, "explore_trending", 5)
    assert r.status_code == 201
    assert r.json() == {"status": "recorded"}
    assert stored_clicks(db) == [(1, None, "explore_trending", 5)]


def test_answers_are_json_of_the_right_length_with_or_without_a_cookie(api, db):
    """The common answer is sent without litestar's Response machinery (fastpath/answers.py);
    one that sets a cookie still goes through it. Both must read the same to a client."""
    api.put_project(1)
    plain = api.click(1)  # X-Session-Key: no cookie to set
    issued = api.client.post("/api/v1/projects/track-click/",
                             json={"project_id": 1, "source": "explore_trending"})
    bot = api.client.post("/api/v1/projects/track-click/",
                          json={"project_id": 1, "source": "explore_trending"},
                          headers={"User-Agent": "Googlebot/2.1 (+http://www.google.com/bot.html)"})
    batch = api.client.post("/api/v1/projects/track-clicks/", headers={"X-Session-Key": "s1"},
                            json={"clicks": [{"project_id": 1, "source": "search"},
                                             {"project_id": 99, "source": "search"}]})
    assert "set-cookie" not in plain.headers
    assert "set-cookie" in issued.headers
    for r, status, body in ((plain, 201, {"status": "recorded"}),
                            (issued, 201, {"status": "recorded"}),
                            (bot, 200, {"status": "ignored"}),
                            (batch, 201, {"count": 1, "skipped": 1})):
        assert r.status_code == status
        assert r.headers["content-type"] == "application/json"
        assert int(r.headers["content-length"]) == len(r.content)
        assert r.json() == body
        assert r.headers["x-content-type-options"] == "nosniff"
    assert len(stored_clicks(db)) == 3


def test_clicks_are_never_deduplicated(api, db):
    api.put_project(1)
    for _ in range(3):
        assert api.click(1, "search").status_code == 201
    assert len(stored_clicks(db)) == 3


def test_click_on_unknown_project_is_404(api, db):
    assert api.click(404, "search").status_code == 404
    assert stored_clicks(db) == []


def test_click_on_private_project_only_for_owner(api, db):
    api.put_project(3, owner_id=9, is_private=True)
    assert api.click(3, "profile").status_code == 404
    assert api.click(3, "profile", user=9).status_code == 201
    assert stored_clicks(db) == [(3, 9, "profile", None)]


@pytest.mark.parametrize("body, field", [
    ({"source": "search"}, "project_id"),
    ({"project_id": 1}, "source"),
    ({"project_id": 1, "source": "explore"}, "source"),
    ({"project_id": 1, "source": "search", "position": -1}, "position"),
    ({"project_id": "1x", "source": "search"}, "project_id"),
    ({"project_id": 1, "source": "search", "position": 2.5}, "position"),
    ({"project_id": 2**63, "source": "search"}, "project_id"),
    ({"project_id": 1, "source": "search", "position": 2**31}, "position"),
])
def test_invalid_click_is_400_naming_the_problem(api, db, body, field):
    api.put_project(1)
    r = api.client.post("/api/v1/projects/track-click/", json=body)
    assert r.status_code == 400, r.text
    assert field in r.json()["detail"] or field in str(r.json().get("extra"))
    assert stored_clicks(db) == []


def test_malformed_json_is_400(api):
    r = api.client.post("/api/v1/projects/track-click/", content=b'{"project_id": 1,',
                        headers={"content-type": "application/json"})
    assert r.status_code == 400
    assert "JSON" in r.json()["detail"]


def test_oversized_body_is_413(api):
    body = b'{"project_id": 1, "source": "search", "pad": "' + b"x" * 200_000 + b'"}'
    r = api.client.post("/api/v1/projects/track-click/", content=body,
                        headers={"content-type": "application/json"})
    assert r.status_code == 413


def batch(*items):
    return {"clicks": [dict(zip(("project_id", "source", "position"), i, strict=False))
                       for i in items]}


def test_batch_records_every_click(api, db):
    api.put_project(1)
    api.put_project(2)
    r = api.client.post("/api/v1/projects/track-clicks/",
                        json=batch((1, "explore_new", 0), (2, "explore_new", 1)))
    assert r.status_code == 201
    assert r.json() == {"count": 2, "skipped": 0}
    assert stored_clicks(db) == [(1, None, "explore_new", 0), (2, None, "explore_new", 1)]


def test_batch_skips_unknown_and_invisible_projects(api, db):
    api.put_project(1)
    api.put_project(2, owner_id=5, is_private=True)
    r = api.client.post("/api/v1/projects/track-clicks/",
                        json=batch((1, "related", 0), (404, "related", 1), (2, "related", 2)))
    assert r.status_code == 201
    assert r.json() == {"count": 1, "skipped": 2}
    assert stored_clicks(db) == [(1, None, "related", 0)]


def test_batch_with_one_invalid_item_stores_nothing(api, db):
    api.put_project(1)
    r = api.client.post("/api/v1/projects/track-clicks/",
                        json=batch((1, "related", 0), (1, "nowhere", 1)))
    assert r.status_code == 400
    assert "clicks[1].source" in r.json()["detail"]
    assert stored_clicks(db) == []


def test_batch_of_51_is_400(api, db):
    api.put_project(1)
    r = api.client.post("/api/v1/projects/track-clicks/",
                        json=batch(*[(1, "search", i) for i in range(51)]))
    assert r.status_code == 400
    assert "50" in r.json()["detail"]
    assert stored_clicks(db) == []


def test_batch_of_50_is_accepted(api, db):
    api.put_project(1)
    r = api.client.post("/api/v1/projects/track-clicks/",
                        json=batch(*[(1, "search", i) for i in range(50)]))
    assert r.status_code == 201
    assert r.json() == {"count": 50, "skipped": 0}


@pytest.mark.parametrize("body", [{"clicks": []}, {}, {"clicks": "x"}, [], {"clicks": [1]}])
def test_malformed_batch_is_400(api, body):
    r = api.client.post("/api/v1/projects/track-clicks/", json=body)
    assert r.status_code == 400
