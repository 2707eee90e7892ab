"""`engagement demo`: sample projects and realistic traffic against a running service.

History goes in through the import endpoint (a daily rhythm, quieter weekends, some projects
rising and some fading, clicks decaying with feed position, impressions of the cards, an
A/B test on one feed); live events go through the
public API as a browser would send them, including repeats that get deduplicated, a few
malformed calls (rejected) and clicks on unknown projects (skipped). Then the rollups and
trending are brought up to date, so the trending list, /metrics and the dashboards have data.
"""

from __future__ import annotations

import math
import os
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from service.sources import ClickSource, ViewSource

VIEW_SOURCES: dict[ViewSource, float] = {
    "explore": 0.45, "direct": 0.2, "search": 0.15, "profile": 0.15, "embed": 0.05,
}
CLICK_SOURCES: dict[ClickSource, float] = {
    "explore_for_you": 0.3, "explore_trending": 0.25, "explore_new": 0.15, "explore_news": 0.05,
    "search": 0.12, "profile": 0.08, "related": 0.05,
}
FEED_LENGTH = 30
POSITION_DECAY = 0.72  # P(position k) ~ 0.72^k: the first cards get most clicks
CLICK_THROUGH = 0.45  # clicks per view
IMPRESSIONS_PER_VIEW = 2.5  # cards seen per view: feed CTR around 18 %, falling with position
IMPRESSION_DECAY = 0.9  # attention fades slower than clicks do, so CTR falls down the feed
AB_FEED = "explore_for_you"  # the feed running an A/B test of its ranking
AB_VARIANTS = ("control", "ranker-v2")
AB_CLICK_SHARE = 0.55  # ranker-v2's share of the test's clicks, on half its impressions
LIKE_RATE = 0.06  # likes per view
UNLIKE_SHARE = 0.1
IMPORT_CHUNK = 5_000  # items per import call; the service takes up to 10,000


@dataclass(frozen=True, slots=True)
class DemoProject:
    project_id: int
    owner_id: int
    created_at: datetime
    views_per_hour: float  # at the daily peak
    growth: float  # multiplier per day: > 1 rising, < 1 fading
    is_private: bool = False


@dataclass(slots=True)
class DemoReport:
    projects: int = 0
    imported: dict[str, int] = field(default_factory=lambda: {"views": 0, "clicks": 0, "likes": 0,
                                                              "impressions": 0})
    live: dict[str, int] = field(default_factory=dict)
    jobs: list[str] = field(default_factory=list)
    trending: list[dict[str, Any]] = field(default_factory=list)


def daily_rhythm(hour: int, weekday: int) -> float:
    """Relative traffic by UTC hour and weekday: quiet nights, evening peak, calmer weekends."""
    day = 0.5 - 0.5 * math.cos(2 * math.pi * (hour - 5) / 24)  # 0 at 05:00, 1 at 17:00
    return (0.15 + 0.85 * day) * (0.75 if weekday >= 5 else 1.0)


def feed_position(rng: random.Random, decay: float = POSITION_DECAY) -> int:
    """A 0-based feed position, geometrically decaying."""
    position = 0
    while position < FEED_LENGTH - 1 and rng.random() < decay:
        position += 1
    return position


def poisson(rng: random.Random, mean: float) -> int:
    if mean <= 0:
        return 0
    if mean > 50:  # normal approximation: plenty for traffic shapes
        return max(0, round(rng.gauss(mean, math.sqrt(mean))))
    limit, k, p = math.exp(-mean), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


def _pick(rng: random.Random, weights: dict[Any, float]) -> Any:
    return rng.choices(list(weights), weights=list(weights.values()))[0]


def sample_projects(count: int, first_id: int, now: datetime, rng: random.Random,
                    scale: float = 1.0) -> list[DemoProject]:
    """Projects of different ages and popularity; the last one is private."""
    projects = []
    for i in range(count):
        projects.append(DemoProject(
            project_id=first_id + i,
            owner_id=1000 + i % 5,
            created_at=now - timedelta(days=1 + rng.randint(0, 30), hours=rng.randint(0, 23)),
            views_per_hour=scale * rng.choice([2, 4, 6, 10, 16, 25]),
            growth=rng.choice([0.6, 0.8, 1.0, 1.0, 1.3, 1.7, 2.2]),
            is_private=count > 2 and i == count - 1,
        ))
    return projects


