"""Trending (ARCHITECTURE §5): the job against an independent computation, and the API."""

import math
import random
import threading
from collections import defaultdict
from datetime import UTC, datetime, timedelta

import pytest

from scheduler.jobs import JobContext, run_job

REL = 1e-9


def recompute(settings, profile):
    """Both jobs, as the scheduler runs them; returns the trending job's summary."""
    ctx = JobContext(settings, profile)
    run_job("refresh-rollups", ctx)
    return run_job("compute-trending", ctx)


def hour_of(t: datetime) -> datetime:
    return t.replace(minute=0, second=0, microsecond=0)


def rewrite_hour(conn, settings, profile, relation, bucket, add):
    """Add `add` views (relation "views") or likes ("likes") to every hourly row of
    `bucket`, as a correction made in SQL would: straight in the rollup table, or on the
    timescale profile, whose hourly counts are continuous aggregates, as raw events of that
    hour and the refresh that counts them (the one refresh-rollups runs). `conn` is in
    autocommit mode."""
    if profile != "timescale":
        column = "views" if relation == "views" else "likes"
        conn.execute(f"UPDATE project_{relation}_hourly SET {column} = {column} + %s "
                     "WHERE bucket = %s", (add, bucket))
        return
    from engagement.db.migrations import refresh_continuous_aggregates

    if relation == "views":
        conn.execute("INSERT INTO project_views (created_at, project_id, source) "
                     "SELECT bucket + interval '1 second', project_id, source "
                     "FROM project_views_hourly, generate_series(1, %s) "
                     "WHERE bucket = %s", (add, bucket))
    else:
        conn.execute("INSERT INTO project_likes (created_at, project_id, user_id, action) "
                     "SELECT bucket + interval '1 second', project_id, 900000 + i, 1 "
                     "FROM project_likes_hourly, generate_series(1, %s) AS i "
                     "WHERE bucket = %s", (add, bucket))
    refresh_continuous_aggregates(conn, settings)


def expected_scores(projects, views, likes, computed_at, settings=None):
    """§5 computed straight from the events we sent, with no SQL involved."""
    recent_hours = settings.trending_recent_hours if settings else 24
    previous_hours = settings.trending_previous_hours if settings else 48
    h = hour_of(computed_at)
    recent_start = h - timedelta(hours=recent_hours)
    previous_start = h - timedelta(hours=previous_hours)

    def window(t):
        b = hour_of(t)
        if recent_start < b <= h:
            return "recent"
        if previous_start < b <= recent_start:
            return "previous"
        return None

    v = defaultdict(lambda: {"recent": 0, "previous": 0})
    lk = defaultdict(lambda: {"recent": 0, "previous": 0})
    active = set()
    for pid, t in views:
        w = window(t)
        if w:
            v[pid][w] += 1
            active.add(pid)
    for pid, t, action in likes:
        w = window(t)
        if w:
            lk[pid][w] += action
            if action == 1:
                active.add(pid)
    rows = {}
    for pid in active:
        created, private = projects[pid]
        if private:
            continue
        rl, pl = max(lk[pid]["recent"], 0), max(lk[pid]["previous"], 0)
        rv, pv = v[pid]["recent"], v[pid]["previous"]
        like_velocity = (rl - pl) / max(pl, 1)
        view_velocity = (rv - pv) / max(pv, 1)
        velocity = like_velocity * 0.7 + view_velocity * 0.3
        days_old = max(math.floor((computed_at - created).total_seconds() / 86400), 0)
        score = velocity * (1.0 / (1 + days_old * 0.1))
        rows[pid] = {"project_id": pid, "score": score, "velocity": velocity,
                     "like_velocity": like_velocity, "view_velocity": view_velocity,
                     "recent_likes": rl, "previous_likes": pl, "recent_views": rv,
                     "previous_views": pv, "days_old": days_old}
    return sorted(rows.values(), key=lambda r: (-r["score"], -r["recent_views"], r["project_id"]))


def fetch_all(api):
    r = api.client.get("/api/v1/trending/?limit=100")
    assert r.status_code == 200
    body = r.json()
    return datetime.fromisoformat(body["computed_at"]), body["results"]


