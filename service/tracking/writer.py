"""Write coalescing: concurrent requests share one multi-row statement and one commit.

Each request submits its events and awaits a future. While fewer than `concurrency`
flushes are running, a submission starts a flush at once (no added latency when idle);
under load, requests that arrive while every slot is busy queue up and go out together in
the next statement. A future resolves only after its transaction has committed, so an
acknowledgement still means the rows are durably stored.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

import psycopg
from psycopg import errors as pg_errors
from psycopg_pool import AsyncConnectionPool

T = TypeVar("T")
R = TypeVar("R")

log = logging.getLogger("engagement.writer")

FlushFn = Callable[[psycopg.AsyncConnection, Sequence[T]], Awaitable[list[R]]]

# Worth one more try: a project deleted between our read and the insert (FK), or lock
# order trouble with another writer.
_RETRYABLE = (pg_errors.ForeignKeyViolation, pg_errors.DeadlockDetected,
              pg_errors.SerializationFailure)
_ATTEMPTS = 3


class BatchWriter(Generic[T, R]):
    def __init__(self, pool: AsyncConnectionPool, flush: FlushFn[T, R], *,
                 max_batch: int, concurrency: int, name: str) -> None:
        self._pool = pool
        self._flush = flush
        self._max_batch = max_batch
        self._concurrency = concurrency
        self.name = name
        self._pending: deque[tuple[Sequence[T], asyncio.Future[list[R]]]] = deque()
        self._tasks: set[asyncio.Task[None]] = set()

    async def submit(self, items: Sequence[T]) -> list[R]:
        """Store `items` (all or none) and return one result per item, after commit."""
        future: asyncio.Future[list[R]] = asyncio.get_running_loop().create_future()
        self._pending.append((items, future))
        self._start_flushes()
        return await future

    def _start_flushes(self) -> None:
        while self._pending and len(self._tasks) < self._concurrency:
            batch = [self._pending.popleft()]
            size = len(batch[0][0])
            while self._pending and size + len(self._pending[0][0]) <= self._max_batch:
                items, future = self._pending.popleft()
                batch.append((items, future))
                size += len(items)
            task = asyncio.create_task(self._run(batch))
            self._tasks.add(task)
            task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        self._start_flushes()

    async def _run(self, batch: list[tuple[Sequence[T], asyncio.Future[list[R]]]]) -> None:
        flat = [item for items, _ in batch for item in items]
        try:
            results = await self._write(flat)
        except BaseException as exc:  # every waiter hears about it, nobody hangs
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
            return
        offset = 0
        for items, future in batch:
            if not future.done():
                future.set_result(results[offset:offset + len(items)])
            offset += len(items)

    async def _write(self, items: list[T]) -> list[R]:
        for attempt in range(1, _ATTEMPTS + 1):
            try:
                async with self._pool.connection() as conn, conn.transaction():
                    return await self._flush(conn, items)
            except _RETRYABLE as exc:
                if attempt == _ATTEMPTS:
                    raise
                log.info("%s: retrying a batch of %d after %s", self.name, len(items),
                         type(exc).__name__)
        raise AssertionError("unreachable")

    async def drain(self) -> None:
        """Wait for queued and running flushes (graceful shutdown)."""
        while self._tasks or self._pending:
            if self._tasks:
                await asyncio.gather(*list(self._tasks), return_exceptions=True)
            else:
                self._start_flushes()
