"""Hostile requests get a clear 4xx, store nothing, and never reveal a secret."""

from __future__ import annotations

import base64
import json
import logging
import time

import jwt
import psycopg
import pytest
from litestar.testing import TestClient

from service.app import create_app
from tests.conftest import TEST_SECRETS, _copy, _drop, _settings_for
from tests.support import Api, user_token

pytestmark = pytest.mark.filterwarnings("ignore:The HMAC key is")  # forged HS512 tokens

VIEW = "/api/v1/projects/1/track-view/"
CLICK = "/api/v1/projects/track-click/"
CLICKS = "/api/v1/projects/track-clicks/"
IMPORT = "/api/v1/internal/events/import"


# One database and one app for the whole module (hostile requests store nothing, and a
# fresh copy per case would cost more than every case together).
@pytest.fixture(scope="module")
def settings(pg_server, template):
    name = _copy(pg_server, template.name)
    yield _settings_for(pg_server.url(name))
    _drop(pg_server, name)


@pytest.fixture(scope="module")
def db(settings):
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        yield conn


@pytest.fixture(scope="module")
def api(settings):
    with TestClient(create_app(settings)) as client:
        yield Api(client, settings)


@pytest.fixture(scope="module")
def project(api):
    assert api.put_project(1).status_code in (200, 201)
    return api


@pytest.fixture
def stored(db):
    """Events stored since the test began."""
    def count() -> int:
        return sum(db.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                   for t in ("project_views", "project_clicks", "project_likes"))
    before = count()
    return lambda: count() - before