def history(projects: list[DemoProject], days: float, now: datetime,
            rng: random.Random) -> dict[str, list[dict[str, Any]]]:
    """Import bodies for `days` of past traffic, ending at the start of the current hour."""
    end = now.replace(minute=0, second=0, microsecond=0)
    hours = int(days * 24)
    events: dict[str, list[dict[str, Any]]] = {"views": [], "clicks": [], "likes": [],
                                               "impressions": []}
    for project in projects:
        next_liker = 1
        for back in range(hours, 0, -1):
            start = end - timedelta(hours=back)
            if start < project.created_at:
                continue
            trend = project.growth ** (-back / 24)
            mean = project.views_per_hour * daily_rhythm(start.hour, start.weekday()) * trend
            views = poisson(rng, mean)
            for _ in range(views):
                events["views"].append({
                    "project_id": project.project_id, "created_at": _within(start, rng),
                    "source": _pick(rng, VIEW_SOURCES),
                    "session_key": f"demo-{rng.randrange(50_000)}",
                })
            for _ in range(poisson(rng, views * CLICK_THROUGH)):
                source = _pick(rng, CLICK_SOURCES)
                events["clicks"].append({
                    "project_id": project.project_id, "created_at": _within(start, rng),
                    "source": source, "position": feed_position(rng),
                    "session_key": f"demo-{rng.randrange(50_000)}",
                    **_variant(source, rng, AB_CLICK_SHARE),
                })
            for _ in range(poisson(rng, views * IMPRESSIONS_PER_VIEW)):
                source = _pick(rng, CLICK_SOURCES)
                events["impressions"].append({
                    "project_id": project.project_id, "created_at": _within(start, rng),
                    "source": source, "position": feed_position(rng, IMPRESSION_DECAY),
                    **_variant(source, rng, 0.5),
                })
            for _ in range(poisson(rng, views * LIKE_RATE)):
                unlike = next_liker > 3 and rng.random() < UNLIKE_SHARE
                user = rng.randrange(1, next_liker) if unlike else next_liker
                next_liker += 0 if unlike else 1
                events["likes"].append({
                    "project_id": project.project_id, "created_at": _within(start, rng),
                    "user_id": 500_000 + user, "action": "unlike" if unlike else "like",
                })
    return events


def _variant(source: str, rng: random.Random, second_share: float) -> dict[str, str]:
    """The A/B variant of an event in the test's feed (none elsewhere)."""
    if source != AB_FEED:
        return {}
    return {"variant": AB_VARIANTS[1] if rng.random() < second_share else AB_VARIANTS[0]}


def _within(hour: datetime, rng: random.Random) -> str:
    return (hour + timedelta(seconds=rng.randrange(3600))).isoformat()


def chunks(events: dict[str, list[dict[str, Any]]], size: int = IMPORT_CHUNK
           ) -> Iterator[dict[str, list[dict[str, Any]]]]:
    """Import bodies of at most `size` items each."""
    body: dict[str, list[dict[str, Any]]] = {}
    count = 0
    for kind, items in events.items():
        for item in items:
            body.setdefault(kind, []).append(item)
            count += 1
            if count == size:
                yield body
                body, count = {}, 0
    if body:
        yield body


def _browser(session: str) -> dict[str, str]:
    """Headers of one simulated visitor: its session key and a browser of its own, so the
    per-fingerprint view cap (all visitors share the demo's address) treats them as distinct."""
    return {"X-Session-Key": session,
            "User-Agent": f"Mozilla/5.0 (X11; Linux x86_64) engagement-demo/{session}"}


class DemoClient:
    """The calls the demo makes, as the site's backend and its browsers would."""

    def __init__(self, http: httpx.Client, token: str) -> None:
        self.http = http
        self.internal = {"Authorization": f"Bearer {token}"}

    def _check(self, response: httpx.Response, *expected: int) -> httpx.Response:
        if response.status_code not in expected:
            raise DemoError(f"{response.request.method} {response.request.url.path} answered "
                            f"{response.status_code}: {response.text[:300]}")
        return response

    def register(self, project: DemoProject) -> None:
        body = {"owner_id": project.owner_id, "is_private": project.is_private,
                "created_at": project.created_at.isoformat()}
        self._check(self.http.put(f"/api/v1/internal/projects/{project.project_id}",
                                  json=body, headers=self.internal), 200, 201)

    def import_events(self, body: dict[str, list[dict[str, Any]]]) -> dict[str, int]:
        response = self.http.post("/api/v1/internal/events/import", json=body,
                                  headers=self.internal, timeout=120)
        result: dict[str, int] = self._check(response, 201).json()
        return result

    def view(self, project_id: int, source: str, session: str) -> int:
        return self.http.post(f"/api/v1/projects/{project_id}/track-view/",
                              json={"source": source}, headers=_browser(session)).status_code

    def clicks(self, clicks: list[dict[str, Any]], session: str) -> int:
        headers = _browser(session)
        if len(clicks) == 1:
            return self.http.post("/api/v1/projects/track-click/", json=clicks[0],
                                  headers=headers).status_code
        return self.http.post("/api/v1/projects/track-clicks/", json={"clicks": clicks},
                              headers=headers).status_code

    def like(self, project_id: int, user_id: int, action: str) -> int:
        return self._check(self.http.post(
            "/api/v1/internal/likes/", headers=self.internal,
            json={"project_id": project_id, "user_id": user_id, "action": action}), 200, 201,
        ).status_code

    def trending(self, limit: int = 10) -> tuple[list[dict[str, Any]], str]:
        """The first `limit` of trending, and when it was computed (or 'never')."""
        response = self._check(self.http.get("/api/v1/trending/", params={"limit": limit}), 200)
        body = response.json()
        computed = body["computed_at"]
        when = (datetime.fromisoformat(computed.replace("Z", "+00:00")).strftime("%H:%M:%S UTC")
                if computed else "never")
        return body["results"], when


