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
    ctx = JobContext(settings, profile)
    run_job("refresh-rollups", ctx)
    run_job("compute-trending", ctx)


def hour_of(t: datetime) -> datetime:
    return t.replace(minute=0, second=0, microsecond=0)


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