def assert_matches(actual, expected):
    assert [r["project_id"] for r in actual] == [r["project_id"] for r in expected]
    for got, want in zip(actual, expected, strict=True):
        for key, value in want.items():
            if isinstance(value, float):
                assert math.isclose(got[key], value, rel_tol=REL, abs_tol=1e-12), (key, got, want)
            else:
                assert got[key] == value, (key, got, want)
    assert [r["rank"] for r in actual] == list(range(1, len(actual) + 1))


def send(api, views, likes):
    """Import views and likes (explicit timestamps) in chunks."""
    view_items = [{"project_id": p, "created_at": t.isoformat()} for p, t in views]
    like_items = [{"project_id": p, "user_id": 1000 + i, "created_at": t.isoformat(),
                   "action": "like" if a == 1 else "unlike"} for i, (p, t, a) in enumerate(likes)]
    for i in range(0, max(len(view_items), len(like_items)), 4000):
        r = api.import_events(views=view_items[i:i + 4000], likes=like_items[i:i + 4000])
        assert r.status_code == 201, r.text


def test_worked_example_from_the_architecture(api, settings, profile):
    now = datetime.now(UTC)
    h = hour_of(now)
    api.put_project(1, created_at=now - timedelta(days=5, hours=1))
    recent, previous = h - timedelta(hours=10), h - timedelta(hours=35)
    views = [(1, recent)] * 300 + [(1, previous)] * 100
    likes = [(1, recent, 1)] * 12 + [(1, previous, 1)] * 4
    send(api, views, likes)
    recompute(settings, profile)
    _, results = fetch_all(api)
    (row,) = results
    assert row["like_velocity"] == pytest.approx(2.0, rel=REL)
    assert row["view_velocity"] == pytest.approx(2.0, rel=REL)
    assert row["velocity"] == pytest.approx(2.0, rel=REL)
    assert row["days_old"] == 5
    assert row["score"] == pytest.approx(2.0 / 1.5, rel=REL)
    assert (row["recent_likes"], row["previous_likes"]) == (12, 4)
    assert (row["recent_views"], row["previous_views"]) == (300, 100)


@pytest.mark.parametrize("seed", [11, 12])
def test_random_scenarios_match_an_independent_computation(api, settings, profile, seed):
    rng = random.Random(seed)
    now = datetime.now(UTC)
    projects = {}
    for pid in range(1, 41):
        created = now - timedelta(days=rng.choice([0, 0, 1, 3, 9, 30]), hours=rng.randrange(24))
        private = rng.random() < 0.15
        projects[pid] = (created.replace(microsecond=0), private)
        api.put_project(pid, owner_id=pid, is_private=private, created_at=projects[pid][0])
    views, likes = [], []
    for pid in projects:
        shape = rng.choice(["new", "rising", "declining", "flat", "quiet", "likes-only"])
        for _ in range(rng.randrange(0, 60)):
            age = timedelta(minutes=rng.randrange(60 * (24 if shape == "new" else 60)))
            if shape == "declining":
                age += timedelta(hours=20)
            if shape != "likes-only" and shape != "quiet":
                views.append((pid, now - age))
        for _ in range(rng.randrange(0, 12)):
            age = timedelta(minutes=rng.randrange(60 * 60))
            likes.append((pid, now - age, rng.choice([1, 1, -1])))
    send(api, views, likes)
    recompute(settings, profile)
    computed_at, results = fetch_all(api)
    expected = expected_scores(projects, views, likes, computed_at)
    assert len(expected) > 5
    assert_matches(results, expected)


def test_edge_cases(api, settings, profile):
    now = datetime.now(UTC)
    h = hour_of(now)
    recent, previous = h - timedelta(hours=5), h - timedelta(hours=30)
    api.put_project(1, created_at=now - timedelta(minutes=30))   # created today, no previous
    api.put_project(2, created_at=now - timedelta(days=2))       # declining
    api.put_project(3, created_at=now - timedelta(days=1))       # more unlikes than likes
    api.put_project(4, created_at=now - timedelta(days=1))       # only clicks: no row
    api.put_project(5, created_at=now - timedelta(days=1))       # activity older than 48 h
    views = [(1, recent)] * 7 + [(2, recent)] * 2 + [(2, previous)] * 10 + [(5, h - timedelta(hours=60))]
    likes = [(3, recent, 1), (3, recent, -1), (3, recent, -1), (3, previous, 1)]
    send(api, views, likes)
    api.click(4, "search", 1)
    recompute(settings, profile)
    computed_at, results = fetch_all(api)
    by_id = {r["project_id"]: r for r in results}
    assert set(by_id) == {1, 2, 3}
    assert by_id[1]["days_old"] == 0
    assert by_id[1]["view_velocity"] == pytest.approx(7.0)        # previous 0 -> divide by 1
    assert by_id[1]["score"] == pytest.approx(7.0 * 0.3)
    assert by_id[2]["view_velocity"] == pytest.approx(-0.8)       # (2 - 10) / 10
    assert by_id[2]["score"] < 0
    assert by_id[3]["recent_likes"] == 0                           # max(1 - 2, 0)
    assert by_id[3]["like_velocity"] == pytest.approx(-1.0)        # (0 - 1) / 1
    projects = {pid: (now - timedelta(days=d), False) for pid, d in
                [(1, 0), (2, 2), (3, 1), (4, 1), (5, 1)]}
    projects[1] = (now - timedelta(minutes=30), False)
    assert_matches(results, expected_scores(projects, views, likes, computed_at))


