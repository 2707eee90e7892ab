"""The demo page (ENGAGEMENT_DEMO_PAGE, on in `engagement dev`): an explore feed and project
pages wired with tracking.js, in an app of its own that mounts them beside the service's
routes, so the production app never loads this module.

It needs projects to track, so the first page load registers the demo projects (ids 9001-9012)
that are missing; existing projects with those ids are left as they are.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import msgspec
from litestar import Litestar, Request, Response, Router, get
from litestar.params import FromPath
from litestar.static_files import create_static_files_router
from psycopg_pool import AsyncConnectionPool

from engagement.settings import Settings
from service.app import create_app
from service.dependencies import Injected
from service.internal import store

DEMO_PATH = "/demo"
PAGES = Path(__file__).parent / "static" / "demo"
HTML = "text/html; charset=utf-8"


class DemoProject(msgspec.Struct, frozen=True):
    id: int
    title: str
    author: str
    owner_id: int
    age_days: int


# The projects the pages show (ids 9001-9012): data, kept in a file of its own.
DEMO_PROJECTS = msgspec.json.decode((PAGES.parent / "demo_projects.json").read_bytes(),
                                    type=tuple[DemoProject, ...])


class DemoSeed:
    """Registers the demo projects once per worker, on the first page load."""

    def __init__(self) -> None:
        self._done = False
        self._lock = asyncio.Lock()

    async def ensure(self, pool: AsyncConnectionPool) -> None:
        if self._done:
            return
        async with self._lock:
            if self._done:
                return
            now = datetime.now(UTC)
            async with pool.connection() as conn:
                for p in DEMO_PROJECTS:
                    # only missing ones: never overwrite a real project that has a demo id
                    if not await store.project_exists(conn, p.id):
                        await store.upsert_project(conn, p.id, p.owner_id, False,
                                                   now - timedelta(days=p.age_days))
            self._done = True


# The browser default, stated because the service's security headers say `no-referrer` unless
# a response sets its own, and the project page derives its view source from the referrer.
REFERRER_POLICY = "strict-origin-when-cross-origin"


def _page(name: str) -> Response[bytes]:
    return Response((PAGES / name).read_bytes(), media_type=HTML,
                    headers={"Cache-Control": "no-store", "Referrer-Policy": REFERRER_POLICY})


def _seed(request: Request) -> DemoSeed:
    # one per app (tests build several apps, each on its own database)
    seed: DemoSeed | None = getattr(request.app.state, "demo_seed", None)
    if seed is None:
        seed = request.app.state.demo_seed = DemoSeed()
    return seed


@get("/", operation_id="demoFeed", include_in_schema=False)
async def feed(request: Request, pool: Injected[AsyncConnectionPool]) -> Response[bytes]:
    """The demo explore feed: tabs, project cards, click tracking."""
    await _seed(request).ensure(pool)
    return _page("feed.html")


@get("/projects/{project_id:int}", operation_id="demoProject", include_in_schema=False)
async def project(request: Request, pool: Injected[AsyncConnectionPool],
                  project_id: FromPath[int]) -> Response[bytes]:
    """A demo project page: view tracking, related projects."""
    await _seed(request).ensure(pool)
    return _page("project.html")


@get("/projects.json", operation_id="demoProjects", include_in_schema=False)
async def projects() -> tuple[DemoProject, ...]:
    """The demo projects the pages show."""
    return DEMO_PROJECTS


def demo_router() -> Router:
    """The /demo/ routes: the pages, the projects they show, their script and style."""
    assets = create_static_files_router(path="/assets", directories=[PAGES], name="demo-assets",
                                        include_in_schema=False)
    return Router(DEMO_PATH, route_handlers=[feed, project, projects, assets],
                  include_in_schema=False)


def create_demo_app(settings: Injected[Settings] | None = None) -> Litestar:
    """The service with the demo page mounted."""
    app = create_app(settings, routers=[demo_router()])
    app.state.demo_page = True  # GET / links it
    return app


def app_from_env() -> Litestar:
    """ASGI entry point for `engagement serve` with ENGAGEMENT_DEMO_PAGE on."""
    return create_demo_app()
