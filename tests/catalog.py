"""The schema of a database as sorted text lines, from the catalogs, for comparing two of them.

The public schema (relations, columns with types, defaults and nullability, constraints,
indexes, triggers, functions, views, sequences, types, policies; objects of extensions left
out, their versions listed) and, where TimescaleDB is installed, its catalog: hypertables
and dimensions, compression settings, continuous aggregates with their view definitions
(and the indexes of their materialization hypertables), and jobs with their config.
Left out is what differs between two databases of the same schema: yoyo's bookkeeping,
owners, job ids and next start times, and the numbers TimescaleDB gives its
materialization hypertables (named after their continuous aggregate instead).
"""

from __future__ import annotations

import difflib
import json
import re
from typing import Any

import psycopg

# Objects in public that belong to an extension (TimescaleDB puts its functions there).
_NOT_EXTENSION = """NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = '{catalog}'::regclass
                   AND d.objid = {oid} AND d.deptype = 'e')"""
_NOT_YOYO = "{rel} NOT LIKE '\\_yoyo%' AND {rel} <> 'yoyo_lock'"

PUBLIC_QUERIES = {
    "extension": "SELECT extname || ' ' || extversion FROM pg_extension",
    "relation": f"""
        SELECT c.relname || ' kind=' || c.relkind::text || ' persistence=' || c.relpersistence::text
               || ' options=' || coalesce(c.reloptions::text, '-') || ' rls=' || c.relrowsecurity
               || coalesce(' partition by ' || pg_get_partkeydef(c.oid), '')
               || coalesce(' partition of ' || pg_get_expr(c.relpartbound, c.oid), '')
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S')
          AND {_NOT_YOYO.format(rel="c.relname")}
          AND {_NOT_EXTENSION.format(catalog="pg_class", oid="c.oid")}""",
    "column": f"""
        SELECT c.relname || '.' || a.attname
               || ' #' || row_number() OVER (PARTITION BY c.oid ORDER BY a.attnum)
               || ' ' || format_type(a.atttypid, a.atttypmod)
               || CASE WHEN a.attnotnull THEN ' not null' ELSE '' END
               || coalesce(' default ' || pg_get_expr(d.adbin, d.adrelid), '')
               || CASE WHEN a.attidentity <> '' THEN ' identity ' || a.attidentity::text ELSE '' END
               || CASE WHEN a.attgenerated <> '' THEN ' generated' ELSE '' END
               || CASE WHEN a.attcollation <> t.typcollation
                       THEN ' collate ' || a.attcollation::regcollation::text ELSE '' END
        FROM pg_attribute a
        JOIN pg_class c ON c.oid = a.attrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        JOIN pg_type t ON t.oid = a.atttypid
        LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
        WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
          AND a.attnum > 0 AND NOT a.attisdropped
          AND {_NOT_YOYO.format(rel="c.relname")}
          AND {_NOT_EXTENSION.format(catalog="pg_class", oid="c.oid")}""",
    "constraint": f"""
        SELECT con.conname || ' on ' || coalesce(c.relname, 'type ' || ty.typname) || ': '
               || pg_get_constraintdef(con.oid)
        FROM pg_constraint con
        JOIN pg_namespace n ON n.oid = con.connamespace
        LEFT JOIN pg_class c ON c.oid = con.conrelid
        LEFT JOIN pg_type ty ON ty.oid = con.contypid
        WHERE n.nspname = 'public' AND {_NOT_YOYO.format(rel="coalesce(c.relname, '')")}""",
    "index": f"""
        SELECT tablename || '.' || indexname || ': ' || indexdef FROM pg_indexes
        WHERE (schemaname = 'public' AND {_NOT_YOYO.format(rel="tablename")})
           OR (schemaname = '_timescaledb_internal'
               AND tablename LIKE '\\_materialized\\_hypertable\\_%')""",
    "trigger": """
        SELECT c.relname || '.' || t.tgname || ' enabled=' || t.tgenabled::text || ': '
               || pg_get_triggerdef(t.oid)
        FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'public' AND NOT t.tgisinternal""",
    "function": f"""
        SELECT p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ')'
               || coalesce(' returns ' || pg_get_function_result(p.oid), '')
               || ' kind=' || p.prokind::text || ' language=' || l.lanname
               || ' volatility=' || p.provolatile::text || ' strict=' || p.proisstrict
               || ' security_definer=' || p.prosecdef
               || ' config=' || coalesce(p.proconfig::text, '-')
               || ' source_md5=' || md5(p.prosrc)
        FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
        JOIN pg_language l ON l.oid = p.prolang
        WHERE n.nspname = 'public' AND {_NOT_EXTENSION.format(catalog="pg_proc", oid="p.oid")}""",
    "view": f"""
        SELECT c.relname || ': ' || pg_get_viewdef(c.oid, true)
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'public' AND c.relkind IN ('v', 'm')
          AND {_NOT_EXTENSION.format(catalog="pg_class", oid="c.oid")}""",
    "sequence": f"""
        SELECT sequencename || ' ' || data_type || ' start=' || start_value
               || ' min=' || min_value || ' max=' || max_value || ' increment=' || increment_by
               || ' cycle=' || cycle || ' cache=' || cache_size
        FROM pg_sequences WHERE schemaname = 'public' AND {_NOT_YOYO.format(rel="sequencename")}""",
    "type": f"""
        SELECT t.typname || ' ' || t.typtype::text || ': ' || coalesce(
                 (SELECT string_agg(e.enumlabel, ', ' ORDER BY e.enumsortorder)
                  FROM pg_enum e WHERE e.enumtypid = t.oid),
                 format_type(t.typbasetype, t.typtypmod))
               || CASE WHEN t.typnotnull THEN ' not null' ELSE '' END
               || coalesce(' default ' || t.typdefault, '')
        FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
        WHERE n.nspname = 'public' AND t.typtype IN ('e', 'd', 'r')
          AND {_NOT_EXTENSION.format(catalog="pg_type", oid="t.oid")}""",
    "policy": """
        SELECT tablename || '.' || policyname || ' ' || permissive || ' ' || cmd
               || ' roles=' || roles::text || ' using=' || coalesce(qual, '-')
               || ' check=' || coalesce(with_check, '-')
        FROM pg_policies WHERE schemaname = 'public'""",
}