def test_ties_order_by_recent_views_then_project_id(api, settings, profile):
    now = datetime.now(UTC)
    h = hour_of(now)
    recent, previous = h - timedelta(hours=3), h - timedelta(hours=30)
    for pid in (5, 3, 9):
        api.put_project(pid, created_at=now - timedelta(days=1))
    # all three have view_velocity 2.0: 3 and 5 with 2 recent / 0 previous, 9 with 6 / 2
    views = [(3, recent)] * 2 + [(5, recent)] * 2 + [(9, recent)] * 6 + [(9, previous)] * 2
    send(api, views, [])
    recompute(settings, profile)
    _, results = fetch_all(api)
    assert [r["project_id"] for r in results] == [9, 3, 5]
    assert results[0]["score"] == results[1]["score"] == results[2]["score"]


def test_private_and_deleted_projects_are_never_listed(api, settings, profile):
    now = datetime.now(UTC)
    recent = hour_of(now) - timedelta(hours=2)
    api.put_project(1)
    api.put_project(2)
    api.put_project(3)
    send(api, [(1, recent), (2, recent), (3, recent)], [])
    recompute(settings, profile)
    assert {r["project_id"] for r in fetch_all(api)[1]} == {1, 2, 3}
    api.put_project(2, is_private=True)  # made private after the computation
    api.client.delete("/api/v1/internal/projects/3", headers=api.internal)
    assert {r["project_id"] for r in fetch_all(api)[1]} == {1}
    recompute(settings, profile)
    assert {r["project_id"] for r in fetch_all(api)[1]} == {1}


def test_pagination_with_limit_and_offset(api, settings, profile):
    now = datetime.now(UTC)
    recent = hour_of(now) - timedelta(hours=2)
    for pid in range(1, 8):
        api.put_project(pid)
    send(api, [(pid, recent) for pid in range(1, 8) for _ in range(pid)], [])
    recompute(settings, profile)
    page = api.client.get("/api/v1/trending/?limit=3&offset=2").json()["results"]
    assert [r["rank"] for r in page] == [3, 4, 5]
    assert [r["project_id"] for r in page] == [5, 4, 3]
    assert len(api.client.get("/api/v1/trending/").json()["results"]) == 7


@pytest.mark.parametrize("query", ["limit=0", "limit=101", "limit=abc", "offset=-1",
                                   "offset=x", "limit=1.5"])
def test_bad_paging_is_400(api, query):
    r = api.client.get(f"/api/v1/trending/?{query}")
    assert r.status_code == 400
    assert r.json()["status_code"] == 400


def test_before_any_computation_the_list_is_empty(api):
    assert api.client.get("/api/v1/trending/").json() == {"computed_at": None, "results": []}


def test_readers_never_see_a_half_written_table(api, db, settings, profile, database):
    import psycopg

    now = datetime.now(UTC)
    recent = hour_of(now) - timedelta(hours=2)
    for pid in range(1, 301):
        api.put_project(pid)
    send(api, [(pid, recent) for pid in range(1, 301)], [])
    recompute(settings, profile)
    seen: set[int] = set()
    stop = threading.Event()

    def reader():
        with psycopg.connect(database, autocommit=True) as conn:
            while not stop.is_set():
                seen.add(conn.execute("SELECT count(*) FROM trending_scores").fetchone()[0])

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for _ in range(15):
            run_job("compute-trending", JobContext(settings, profile))
    finally:
        stop.set()
        thread.join()
    assert seen == {300}


