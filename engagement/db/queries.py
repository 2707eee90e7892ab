"""Named SQL queries from ``sql/queries/*.sql``, loaded once at import."""

from __future__ import annotations

import re
from importlib import resources

_NAME = re.compile(r"^--\s*name:\s*([a-z0-9_]+)\s*$", re.MULTILINE)


def _load() -> dict[str, str]:
    queries: dict[str, str] = {}
    folder = resources.files("sql").joinpath("queries")
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".sql"):
            continue
        text = entry.read_text(encoding="utf-8")
        parts = _NAME.split(text)
        # parts = [preamble, name1, body1, name2, body2, ...]
        for name, body in zip(parts[1::2], parts[2::2], strict=True):
            if name in queries:
                raise RuntimeError(f"query {name!r} is defined twice (in {entry.name})")
            queries[name] = body.strip().rstrip(";")
    return queries


QUERIES: dict[str, str] = _load()


def q(name: str) -> str:
    """The SQL text of one named query."""
    return QUERIES[name]
