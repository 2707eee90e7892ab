"""A user id or path id has one spelling: plain ASCII digits that fit a bigint."""

from __future__ import annotations

import time

import jwt
import pytest

from tests.support import user_token

# Each one int() reads as 77 (or as some id), each a second spelling of it.
NEAR_77 = ["7_7", " 77", "77 ", "+77", "\uff10\uff17\uff17", "\u0667\u0667", "77\n", "0x4d",
           "7.7e1", "77.0", ""]


def _token(settings, sub: object) -> str:  # type: ignore[no-untyped-def]
    return jwt.encode({"sub": sub, "exp": int(time.time()) + 3600}, settings.jwt_secret,
                      algorithm="HS256")


@pytest.fixture
def private_of_77(api):  # type: ignore[no-untyped-def]
    assert api.put_project(1, owner_id=77, is_private=True).status_code in (200, 201)
    return api


@pytest.mark.parametrize("sub", NEAR_77)
def test_a_sub_that_only_int_reads_as_a_user_id_is_401(private_of_77, settings, db, sub):
    r = private_of_77.client.post("/api/v1/projects/track-click/",
                                  json={"project_id": 1, "source": "search"},
                                  headers={"Authorization": f"Bearer {_token(settings, sub)}"})
    assert r.status_code == 401, r.text
    assert r.headers["www-authenticate"] == "Bearer"
    assert db.execute("SELECT count(*) FROM project_clicks").fetchone()[0] == 0


def test_plain_digits_sub_is_the_owner(private_of_77, settings, db):
    r = private_of_77.client.post(
        "/api/v1/projects/track-click/", json={"project_id": 1, "source": "search"},
        headers={"Authorization": f"Bearer {user_token(settings, 77)}"})
    assert r.status_code == 201
    assert db.execute("SELECT user_id FROM project_clicks").fetchall() == [(77,)]


@pytest.mark.parametrize("sub", [77, str(2**63), "0", "-77"])
def test_a_sub_not_a_digit_string_or_out_of_range_is_401(private_of_77, settings, sub):
    r = private_of_77.client.post("/api/v1/projects/1/track-view/",
                                  headers={"Authorization": f"Bearer {_token(settings, sub)}"})
    assert r.status_code == 401


@pytest.mark.parametrize("raw", ["7_7", "+1", "%201", "\uff11", "1%0A", "0x1", str(2**63), "0"])
def test_a_path_id_in_another_spelling_is_400_naming_it(api, raw):
    api.put_project(1)
    view = api.client.post(f"/api/v1/projects/{raw}/track-view/")
    assert view.status_code == 400, view.text
    assert "`project_id`" in view.json()["detail"]
    erase = api.client.delete(f"/api/v1/internal/users/{raw}/events", headers=api.internal)
    assert erase.status_code == 400, erase.text
    assert "`user_id`" in erase.json()["detail"]
