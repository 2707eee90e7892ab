"""Public tracking endpoints, called from browsers."""

from __future__ import annotations

from litestar import Request, Response, post
from litestar.datastructures import Cookie
from litestar.params import FromPath, JSONBody

from service import metrics
from service.errors import NotFound
from service.identity import ISSUED_COOKIE, SESSION_HEADER, Viewer
from service.ids import parse_path_id
from service.runtime import Runtime, runtime_of
from service.tracking.schemas import (
    TrackClickIn,
    TrackClicksIn,
    TrackClicksOut,
    TrackStatus,
    TrackViewIn,
)
from service.tracking.store import ClickEvent, ViewEvent

TRACK_VIEW_PATH = "/api/v1/projects/{project_id:str}/track-view/"
TRACK_CLICK_PATH = "/api/v1/projects/track-click/"
TRACK_CLICKS_PATH = "/api/v1/projects/track-clicks/"
NOT_FOUND = "project not found"
ONE_YEAR = 365 * 24 * 3600


def _viewer(request: Request, runtime: Runtime) -> Viewer:
    return runtime.identity.resolve(
        request.headers.get("authorization"), request.cookies, request.headers.get(SESSION_HEADER)
    )


def _respond(body: object, status: int, viewer: Viewer, runtime: Runtime) -> Response:
    cookies = []
    if viewer.issued_session:
        s = runtime.settings
        cookies.append(Cookie(
            key=ISSUED_COOKIE, value=viewer.issued_session, max_age=ONE_YEAR, path="/",
            httponly=True, secure=s.cookie_secure, samesite=s.cookie_samesite,  # type: ignore[arg-type]
        ))
    return Response(content=body, status_code=status, cookies=cookies)


@post(TRACK_VIEW_PATH, operation_id="trackView", status_code=201)
async def track_view(request: Request, project_id: FromPath[str],
                     data: JSONBody[TrackViewIn | None] = None) -> Response[TrackStatus]:
    """Record that someone opened a project page (deduplicated per viewer for 5 minutes)."""
    runtime = runtime_of(request)
    pid = parse_path_id(project_id, "project_id")
    source = (data or TrackViewIn()).source
    viewer = _viewer(request, runtime)
    event = ViewEvent(pid, viewer.user_id, viewer.session_hash, source, viewer.dedup_key)
    (outcome,) = await runtime.views.submit((event,))
    metrics.count_event("view", source, "skipped" if outcome == "not_found" else outcome)
    if outcome == "not_found":
        raise NotFound(NOT_FOUND)
    status = 201 if outcome == "recorded" else 200
    return _respond(TrackStatus(status=outcome), status, viewer, runtime)


@post(TRACK_CLICK_PATH, operation_id="trackClick", status_code=201)
async def track_click(request: Request, data: JSONBody[TrackClickIn]) -> Response[TrackStatus]:
    """Record a click on a project card in a feed."""
    runtime = runtime_of(request)
    viewer = _viewer(request, runtime)
    event = ClickEvent(data.project_id, viewer.user_id, viewer.session_hash, data.source,
                       data.position)
    (stored,) = await runtime.clicks.submit((event,))
    metrics.count_click(data.source, data.position, stored)
    if not stored:
        raise NotFound(NOT_FOUND)
    return _respond(TrackStatus(status="recorded"), 201, viewer, runtime)


@post(TRACK_CLICKS_PATH, operation_id="trackClicks", status_code=201)
async def track_clicks(request: Request, data: JSONBody[TrackClicksIn]) -> Response[TrackClicksOut]:
    """Record up to 50 clicks at once; clicks on unknown or invisible projects are skipped."""
    runtime = runtime_of(request)
    viewer = _viewer(request, runtime)
    events = [
        ClickEvent(c.project_id, viewer.user_id, viewer.session_hash, c.source, c.position)
        for c in data.clicks
    ]
    stored = await runtime.clicks.submit(events)
    for click, ok in zip(data.clicks, stored, strict=True):
        metrics.count_click(click.source, click.position, ok)
    count = sum(stored)
    return _respond(TrackClicksOut(count=count, skipped=len(stored) - count), 201, viewer, runtime)


handlers = [track_view, track_click, track_clicks]