def b64(data: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def unsigned(claims: dict[str, object], alg: str = "none") -> str:
    return f"{b64({'alg': alg, 'typ': 'JWT'})}.{b64(claims)}."


LATER = int(time.time()) + 3600


# --- bodies ----------------------------------------------------------------------------

@pytest.mark.parametrize("path", [VIEW, CLICK, CLICKS])
def test_huge_body_is_413(project, stored, path):
    r = project.client.post(path, content=b'{"source": "' + b"a" * 2_000_000 + b'"}',
                            headers={"content-type": "application/json"})
    assert r.status_code == 413
    assert stored() == 0


def test_huge_chunked_body_is_413(project, stored):
    def chunks():
        yield b'{"clicks": ['
        for _ in range(10_000):
            yield b'{"project_id": 1, "source": "search"},' * 10
    r = project.client.post(CLICKS, content=chunks(), headers={"content-type": "application/json"})
    assert r.status_code == 413
    assert stored() == 0


@pytest.mark.parametrize("body", [
    b"[" * 30_000 + b"]" * 30_000,
    b'{"source": ' + b"[" * 30_000 + b"]" * 30_000 + b"}",
    b'{"clicks": ' + b'[{"x":' * 5_000 + b"1" + b"}]" * 5_000 + b"}",
])
@pytest.mark.parametrize("path", [VIEW, CLICK, CLICKS])
def test_deeply_nested_json_is_400(project, stored, path, body):
    r = project.client.post(path, content=body, headers={"content-type": "application/json"})
    assert r.status_code == 400, r.text[:200]
    assert stored() == 0


@pytest.mark.parametrize("content_type, body", [
    ("application/x-www-form-urlencoded", b"project_id=1&source=search"),
    ("multipart/form-data; boundary=x",
     b'--x\r\nContent-Disposition: form-data; name="project_id"\r\n\r\n1\r\n--x--\r\n'),
    ("application/xml", b"<click><project_id>1</project_id></click>"),
    ("application/json", b"\xff\xfe\x00{"),
    ("application/json", b'{"project_id": 1, "source": "search"} trailing'),
    ("application/json", b'{"project_id": NaN, "source": "search"}'),
    ("application/json", b'{"project_id": 1e400, "source": "search"}'),
    ("application/json", b'{"project_id": 1, "source": "search\\u0000"}'),
    ("application/json", b""),
    ("application/json", b"null"),
])
def test_wrong_content_or_encoding_is_400(project, stored, content_type, body):
    r = project.client.post(CLICK, content=body, headers={"content-type": content_type})
    assert r.status_code == 400, r.text[:200]
    assert r.json()["status_code"] == 400
    assert stored() == 0


def test_json_sent_as_text_plain_is_accepted(project):
    """navigator.sendBeacon sends text/plain to skip the CORS preflight: that is fine."""
    r = project.client.post(CLICK, content=b'{"project_id": 1, "source": "search"}',
                            headers={"content-type": "text/plain;charset=UTF-8"})
    assert r.status_code == 201


def test_duplicate_keys_and_unknown_fields_do_not_confuse(project):
    r = project.client.post(CLICK, content=b'{"project_id": 1, "project_id": 2, "source": '
                                           b'"search", "admin": true}',
                            headers={"content-type": "application/json"})
    assert r.status_code in (201, 400, 404)


# --- tokens ----------------------------------------------------------------------------

def forged_tokens(settings) -> dict[str, str]:
    claims = {"sub": "7", "exp": LATER}
    return {
        "other secret": jwt.encode(claims, "not-the-secret-0123456789abcdef01234", "HS256"),
        "alg none": unsigned(claims),
        "alg None": unsigned(claims, "None"),
        "alg none, signature kept": unsigned(claims)
        + user_token(settings, 7).rsplit(".", 1)[1],
        "HS512 with the right secret": jwt.encode(claims, settings.jwt_secret, "HS512"),
        "RS256 header, HMAC body": unsigned(claims, "RS256"),
        "expired": user_token(settings, 7, expires_in=-60),
        "no exp": jwt.encode({"sub": "7"}, settings.jwt_secret, "HS256"),
        "no sub": jwt.encode({"exp": LATER}, settings.jwt_secret, "HS256"),
        "sub not an id": jwt.encode({"sub": "admin", "exp": LATER}, settings.jwt_secret, "HS256"),
        "negative sub": jwt.encode({"sub": "-1", "exp": LATER}, settings.jwt_secret, "HS256"),
        "huge sub": jwt.encode({"sub": str(2**64), "exp": LATER}, settings.jwt_secret, "HS256"),
        "truncated": user_token(settings, 7)[:-5],
        "garbage": "x.y.z",
        "not base64": "%%%.%%%.%%%",
        "empty segments": "..",
    }


FORGED = ["other secret", "alg none", "alg None", "alg none, signature kept",
          "HS512 with the right secret", "RS256 header, HMAC body", "expired", "no exp",
          "no sub", "sub not an id", "negative sub", "huge sub", "truncated", "garbage",
          "not base64", "empty segments"]


@pytest.mark.parametrize("name", FORGED)
def test_forged_or_expired_user_token_is_401(project, stored, settings, name):
    tokens = forged_tokens(settings)
    assert set(tokens) == set(FORGED)
    token = tokens[name]
    r = project.client.post(VIEW, headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 401, (name, r.text)
    assert r.headers["www-authenticate"] == "Bearer"
    assert stored() == 0


@pytest.mark.parametrize("header", ["Bearer", "Bearer ", "Basic dXNlcjpwYXNz", "bearer",
                                    "Token abc", "Bearer a b c"])
def test_malformed_authorization_is_401(project, stored, header):
    r = project.client.post(VIEW, headers={"Authorization": header})
    assert r.status_code == 401
    assert stored() == 0


@pytest.mark.parametrize("header", [None, "", "Bearer", "Bearer wrong",
                                    "Bearer " + TEST_SECRETS["ENGAGEMENT_SERVICE_TOKEN"][:-1],
                                    "Bearer " + TEST_SECRETS["ENGAGEMENT_SERVICE_TOKEN"] + "x",
                                    "Basic " + TEST_SECRETS["ENGAGEMENT_SERVICE_TOKEN"],
                                    "Bearer " + TEST_SECRETS["ENGAGEMENT_JWT_SECRET"]])
def test_internal_endpoints_refuse_anything_but_the_service_token(api, db, header):
    headers = {} if header is None else {"Authorization": header}
    r = api.client.put("/api/v1/internal/projects/5", headers=headers,
                       json={"owner_id": 1, "is_private": False,
                             "created_at": "2026-01-01T00:00:00Z"})
    assert r.status_code == 401
    assert db.execute("SELECT count(*) FROM projects WHERE id = 5").fetchone()[0] == 0


def test_unauthenticated_import_is_refused_before_its_body_is_read(api):
    r = api.client.post(IMPORT, content=b"[" * 5_000_000,
                        headers={"content-type": "application/json"})
    assert r.status_code == 401


def test_user_token_is_not_a_service_token(api, settings):
    r = api.client.delete("/api/v1/internal/users/1/events",
                          headers={"Authorization": f"Bearer {user_token(settings, 1)}"})
    assert r.status_code == 401


# --- nothing secret leaks --------------------------------------------------------------

def test_no_secret_in_error_bodies_or_logs(project, settings, caplog):
    caplog.set_level(logging.DEBUG)
    tokens = forged_tokens(settings)
    answers = [project.client.post(VIEW, headers={"Authorization": f"Bearer {t}"})
               for t in tokens.values()]
    answers.append(project.client.put("/api/v1/internal/projects/1",
                                      headers={"Authorization": "Bearer wrong"}, json={}))
    answers.append(project.client.post(VIEW, content=b"[" * 50_000,
                                       headers={"content-type": "application/json"}))
    secrets = [*TEST_SECRETS.values(), user_token(settings, 7)]
    for response in answers:
        assert 400 <= response.status_code < 500
        for secret in secrets:
            assert secret not in response.text
    logged = caplog.text
    for secret in [*secrets, *tokens.values()]:
        assert secret not in logged


def test_raw_session_key_is_never_stored(project, db, stored):
    raw = "raw-session-value-that-must-not-be-stored"
    assert project.view(1, session=raw).status_code == 201
    assert project.click(1, session=raw).status_code == 201
    assert stored() == 2
    rows = db.execute("SELECT session_key FROM project_views UNION ALL "
                      "SELECT session_key FROM project_clicks").fetchall()
    assert rows and all(raw not in row[0] and len(row[0]) == 40 for row in rows)


@pytest.mark.parametrize("path", ["/api/v1/projects/1%00/track-view/",
                                  "/api/v1/projects/..%2f..%2finternal/track-view/",
                                  "/api/v1/projects/99999999999999999999999/track-view/",
                                  "/api/v1/projects/-1/track-view/",
                                  "/api/v1/projects/%F0%9F%92%A5/track-view/"])
def test_hostile_path_ids_are_4xx(project, stored, path):
    r = project.client.post(path)
    assert 400 <= r.status_code < 500
    assert stored() == 0


def test_oversized_session_key_is_cut_not_failed(project):
    r = project.client.post(VIEW, headers={"X-Session-Key": "k" * 8000})
    assert r.status_code == 201


@pytest.mark.parametrize("path, body", [
    (CLICK, {"project_id": "1", "source": "search"}),
    (CLICK, {"project_id": 1.0, "source": "search"}),
    (CLICK, {"project_id": 1, "source": "search", "position": True}),
    (CLICKS, {"clicks": [{"project_id": 1, "source": "search", "position": "2"}]}),
])
def test_values_of_the_wrong_json_type_are_400_not_coerced(project, stored, path, body):
    r = project.client.post(path, json=body)
    assert r.status_code == 400, r.text
    assert "Expected" in r.json()["detail"]
    assert stored() == 0


def test_internal_timestamps_must_be_strings(api, db):
    r = api.client.put("/api/v1/internal/projects/6", headers=api.internal,
                       json={"owner_id": 1, "is_private": False, "created_at": 0})
    assert r.status_code == 400
    assert "created_at" in r.json()["detail"]
