"""Aligned blocks of hourly counts for the trending job's rebuilds (rollups/0205).

A rebuild of the window totals used to read every hourly view and like row of the window,
which costs PostgreSQL about as much per row as a raw event does. trending_blocks keeps
per-project sums over blocks of 2, 4, 8 and 16 hours, each starting at a multiple of its
length since the epoch, so any stretch of hours is a handful of blocks plus at most a few
single hours (`plan`). refresh-rollups keeps the blocks (`update`) in the transaction that
rewrites the hourly counts they sum.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

import psycopg

from engagement.db.queries import q

SIZES = (2, 4, 8, 16)  # hours; each is twice the one before, so a block sums two halves
HOUR = timedelta(hours=1)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

Block = tuple[int, datetime]  # (hours, start)


def _index(t: datetime) -> int:
    """Hours since the epoch of a whole hour."""
    whole, rest = divmod(t - _EPOCH, HOUR)
    if rest:
        raise ValueError(f"{t} is not a whole hour")
    return whole


def _at(index: int) -> datetime:
    return _EPOCH + index * HOUR


def blocks_within(start: datetime, end: datetime) -> set[Block]:
    """Every block lying wholly in the hours [start, end)."""
    first, stop = _index(start), _index(end)
    found: set[Block] = set()
    for size in SIZES:
        x = -(-first // size) * size  # the first multiple of size at or after first
        while x + size <= stop:
            found.add((size, _at(x)))
            x += size
    return found


def plan(start: datetime, end: datetime, covered: tuple[datetime, datetime] | None,
         stale: Iterable[datetime | None] = ()) -> tuple[list[Block], list[datetime]]:
    """The hours [start, end) as aligned blocks inside `covered` that hold none of the
    `stale` hours, the largest that fits at each point, and the hours left over. Without
    `covered`, or with a stale hour of None (a truncation: all of them), every hour is left
    over."""
    blocks: list[Block] = []
    hours: list[datetime] = []
    stale_hours = set()
    for hour in stale:
        if hour is None:
            covered = None
            break
        stale_hours.add(_index(hour))
    x, stop = _index(start), _index(end)
    lo, hi = (_index(covered[0]), _index(covered[1])) if covered else (0, 0)
    while x < stop:
        for size in reversed(SIZES):
            if (x % size == 0 and x + size <= stop and lo <= x and x + size <= hi
                    and not any(h in stale_hours for h in range(x, x + size))):
                blocks.append((size, _at(x)))
                x += size
                break
        else:
            hours.append(_at(x))
            x += 1
    return blocks, hours


def _holding(hours: Iterable[datetime | None], blocks: set[Block]) -> set[Block]:
    """The blocks among `blocks` that hold one of `hours` (all of them for None)."""
    stale: set[Block] = set()
    for hour in hours:
        if hour is None:
            return set(blocks)
        x = _index(hour)
        for size in SIZES:
            block = (size, _at(x - x % size))
            if block in blocks:
                stale.add(block)
    return stale


def update(conn: psycopg.Connection, covered_from: datetime, covered_to: datetime) -> int:
    """Make trending_blocks hold exactly the blocks inside [covered_from, covered_to), each
    summing the hourly counts as this transaction sees them, and forget the logged changes
    that are now counted. Returns how many blocks were (re)computed."""
    wanted = blocks_within(covered_from, covered_to)
    state = conn.execute(q("trending_blocks_state")).fetchone()
    kept = blocks_within(state[0], state[1]) & wanted if state else set()
    changes = conn.execute(q("trending_blocks_changes")).fetchall()
    todo = (wanted - kept) | _holding((bucket for _, bucket in changes), kept)
    if state is None or (state[0], state[1]) != (covered_from, covered_to):
        conn.execute(q("prune_trending_blocks"),
                     {"covered_from": covered_from, "covered_to": covered_to})
        conn.execute(q("record_trending_blocks_state"),
                     {"covered_from": covered_from, "covered_to": covered_to})
    for size in SIZES:  # halves before the blocks summing them
        starts = sorted(start for s, start in todo if s == size)
        if not starts:
            continue
        params: dict[str, object] = {"hours": size, "block_starts": starts}
        conn.execute(q("clear_trending_blocks"), params)
        if size == SIZES[0]:
            params["buckets"] = [start + i * HOUR for start in starts for i in range(size)]
            conn.execute(q("fill_trending_blocks_from_hours"), params)
        else:
            conn.execute(q("fill_trending_blocks_from_halves"), params)
    if changes:
        conn.execute(q("forget_trending_blocks_changes"), {"ids": [i for i, _ in changes]})
    return len(todo)