class DemoError(RuntimeError):
    """The service refused a call the demo expected to succeed."""


UNKNOWN_PROJECT = 999_999_999


@dataclass(slots=True)
class LiveVisitors:
    """Who sends live traffic: a small session pool (so repeat views get deduplicated)."""

    client: DemoClient
    projects: list[DemoProject]
    rng: random.Random
    sessions: list[str] = field(default_factory=list)
    next_liker: int = 900_000
    last_view: tuple[int, str, str] | None = None

    def __post_init__(self) -> None:
        self.projects = [p for p in self.projects if not p.is_private]
        self.sessions = [f"demo-live-{self.rng.randrange(10**9)}" for _ in range(40)]
        self.next_liker += self.rng.randrange(10_000)

    def _project(self) -> DemoProject:
        weights = [p.views_per_hour * p.growth for p in self.projects]
        return self.rng.choices(self.projects, weights=weights)[0]

    def _click(self, project_id: int, source: str) -> dict[str, Any]:
        return {"project_id": project_id, "source": source,
                "position": feed_position(self.rng)}

    def act(self, roll: float | None = None) -> str:
        """One browser or backend call (chosen by `roll` in [0, 1)); what it was and its status."""
        rng, client = self.rng, self.client
        project, session = self._project(), rng.choice(self.sessions)
        roll = rng.random() if roll is None else roll
        if roll < 0.15 and self.last_view:  # a reload: deduplicated within 5 minutes
            status = client.view(*self.last_view)
            return f"view {status}"
        if roll < 0.5:
            self.last_view = (project.project_id, _pick(rng, VIEW_SOURCES), session)
            status = client.view(*self.last_view)
            return f"view {status}"
        if roll < 0.85:
            count = 1 if rng.random() < 0.6 else rng.randint(2, 6)
            batch = [self._click(self._project().project_id, _pick(rng, CLICK_SOURCES))
                     for _ in range(count)]
            return f"click {client.clicks(batch, session)}"
        if roll < 0.93:
            self.next_liker += 1
            return f"like {client.like(project.project_id, self.next_liker, 'like')}"
        if roll < 0.95:
            return f"unlike {client.like(project.project_id, self.next_liker, 'unlike')}"
        if roll < 0.98:  # a frontend bug: an unknown source is rejected with a 400
            return f"invalid {client.clicks([self._click(project.project_id, 'feed')], session)}"
        # a stale feed: the project is gone, the click is skipped with a 404
        return f"unknown {client.clicks([self._click(UNKNOWN_PROJECT, 'search')], session)}"


def live_traffic(client: DemoClient, projects: list[DemoProject], *, seconds: float,
                 rate: float, rng: random.Random,
                 progress: Callable[[str], None] = lambda _: None) -> dict[str, int]:
    """Browser-like calls for `seconds` at about `rate` calls per second; counts by answer."""
    visitors = LiveVisitors(client, projects, rng)
    tally: dict[str, int] = {}
    # One of each kind of call first, so even a short run shows every outcome.
    tour = [0.3, 0.0, 0.6, 0.9, 0.94, 0.96, 0.99]
    begun = time.monotonic()
    deadline = begun + seconds
    calls = 0
    while True:
        started = time.monotonic()
        if started >= deadline and not tour:
            break
        key = visitors.act(tour.pop(0) if tour else None)
        tally[key] = tally.get(key, 0) + 1
        calls += 1
        if calls % max(1, round(rate)) == 0:  # about once a second
            progress(f"live traffic: {started - begun:.0f}/{seconds:g} s, {calls} calls")
        pause = 1 / rate - (time.monotonic() - started)
        if pause > 0:
            time.sleep(pause)
    return dict(sorted(tally.items()))


