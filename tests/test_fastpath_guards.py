"""The framework internals service/fastpath/ relies on are still there (see its docstring).

A failure here means an upgrade moved something a bypass uses: fix the bypass (or drop it),
re-measure what the message names, then move the pin in pyproject.toml.
"""

from __future__ import annotations

import asyncio
import inspect
import re
import tomllib
from importlib.metadata import version
from pathlib import Path

import pytest
from litestar import Litestar, Request, Response, post
from litestar.params import FromPath, JSONBody
from litestar.testing import TestClient
from prometheus_client import CollectorRegistry, Histogram
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from service.fastpath import answers, asgi, strict_body
from service.fastpath.protocol import BoundedHttpToolsProtocol

# Distribution -> the minor release these guards passed on (pyproject.toml pins the same).
PINS = {"litestar": "2.25", "prometheus-client": "0.26", "uvicorn": "0.55", "crawlerdetect": "0.4"}


def why(dist: str, bypass: str, remeasure: str) -> str:
    return (f"{dist} {version(dist)} (pinned {PINS[dist]}.x) changed what service/fastpath/{bypass} "
            f"relies on: fix it, then re-measure {remeasure} (docs/performance.md) before moving the pin")


def test_installed_versions_are_the_pinned_minor_releases():
    deps = tomllib.loads(Path(__file__).parents[1].joinpath("pyproject.toml").read_text())
    specs = " ".join(deps["project"]["dependencies"])
    for dist, minor in PINS.items():
        assert version(dist).startswith(minor + "."), why(dist, "__init__.py", "every bypass")
        major, low = minor.split(".")
        assert f">={minor},<{major}.{int(low) + 1}" in specs, f"pyproject.toml must pin {dist} to {minor}.x"


def test_strict_body_relies_on_litestars_request_state():
    msg = why("litestar", "strict_body.py", "track-click in-process (about 5 µs)")
    for name in ("_body", "_json", "is_connected"):
        assert name in Request.__slots__, msg
    assert "_connection_state" in inspect.getsource(Request.body), msg
    assert "self._connection_state.json" in inspect.getsource(Request.json), msg
    from litestar.utils.scope.state import ScopeState
    assert {"body", "json"} <= set(ScopeState.__slots__), msg
    from litestar.handlers.http_handlers.base import HTTPRouteHandler
    assert hasattr(HTTPRouteHandler, "resolve_request_max_body_size"), msg
    assert hasattr(HTTPRouteHandler, "parsed_fn_signature"), msg


def test_strict_body_reads_the_body_without_litestars_stream(monkeypatch):
    @post("/echo")
    async def echo(data: JSONBody[dict[str, int]]) -> dict[str, int]:
        return data

    def no_stream(self):  # type: ignore[no-untyped-def]
        raise AssertionError("Request.stream was used")

    monkeypatch.setattr(Request, "stream", no_stream)
    with TestClient(Litestar([echo], request_class=strict_body.StrictRequest)) as client:
        ok = client.post("/echo", json={"a": 1})
        lax = client.post("/echo", json={"a": "1"})
    assert ok.status_code == 201, why("litestar", "strict_body.py", "track-click in-process")
    assert lax.status_code == 400, why("litestar", "strict_body.py", "strict validation")


def test_answers_override_litestars_to_asgi_response_exactly():
    ours = inspect.signature(answers.TrackAnswer.to_asgi_response).parameters
    theirs = inspect.signature(Response.to_asgi_response).parameters
    assert list(ours) == list(theirs), why("litestar", "answers.py", "track-click (5-8 µs)")


def test_answers_take_the_fast_path_for_a_plain_answer(monkeypatch):
    sent: list[int] = []

    class Spy(answers._Encoded):
        async def __call__(self, scope, receive, send):  # type: ignore[no-untyped-def]
            sent.append(self.status)
            await super().__call__(scope, receive, send)

    monkeypatch.setattr(answers, "_Encoded", Spy)

    @post("/answer", status_code=201)
    async def answer() -> Response[dict[str, str]]:
        return answers.TrackAnswer({"status": "recorded"}, status_code=201)

    with TestClient(Litestar([answer])) as client:
        response = client.post("/answer")
    assert response.json() == {"status": "recorded"}
    assert sent == [201], why("litestar", "answers.py", "track-click (5-8 µs)")


def test_outermost_layer_wraps_asgi_handler_and_sees_the_route_template():
    msg = why("litestar", "asgi.py", "track-click (4-10 µs with prometheus.py)")
    assert "self.asgi_handler(" in inspect.getsource(Litestar.__call__), msg
    seen: list[str] = []

    @post("/items/{item_id:int}", status_code=200)
    async def item(item_id: FromPath[int]) -> None:
        return None

    app = Litestar([item])
    inner = app.asgi_handler

    async def spy(scope, receive, send):  # type: ignore[no-untyped-def]
        await inner(scope, receive, send)
        seen.append(scope.get("path_template", "missing"))

    app.asgi_handler = spy
    asgi.install(app, on_start=None)
    with TestClient(app) as client:
        assert client.post("/items/7").status_code == 200
    assert seen == ["/items/{item_id}"], msg