# TimescaleDB's information views that describe the schema (not chunks, not job runs), and
# the keys of their rows that differ between databases with the same schema.
TIMESCALE_VIEWS = ("hypertables", "dimensions", "compression_settings",
                   "hypertable_compression_settings", "hypertable_columnstore_settings",
                   "continuous_aggregates", "jobs")
VOLATILE_KEYS = {"owner", "view_owner", "num_chunks", "job_id", "application_name",
                 "next_start", "initial_start"}


def _entry(kind: str, text: str) -> list[str]:
    """One line per line of `text` (view definitions span many), each saying what it is."""
    first, *rest = text.split("\n")
    name = first.partition(":")[0]
    return [f"{kind} {first}", *(f"{kind} {name} | {line}" for line in rest)]


def _timescale_entries(conn: psycopg.Connection,
                       public: list[list[str]]) -> list[list[str]]:
    """TimescaleDB's catalog; renames the materialization hypertables in `public` too.

    They get their numbers in creation order: each is named after its continuous aggregate.
    """
    mat_names: dict[int, str] = {
        hid: f"<materialization of {view}>" for hid, view in conn.execute(
            "SELECT ca.mat_hypertable_id, ca.user_view_name "
            "FROM _timescaledb_catalog.continuous_agg ca").fetchall()}
    hypertable_names: dict[int, str] = {
        hid: mat_names.get(hid, f"{schema}.{name}") for hid, schema, name in conn.execute(
            "SELECT id, schema_name, table_name FROM _timescaledb_catalog.hypertable").fetchall()}
    ids = "|".join(str(i) for i in mat_names) or "-1"
    by_id = re.compile(rf"_materialized_hypertable_({ids})(?!\d)|cagg_watermark\(({ids})\)")

    def named(text: str) -> str:
        return by_id.sub(lambda m: mat_names[int(m.group(1))] if m.group(1) else
                         f"cagg_watermark({mat_names[int(m.group(2))]})", text)

    entries = []
    for view in TIMESCALE_VIEWS:
        exists = conn.execute("SELECT to_regclass(%s)", (f"timescaledb_information.{view}",))
        if exists.fetchone() == (None,):
            continue
        rows = conn.execute(f"SELECT to_jsonb(v) FROM timescaledb_information.{view} v")
        for (row,) in rows.fetchall():
            row = {k: v for k, v in row.items() if k not in VOLATILE_KEYS}
            config: Any = row.get("config")
            if isinstance(config, dict):
                for key in ("hypertable_id", "mat_hypertable_id"):
                    if isinstance(config.get(key), int):
                        config[key] = hypertable_names.get(config[key], config[key])
            definition = row.pop("view_definition", None)
            entry = [f"timescaledb {view} {json.dumps(row, sort_keys=True)}"]
            if definition is not None:
                entry.extend(f"timescaledb {view} {row.get('view_name')} definition | {line}"
                             for line in definition.split("\n"))
            entries.append(entry)
    return [[named(line) for line in entry] for entry in public + entries]


def schema_lines(conn: psycopg.Connection) -> list[str]:
    """The schema of the database `conn` is connected to: sorted entries, each entry's
    lines together."""
    entries = [_entry(kind, text) for kind, sql in PUBLIC_QUERIES.items()
               for (text,) in conn.execute(sql).fetchall()]
    if conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'").fetchone():
        entries = _timescale_entries(conn, entries)
    return [line for entry in sorted(entries) for line in entry]


def schema_of(url: str) -> list[str]:
    with psycopg.connect(url, autocommit=True) as conn:
        return schema_lines(conn)


def diff(expected: list[str], actual: list[str], expected_name: str, actual_name: str) -> str:
    """The differing lines, unified-diff style ('' when the schemas are the same)."""
    return "\n".join(difflib.unified_diff(expected, actual, expected_name, actual_name,
                                          n=1, lineterm=""))
