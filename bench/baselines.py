"""Database baselines: pgbench single-row INSERTs (each its own commit), and COPY in bulk."""

from __future__ import annotations

import asyncio
import random
import re
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg

from bench.loadgen import CLICK_SOURCES
from cli.dev.embedded import find_bindir

# The row a track-click stores: the same table, columns, kinds of values and triggers.
PGBENCH_SCRIPT = """\\set pid random(1, {projects})
\\set pos random(0, 49)
\\set src random(1, 7)
INSERT INTO project_clicks (created_at, project_id, user_id, session_key, source, position)
VALUES (now(), :pid, NULL, '{session}',
        (ARRAY[{sources}])[:src], :pos);
"""
SESSION_HASH = "5f0c6a1e9b2d4c7f8a3e1b6d9c0f2a4e7b1d3c5f"  # 40 hex chars, like an HMAC
COPY_SQL = ("COPY project_clicks (created_at, project_id, user_id, session_key, source, position)"
            " FROM STDIN")


@dataclass
class Baseline:
    name: str
    rate: float  # statements (pgbench) or rows (COPY) per second
    unit: str
    detail: str


def pgbench_script(projects: int) -> str:
    """pgbench's script: one track-click row, INSERTed like the service stores it."""
    sources = ", ".join(f"'{s}'" for s in CLICK_SOURCES)
    return PGBENCH_SCRIPT.format(projects=projects, session=SESSION_HASH, sources=sources)


def pgbench_command(url: str, script: Path, *, clients: int, seconds: float) -> list[str]:
    pgbench = find_bindir() / "pgbench"
    if not pgbench.exists():
        raise SystemExit(f"pgbench is not in {pgbench.parent}: install PostgreSQL's server "
                         "package (Debian: postgresql), or set ENGAGEMENT_PG_BINDIR")
    return [str(pgbench), "-n", "-M", "prepared", "-c", str(clients),
            "-j", str(min(clients, 2)), "-T", str(int(seconds)), "-f", str(script), url]


def pgbench_inserts(url: str, *, clients: int, seconds: float, projects: int) -> Baseline:
    """pgbench: one INSERT per transaction, autocommit, prepared, `clients` connections."""
    with tempfile.NamedTemporaryFile("w", suffix=".sql", delete=False) as fh:
        fh.write(pgbench_script(projects))
        path = Path(fh.name)
    try:
        out = subprocess.run(
            pgbench_command(url, path, clients=clients, seconds=seconds),
            capture_output=True, text=True, check=True,
        ).stdout
    finally:
        path.unlink()
    match = re.search(r"tps = ([0-9.]+) \(without initial connection time\)", out)
    if not match:
        raise RuntimeError(f"unexpected pgbench output:\n{out}")
    return Baseline("database ceiling", float(match.group(1)), "inserts/s",
                    f"pgbench -M prepared, {clients} connections, 1 row per commit")


def _copy_block(rows: int, projects: int, seed: int) -> bytes:
    rng = random.Random(seed)
    lines = [f"now\t{rng.randint(1, projects)}\t\\N\t{SESSION_HASH}\t{rng.choice(CLICK_SOURCES)}"
             f"\t{rng.randrange(50)}\n" for _ in range(rows)]
    # 'now' is replaced per block so rows carry the current time like live events.
    return "".join(lines).encode()


async def _copy_worker(url: str, block: bytes, deadline: float) -> int:
    rows = block.count(b"\n")
    done = 0
    async with await psycopg.AsyncConnection.connect(url) as conn:
        while time.monotonic() < deadline:
            stamp = (await (await conn.execute("SELECT now()::text")).fetchone())[0]  # type: ignore[index]
            async with conn.cursor() as cur, cur.copy(COPY_SQL) as copy:
                await copy.write(block.replace(b"now\t", stamp.encode() + b"\t"))
            await conn.commit()
            done += rows
    return done


def copy_rows(url: str, *, connections: int, rows_per_copy: int, seconds: float,
              projects: int) -> Baseline:
    """COPY blocks of `rows_per_copy` click rows, each block committed, over `connections`."""
    blocks = [_copy_block(rows_per_copy, projects, seed) for seed in range(connections)]

    async def run() -> int:
        deadline = time.monotonic() + seconds
        counts = await asyncio.gather(*(_copy_worker(url, b, deadline) for b in blocks))
        return sum(counts)

    started = time.monotonic()
    total = asyncio.run(run())
    elapsed = time.monotonic() - started
    return Baseline("bulk ceiling", total / elapsed, "rows/s",
                    f"COPY {rows_per_copy} rows per commit, {connections} connections")
