"""StrictRequest reads a body as litestar's Request does: every message, within the limit.

The same cases pass with litestar's own Request as the app's request class.

Sent as raw ASGI messages to a small app with the service's request class, so a body can
arrive in several messages (the test client sends one) and the client can leave mid-body.
"""

from __future__ import annotations

import asyncio
from typing import Any, get_args

import pytest
from litestar import Litestar, Request, post

from service.fastpath.strict_body import StrictRequest
from service.sources import ClickSource, ViewSource


@post("/echo", request_max_body_size=100, status_code=200)
async def echo(request: Request[Any, Any, Any]) -> dict[str, int]:
    body = await request.body()
    again = await request.body()  # read once, then kept
    assert again is body
    return {"length": len(body), "sum": sum(body)}


APP = Litestar([echo], request_class=StrictRequest)


def call(messages: list[dict[str, Any]], headers: list[tuple[bytes, bytes]] | None = None,
         ) -> tuple[int, bytes]:
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
             "method": "POST", "scheme": "http", "path": "/echo", "raw_path": b"/echo",
             "query_string": b"", "root_path": "", "headers": headers or [],
             "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80), "state": {}}
    queue = list(messages)
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        if queue:
            return queue.pop(0)
        await asyncio.sleep(3600)  # nothing more comes: the app must not ask
        raise AssertionError("unreachable")

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(asyncio.wait_for(APP(scope, receive, send), 5))  # type: ignore[arg-type]
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return status, body


def chunk(body: bytes, more: bool) -> dict[str, Any]:
    return {"type": "http.request", "body": body, "more_body": more}


def test_a_body_in_several_messages_is_read_whole():
    status, body = call([chunk(b"ab", True), chunk(b"", True), chunk(b"cde", False)])
    assert (status, body) == (200, b'{"length":5,"sum":%d}' % sum(b"abcde"))


def test_one_message_and_no_body():
    assert call([chunk(b"x" * 100, False)]) == (200, b'{"length":100,"sum":%d}' % (120 * 100))
    assert call([chunk(b"", False)]) == (200, b'{"length":0,"sum":0}')


@pytest.mark.parametrize("messages, headers", [
    ([chunk(b"x" * 60, True), chunk(b"x" * 41, False)], None),  # more than announced: none
    ([chunk(b"x" * 10, False)], [(b"content-length", b"101")]),  # announced over the limit
])
def test_over_the_route_limit_is_413(messages, headers):
    assert call(messages, headers)[0] == 413


def test_a_bad_content_length_is_400():
    status, body = call([chunk(b"{}", False)], [(b"Content-Length", b"two")])
    assert status == 400
    assert b"Invalid content-length" in body


def test_a_client_that_leaves_mid_body_is_not_answered_from_part_of_it():
    status, _ = call([chunk(b"ab", True), {"type": "http.disconnect"}])
    assert status == 500  # litestar's answer to a stream cut short; nobody is there to read it


@pytest.mark.parametrize(("path", "body", "expected"), [
    ("/api/v1/projects/track-click/", {"project_id": 1, "source": "explore_popular"},
     get_args(ClickSource)),
    ("/api/v1/projects/1/track-view/", {"source": "twitter"}, get_args(ViewSource)),
])
def test_an_invalid_enum_value_is_answered_with_the_valid_ones(api, path, body, expected):
    api.put_project(1)
    r = api.client.post(path, json=body, headers={"X-Session-Key": "s1"})
    assert r.status_code == 400, r.text
    detail = r.json()["detail"]
    assert "Invalid enum value" in detail and "expected one of" in detail, detail
    assert all(repr(value) in detail for value in expected), detail
    assert "(at `source`)" in detail
