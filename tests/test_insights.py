"""Insights endpoints against independently computed answers: CTR and Wilson intervals per
position, A/B differences with Newcombe intervals, heatmap cells, return viewers.

Events go straight into the raw tables with known timestamps (the public API stamps `now()`),
then the refresh job brings the hourly relations up to date, as in production.
"""

from __future__ import annotations

import math
import random
from collections import Counter, defaultdict
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from scheduler.jobs import JobContext, run_job

CTR = "/api/v1/insights/ctr/"
VARIANTS = "/api/v1/insights/variants/"
HEATMAP = "/api/v1/insights/heatmap/"
Z = 1.959963984540054  # two-sided 95 % standard normal quantile, from tables
SOURCES = ("explore_for_you", "explore_trending", "search")


# --- independent reference computations (textbook formulas, math only) ----------------

def wilson_reference(x: int, n: int) -> tuple[float, float]:
    p = x / n
    centre = p + Z * Z / (2 * n)
    spread = Z * math.sqrt(p * (1 - p) / n + Z * Z / (4 * n * n))
    scale = 1 + Z * Z / n
    return (centre - spread) / scale, (centre + spread) / scale


def newcombe_reference(x1: int, n1: int, x2: int, n2: int) -> tuple[float, float, float]:
    p1, p2 = x1 / n1, x2 / n2
    l1, u1 = wilson_reference(x1, n1)
    l2, u2 = wilson_reference(x2, n2)
    d = p1 - p2
    return (d, d - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2),
            d + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2))


def close(a: float | None, b: float | None, tol: float = 1e-12) -> bool:
    return a is not None and b is not None and abs(a - b) <= tol


# --- helpers ---------------------------------------------------------------------------

def refresh(settings, profile):
    run_job("refresh-rollups", JobContext(settings, profile))


def put_projects(db, *ids, private=()):
    for pid in ids:
        db.execute("INSERT INTO projects (id, owner_id, is_private, created_at) "
                   "VALUES (%s, 1, %s, now() - interval '400 days')", (pid, pid in private))


def insert_feed(db, table: str, rows):
    """rows: (created_at, project_id, source, position, variant, how_many)."""
    if not rows:
        return
    cols = list(zip(*rows, strict=True))
    db.execute(
        f"INSERT INTO {table} (created_at, project_id, source, position, variant) "
        "SELECT t.at, t.pid, t.src, t.pos, t.var "
        "FROM unnest(%s::timestamptz[], %s::bigint[], %s::text[], %s::int[], %s::text[], "
        "%s::int[]) AS t(at, pid, src, pos, var, n), generate_series(1, t.n)",
        [list(c) for c in cols])


def get(api, path, **params):
    r = api.client.get(path, params=params, headers=api.internal)
    assert r.status_code == 200, r.text
    return r.json()


def utc_midnight(d: date) -> datetime:
    return datetime(d.year, d.month, d.day, tzinfo=UTC)


# --- CTR by position -------------------------------------------------------------------

