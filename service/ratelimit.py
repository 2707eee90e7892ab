"""Per-client rate limits on the public endpoints (the `limits` library, counters in memory).

The counters live in each worker process: with N workers, a client whose connections land
on every worker can reach up to N times ENGAGEMENT_RATE_LIMIT (SECURITY.md says so). The
client is the TCP peer's address, unless that peer is a trusted reverse proxy
(ENGAGEMENT_TRUSTED_PROXIES): then it is the right-most X-Forwarded-For address that is not
itself a trusted proxy, so a client cannot pick its own identity by sending that header.
Internal endpoints (service token), health, metrics and the schema are never limited.
"""

from __future__ import annotations

import hmac
import ipaddress
import math
import time
from collections.abc import Sequence
from typing import Any

from limits import RateLimitItem, parse_many
from limits.aio.storage import MemoryStorage
from limits.aio.strategies import SlidingWindowCounterRateLimiter
from litestar.middleware.base import DefineMiddleware
from litestar.types import ASGIApp, Receive, Scope, Send
from prometheus_client import Counter

from service.errors import TooManyRequests
from service.settings import Settings

LIMITED_PREFIX = "/api/v1/"
UNLIMITED_PREFIX = "/api/v1/internal/"

RATE_LIMITED = Counter(
    "engagement_rate_limited_requests",
    "Requests refused with 429 by the per-client rate limit, by route template.",
    ["route"],
)

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def limit_key(address: str) -> str:
    """The bucket of a client address: itself for IPv4, its /64 for IPv6.

    One IPv6 subscriber usually holds a whole /64 and could rotate through it at will.
    """
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


def _address(text: str) -> str | None:
    """A normalised IP address from an X-Forwarded-For entry (port, brackets allowed)."""
    text = text.strip()
    if text.startswith("["):  # [v6]:port
        text = text[1:].partition("]")[0]
    elif text.count(":") == 1:  # v4:port
        text = text.partition(":")[0]
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return None


class ClientAddress:
    """Who the client is, believing X-Forwarded-For only from trusted proxies."""

    def __init__(self, trusted_proxies: Sequence[str]) -> None:
        self._trusted: list[IPNetwork] = [ipaddress.ip_network(entry, strict=False)
                                          for entry in trusted_proxies]

    def _is_trusted(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in network for network in self._trusted)

    def of(self, scope: Scope) -> str:
        client = scope.get("client")
        peer = str(client[0]) if client else "unknown"
        if not self._trusted or not self._is_trusted(peer):
            return peer
        hops = [hop for name, value in scope["headers"] if name == b"x-forwarded-for"
                for hop in value.decode("latin-1").split(",")]
        address = peer
        for hop in reversed(hops):  # nearest first: each trusted hop vouches for the next
            parsed = _address(hop)
            if parsed is None:  # garbage: stop at the last address a trusted hop gave us
                break
            address = parsed
            if not self._is_trusted(parsed):
                break
        return address


class RateLimitMiddleware:
    """429 with Retry-After once a client goes over any of its limits."""

    def __init__(self, app: ASGIApp, *, limits: Sequence[RateLimitItem], clients: ClientAddress,
                 limiter: SlidingWindowCounterRateLimiter, service_token: str) -> None:
        self.app = app
        self.limits = list(limits)
        self.clients = clients
        self.limiter = limiter
        self._internal_auth = f"Bearer {service_token}".encode()

    def _is_internal_call(self, scope: Scope) -> bool:
        """The site backend and staff tools (service token: internal routes, insights)."""
        for name, value in scope["headers"]:
            if name == b"authorization":
                return hmac.compare_digest(value.strip(), self._internal_auth)
        return False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (scope["type"] == "http" and scope.get("method") != "OPTIONS"
                and _limited(scope["path"]) and not self._is_internal_call(scope)):
            client = limit_key(self.clients.of(scope))
            for item in self.limits:
                if not await self.limiter.hit(item, client):
                    stats = await self.limiter.get_window_stats(item, client)
                    RATE_LIMITED.labels(scope.get("path_template", "other")).inc()
                    raise TooManyRequests(
                        f"too many requests from this client (limit {item}); slow down",
                        retry_after=max(1, math.ceil(stats.reset_time - time.time())),
                    )
        await self.app(scope, receive, send)


def _limited(path: str) -> bool:
    return path.startswith(LIMITED_PREFIX) and not path.startswith(UNLIMITED_PREFIX)


def rate_limit_middleware(settings: Settings) -> list[Any]:
    """The middleware for the app, or nothing when ENGAGEMENT_RATE_LIMIT is empty or `off`."""
    if settings.rate_limit.strip().lower() in {"", "off"}:
        return []
    # Litestar builds one middleware instance per route: they share one set of counters, so
    # the limit is per client across all public endpoints.
    return [DefineMiddleware(RateLimitMiddleware, limits=parse_many(settings.rate_limit),
                             clients=ClientAddress(settings.trusted_proxies),
                             limiter=SlidingWindowCounterRateLimiter(MemoryStorage()),
                             service_token=settings.service_token)]