def test_prometheus_children_have_the_private_fields_the_buffer_writes():
    msg = why("prometheus-client", "prometheus.py", "track-click (about 15 µs)")
    child = Histogram("guard", "guard", ["a"], buckets=(1, 2),
                      registry=CollectorRegistry()).labels("x")
    assert child._upper_bounds == [1.0, 2.0, float("inf")], msg
    assert len(child._buckets) == 3 and all(hasattr(b, "inc") for b in child._buckets), msg
    assert hasattr(child._sum, "inc"), msg
    source = inspect.getsource(Histogram.observe)
    assert "self._sum.inc(amount)" in source and "amount <= bound" in source, msg


def test_asyncio_get_running_loop_is_the_c_level_lookup():
    msg = ("asyncio._get_running_loop changed (Python upgrade): service/fastpath/prometheus.py "
           "uses it per update; re-measure track-click before replacing it")
    assert asyncio._get_running_loop() is None, msg

    async def inside() -> bool:
        return asyncio._get_running_loop() is asyncio.get_running_loop()

    assert asyncio.run(inside()), msg


@pytest.mark.parametrize("name", ["__init__", "connection_made", "connection_lost", "data_received",
                                  "on_headers_complete", "on_message_begin", "on_message_complete"])
def test_protocol_overrides_methods_uvicorn_still_has(name):
    msg = why("uvicorn", "protocol.py", "the header and read-time bounds (tests/test_bounded_requests.py)")
    assert name in vars(HttpToolsProtocol), msg
    assert name in vars(BoundedHttpToolsProtocol)
    if name != "__init__":
        ours = list(inspect.signature(getattr(BoundedHttpToolsProtocol, name)).parameters)
        assert ours == list(inspect.signature(getattr(HttpToolsProtocol, name)).parameters), msg


def test_protocol_relies_on_uvicorns_loop_and_transport_fields():
    msg = why("uvicorn", "protocol.py", "the header and read-time bounds")
    assert "self.loop =" in inspect.getsource(HttpToolsProtocol.__init__), msg
    assert "self.transport = transport" in inspect.getsource(HttpToolsProtocol.connection_made), msg


def test_protocol_relies_on_uvicorn_starting_each_request_with_self_app():
    msg = why("uvicorn", "protocol.py", "the 431 of a pipelined request, answered in its turn")
    source = inspect.getsource(HttpToolsProtocol.on_headers_complete)
    assert "app = self.app" in source and "self.pipeline" in source, msg
    assert "self.url" in inspect.getsource(HttpToolsProtocol.on_url), msg
    assert "self.headers.append" in inspect.getsource(HttpToolsProtocol.on_header), msg


def _agents() -> list[str]:
    """Browsers' agents, each crawler pattern's literal words in many places and cases, and
    random mixtures of both: about 17,000."""
    import random

    from crawlerdetect.providers.crawlers import data as crawler_patterns

    browsers = [
        "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/131.0.0.0 Safari/537.36",
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
        "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
        "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/131.0.0.0 Mobile Safari/537.36",
    ]
    words = []
    for pattern in crawler_patterns:
        for branch in pattern.split("|"):
            head = re.split(r"(?<!\\)[\[\(\.\*\+\?\{\$]", branch.lstrip("^"))[0]
            word = re.sub(r"\\(.)", r"\1", head)
            if len(word) >= 2:
                words.append(word)
    rnd = random.Random(7)
    agents = []
    for word in words:
        agents += [word, word.lower(), word.upper(), f"{word}/2.1", f"x{word}", word[:-1],
                   f"Mozilla/5.0 (compatible; {word}/1.0; +http://example.com/bot)",
                   f"{rnd.choice(browsers)} {word}"]
    for browser in browsers:
        for _ in range(250):
            agents.append(f"{browser} s/{rnd.randrange(10**6)}")
            agents.append(browser.replace("Chrome", rnd.choice(["HeadlessChrome", "Crawl", "Chrome"]))
                          + rnd.choice(["", " bot", " Bot/1", " monitoring", " é", "  "]))
    tokens = [*words, "Mozilla/5.0", "(", ")", ";", " ", "Gecko", "Safari/537.36", "é", "1.0"]
    agents += [" ".join(rnd.choice(tokens) for _ in range(rnd.randrange(1, 6)))
               for _ in range(3000)]
    return agents


def test_crawler_patterns_find_what_crawlerdetect_finds():
    from crawlerdetect import CrawlerDetect

    from service.fastpath.crawlers import CrawlerPatterns

    msg = why("crawlerdetect", "crawlers.py", "track-view and track-click with a new User-Agent each")
    ours = CrawlerPatterns()
    differ = []
    for agent in _agents():
        detector = CrawlerDetect()
        theirs = detector.matches[0] if detector.is_crawler(agent) and detector.matches else None
        if ours.match(agent) != theirs:
            differ.append((agent, ours.match(agent), theirs))
    assert differ == [], f"{msg}: {len(differ)} agents differ, e.g. {differ[:5]}"


def test_crawler_patterns_are_read_with_the_standard_librarys_parser():
    from re import _constants, _parser  # type: ignore[attr-defined]

    parsed = _parser.parse("^a|[b-c]x|d", re.IGNORECASE).data
    assert parsed[0][0] is _constants.BRANCH, "re._parser changed: service/fastpath/crawlers.py"
    first = [item.data[0][0] for item in parsed[0][1][1]]
    assert first == [_constants.AT, _constants.IN, _constants.LITERAL], first
