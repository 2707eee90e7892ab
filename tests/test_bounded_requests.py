"""`engagement serve` on its own bounds what a request may cost: header size and read time."""

from __future__ import annotations

import re
import socket
import time
from urllib.parse import urlsplit

import httpx

from service.fastpath import protocol
from tests.processes import service_process

READ_TIMEOUT = "2"  # seconds, for the test; the default is 10


def _connect(base: str) -> socket.socket:
    parts = urlsplit(base)
    sock = socket.create_connection((parts.hostname, parts.port), timeout=30)
    return sock


def _read_until_closed(sock: socket.socket, limit: float) -> tuple[bytes, float]:
    """Everything the server sends until it closes, and how long that took."""
    started, received = time.monotonic(), b""
    sock.settimeout(limit)
    try:
        while chunk := sock.recv(65536):
            received += chunk
    except (ConnectionResetError, BrokenPipeError):
        pass
    return received, time.monotonic() - started


def test_headers_over_16_kib_are_refused_and_under_it_answered(settings):
    with service_process(settings) as base:
        with _connect(base) as sock:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 17_000
                         + b"\r\n\r\n")
            answer, _ = _read_until_closed(sock, 10)
        assert answer.startswith(b"HTTP/1.1 431 ")
        with _connect(base) as sock:  # a huge header sent in pieces is cut off too
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ")
            try:
                for _ in range(100):
                    sock.sendall(b"a" * 4096)
            except (ConnectionResetError, BrokenPipeError):
                pass
            answer, _ = _read_until_closed(sock, 10)
        assert answer == b"" or answer.startswith(b"HTTP/1.1 431 ")
        headers = {f"x-h{i}": "a" * 100 for i in range(100)}  # about 11 KiB
        assert httpx.get(base + "/healthz", headers=headers).status_code == 200
        # A body far over the header limit is not mistaken for headers.
        r = httpx.post(base + "/api/v1/internal/events/import",
                       headers={"Authorization": f"Bearer {settings.service_token}"},
                       json={"views": [{"project_id": 1, "created_at": "x" * 40_000}]})
        assert r.status_code == 400


def test_stalled_headers_and_bodies_are_closed_within_the_read_timeout(settings):
    with service_process(settings, ENGAGEMENT_REQUEST_READ_TIMEOUT_SECONDS=READ_TIMEOUT) as base:
        with _connect(base) as silent, _connect(base) as dribbling, _connect(base) as bodiless:
            dribbling.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
            bodiless.sendall(b"POST /api/v1/projects/track-click/ HTTP/1.1\r\nHost: x\r\n"
                             b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{")
            started = time.monotonic()
            for _ in range(3):  # a header byte a second keeps nothing open
                time.sleep(1)
                try:
                    dribbling.sendall(b"X")
                except (ConnectionResetError, BrokenPipeError):
                    break
            results = [_read_until_closed(s, 10) for s in (silent, dribbling, bodiless)]
            elapsed = time.monotonic() - started
        assert elapsed < 6
        assert results[0][0].startswith(b"HTTP/1.1 408 ")
        assert results[1][0].startswith(b"HTTP/1.1 408 ")
        assert b" 201 " not in results[2][0]
        # A request that arrives in time, slowly, is answered.
        with _connect(base) as slow:
            for piece in (b"GET /healthz HTTP/1.1\r\n", b"Host: x\r\n", b"\r\n"):
                slow.sendall(piece)
                time.sleep(0.5)
            assert slow.recv(100).startswith(b"HTTP/1.1 200 ")


def test_by_default_headers_get_16_kib_and_a_request_15_seconds_at_most(settings):
    assert settings.request_read_timeout_seconds <= 15
    assert settings.max_header_bytes == 16 * 1024
    assert settings.request_read_timeout_seconds == protocol.READ_TIMEOUT_SECONDS
    assert settings.max_header_bytes == protocol.MAX_HEADER_BYTES


def _answers(received: bytes) -> list[bytes]:
    """The status lines of the HTTP answers in what a connection received, in order."""
    return re.findall(rb"HTTP/1\.1 \d{3} [^\r]*", received)


def test_a_pipelined_request_over_the_header_limit_is_refused_in_its_turn(settings):
    big = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 17_000 + b"\r\n\r\n"
    small = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
    with service_process(settings) as base:
        # Both in one write: the second request starts inside the read that ends the first.
        with _connect(base) as sock:
            sock.sendall(small + big + small)
            answer, _ = _read_until_closed(sock, 10)
        assert _answers(answer) == [b"HTTP/1.1 200 OK",
                                    b"HTTP/1.1 431 Request Header Fields Too Large"]
        # Pipelined requests within the limit, in one write over 16 KiB, are all answered.
        fine = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Fine: " + b"a" * 9_000 + b"\r\n\r\n"
        with _connect(base) as sock:
            sock.sendall(small + fine + fine + small.replace(b"\r\n\r\n",
                                                             b"\r\nConnection: close\r\n\r\n"))
            answer, _ = _read_until_closed(sock, 10)
        assert _answers(answer) == [b"HTTP/1.1 200 OK"] * 4