def test_settings_change_windows_and_weights(api, make_settings, profile):
    settings = make_settings(trending_like_weight=0.5, trending_view_weight=0.5,
                             trending_recency_per_day=0.2)
    now = datetime.now(UTC)
    h = hour_of(now)
    api.put_project(1, created_at=now - timedelta(days=5, hours=1))
    send(api, [(1, h - timedelta(hours=10))] * 30 + [(1, h - timedelta(hours=35))] * 10,
         [(1, h - timedelta(hours=10), 1)] * 3)
    recompute(settings, profile)
    (row,) = fetch_all(api)[1]
    # like 3.0, view 2.0 -> velocity 2.5; recency 1 / (1 + 5 * 0.2) = 0.5
    assert row["score"] == pytest.approx(1.25, rel=REL)


# The job keeps the window totals of the complete hours between runs (trending_window_totals)
# and adds the live hours each run. These check that every way the counts of a past hour can
# change, and every change of what the totals stand for, makes it rebuild them, and that a run
# that reuses them gives the same answer as the independent computation.

def reuse_scenario(api, now):
    h = hour_of(now)
    projects = {pid: (now - timedelta(days=pid), False) for pid in range(1, 6)}
    for pid, (created, _) in projects.items():
        api.put_project(pid, created_at=created)
    views = ([(1, h - timedelta(hours=3))] * 6 + [(1, h - timedelta(hours=30))] * 4
             + [(2, h - timedelta(hours=40))] * 5 + [(3, now)] * 2 + [(4, h - timedelta(hours=1))])
    likes = [(2, h - timedelta(hours=5), 1), (2, h - timedelta(hours=5), -1),
             (5, h - timedelta(hours=26), 1)]
    send(api, views, likes)
    return projects, views, likes


def check(api, projects, views, likes, settings=None):
    computed_at, results = fetch_all(api)
    assert_matches(results, expected_scores(projects, views, likes, computed_at, settings))
    return computed_at


def test_window_totals_are_reused_while_only_the_current_hour_changes(api, settings, profile):
    now = datetime.now(UTC)
    projects, views, likes = reuse_scenario(api, now)
    first = recompute(settings, profile)
    assert first.endswith("(rebuilt window totals)")
    computed_at = check(api, projects, views, likes)
    later = datetime.now(UTC)
    more_views = [(3, later)] * 3 + [(5, later)] * 4
    more_likes = [(1, later, 1), (5, later, -1), (5, later, -1)]
    send(api, more_views, more_likes)
    views, likes = views + more_views, likes + more_likes
    second = recompute(settings, profile)
    second_at = check(api, projects, views, likes)
    if hour_of(second_at) == hour_of(computed_at):  # not when the hour turned in between
        assert second.endswith("(reused window totals)")


@pytest.mark.parametrize("change", ["late views", "late likes", "late unlikes", "project deleted"])
def test_a_change_to_a_past_hour_is_counted_on_the_next_run(api, settings, profile, change):
    now = datetime.now(UTC)
    h = hour_of(now)
    projects, views, likes = reuse_scenario(api, now)
    recompute(settings, profile)
    check(api, projects, views, likes)
    if change == "late views":
        late = [(2, h - timedelta(hours=2))] * 7 + [(4, h - timedelta(hours=47))] * 3
        send(api, late, [])
        views = views + late
    elif change == "late likes":
        late = [(4, h - timedelta(hours=10), 1), (1, h - timedelta(hours=25), 1)]
        send(api, [], late)
        likes = likes + late
    elif change == "late unlikes":
        late = [(5, h - timedelta(hours=30), -1), (5, h - timedelta(hours=30), -1)]
        send(api, [], late)
        likes = likes + late
    else:
        assert api.client.delete("/api/v1/internal/projects/1",
                                 headers=api.internal).status_code == 204
        del projects[1]
        views = [v for v in views if v[0] != 1]
        likes = [lk for lk in likes if lk[0] != 1]
    summary = recompute(settings, profile)
    check(api, projects, views, likes)
    if change != "project deleted":  # a deleted project's rows go with it either way
        assert summary.endswith("(rebuilt window totals)")


