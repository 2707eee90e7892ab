"""The batch statements' array literals round-trip through PostgreSQL exactly."""

from __future__ import annotations

import random

from service.tracking.store import int_array, text_array

AWKWARD = ["", "NULL", "null", " ", "a,b", "{x}", '"', '\\', '\\"', "a b", "'", "é✓",
           "tab\there", "line\nbreak", "}{,\"\\", "x" * 300]


def test_text_arrays_keep_every_string_and_null(db):
    rng = random.Random(3)
    values: list[str | None] = [*AWKWARD, None]
    for _ in range(200):
        values.append("".join(rng.choice('ab ,{}"\\\'NUL\n') for _ in range(rng.randint(0, 8))))
    rng.shuffle(values)
    got = db.execute("SELECT %s::text[]", (text_array(values),)).fetchone()[0]
    assert got == values


def test_int_arrays_keep_every_integer_and_null(db):
    values = [0, 1, -1, 2**63 - 1, -(2**63), None, 42, None]
    assert db.execute("SELECT %s::bigint[]", (int_array(values),)).fetchone()[0] == values
    assert db.execute("SELECT %s::integer[]", (int_array([7, None]),)).fetchone()[0] == [7, None]


def test_empty_arrays(db):
    assert db.execute("SELECT %s::text[], %s::bigint[]",
                      (text_array([]), int_array([]))).fetchone() == ([], [])
