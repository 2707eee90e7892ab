"""Per-client rate limits on the public endpoints, held for the whole service.

Each limit (`limits` syntax, e.g. `50/second;1000/minute`) is a sliding window of ten
buckets per period, counted in the database (`rate_limit_counters`, shared by every worker
and host). A request is let in if the client's hits in the buckets of the last period plus
one bucket are below the limit, so no interval of one period ever sees more than the limit
(across window edges too; a hit is remembered for up to 1.1 periods). The decision is
local and costs a dict update: each worker keeps its unsent hits in memory and about every
50 ms sends them in one upsert, which returns the service-wide counts of those clients.
What can go over is what the workers let in between two flushes (workers x rate x 50 ms).
If the database is unavailable, each worker counts only its own hits (never a 5xx because
of the limiter). The client is the TCP peer's address, unless that peer is a trusted
reverse proxy (ENGAGEMENT_TRUSTED_PROXIES): then it is the right-most X-Forwarded-For
address that is not itself a trusted proxy, so a client cannot pick its own identity by
sending that header. Only a keyed hash of the address is stored. Internal endpoints
(service token), health, metrics and the schema are never limited.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import ipaddress
import logging
import math
import time
from collections.abc import Sequence
from typing import Any

from limits import RateLimitItem, parse_many
from litestar.middleware.base import DefineMiddleware
from litestar.types import ASGIApp, Receive, Scope, Send
from prometheus_client import Counter
from psycopg_pool import AsyncConnectionPool

from engagement.db.queries import q
from engagement.settings import Settings
from service.errors import TooManyRequests

log = logging.getLogger("engagement.ratelimit")

LIMITED_PREFIX = "/api/v1/"
UNLIMITED_PREFIX = "/api/v1/internal/"
BUCKETS = 10  # per period: a hit is forgotten 1 to 1.1 periods after it
FLUSH_INTERVAL_SECONDS = 0.05
PRUNE_INTERVAL_SECONDS = 10.0
STALE_SECONDS = 0.2  # counts read longer ago may miss what the other workers let in
WAIT: Any = ("wait",)  # SharedRateLimiter.hit: ask again after the next flush

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


class _Window:
    """One client's hits for one limit period, by bucket."""

    __slots__ = ("inflight", "known", "own", "pending", "synced_at")

    def __init__(self) -> None:
        self.known: dict[int, int] = {}  # service-wide, as of the last flush (ours included)
        self.inflight: dict[int, int] = {}  # ours, in the flush under way
        self.pending: dict[int, int] = {}  # ours, not sent yet
        self.own: dict[int, int] = {}  # all of ours: what counts while the database is away
        self.synced_at = -math.inf  # monotonic time of the last flush that read it

    def counts(self, since: int, shared: bool) -> dict[int, int]:
        out: dict[int, int] = {}
        for part in (self.known, self.inflight, self.pending) if shared else (self.own,):
            for bucket, hits in part.items():
                if bucket >= since:
                    out[bucket] = out.get(bucket, 0) + hits
        return out

    def unconfirmed(self, since: int) -> int:
        return sum(hits for part in (self.inflight, self.pending)
                   for bucket, hits in part.items() if bucket >= since)

    def forget_before(self, since: int) -> bool:
        """Drop buckets out of the window; True when nothing is left."""
        for part in (self.known, self.own):
            for bucket in [b for b in part if b < since]:
                del part[bucket]
        return not (self.known or self.own or self.pending or self.inflight)