def test_late_events_of_the_hour_just_past_need_no_rebuild(api, database, settings, profile):
    """refresh-rollups rewrites the previous hour once more after the hour turns (events
    committed in its last seconds): that hour is read afresh by every run, not kept."""
    now = datetime.now(UTC)
    h = hour_of(now)
    projects, views, likes = every_hour_scenario(api, now, seed=3)
    run_job("refresh-rollups", JobContext(settings, profile))
    # the last run was in the hour before: this one shifts, then the next one reuses
    assert build_totals_as_of(database, settings, profile, now - timedelta(hours=1)) == "rebuilt"
    late = [(2, h - timedelta(seconds=2))] * 3 + [(7, h - timedelta(minutes=1))]
    late_likes = [(9, h - timedelta(seconds=1), 1)]
    send(api, late, late_likes)
    first = recompute(settings, profile)
    check(api, projects, views + late, likes + late_likes)
    send(api, late, late_likes)
    second = recompute(settings, profile)
    computed_at = check(api, projects, views + late + late, likes + late_likes + late_likes)
    if hour_of(computed_at) != h:
        return  # the hour turned while the test ran
    assert first.endswith("(shifted window totals)")
    assert second.endswith("(reused window totals)")


def test_counts_rewritten_in_sql_are_counted_on_the_next_run(api, db, database, settings,
                                                            profile):
    import psycopg

    now = datetime.now(UTC)
    h = hour_of(now)
    projects, views, likes = reuse_scenario(api, now)
    recompute(settings, profile)
    # an operator's correction of one past hour (project 1's only row there)
    assert db.execute("SELECT array_agg(DISTINCT project_id) FROM project_views_hourly "
                      "WHERE bucket = %s", (h - timedelta(hours=3),)).fetchone()[0] == [1]
    db.commit()
    with psycopg.connect(database, autocommit=True) as conn:
        rewrite_hour(conn, settings, profile, "views", h - timedelta(hours=3), 10)
    assert recompute(settings, profile).endswith("(rebuilt window totals)")
    check(api, projects, views + [(1, h - timedelta(hours=3))] * 10, likes)


def test_window_totals_are_rebuilt_for_new_windows(api, settings, make_settings, profile):
    now = datetime.now(UTC)
    projects, views, likes = reuse_scenario(api, now)
    recompute(settings, profile)
    narrow = make_settings(trending_recent_hours=6, trending_previous_hours=36)
    assert recompute(narrow, profile).endswith("(rebuilt window totals)")
    check(api, projects, views, likes, narrow)


def every_hour_scenario(api, now, seed):
    """Views and likes in each of the last 52 hours, so every window boundary has some."""
    rng = random.Random(seed)
    h = hour_of(now)
    projects = {pid: (now - timedelta(days=pid % 4), False) for pid in range(1, 13)}
    for pid, (created, _) in projects.items():
        api.put_project(pid, created_at=created)
    views, likes = [], []
    for back in range(53):
        for pid in rng.sample(sorted(projects), 4):
            at = min(h - timedelta(hours=back) + timedelta(minutes=rng.randrange(60)), now)
            views += [(pid, at)] * rng.randrange(1, 4)
            if rng.random() < 0.4:
                likes.append((pid, at, rng.choice([1, 1, -1])))
    send(api, views, likes)
    return projects, views, likes


def build_totals_as_of(database, settings, profile, at):
    """The totals as an earlier run of the job would have left them (at `at`)."""
    import psycopg

    from scheduler.trending.window import trending_params, update_window_totals

    with psycopg.connect(database) as conn:
        conn.execute("SET TIME ZONE 'UTC'")
        return update_window_totals(conn, settings, trending_params(settings, at))


def totals(db):
    return db.execute("SELECT project_id, recent_views, previous_views, recent_likes, "
                      "previous_likes, active_rows FROM trending_window_totals "
                      "ORDER BY project_id").fetchall()


@pytest.mark.parametrize("hours", [1, 2, 15, 16])
def test_window_totals_shift_when_the_hour_turns(api, db, database, settings, profile, hours):
    now = datetime.now(UTC)
    projects, views, likes = every_hour_scenario(api, now, seed=hours)
    run_job("refresh-rollups", JobContext(settings, profile))
    assert build_totals_as_of(database, settings, profile, now - timedelta(hours=hours)) == "rebuilt"
    summary = run_job("compute-trending", JobContext(settings, profile))
    computed_at = check(api, projects, views, likes)
    if hour_of(computed_at) != hour_of(now):
        return  # the hour turned while the test ran: the expected mode is not this one
    # 15 hours back: shifting reads 45 of the 48 hours; 16: rebuilding reads fewer
    assert summary.endswith("(shifted window totals)" if hours <= 15 else "(rebuilt window totals)")
    shifted = totals(db)
    db.execute("DELETE FROM trending_window_state")
    db.commit()
    assert build_totals_as_of(database, settings, profile, computed_at) == "rebuilt"
    assert totals(db) == shifted
    assert len(shifted) == len(projects)


