"""Open-loop HTTP/1.1 load generator: a constant arrival rate, latency from the intended send time.

A closed-loop tool (wrk, hey) sends the next request only when a connection is free, so a
slow server slows the tool down and the queueing never shows in its latencies (coordinated
omission). Here request i is due at t0 + i/rate whatever happened before; a request that
finds no free connection waits in the generator's own queue, and that wait counts in its
latency. Connections are raw keep-alive sockets (asyncio protocols on uvloop), opened on
demand up to --max-connections.

Run as its own process; prints one JSON object (see `Result`) on stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import sys
import time
from array import array
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

CLICK_SOURCES = ("explore_for_you", "explore_trending", "explore_new", "explore_news",
                 "search", "profile", "related")
VIEW_SOURCES = ("explore", "profile", "direct", "search", "embed")
USER_AGENT = ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
              "Chrome/126.0.0.0 Safari/537.36")
TIMEOUT_SECONDS = 5.0
# uvloop's loop.time() ticks in whole milliseconds: too coarse for latencies.
clock = time.perf_counter
TICK_SECONDS = 0.001


@dataclass
class Result:
    scenario: str
    offered_rate: float  # requests per second asked for
    achieved_rate: float  # answers (any status) completed per second inside the window
    ok_rate: float  # 2xx answers per second inside the window
    sent: int  # requests due inside the measurement window
    statuses: dict[str, int] = field(default_factory=dict)  # of those requests
    errors: int = 0  # non-2xx, connection failures and timeouts among them
    latency_ms: dict[str, float] = field(default_factory=dict)  # from the intended send time
    events_per_request: int = 1
    connections: int = 0
    resends: int = 0  # requests sent again after the server closed an idle connection
    loadgen_cpu_seconds: float = 0.0


# -- requests -----------------------------------------------------------------------------

def _request(path: str, body: bytes, session: int) -> bytes:
    # A browser of its own per session: all of the load comes from one address, and the
    # view cap per network fingerprint (address + User-Agent) would otherwise answer most
    # views `capped` instead of measuring the recording path.
    return (f"POST {path} HTTP/1.1\r\nHost: bench\r\nUser-Agent: {USER_AGENT} s/{session}\r\n"
            f"X-Session-Key: bench-session-{session}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode() + body


def request_pool(scenario: str, projects: int, sessions: int, batch: int,
                 repeat_share: float, seed: int, size: int) -> Callable[[], bytes]:
    """`size` requests built before the run and sent in turn (building them costs CPU)."""
    make = request_maker(scenario, projects, sessions, batch, repeat_share, seed)
    pool = [make() for _ in range(size)]
    index = -1

    def next_request() -> bytes:
        nonlocal index
        index = (index + 1) % size
        return pool[index]
    return next_request


def request_maker(scenario: str, projects: int, sessions: int, batch: int,
                  repeat_share: float, seed: int) -> Callable[[], bytes]:
    """A function building the next request of `scenario` (bodies vary like real traffic)."""
    rng = random.Random(seed)

    def click_item() -> str:
        return (f'{{"project_id":{rng.randint(1, projects)},'
                f'"source":"{rng.choice(CLICK_SOURCES)}","position":{rng.randrange(50)}}}')

    if scenario in ("track-click", "framework"):
        def make() -> bytes:
            return _request("/api/v1/projects/track-click/", click_item().encode(),
                            rng.randint(1, sessions))
        return make
    if scenario == "track-clicks":
        def make_batch() -> bytes:
            body = '{"clicks":[' + ",".join(click_item() for _ in range(batch)) + "]}"
            return _request("/api/v1/projects/track-clicks/", body.encode(),
                            rng.randint(1, sessions))
        return make_batch
    if scenario == "track-view":
        recent: deque[tuple[int, int]] = deque(maxlen=1000)

        def make_view() -> bytes:
            # A share of views repeat a recent (project, viewer): those are deduplicated.
            if recent and rng.random() < repeat_share:
                pid, session = recent[rng.randrange(len(recent))]
            else:
                pid, session = rng.randint(1, projects), rng.randint(1, sessions)
                recent.append((pid, session))
            body = b'{"source":"%s"}' % rng.choice(VIEW_SOURCES).encode()
            return _request(f"/api/v1/projects/{pid}/track-view/", body, session)
        return make_view
    raise SystemExit(f"unknown scenario {scenario!r}")


# -- connections --------------------------------------------------------------------------

class Connection(asyncio.Protocol):
    """One keep-alive connection; one request in flight at a time (no pipelining)."""

    def __init__(self, gen: Generator) -> None:
        self.gen = gen
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.intended = 0.0
        self.payload = b""
        self.busy = False
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def send(self, payload: bytes, intended: float) -> None:
        self.intended = intended
        self.payload = payload
        self.busy = True
        assert self.transport is not None
        self.transport.write(payload)

    def data_received(self, data: bytes) -> None:
        # Cheap on purpose: this process shares the CPUs with the system under test.
        if self.buffer:
            self.buffer += data
            data = bytes(self.buffer)
        while self.busy:
            end = data.find(b"\r\n\r\n")
            if end < 0:
                break
            start = data.find(b"\r\ncontent-length:", 0, end)
            if start < 0:
                start = data[:end].lower().find(b"\r\ncontent-length:")
                if start < 0:
                    self.gen.failed(self, "no-content-length")
                    return
            stop = data.find(b"\r\n", start + 2, end + 2)
            total = end + 4 + int(data[start + 17:stop])
            if len(data) < total:
                break
            status = int(data[9:12])
            data = data[total:]
            self.busy = False
            self.gen.answered(self, status)
        if data or self.buffer:
            self.buffer = bytearray(data)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.gen.all.discard(self)
        if self.busy and not self.buffer:
            # The server closed an idle keep-alive connection as we wrote to it: nothing
            # was answered, so send it again (its latency still counts from the first try).
            self.busy = False
            self.gen.resends += 1
            self.gen.outstanding -= 1
            self.gen.dispatch(self.intended, self.payload)
        elif self.busy:
            self.gen.failed(self, "connection-lost")


class Generator:
    def __init__(self, host: str, port: int, make: Callable[[], bytes], rate: float,
                 duration: float, warmup: float, max_connections: int) -> None:
        self.loop = asyncio.get_running_loop()
        self.host, self.port = host, port
        self.make = make
        self.rate, self.duration, self.warmup = rate, duration, warmup
        self.max_connections = max_connections
        self.idle: list[Connection] = []
        self.all: set[Connection] = set()
        self.opening = 0
        self.backlog: deque[tuple[float, bytes]] = deque()
        self.window = (0.0, 0.0)
        self.latencies = array("d")
        self.statuses: dict[str, int] = {}
        self.completed_in_window = 0
        self.ok_in_window = 0
        self.outstanding = 0
        self.resends = 0
        self.scheduled_all = False
        self.done = asyncio.Event()

    # bookkeeping of one finished request
    def _finish(self, intended: float, status: str, ok: bool) -> None:
        now = clock()
        start, end = self.window
        if start <= now <= end:
            self.completed_in_window += 1
            self.ok_in_window += ok
        if start <= intended < end:
            self.statuses[status] = self.statuses.get(status, 0) + 1
            self.latencies.append(now - intended)
        self.outstanding -= 1
        if self.outstanding == 0 and self.scheduled_all:
            self.done.set()

    def answered(self, conn: Connection, status: int) -> None:
        self._finish(conn.intended, str(status), 200 <= status < 300)
        self._release(conn)

    def failed(self, conn: Connection, reason: str) -> None:
        if conn.busy:
            conn.busy = False
            self._finish(conn.intended, reason, False)
        self.all.discard(conn)
        if conn.transport is not None and not conn.closed:
            conn.transport.close()
        self._pump()

    def _release(self, conn: Connection) -> None:
        if conn.closed:
            self.all.discard(conn)
            self._pump()
            return
        if self.backlog:
            intended, payload = self.backlog.popleft()
            conn.send(payload, intended)
        else:
            self.idle.append(conn)

    def _pump(self) -> None:
        while self.backlog and self.idle:
            conn = self.idle.pop()
            if conn.closed:
                self.all.discard(conn)
                continue
            self._release(conn)
        wanted = len(self.backlog) - self.opening
        while wanted > 0 and len(self.all) + self.opening < self.max_connections:
            self.opening += 1
            wanted -= 1
            self.loop.create_task(self._open())

    async def _open(self) -> None:
        try:
            _, conn = await self.loop.create_connection(lambda: Connection(self),
                                                        self.host, self.port)
        except OSError:
            self.opening -= 1
            if self.backlog:  # the request behind this connection fails, visibly
                intended, _ = self.backlog.popleft()
                self._finish(intended, "connect-error", False)
            return
        self.opening -= 1
        self.all.add(conn)
        self._release(conn)

    def dispatch(self, intended: float, payload: bytes) -> None:
        self.outstanding += 1
        if self.idle:
            conn = self.idle.pop()
            if not conn.closed:
                conn.send(payload, intended)
                return
            self.all.discard(conn)
        self.backlog.append((intended, payload))
        self._pump()

    async def preopen(self, count: int) -> None:
        for _ in range(min(count, self.max_connections)):
            _, conn = await self.loop.create_connection(lambda: Connection(self),
                                                        self.host, self.port)
            self.all.add(conn)
            self.idle.append(conn)

    async def run(self) -> None:
        interval = 1.0 / self.rate
        total = int(self.rate * (self.warmup + self.duration))
        t0 = clock() + 0.05
        self.window = (t0 + self.warmup, t0 + self.warmup + self.duration)
        i = 0
        while i < total:
            due = min(total, int((clock() - t0) / interval) + 1)
            while i < due:
                self.dispatch(t0 + i * interval, self.make())
                i += 1
            # The loop's timers tick in whole milliseconds: a shorter sleep returns at once
            # and the generator would spin, taking a core from the system under test. Requests
            # due meanwhile go out together on the next tick; their latency still counts from
            # the time they were due.
            await asyncio.sleep(max(TICK_SECONDS, t0 + i * interval - clock()))
        self.scheduled_all = True
        if self.outstanding:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.done.wait(), TIMEOUT_SECONDS)
        # Whatever is still unanswered counts as a timeout.
        for intended, _ in self.backlog:
            if self.window[0] <= intended < self.window[1]:
                self.statuses["timeout"] = self.statuses.get("timeout", 0) + 1
        for conn in self.all:
            if conn.busy and self.window[0] <= conn.intended < self.window[1]:
                self.statuses["timeout"] = self.statuses.get("timeout", 0) + 1
            conn.busy = False
            if conn.transport is not None:
                conn.transport.close()


def percentiles(values: array, points: tuple[float, ...] = (50, 90, 99, 99.9)) -> dict[str, float]:
    if not values:
        return {}
    ordered = sorted(values)
    out = {f"p{p:g}": ordered[min(len(ordered) - 1, int(len(ordered) * p / 100))] * 1000
           for p in points}
    out["max"] = ordered[-1] * 1000
    out["mean"] = sum(ordered) / len(ordered) * 1000
    return out


async def measure(args: argparse.Namespace) -> Result:
    # Enough distinct requests that a view's (project, viewer) comes round again only in a
    # share of `repeat_share`: a pool this size is not repeated within a step.
    size = max(1000, min(int(args.rate * (args.warmup + args.duration)) + 1, 200_000))
    if args.scenario == "track-clicks":
        size = min(size, 2000)  # 50 clicks each; repeats of a batch are fine
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**32)
    make = request_pool(args.scenario, args.projects, args.sessions, args.batch,
                        args.repeat_share, seed, size)
    gen = Generator(args.host, args.port, make, args.rate, args.duration, args.warmup,
                    args.max_connections)
    await gen.preopen(args.preopen)
    cpu0 = time.process_time()
    await gen.run()
    statuses = gen.statuses
    sent = sum(statuses.values())
    errors = sum(n for s, n in statuses.items() if not (s.isdigit() and s.startswith("2")))
    return Result(
        scenario=args.scenario, offered_rate=args.rate,
        achieved_rate=gen.completed_in_window / args.duration,
        ok_rate=gen.ok_in_window / args.duration, sent=sent, statuses=statuses,
        errors=errors, latency_ms=percentiles(gen.latencies),
        events_per_request=args.batch if args.scenario == "track-clicks" else 1,
        connections=len(gen.all), resends=gen.resends, loadgen_cpu_seconds=time.process_time() - cpu0,
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--scenario", required=True,
                   choices=["framework", "track-click", "track-view", "track-clicks"])
    p.add_argument("--rate", type=float, required=True, help="requests per second")
    p.add_argument("--duration", type=float, default=5.0, help="measured seconds")
    p.add_argument("--warmup", type=float, default=1.0, help="unmeasured seconds first")
    p.add_argument("--projects", type=int, default=10_000)
    p.add_argument("--sessions", type=int, default=100_000)
    p.add_argument("--batch", type=int, default=50, help="clicks per track-clicks request")
    p.add_argument("--repeat-share", type=float, default=0.1,
                   help="share of track-view requests repeating a recent (project, viewer)")
    p.add_argument("--max-connections", type=int, default=256)
    p.add_argument("--preopen", type=int, default=32)
    p.add_argument("--seed", type=int, help="of the request mix (default: a new one each run, "
                   "so one step's views are not the last step's repeated)")
    args = p.parse_args(argv)
    try:
        import uvloop
        runner: Callable[..., Result] = uvloop.run
    except ImportError:  # plain asyncio still works, just costs more CPU per request
        runner = asyncio.run
    result = runner(measure(args))
    json.dump(asdict(result), sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