def run_jobs(database_url: str) -> list[str]:
    """refresh-rollups then compute-trending, as `engagement run-job` runs them (it logs)."""
    from engagement.db.migrations import current_profile
    from engagement.settings import load_database_settings
    from scheduler.jobs import JobContext, run_job

    settings = load_database_settings(os.environ, database_url=database_url)
    profile = current_profile(database_url)
    if profile is None:
        raise DemoError("the database is not migrated; run `engagement migrate` first")
    done = []
    for name in ("refresh-rollups", "compute-trending"):
        done.append(f"{name}: {run_job(name, JobContext(settings, profile))}")
    return done


def kept_ages(database_url: str, project_ids: list[int]) -> dict[int, datetime]:
    """When the sample projects registered by an earlier run were created: kept, so that a
    second run does not rewrite their ages."""
    import psycopg

    from engagement.db.queries import q

    with psycopg.connect(database_url, autocommit=True) as conn:
        rows = conn.execute(q("project_created_ats"), {"project_ids": project_ids}).fetchall()
    return {int(pid): created for pid, created in rows}


def run_demo(url: str, token: str, *, projects: int = 12, days: float = 7, first_id: int = 9001,
             live_seconds: float = 60, rate: float = 20, database_url: str | None = None,
             seed: int | None = None, scale: float = 1.0, jobs: bool = True,
             jobs_hint: str = "`engagement run-job refresh-rollups`, then compute-trending, "
                              "with DATABASE_URL set to the service's database",
             log: Callable[[str], None] = print,
             progress: Callable[[str], None] = lambda _: None) -> DemoReport:
    """Register sample projects, import history, send live traffic, refresh trending.

    With database_url, projects an earlier run registered keep their ages, and (with jobs)
    the rollups and trending are brought up to date before trending is read."""
    rng = random.Random(seed)
    now = datetime.now(UTC)
    report = DemoReport()
    sample = sample_projects(projects, first_id, now, rng, scale)
    kept = kept_ages(database_url, [p.project_id for p in sample]) if database_url else {}
    sample = [replace(p, created_at=kept.get(p.project_id, p.created_at)) for p in sample]
    span = f"{sample[0].project_id}..{sample[-1].project_id}"
    with httpx.Client(base_url=url, timeout=30) as http:
        client = DemoClient(http, token)
        for project in sample:
            client.register(project)
        report.projects = len(sample)
        if kept:
            log(f"projects {span}: {len(kept)} already there from an earlier run, their ages "
                "kept; this run's traffic adds to their counts")
        elif database_url:
            log(f"registered projects {span} (the last one private)")
        else:
            log(f"registered projects {span} (the last one private) with ages drawn now: "
                "a second run without DATABASE_URL resets them")
        events = history(sample, days, now, rng)
        total = sum(map(len, events.values()))
        for body in chunks(events):
            counts = client.import_events(body)
            for kind in report.imported:
                report.imported[kind] += counts[kind]
            progress(f"importing history: {sum(report.imported.values()):,} of {total:,} events")
        log(f"imported {days:g} days of history: " +
            ", ".join(f"{n:,} {kind}" for kind, n in report.imported.items()))
        if live_seconds > 0:
            report.live = live_traffic(client, sample, seconds=live_seconds, rate=rate, rng=rng,
                                       progress=progress)
            log(f"sent live traffic for {live_seconds:g} s, {sum(report.live.values())} calls; "
                "answers: " + ", ".join(f"{k}: {n}" for k, n in report.live.items()))
        if database_url and jobs:
            progress("bringing hourly counts and trending up to date ...")
            report.jobs = run_jobs(database_url)
            log("brought up to date: " + "; ".join(report.jobs))
        report.trending, computed_at = client.trending()
    if report.jobs:
        log(f"trending now (computed {computed_at}, this run's events counted):")
    elif report.trending:
        log(f"trending as last computed ({computed_at}), before this run's events; the "
            f"scheduler recomputes it within 5 minutes, or at once: {jobs_hint}")
    else:
        log(f"trending is empty until it is computed: the scheduler does within 5 minutes, "
            f"or at once: {jobs_hint}")
    for row in report.trending[:5]:
        log(f"  #{row['rank']} project {row['project_id']}  score {row['score']:.3f}  "
            f"views {row['previous_views']} -> {row['recent_views']}  "
            f"likes {row['previous_likes']} -> {row['recent_likes']}  "
            f"{row['days_old']} days old")
    return report
