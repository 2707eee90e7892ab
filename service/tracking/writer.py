"""Write coalescing: concurrent requests share one multi-row statement and one commit.

Each request submits its events and awaits a future. While fewer than `concurrency`
flushes are running, a submission starts a flush in the same turn of the event loop (no
added latency when idle; requests that became ready together go out together);
under load, requests that arrive while every slot is busy queue up and go out together in
the next statement. A future resolves only after its transaction has committed, so an
acknowledgement still means the rows are durably stored.

Bounded: at most `max_pending` submissions wait (more get a 503 at once), and none waits
longer than `timeout` for the database — a submission still queued then gets a 503 and is
never written; a batch waits for a connection only until its earliest deadline, and its
statements get a statement_timeout of about what is left (lock waits and stalls end in a
503). The writers' connections are in autocommit: a batch without idempotency keys is a
single statement, committed before execute returns, so it costs one round trip.

Idempotency keys ride along: a batch claims its keys, writes the events of the requests
that won their claim and stores their results, all in one transaction. Requests whose
claim lost are answered after the commit from what the winning transaction stored.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import psycopg
from psycopg import errors as pg_errors
from psycopg_pool import AsyncConnectionPool

from engagement.db.queries import q
from engagement.logs import REQUEST_SCOPE
from service import idempotency
from service.errors import ROW_ERRORS, ServiceUnavailable
from service.idempotency import IdempotencyKey

T = TypeVar("T")
R = TypeVar("R")

log = logging.getLogger("engagement.writer")

FlushFn = Callable[[psycopg.AsyncConnection, Sequence[T]], Awaitable[list[R]]]

# Worth one more try: a project deleted between our read and the insert (FK), or lock
# order trouble with another writer.
_RETRYABLE = (pg_errors.ForeignKeyViolation, pg_errors.DeadlockDetected,
              pg_errors.SerializationFailure)
_ATTEMPTS = 3
_MIN_CONNECT_WAIT = 0.1  # seconds; a retry after the deadline still gets an idle connection
_MIN_STATEMENT_TIME = 0.5  # seconds; a batch that queued long still gets time to write
# A batch with at least this share of its budget left runs under the connection's own
# statement_timeout (the full budget): it overshoots what is left by at most a fifth.
_FULL_BUDGET = 0.8


@dataclass(frozen=True, slots=True)
class Written(Generic[R]):
    """One result per submitted item; `replayed` when they come from an earlier request."""

    results: list[R]
    replayed: bool = False


@dataclass(eq=False, slots=True)
class _Entry(Generic[T, R]):
    items: Sequence[T]
    key: IdempotencyKey | None
    future: asyncio.Future[Written[R]]
    deadline: float


class BatchWriter(Generic[T, R]):
    def __init__(self, pool: AsyncConnectionPool, flush: FlushFn[T, R], *,
                 max_batch: int, concurrency: int, name: str, max_pending: int = 2000,
                 timeout: float = 1.5, idempotency_ttl: float = 86_400) -> None:
        self._pool = pool
        self._flush = flush
        self._max_batch = max_batch
        self._concurrency = concurrency
        self._max_pending = max_pending
        self._timeout = timeout
        self._idempotency_ttl = idempotency_ttl
        self.name = name
        self._pending: deque[_Entry[T, R]] = deque()
        self._tasks: set[asyncio.Task[None]] = set()
        # One timer for the whole queue, not one per request: every entry waits at most
        # `timeout`, so the oldest one (the head: FIFO) always has the earliest deadline.
        self._expiry: asyncio.TimerHandle | None = None
        self._kick_scheduled = False

    @property
    def pending(self) -> int:
        return len(self._pending)

    async def write(self, items: Sequence[T], key: IdempotencyKey | None = None) -> Written[R]:
        """Store `items` (all or none) and return one result per item, after commit; with a
        key, a repeat of an earlier request gets that request's results."""
        if len(self._pending) >= self._max_pending:
            raise ServiceUnavailable("the service is overloaded; retry later")
        loop = asyncio.get_running_loop()
        entry: _Entry[T, R] = _Entry(items, key, loop.create_future(), loop.time() + self._timeout)
        self._pending.append(entry)
        if not self._kick_scheduled:
            # Start the flush once every request that is ready in this turn of the event
            # loop has queued (uvicorn starts many at once under load), not with the first.
            self._kick_scheduled = True
            loop.call_soon(self._kick)
        if self._expiry is None:
            self._expiry = loop.call_at(self._pending[0].deadline, self._expire)
        return await entry.future

    def _kick(self) -> None:
        self._kick_scheduled = False
        self._start_flushes()

    def _expire(self) -> None:
        """503 for every entry still queued at its deadline: it was never written."""
        self._expiry = None
        loop = asyncio.get_running_loop()
        now = loop.time()
        while self._pending and self._pending[0].deadline <= now:
            entry = self._pending.popleft()
            if not entry.future.done():
                entry.future.set_exception(
                    ServiceUnavailable("the database did not answer in time; retry later"))
        if self._pending:
            self._expiry = loop.call_at(self._pending[0].deadline, self._expire)

    def _start_flushes(self) -> None:
        while self._pending and len(self._tasks) < self._concurrency:
            batch: list[_Entry[T, R]] = []
            size = 0
            while self._pending and (not batch
                                     or size + len(self._pending[0].items) <= self._max_batch):
                entry = self._pending.popleft()
                if entry.future.done():  # abandoned while queued
                    continue
                batch.append(entry)
                size += len(entry.items)
            if not batch:
                continue
            # A flush serves many requests: its log lines name none of them, not the one
            # whose call happened to start it (the context would be that request's).
            context = contextvars.copy_context()
            context.run(REQUEST_SCOPE.set, None)
            task = asyncio.create_task(self._run(batch), context=context)
            self._tasks.add(task)
            task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        self._start_flushes()

    async def _run(self, batch: list[_Entry[T, R]]) -> None:
        try:
            outcomes = await self._write(batch)
        except BaseException as exc:  # every waiter hears about it, nobody hangs
            for entry in batch:
                if not entry.future.done():
                    entry.future.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
            return
        for entry, outcome in zip(batch, outcomes, strict=True):
            if entry.future.done():
                continue
            if isinstance(outcome, BaseException):
                entry.future.set_exception(outcome)
            else:
                entry.future.set_result(outcome)

    async def _write(self, batch: list[_Entry[T, R]]) -> list[Written[R] | Exception]:
        """Write the batch; if the database refuses a row, bisect to fail only its request."""
        try:
            return await self._write_all(batch)
        except ROW_ERRORS as exc:
            # The database refused a row (a CHECK, a NOT NULL, a value it cannot read): that
            # belongs to the request that sent it, not to the batch. The same rows would fail
            # again; splitting the batch finds the requests at fault.
            if len(batch) == 1:  # answered 400 with an ERROR line (errors.handle_exception)
                return [exc]
            half = len(batch) // 2
            return [*await self._write(batch[:half]), *await self._write(batch[half:])]

    async def _write_all(self, batch: list[_Entry[T, R]]) -> list[Written[R] | Exception]:
        loop = asyncio.get_running_loop()
        deadline = min(entry.deadline for entry in batch)
        for attempt in range(1, _ATTEMPTS + 1):
            wait = max(deadline - loop.time(), _MIN_CONNECT_WAIT)
            try:
                async with self._pool.connection(timeout=wait) as conn:
                    budget = max(deadline - loop.time(), _MIN_STATEMENT_TIME)
                    if (conn.autocommit and budget >= self._timeout * _FULL_BUDGET
                            and all(entry.key is None for entry in batch)):
                        # The common case: one statement, which is its own transaction and
                        # has committed when execute returns; the connection's
                        # statement_timeout (the whole budget) is close enough to what is
                        # left. One round trip instead of BEGIN, SET, statement, COMMIT.
                        written = await self._store(conn, batch)
                    else:
                        async with conn.transaction():
                            await conn.execute(q("set_write_timeout"),
                                               {"milliseconds": int(budget * 1000)})
                            written = await self._store(conn, batch)
                    # Committed: from here on nothing may undo or repeat the writes.
                    return await self._answer(conn, batch, written)
            except _RETRYABLE as exc:
                if attempt == _ATTEMPTS:
                    raise
                log.info("%s: retrying a batch of %d after %s", self.name, len(batch),
                         type(exc).__name__)
        raise AssertionError("unreachable")

    async def _store(self, conn: psycopg.AsyncConnection,
                     batch: list[_Entry[T, R]]) -> dict[int, list[R]]:
        """Claim keys, write the events of every request that may write; results by entry."""
        claims: dict[tuple[str, str], IdempotencyKey] = {}
        for entry in batch:
            if entry.key is not None:
                claims.setdefault(entry.key.ident, entry.key)  # the first one asks
        won = (await idempotency.claim(conn, list(claims.values()), self._idempotency_ttl)
               if claims else set())
        writers: list[_Entry[T, R]] = []
        for entry in batch:
            if entry.key is None:
                writers.append(entry)
            elif entry.key.ident in won:
                won.discard(entry.key.ident)  # a repeat inside this batch replays it
                writers.append(entry)
        flat = [item for entry in writers for item in entry.items]
        results = await self._flush(conn, flat) if flat else []
        written: dict[int, list[R]] = {}
        offset = 0
        for entry in writers:
            written[id(entry)] = results[offset:offset + len(entry.items)]
            offset += len(entry.items)
        keyed = [entry for entry in writers if entry.key is not None]
        if keyed:
            await idempotency.save(conn, [e.key for e in keyed if e.key is not None],
                                   [written[id(e)] for e in keyed])
        return written

    async def _answer(self, conn: psycopg.AsyncConnection, batch: list[_Entry[T, R]],
                      written: dict[int, list[R]]) -> list[Written[R] | Exception]:
        """Outcomes in batch order; requests whose claim lost get the winner's results."""
        repeats = [e.key for e in batch if id(e) not in written and e.key is not None]
        stored: dict[tuple[str, str], idempotency.Stored] = {}
        failure: Exception | None = None
        if repeats:
            try:
                stored = await idempotency.load(conn, repeats)
            except psycopg.Error as exc:  # our own writes are committed; only repeats fail
                failure = exc
        outcomes: list[Written[R] | Exception] = []
        for entry in batch:
            if id(entry) in written:
                outcomes.append(Written(written[id(entry)]))
                continue
            assert entry.key is not None
            found = stored.get(entry.key.ident)
            if failure is not None:
                outcomes.append(failure)
            elif found is None or found.results is None:  # pruned in between: rare
                outcomes.append(ServiceUnavailable("could not replay this Idempotency-Key; "
                                                   "retry later"))
            elif found.fingerprint != entry.key.fingerprint:
                outcomes.append(idempotency.conflict())
            else:
                replay: list[Any] = found.results
                outcomes.append(Written(replay, replayed=True))
        return outcomes

    async def drain(self) -> None:
        """Wait for queued and running flushes (graceful shutdown)."""
        while self._tasks or self._pending:
            if self._tasks:
                await asyncio.gather(*list(self._tasks), return_exceptions=True)
            else:
                self._start_flushes()
