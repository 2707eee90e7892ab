"""Idempotency-Key on the track endpoints: a retry is answered as the first request was.

The key is claimed in the same transaction as the events it guards (see BatchWriter), so a
crash leaves both or neither. A retry whose claim loses waits for the first transaction to
commit, takes the results it stored, and is answered from them exactly as the first was.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import msgspec
import psycopg

from engagement.db.queries import q
from service.errors import BadRequest, UnprocessableContent

HEADER = "idempotency-key"
REPLAYED_HEADER = "Idempotent-Replayed"
_VALID_KEY = re.compile(r"[\x21-\x7e]{1,255}")  # visible ASCII, e.g. a UUID


@dataclass(frozen=True, slots=True)
class IdempotencyKey:
    scope: str  # the operation, so one key may serve a view and a click without clashing
    key: str
    fingerprint: str  # what the request asked for; reusing the key for another ask is refused

    @property
    def ident(self) -> tuple[str, str]:
        return self.scope, self.key


@dataclass(frozen=True, slots=True)
class Stored:
    fingerprint: str
    results: list[Any] | None


def parse_key(raw: str | None, scope: str, *request_parts: bytes | str) -> IdempotencyKey | None:
    """The request's Idempotency-Key (None without the header); 400 when it is malformed."""
    if raw is None:
        return None
    # The IETF draft sends it as a structured-field string ("..."); Stripe-style clients don't.
    key = raw.strip().removeprefix('"').removesuffix('"')
    if not _VALID_KEY.fullmatch(key):
        raise BadRequest("the Idempotency-Key header must be 1 to 255 visible ASCII characters "
                         "(a UUID is a good choice)")
    digest = hashlib.sha256()
    for part in request_parts:
        digest.update(part if isinstance(part, bytes) else part.encode())
        digest.update(b"\x00")
    return IdempotencyKey(scope, key, digest.hexdigest())


def conflict() -> UnprocessableContent:
    return UnprocessableContent("this Idempotency-Key was already used for a different request; "
                                "use a new key for each new request")


async def claim(conn: psycopg.AsyncConnection, keys: Sequence[IdempotencyKey],
                ttl_seconds: float) -> set[tuple[str, str]]:
    """Claim `keys` (each once) in the caller's transaction; the ones this transaction won."""
    cur = await conn.execute(q("claim_idempotency_keys"), {
        "scopes": [k.scope for k in keys],
        "keys": [k.key for k in keys],
        "fingerprints": [k.fingerprint for k in keys],
        "ttl_seconds": ttl_seconds,
    })
    return {(scope, key) for scope, key in await cur.fetchall()}


async def save(conn: psycopg.AsyncConnection, keys: Sequence[IdempotencyKey],
               results: Sequence[Sequence[Any]]) -> None:
    """Store each won key's results, in the same transaction as its events."""
    await conn.execute(q("save_idempotency_results"), {
        "scopes": [k.scope for k in keys],
        "keys": [k.key for k in keys],
        "results": [msgspec.json.encode(list(r)).decode() for r in results],
    })


async def load(conn: psycopg.AsyncConnection,
               keys: Sequence[IdempotencyKey]) -> dict[tuple[str, str], Stored]:
    """What the transactions that won `keys` stored."""
    cur = await conn.execute(q("load_idempotency_results"), {
        "scopes": [k.scope for k in keys],
        "keys": [k.key for k in keys],
    })
    return {(scope, key): Stored(fingerprint, results)
            for scope, key, fingerprint, results in await cur.fetchall()}