def test_ctr_per_position_matches_an_independent_computation(api, db, settings, profile):
    rng = random.Random(9)
    put_projects(db, *range(1, 7))
    today = datetime.now(UTC).date()
    start, last = today - timedelta(days=10), today - timedelta(days=3)
    window = (utc_midnight(start), utc_midnight(last + timedelta(days=1)))
    imps, clicks = [], []
    for _ in range(300):
        at = window[0] + timedelta(minutes=rng.randrange(int((window[1] - window[0]) / timedelta(minutes=1))))
        src, pos = rng.choice(SOURCES), rng.choice([None, 0, 1, 2, 3, 5, 8])
        n = rng.randrange(1, 40)
        imps.append((at, rng.randrange(1, 7), src, pos, rng.choice([None, "a", "b"]), n))
        clicks.append((at, rng.randrange(1, 7), src, pos, rng.choice([None, "a"]),
                       rng.randrange(0, n // 3 + 1)))
    # the edges: just before `from`, exactly at the exclusive end, and far outside
    for at in (window[0] - timedelta(seconds=1), window[1], window[1] + timedelta(days=1)):
        imps.append((at, 1, "search", 0, None, 50))
        clicks.append((at, 1, "search", 0, None, 20))
    # special cases: all clicked, clicks without impressions, more clicks than impressions
    mid = window[0] + timedelta(days=2, minutes=7)
    imps += [(mid, 2, "search", 40, None, 3), (mid, 2, "search", 42, None, 2)]
    clicks += [(mid, 2, "search", 40, None, 3), (mid, 2, "search", 41, None, 4),
               (mid, 2, "search", 42, None, 5)]
    insert_feed(db, "project_impressions", imps)
    insert_feed(db, "project_clicks", clicks)
    refresh(settings, profile)

    body = get(api, CTR, source="search", **{"from": start.isoformat(), "to": last.isoformat()})
    assert (body["from"], body["to"]) == tuple(w.isoformat().replace("+00:00", "Z") for w in window)

    expected: dict[int | None, list[int]] = defaultdict(lambda: [0, 0])
    for rows, slot in ((imps, 0), (clicks, 1)):
        for at, _pid, src, pos, _var, n in rows:
            if src == "search" and window[0] <= at < window[1]:
                expected[pos][slot] += n
    got = {row["position"]: row for row in body["positions"]}
    assert list(got) == sorted(p for p in expected if p is not None) + (
        [None] if None in expected else [])
    for pos, (n_imp, n_clk) in expected.items():
        row = got[pos]
        assert (row["source"], row["impressions"], row["clicks"]) == ("search", n_imp, n_clk)
        if n_imp == 0:
            assert row["ctr"] is row["ctr_low"] is row["ctr_high"] is None
        elif n_clk > n_imp:
            assert close(row["ctr"], n_clk / n_imp)
            assert row["ctr_low"] is row["ctr_high"] is None
        else:
            low, high = wilson_reference(n_clk, n_imp)
            assert close(row["ctr"], n_clk / n_imp)
            assert close(row["ctr_low"], low) and close(row["ctr_high"], high), (pos, row)
            assert row["ctr_low"] <= row["ctr"] <= row["ctr_high"]
    assert got[40]["ctr_high"] == 1.0 and got[41]["impressions"] == 0
    total_imp = sum(v[0] for v in expected.values())
    total_clk = sum(v[1] for v in expected.values())
    (total,) = body["totals"]
    assert (total["source"], total["impressions"], total["clicks"]) == ("search", total_imp,
                                                                       total_clk)
    assert close(total["ctr_low"], wilson_reference(total_clk, total_imp)[0])


def test_ctr_without_source_covers_every_feed_and_defaults_to_the_last_7_days(api, db,
                                                                              settings, profile):
    put_projects(db, 1)
    now = datetime.now(UTC)
    insert_feed(db, "project_impressions", [
        (now - timedelta(minutes=1), 1, "explore_new", 0, None, 10),
        (now - timedelta(days=2), 1, "related", 3, None, 4),
        (now - timedelta(days=9), 1, "related", 3, None, 100),  # outside the default range
    ])
    insert_feed(db, "project_clicks", [(now - timedelta(minutes=1), 1, "explore_new", 0, None, 1),
                                       (now - timedelta(days=2), 1, "related", 3, None, 2)])
    refresh(settings, profile)
    body = get(api, CTR)
    assert body["source"] is None
    assert [(r["source"], r["position"], r["impressions"], r["clicks"])
            for r in body["positions"]] == [("explore_new", 0, 10, 1), ("related", 3, 4, 2)]
    assert [(t["source"], t["ctr"]) for t in body["totals"]] == [("explore_new", 0.1),
                                                                  ("related", 0.5)]
    end = datetime.fromisoformat(body["to"])
    assert end - datetime.fromisoformat(body["from"]) == timedelta(days=7)
    assert end > now - timedelta(hours=1)  # the current, partial hour is included


@pytest.mark.parametrize(("from_offset", "to_offset"), [
    (timedelta(days=-4, hours=13, minutes=30), timedelta(hours=5, minutes=20)),  # edges + days
    (timedelta(days=-2, hours=2), timedelta(days=-2, hours=7)),  # inside one day
    (timedelta(days=-3), timedelta(days=-1, hours=23, minutes=59)),  # midnight to just before
])
def test_ctr_over_partial_days_adds_edge_hours_to_whole_days(api, db, settings, profile,
                                                             from_offset, to_offset):
    rng = random.Random(11)
    put_projects(db, 1)
    midnight = utc_midnight(datetime.now(UTC).date())
    imps, clicks = [], []
    for hour in range(-5 * 24, 8):
        at = midnight + timedelta(hours=hour, minutes=rng.randrange(60))
        if at > datetime.now(UTC):
            break
        n = rng.randrange(1, 9)
        imps.append((at, 1, "explore_news", hour % 3, rng.choice([None, "v1"]), n))
        clicks.append((at, 1, "explore_news", hour % 3, rng.choice([None, "v1"]), n // 3))
    insert_feed(db, "project_impressions", imps)
    insert_feed(db, "project_clicks", clicks)
    refresh(settings, profile)
    start, end = midnight + from_offset, midnight + to_offset
    body = get(api, CTR, source="explore_news", **{"from": start.isoformat(),
                                                  "to": end.isoformat()})
    first = start.replace(minute=0)
    last = end if end == end.replace(minute=0) else end.replace(minute=0) + timedelta(hours=1)
    assert (datetime.fromisoformat(body["from"]), datetime.fromisoformat(body["to"])) == (first,
                                                                                        last)
    expected = {p: [0, 0] for p in range(3)}
    for rows, slot in ((imps, 0), (clicks, 1)):
        for at, _pid, _src, pos, _var, n in rows:
            if first <= at < last:
                expected[pos][slot] += n
    got = {r["position"]: [r["impressions"], r["clicks"]] for r in body["positions"]}
    assert got == {p: v for p, v in expected.items() if v != [0, 0]}
    variants = get(api, VARIANTS, source="explore_news",
                   **{"from": start.isoformat(), "to": end.isoformat()})["variants"]
    in_window = [(slot, n) for rows, slot in ((imps, 0), (clicks, 1))
                 for at, _p, _s, _pos, var, n in rows if var == "v1" and first <= at < last]
    assert [[v["impressions"], v["clicks"]] for v in variants] == (
        [[sum(n for k, n in in_window if k == 0), sum(n for k, n in in_window if k == 1)]]
        if in_window else [])


def test_wilson_matches_published_values():
    from service.insights.stats import newcombe, proportion, wilson
    # Newcombe (1998a), single proportion, score method without continuity correction
    for (x, n), (low, high) in {(81, 263): (0.2553, 0.3662), (15, 148): (0.0624, 0.1605),
                                (0, 20): (0.0, 0.1611), (1, 29): (0.0061, 0.1718)}.items():
        got = wilson(x, n)
        assert abs(got[0] - low) < 5e-5 and abs(got[1] - high) < 5e-5, (x, n, got)
    # Newcombe (1998b), difference of independent proportions, method 10
    for (a, b), (low, high) in {((56, 70), (48, 80)): (0.0524, 0.3339),
                                ((9, 10), (3, 10)): (0.1705, 0.8090)}.items():
        diff = newcombe(proportion(*a), proportion(*b))
        assert diff is not None
        assert abs(diff.low - low) < 5e-5 and abs(diff.high - high) < 5e-5, (a, b, diff)


# --- A/B variants ----------------------------------------------------------------------

def test_variant_difference_reproduces_newcombes_worked_example(api, db, settings, profile):
    put_projects(db, 1, 2)
    at = datetime.now(UTC) - timedelta(days=1)
    insert_feed(db, "project_impressions", [
        (at, 1, "explore_for_you", 0, "ranker-v2", 40), (at, 2, "explore_for_you", 5, "ranker-v2", 30),
        (at, 1, "explore_for_you", 1, "control", 80),
        (at, 1, "explore_for_you", 1, None, 1000),  # outside the experiment
        (at, 1, "search", 1, "ranker-v2", 500),  # another feed
    ])
    insert_feed(db, "project_clicks", [
        (at, 1, "explore_for_you", 0, "ranker-v2", 50), (at, 2, "explore_for_you", 5, "ranker-v2", 6),
        (at, 2, "explore_for_you", 2, "control", 48),
        (at, 1, "explore_for_you", 1, None, 300), (at, 1, "search", 1, "ranker-v2", 1),
    ])
    refresh(settings, profile)
    body = get(api, VARIANTS, source="explore_for_you")
    assert body["control"] == "control"
    assert [(v["variant"], v["impressions"], v["clicks"]) for v in body["variants"]] == [
        ("control", 80, 48), ("ranker-v2", 70, 56)]
    for v in body["variants"]:
        low, high = wilson_reference(v["clicks"], v["impressions"])
        assert close(v["ctr_low"], low) and close(v["ctr_high"], high)
    (cmp,) = body["comparisons"]
    d, low, high = newcombe_reference(56, 70, 48, 80)
    assert (cmp["variant"], cmp["control"]) == ("ranker-v2", "control")
    assert close(cmp["difference"], d) and close(cmp["difference_low"], low)
    assert close(cmp["difference_high"], high)
    assert round(cmp["difference_low"], 4) == 0.0524 and round(cmp["difference_high"], 4) == 0.3339
    assert close(cmp["relative_lift"], 0.2 / 0.6) and cmp["significant"] is True


@pytest.mark.parametrize("seed", [3, 4])
def test_random_variants_against_independent_newcombe(api, db, settings, profile, seed):
    rng = random.Random(seed)
    put_projects(db, 1, 2, 3)
    now = datetime.now(UTC)
    names = ["alpha", "beta", "gamma-2"]
    imps, clicks = [], []
    totals = {n: [0, 0] for n in names}
    for _ in range(60):
        name = rng.choice(names)
        at = now - timedelta(hours=rng.randrange(1, 6 * 24))
        n = rng.randrange(5, 200)
        k = rng.randrange(0, n // 2)
        imps.append((at, rng.randrange(1, 4), "explore_trending", rng.randrange(10), name, n))
        clicks.append((at, rng.randrange(1, 4), "explore_trending", rng.randrange(10), name, k))
        totals[name][0] += n
        totals[name][1] += k
    insert_feed(db, "project_impressions", imps)
    insert_feed(db, "project_clicks", clicks)
    refresh(settings, profile)
    body = get(api, VARIANTS, source="explore_trending", control="beta")
    assert body["control"] == "beta"
    assert {v["variant"]: [v["impressions"], v["clicks"]] for v in body["variants"]} == totals
    assert [c["variant"] for c in body["comparisons"]] == ["alpha", "gamma-2"]
    for c in body["comparisons"]:
        n1, x1 = totals[c["variant"]]
        n2, x2 = totals["beta"]
        d, low, high = newcombe_reference(x1, n1, x2, n2)
        assert close(c["difference"], d) and close(c["difference_low"], low)
        assert close(c["difference_high"], high)
        assert c["significant"] == (low > 0 or high < 0)
    # no variant called "control": the first by name is the reference
    assert get(api, VARIANTS, source="explore_trending")["control"] == "alpha"


def test_unknown_control_is_400_naming_the_variants_with_data(api, db, settings, profile):
    put_projects(db, 1)
    insert_feed(db, "project_impressions",
                [(datetime.now(UTC), 1, "search", 0, "a", 3), (datetime.now(UTC), 1, "search", 0, "b", 3)])
    refresh(settings, profile)
    r = api.client.get(VARIANTS, params={"control": "zzz"}, headers=api.internal)
    assert r.status_code == 400
    assert "'zzz'" in r.json()["detail"] and "a, b" in r.json()["detail"]


def test_no_experiment_data_gives_empty_lists(api):
    body = get(api, VARIANTS)
    assert (body["control"], body["variants"], body["comparisons"]) == (None, [], [])


# --- heatmap ---------------------------------------------------------------------------

def _raw_heatmap(db, kind: str, project_id: int | None, start: str, end: str, tz: str):
    """7 x 24 cells computed by PostgreSQL from the raw events (its own time zone data)."""
    table, extra = {"views": ("project_views", ""), "clicks": ("project_clicks", ""),
                    "likes": ("project_likes", "AND action = 1")}[kind]
    rows = db.execute(
        f"SELECT extract(isodow FROM created_at AT TIME ZONE %(tz)s)::int, "
        f"extract(hour FROM created_at AT TIME ZONE %(tz)s)::int, count(*) FROM {table} "
        f"WHERE created_at >= %(start)s AND created_at < %(end)s {extra} "
        "AND (%(pid)s::bigint IS NULL OR project_id = %(pid)s::bigint) GROUP BY 1, 2",
        {"tz": tz, "start": start, "end": end, "pid": project_id}).fetchall()
    cells = [[0] * 24 for _ in range(7)]
    for dow, hour, n in rows:
        cells[dow - 1][hour] = n
    return cells


def test_heatmap_cells_equal_raw_counts(api, db, settings, profile):
    rng = random.Random(5)
    put_projects(db, 1, 2, 3)
    now = datetime.now(UTC)
    views, clicks, likes = [], [], []
    for _ in range(1500):
        at = now - timedelta(minutes=rng.randrange(0, 35 * 24 * 60))
        pid = rng.randrange(1, 4)
        kind = rng.random()
        if kind < 0.5:
            views.append((at, pid, rng.choice(["explore", "direct", "search"])))
        elif kind < 0.8:
            clicks.append((at, pid, rng.choice(SOURCES), rng.choice([None, 1, 2]), None, 1))
        else:
            likes.append((at, pid, rng.randrange(1, 50), rng.choice([1, 1, -1])))
    with db.cursor() as cur:
        cur.executemany("INSERT INTO project_views (created_at, project_id, source) "
                        "VALUES (%s, %s, %s)", views)
        cur.executemany("INSERT INTO project_likes (created_at, project_id, user_id, action) "
                        "VALUES (%s, %s, %s, %s)", likes)
    insert_feed(db, "project_clicks", clicks)
    refresh(settings, profile)

    cases = [("views", None, None, 28), ("views", 2, None, 28), ("clicks", None, None, 7),
             ("clicks", 3, "America/New_York", 28), ("likes", None, "Europe/Berlin", 30),
             ("likes", 1, None, 28), ("views", None, "Pacific/Kiritimati", 35)]
    for kind, pid, tz, days in cases:
        params: dict[str, object] = {"kind": kind, "days": days}
        if pid is not None:
            params["project_id"] = pid
        if tz is not None:
            params["tz"] = tz
        body = get(api, HEATMAP, **params)
        start, end = datetime.fromisoformat(body["from"]), datetime.fromisoformat(body["to"])
        assert end - start == timedelta(days=days)
        assert end - timedelta(hours=1) <= now.replace(minute=0, second=0, microsecond=0) + \
            timedelta(hours=1)
        expected = _raw_heatmap(db, kind, pid, body["from"], body["to"], tz or "UTC")
        assert body["cells"] == expected, (kind, pid, tz)
        assert body["total"] == sum(map(sum, expected)) > 0
        assert (body["kind"], body["project_id"], body["tz"]) == (kind, pid, tz or "UTC")
        assert body["weekdays"][0] == "monday" and len(body["cells"]) == 7


def test_heatmap_bins_by_local_time_of_each_event(api, db, settings, profile):
    put_projects(db, 1)
    zone = ZoneInfo("America/New_York")
    now = datetime.now(UTC)
    stamps = [now - timedelta(days=d, minutes=m) for d, m in
              ((1, 3), (2, 200), (3, 700), (6, 5), (13, 1000), (20, 30))]
    with db.cursor() as cur:
        cur.executemany("INSERT INTO project_views (created_at, project_id, source) "
                        "VALUES (%s, 1, 'direct')", [(s,) for s in stamps])
    refresh(settings, profile)
    body = get(api, HEATMAP, kind="views", project_id=1, tz="America/New_York")
    expected = Counter((s.astimezone(zone).weekday(), s.astimezone(zone).hour) for s in stamps)
    got = Counter({(d, h): n for d, row in enumerate(body["cells"])
                   for h, n in enumerate(row) if n})
    assert got == expected


# --- retention -------------------------------------------------------------------------

def _views(db, rows):
    """rows: (project_id, user_id, session_key, created_at)."""
    with db.cursor() as cur:
        cur.executemany("INSERT INTO project_views (project_id, user_id, session_key, "
                        "created_at, source) VALUES (%s, %s, %s, %s, 'direct')", rows)


def test_retention_matches_a_hand_computation(api, db):
    put_projects(db, 1, 2)
    today = datetime.now(UTC).date()

    def day(k: int, hour: int = 12) -> datetime:
        return utc_midnight(today - timedelta(days=k)) + timedelta(hours=hour)

    _views(db, [
        (1, 11, "", day(20, 9)), (1, 11, "", day(20, 18)),  # u11: twice on one day: not back
        (1, 12, "", day(20)), (1, 12, "", day(18)),          # u12: back two days later
        (1, None, "sess-c", day(20)), (1, None, "sess-c", day(3)),  # anonymous, back
        (1, None, "sess-e", day(10)),                          # once
        (1, None, "sess-f", day(10, 8)), (1, None, "sess-f", day(9)),  # back the next day
        (1, 13, "", day(30)), (1, 13, "", day(10)),          # first view before the window
        (1, 14, "", day(2)),                                   # once
        (1, None, "", day(5)), (1, None, "", day(4)),        # erased user: not a viewer
        (2, 11, "", day(19)),                                  # another project: not a return
    ])
    body = get(api, "/api/v1/projects/1/retention/")
    assert body["days"] == 28
    start = datetime.fromisoformat(body["from"]).date()
    assert datetime.fromisoformat(body["to"]).date() - start == timedelta(days=28)

    def monday(d: date) -> str:
        return (d - timedelta(days=d.weekday())).isoformat()

    # By hand: cohort of day 20 = {u11, u12, sess-c}, 2 came back; of day 10 =
    # {sess-e, sess-f, u13}, 1 came back; of day 2 = {u14}, none came back.
    assert body["cohorts"] == [
        {"week_start": monday(today - timedelta(days=20)), "viewers": 3, "returning": 2,
         "share": 2 / 3},
        {"week_start": monday(today - timedelta(days=10)), "viewers": 3, "returning": 1,
         "share": 1 / 3},
        {"week_start": monday(today - timedelta(days=2)), "viewers": 1, "returning": 0,
         "share": 0.0},
    ]
    assert (body["viewers"], body["returning"], body["share"]) == (7, 3, 3 / 7)


def test_retention_window_is_whole_utc_days(api, db):
    put_projects(db, 1)
    today = datetime.now(UTC).date()
    first = utc_midnight(today - timedelta(days=6))
    _views(db, [
        (1, 1, "", first), (1, 1, "", first + timedelta(days=2)),  # first day of a 7-day window
        (1, 2, "", first - timedelta(seconds=1)), (1, 2, "", first + timedelta(days=1)),
    ])
    body = get(api, "/api/v1/projects/1/retention/", days=7)
    assert body["from"] == first.isoformat().replace("+00:00", "Z")
    assert (body["viewers"], body["returning"]) == (2, 1)  # user 2's earlier view is outside


def test_retention_of_a_project_without_views(api, db):
    put_projects(db, 5, private=(5,))
    body = get(api, "/api/v1/projects/5/retention/", days=365)
    assert (body["viewers"], body["returning"], body["share"], body["cohorts"]) == (0, 0, None, [])


# --- reading from the hourly relations -------------------------------------------------

def test_insights_read_hourly_counts_that_outlive_raw_events(api, db, settings, profile):
    put_projects(db, 1)
    at = datetime.now(UTC) - timedelta(days=5)
    insert_feed(db, "project_impressions", [(at, 1, "search", 0, "a", 10)])
    insert_feed(db, "project_clicks", [(at, 1, "search", 0, "a", 4)])
    _views(db, [(1, None, "s", at)])
    refresh(settings, profile)
    before = (get(api, CTR), get(api, VARIANTS), get(api, HEATMAP, kind="views"))
    # raw retention drops the events; hourly counts stay (as ARCHITECTURE §2 promises)
    for table in ("project_impressions", "project_clicks", "project_views"):
        if profile == "timescale":
            db.execute("SELECT drop_chunks(%s::regclass, older_than => now() - interval '2 days')",
                       (table,))
        else:
            db.execute(f"DELETE FROM {table}")
        assert db.execute(f"SELECT count(*) FROM {table}").fetchone()[0] == 0
    after = (get(api, CTR), get(api, VARIANTS), get(api, HEATMAP, kind="views"))
    assert after == before
    assert before[0]["positions"][0]["impressions"] == 10 and before[2]["total"] == 1


# --- access and validation -------------------------------------------------------------

@pytest.mark.parametrize("path", [CTR, VARIANTS, HEATMAP + "?kind=views",
                                  "/api/v1/projects/1/retention/"])
@pytest.mark.parametrize("auth", [None, "Bearer wrong-token", "Basic abc"])
def test_insights_need_the_service_token(api, db, path, auth):
    put_projects(db, 1)
    headers = {"Authorization": auth} if auth else {}
    r = api.client.get(path, headers=headers)
    assert r.status_code == 401
    assert "service token" in r.json()["detail"]


@pytest.mark.parametrize(("path", "params", "problem"), [
    (CTR, {"from": "yesterday"}, "`from` must be an ISO 8601 date"),
    (CTR, {"to": "2024-02-30"}, "`to` must be an ISO 8601 date"),
    (CTR, {"from": "2024-05-02", "to": "2024-05-01"}, "`from` must be before `to`"),
    (CTR, {"from": "2024-05-01T10:00:00Z", "to": "2024-05-01T10:00:00Z"}, "before"),
    (CTR, {"from": "2020-01-01", "to": "2024-01-01"}, "at most 366 days"),
    (CTR, {"from": "1900-01-01"}, "between 2000 and 2200"),
    (CTR, {"to": "9999-12-31"}, "between 2000 and 2200"),
    (CTR, {"source": "everywhere"}, "source"),
    (VARIANTS, {"control": "Not Valid"}, "control"),
    (VARIANTS, {"to": "x" * 500}, "`to` must be"),
    (HEATMAP, {}, "kind"),
    (HEATMAP, {"kind": "shares"}, "kind"),
    (HEATMAP, {"kind": "views", "days": 0}, "days"),
    (HEATMAP, {"kind": "views", "days": 366}, "days"),
    (HEATMAP, {"kind": "views", "days": "many"}, "days"),
    (HEATMAP, {"kind": "views", "project_id": "abc"}, "project_id"),
    (HEATMAP, {"kind": "views", "project_id": 0}, "project_id"),
    (HEATMAP, {"kind": "views", "tz": "Mars/Olympus"}, "not a known IANA time zone"),
    (HEATMAP, {"kind": "views", "tz": "Asia/Kolkata"}, "+5:30"),
    (HEATMAP, {"kind": "views", "tz": "America/St_Johns"}, "whole-hour"),
    (HEATMAP, {"kind": "views", "tz": "../../etc/passwd"}, "IANA time zone name"),
    (HEATMAP, {"kind": "views", "tz": "x" * 100}, "IANA time zone name"),
    ("/api/v1/projects/1/retention/", {"days": 0}, "days"),
    ("/api/v1/projects/1/retention/", {"days": 400}, "days"),
    ("/api/v1/projects/abc/retention/", {}, "project_id"),
    ("/api/v1/projects/99999999999999999999/retention/", {}, "project_id"),
])
def test_bad_parameters_are_400_naming_the_problem(api, db, path, params, problem):
    put_projects(db, 1)
    r = api.client.get(path, params=params, headers=api.internal)
    assert r.status_code == 400, r.text
    assert problem in r.json()["detail"]


@pytest.mark.parametrize("path", ["/api/v1/projects/404/retention/",
                                  HEATMAP + "?kind=clicks&project_id=404"])
def test_unknown_project_is_404(api, path):
    r = api.client.get(path, headers=api.internal)
    assert r.status_code == 404
    assert r.json()["detail"] == "project not found"


def test_insights_are_in_the_openapi_schema_with_the_service_token(client):
    spec = client.get("/schema/openapi.json").json()
    for path in ("/api/v1/insights/ctr", "/api/v1/insights/variants",
                 "/api/v1/insights/heatmap", "/api/v1/projects/{project_id}/retention",
                 "/api/v1/projects/track-impressions"):
        assert path in spec["paths"], path
    assert spec["paths"]["/api/v1/insights/ctr"]["get"]["security"] == [{"serviceToken": []}]
