"""Named SQL of the benchmarks, from bench/sql/*.sql (same `-- name:` format as sql/queries)."""

from __future__ import annotations

from pathlib import Path

from engagement.db.queries import _NAME

_FOLDER = Path(__file__).resolve().parent / "sql"


def _load() -> dict[str, str]:
    queries: dict[str, str] = {}
    for path in sorted(_FOLDER.glob("*.sql")):
        parts = _NAME.split(path.read_text(encoding="utf-8"))
        for name, body in zip(parts[1::2], parts[2::2], strict=True):
            queries[name] = body.strip().rstrip(";")
    return queries


QUERIES = _load()


def bq(name: str) -> str:
    """The SQL text of one named benchmark query."""
    return QUERIES[name]