def test_a_past_hour_rewritten_before_the_shift_is_counted(api, database, settings, profile):
    now = datetime.now(UTC)
    h = hour_of(now)
    projects, views, likes = every_hour_scenario(api, now, seed=5)
    run_job("refresh-rollups", JobContext(settings, profile))
    build_totals_as_of(database, settings, profile, now - timedelta(hours=1))
    late = [(3, h - timedelta(hours=24, minutes=-5))] * 4 + [(4, h - timedelta(hours=40))] * 2
    late_like = (5, h - timedelta(hours=48, minutes=-1), 1)
    send(api, late, [late_like])
    summary = recompute(settings, profile)
    check(api, projects, views + late, [*likes, late_like])
    assert summary.endswith("(rebuilt window totals)")


def test_a_rewrite_that_lands_just_before_the_shift_reads_makes_it_rebuild(
        api, db, database, settings, profile):
    """A past hour rewritten after the job read the log but before its shift read the counts:
    the shift would subtract the new count from totals holding the old one."""
    import psycopg

    from engagement.db.queries import q
    from scheduler.trending.window import trending_params, update_window_totals

    now = datetime.now(UTC)
    projects, views, likes = every_hour_scenario(api, now, seed=9)
    run_job("refresh-rollups", JobContext(settings, profile))
    build_totals_as_of(database, settings, profile, now - timedelta(hours=1))
    leaving = hour_of(now) - timedelta(hours=48)  # in the previous window an hour ago only

    class RewriteBeforeShift:
        def __init__(self, conn):
            self.conn = conn

        def execute(self, query, params=None):
            if query == q("shift_trending_window_totals"):
                with psycopg.connect(database, autocommit=True) as other:
                    rewrite_hour(other, settings, profile, "views", leaving, 100)
            return self.conn.execute(query, params)

    with psycopg.connect(database) as conn:
        conn.execute("SET TIME ZONE 'UTC'")
        at = conn.execute("SELECT now()").fetchone()[0]
        params = trending_params(settings, at)
        if params.hour != hour_of(now):
            pytest.skip("the hour turned while the test ran")
        mode = update_window_totals(RewriteBeforeShift(conn), settings, params)
    assert mode == "rebuilt"
    kept = totals(db)
    db.execute("DELETE FROM trending_window_state")
    db.commit()
    assert build_totals_as_of(database, settings, profile, at) == "rebuilt"
    assert totals(db) == kept
    run_job("compute-trending", JobContext(settings, profile))
    check(api, projects, views, likes)  # the 100 views are an hour outside the window now


def test_bench_times_reuse_again_when_the_hour_turns_before_a_run(api, database, settings,
                                                                   profile, monkeypatch):
    """bench/trending.py: a reuse run that found the hour turned (so it shifted) is not
    timed as a reuse; it is run again, now reusing."""
    from bench import trending as bench_trending

    now = datetime.now(UTC)
    every_hour_scenario(api, now, seed=4)
    run_job("refresh-rollups", JobContext(settings, profile))
    build_totals_as_of(database, settings, profile, now - timedelta(hours=1))
    ctx = JobContext(settings, profile)
    modes = []
    real = bench_trending.compute_trending

    def recording(c):
        summary = real(c)
        modes.append(summary.rsplit("(", 1)[1])
        return summary

    monkeypatch.setattr(bench_trending, "compute_trending", recording)
    _, times = bench_trending._timed(lambda: bench_trending._job(ctx, "reused"), runs=2)
    assert len(times) == 2
    if hour_of(datetime.now(UTC)) != hour_of(now):
        return  # a real turn of the hour added a shift of its own
    assert modes == ["shifted window totals)", "reused window totals)", "reused window totals)"]
    with pytest.raises(AssertionError):
        bench_trending._job(ctx, "rebuilt")  # a mode it did not run in still fails the bench