class SharedRateLimiter:
    """Sliding windows of BUCKETS buckets per period, counted service-wide in the database.

    `hit` decides at once from memory; `run` (a task of the app's lifespan) flushes the
    hits every FLUSH_INTERVAL_SECONDS and reads back the service-wide counts.
    """

    def __init__(self, items: Sequence[RateLimitItem], secret: str) -> None:
        # One window per period: the limits of one period count the same requests.
        self.items = [(item, item.get_expiry()) for item in items]
        self._widths = {period: period * 1000 // BUCKETS for _, period in self.items}
        self._secret = hmac.new(secret.encode(), b"rate-limit", hashlib.sha256).digest()
        self._windows: dict[tuple[str, int], _Window] = {}
        self._dirty: set[tuple[str, int]] = set()
        self.shared = True  # the last flush succeeded: counts are service-wide
        self._last_prune = 0.0
        self._failures = 0
        self._urgent = asyncio.Event()
        self._flushed: asyncio.Event | None = None  # set (and replaced) after each flush

    async def synced(self, timeout: float = 0.25) -> None:
        """Until the next flush has finished (or `timeout`: no flusher, a slow database)."""
        if self._flushed is None:
            self._flushed = asyncio.Event()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._flushed.wait(), timeout)

    def key(self, client: str) -> str:
        return hmac.new(self._secret, client.encode(), hashlib.sha256).hexdigest()[:32]

    def hit(self, client: str, *, wait: bool = True) -> tuple[RateLimitItem, int] | None:
        """Count one request of `client`; or (the limit it is over, Retry-After seconds).

        WAIT (nothing counted) when the client is near a limit with hits of this worker the
        others do not know yet: call `synced()`, then again.
        """
        key = self.key(client)
        now_ms = int(time.time() * 1000)
        admitted = []
        for item, period in self.items:
            width = self._widths[period]
            current = now_ms // width
            since = current - BUCKETS
            window = self._windows.get((key, period))
            if window is None:
                window = self._windows[key, period] = _Window()
            counts = window.counts(since, self.shared)
            used = sum(counts.values())
            if used >= item.amount:
                self._dirty.add((key, period))  # refused: fresh counts at the next tick
                return item, _retry_after(counts, item.amount, width, now_ms)
            near = 2 * (used + 1) >= item.amount
            fresh = time.monotonic() - window.synced_at < STALE_SECONDS
            if (near or not fresh) and wait and self.shared:
                unsure = window.unconfirmed(since)
                # what the others let in is unknown (unsure of 1 is enough to wait for), or
                # this worker's unconfirmed hits would be half of what is left
                if (unsure > 0 if not fresh else 2 * unsure >= item.amount - (used - unsure)):
                    # wait for the next flush: what the other workers let in meanwhile
                    self._dirty.add((key, period))
                    self._urgent.set()
                    return WAIT
            admitted.append((window, current, (key, period), near))
        for window, current, ref, near in admitted:
            window.pending[current] = window.pending.get(current, 0) + 1
            window.own[current] = window.own.get(current, 0) + 1
            self._dirty.add(ref)
            if near:  # in the last half of its allowance: tell the other workers now
                self._urgent.set()
        return None

    async def flush(self, pool: AsyncConnectionPool) -> None:
        if not self._dirty:
            return
        now_ms = int(time.time() * 1000)
        refs, self._dirty = sorted(self._dirty), set()
        cols: dict[str, list[Any]] = {c: [] for c in
                                      ("keys", "periods", "buckets", "hits", "expires", "since")}
        sent = []
        for key, period in refs:
            window = self._windows.get((key, period))
            if window is None:
                continue
            width = self._widths[period]
            since = now_ms // width - BUCKETS
            pending = sorted(window.pending.items()) or [(now_ms // width, 0)]
            for bucket, hits in pending:
                for name, value in (("keys", key), ("periods", period), ("buckets", bucket),
                                    ("hits", hits), ("expires", (bucket + BUCKETS + 1) * width),
                                    ("since", since)):
                    cols[name].append(value)
            for bucket, hits in window.pending.items():
                window.inflight[bucket] = window.inflight.get(bucket, 0) + hits
            window.pending = {}
            sent.append(((key, period), window))
        try:
            async with pool.connection(timeout=1.0) as conn:
                cur = await conn.execute(q("rate_limit_flush"), cols)
                rows = await cur.fetchall()
        except Exception as exc:
            for _, window in sent:
                window.inflight = {}
            self.shared = False
            self._failures += 1
            if self._failures in (1, 100) or self._failures % 1000 == 0:
                log.warning("rate limit counts not shared (%s); each worker counts its own",
                            exc)
            return
        found: dict[tuple[str, int], dict[int, int]] = {}
        for key, period, bucket, hits in rows:
            found.setdefault((key, period), {})[bucket] = hits
        for ref, window in sent:
            known = found.get(ref, {})
            for bucket, hits in window.inflight.items():  # the read saw the table before them
                known[bucket] = known.get(bucket, 0) + hits
            window.known, window.inflight = known, {}
            window.synced_at = time.monotonic()
        self.shared, self._failures = True, 0

    async def prune(self, pool: AsyncConnectionPool) -> None:
        now_ms = int(time.time() * 1000)
        for (key, period), window in list(self._windows.items()):
            if window.forget_before(now_ms // self._widths[period] - BUCKETS):
                del self._windows[key, period]
        with contextlib.suppress(Exception):
            async with pool.connection(timeout=1.0) as conn:
                await conn.execute(q("prune_rate_limit_counters"), {"now_ms": now_ms})

    async def run(self, pool: AsyncConnectionPool) -> None:
        """Flush every FLUSH_INTERVAL_SECONDS and prune every PRUNE_INTERVAL_SECONDS, forever.

        A client past half of a limit is flushed at once instead (one flush in flight at a
        time, whatever piled up meanwhile goes in the next): what two workers can let in
        beyond the limit shrinks from 50 ms of traffic to one round trip's. Those flushes
        are at most one per admitted request in the upper half of an allowance.
        """
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._urgent.wait(), FLUSH_INTERVAL_SECONDS)
            self._urgent.clear()
            try:
                flushed, self._flushed = self._flushed, None
                try:
                    await self.flush(pool)
                finally:
                    if flushed is not None:
                        flushed.set()
                if time.monotonic() - self._last_prune >= PRUNE_INTERVAL_SECONDS:
                    self._last_prune = time.monotonic()
                    await self.prune(pool)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("rate limit flush failed")


def _retry_after(counts: dict[int, int], amount: int, width: int, now_ms: int) -> int:
    """Seconds until enough of the oldest buckets leave the window to let one request in."""
    excess = sum(counts.values()) - amount + 1
    bucket = None
    for bucket in sorted(counts):
        excess -= counts[bucket]
        if excess <= 0:
            break
    if bucket is None:
        return 1
    return max(1, math.ceil(((bucket + BUCKETS + 1) * width - now_ms) / 1000))


class RateLimitMiddleware:
    """429 with Retry-After once a client goes over any of its limits."""

    def __init__(self, app: ASGIApp, *, clients: ClientAddress, limiter: SharedRateLimiter,
                 service_token: str) -> None:
        self.app = app
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
            over = self.limiter.hit(client)
            for attempt in range(3):
                if over is not WAIT:
                    break
                await self.limiter.synced()
                over = self.limiter.hit(client, wait=attempt < 1)
            if over is not None and over is not WAIT:
                item, retry_after = over
                RATE_LIMITED.labels(scope.get("path_template", "other")).inc()
                raise TooManyRequests(
                    f"too many requests from this client (limit {item}); slow down",
                    retry_after=retry_after,
                )
        await self.app(scope, receive, send)


def _limited(path: str) -> bool:
    return path.startswith(LIMITED_PREFIX) and not path.startswith(UNLIMITED_PREFIX)


def rate_limiter(settings: Settings) -> SharedRateLimiter | None:
    """The service's limiter, or None when ENGAGEMENT_RATE_LIMIT is empty or `off`."""
    if settings.rate_limit.strip().lower() in {"", "off"}:
        return None
    return SharedRateLimiter(parse_many(settings.rate_limit), settings.session_secret)


def rate_limit_middleware(settings: Settings, limiter: SharedRateLimiter | None) -> list[Any]:
    """The middleware for the app (none without a limiter)."""
    if limiter is None:
        return []
    # Litestar builds one middleware instance per route: they share one limiter, so the
    # limit is per client across all public endpoints.
    return [DefineMiddleware(RateLimitMiddleware, clients=ClientAddress(settings.trusted_proxies),
                             limiter=limiter, service_token=settings.service_token)]
