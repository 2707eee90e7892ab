"""The batch statements' array literals round-trip through PostgreSQL exactly."""

from __future__ import annotations

import random

import pytest

from service.tracking import store
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


# Strings JSON writes without an escape: these take text_array's unquoted-JSON path.
PLAIN = ["", "NULL", "null", "Null", " ", "a,b", "{x}", "}{", "'", "a b", "é✓", "\u2028", "\x7f",
         "x" * 300, "5f0c6a1e9b2d4c7f8a3e1b6d9c0f2a4e7b1d3c5f"]


def test_plain_text_arrays_skip_the_quoting_and_keep_every_string(db, monkeypatch):
    def refuse(values: object) -> str:
        raise AssertionError("a plain column was quoted one string at a time")

    monkeypatch.setattr(store, "quoted_text_array", refuse)
    values: list[str | None] = [*PLAIN, None, *PLAIN[::-1]]
    got = db.execute("SELECT %s::text[]", (text_array(values),)).fetchone()[0]
    assert got == values
    assert db.execute("SELECT %s::text[]", (text_array([None, None]),)).fetchone()[0] == [None, None]


@pytest.mark.parametrize("value", ['"', "\\", "tab\there", "line\nbreak", "\x01", 'say "hi"'])
def test_a_string_that_needs_escaping_is_quoted_and_kept(db, value):
    values = ["plain", value, None]
    got = db.execute("SELECT %s::text[]", (text_array(values),)).fetchone()[0]
    assert got == values


def test_int_arrays_keep_every_integer_and_null(db):
    values = [0, 1, -1, 2**63 - 1, -(2**63), None, 42, None]
    assert db.execute("SELECT %s::bigint[]", (int_array(values),)).fetchone()[0] == values
    assert db.execute("SELECT %s::integer[]", (int_array([7, None]),)).fetchone()[0] == [7, None]


def test_empty_arrays(db):
    assert db.execute("SELECT %s::text[], %s::bigint[]",
                      (text_array([]), int_array([]))).fetchone() == ([], [])
