"""Public tracking endpoints, called from browsers."""

from __future__ import annotations

from dataclasses import dataclass

from litestar import Request, Response, post
from litestar.datastructures import Cookie
from litestar.openapi import ResponseSpec
from litestar.openapi.spec import Operation, RequestBody
from litestar.params import JSONBody

from service import metrics
from service.bots import is_bot
from service.errors import NotFound, error_responses
from service.fastpath.answers import TrackAnswer
from service.idempotency import HEADER as IDEMPOTENCY_HEADER
from service.idempotency import REPLAYED_HEADER, IdempotencyKey, parse_key
from service.identity import ISSUED_COOKIE, SESSION_HEADER, Viewer
from service.ids import PathId, parse_path_id
from service.origins import check_origin
from service.runtime import Runtime, runtime_of
from service.tracking.schemas import (
    IGNORED,
    FeedCardIn,
    TrackClicksIn,
    TrackClicksOut,
    TrackImpressionsIn,
    TrackImpressionsOut,
    TrackStatus,
    TrackViewIn,
)
from service.tracking.store import ClickEvent, ImpressionEvent, ViewEvent

TRACK_VIEW_PATH = "/api/v1/projects/{project_id:str}/track-view/"
TRACK_CLICK_PATH = "/api/v1/projects/track-click/"
TRACK_CLICKS_PATH = "/api/v1/projects/track-clicks/"
TRACK_IMPRESSIONS_PATH = "/api/v1/projects/track-impressions/"
NOT_FOUND = "project not found"
ONE_YEAR = 365 * 24 * 3600
# What a track call can answer besides its success (declared so the OpenAPI is complete).
ERRORS = error_responses(400, 401, 403, 404, 413, 422, 429, 503)
ERRORS_NO_404 = error_responses(400, 401, 403, 413, 422, 429, 503)


@dataclass
class OptionalBodyOperation(Operation):
    """track-view's body may be left out; Litestar documents every body as required."""

    def __post_init__(self) -> None:
        if isinstance(self.request_body, RequestBody):
            self.request_body.required = False


# The request headers a tracking call reads, by their place in a _Caller.
_READ_HEADERS = {b"user-agent": 0, b"authorization": 1, SESSION_HEADER.encode(): 2,
                 IDEMPOTENCY_HEADER.encode(): 3}


@dataclass(slots=True)
class _Caller:
    """What a tracking call reads from its request headers, and what it decides from them."""

    user_agent: str | None
    authorization: str | None
    session_key: str | None
    idempotency_key: str | None
    cookies: bool

    @classmethod
    def of(cls, request: Request) -> _Caller:
        """One pass over the raw header list (ASGI names are lower-case), keeping the first
        of each as `request.headers.get` would: each `request.headers` lookup goes through
        the connection state and a case-insensitive multidict, and a call reads five."""
        found: list[str | None] = [None, None, None, None]
        cookies = False
        for name, value in request.scope["headers"]:
            place = _READ_HEADERS.get(name)
            if place is not None:
                if found[place] is None:
                    found[place] = value.decode("latin-1")
            elif name == b"cookie":
                cookies = True
        user_agent, authorization, session_key, idempotency_key = found
        return cls(user_agent, authorization, session_key, idempotency_key, cookies)

    def is_bot(self, runtime: Runtime) -> bool:
        return is_bot(self.user_agent, runtime.settings.bot_filter)

    def viewer(self, request: Request, runtime: Runtime) -> Viewer:
        return runtime.identity.resolve(self.authorization,
                                        request.cookies if self.cookies else {},
                                        self.session_key)

    async def idempotency(self, request: Request, scope: str,
                          viewer: Viewer) -> IdempotencyKey | None:
        raw = self.idempotency_key
        if raw is None:  # the common case costs nothing more
            return None
        # The same key may only repeat the same ask: same path, same body, same viewer as
        # sent by the client. A session we issue is not part of it: a browser's first try
        # has none (we issue one), its retry sends back the et_sid that answer set, or
        # none again if that answer was lost; the key itself tells this browser's ask.
        who = (f"u:{viewer.user_id}" if viewer.user_id is not None
               else "" if viewer.ours else f"s:{viewer.session_hash}")
        return parse_key(raw, scope, request.url.path, await request.body(), who)


def _respond(body: object, status: int, viewer: Viewer, runtime: Runtime,
             replayed: bool = False) -> Response:
    if not viewer.issued_session and not replayed:  # the common case: nothing to add
        return TrackAnswer(content=body, status_code=status)
    cookies = []
    if viewer.issued_session:
        s = runtime.settings
        cookies.append(Cookie(
            key=ISSUED_COOKIE, value=viewer.issued_session, max_age=ONE_YEAR, path="/",
            httponly=True, secure=s.cookie_secure, samesite=s.cookie_samesite,  # type: ignore[arg-type]
        ))
    return TrackAnswer(content=body, status_code=status, cookies=cookies,
                    headers=_replayed(replayed))


def _replayed(replayed: bool) -> dict[str, str]:
    return {REPLAYED_HEADER: "true"} if replayed else {}


@post(TRACK_VIEW_PATH, operation_id="trackView", guards=[check_origin], status_code=201,
      operation_class=OptionalBodyOperation, opt={metrics.EVENT_KIND: "view"}, responses={
    200: ResponseSpec(TrackStatus, generate_examples=False,
                      description="deduplicated (this viewer's view is recent) or ignored "
                                  "(a known bot): nothing stored"),
    **ERRORS,
})
async def track_view(request: Request, project_id: PathId,
                     data: JSONBody[TrackViewIn | None] = None) -> Response[TrackStatus]:
    """Record that someone opened a project page (deduplicated per viewer for 5 minutes)."""
    runtime = runtime_of(request)
    pid = parse_path_id(project_id, "project_id")
    source = (data or TrackViewIn()).source
    caller = _Caller.of(request)
    if caller.is_bot(runtime):
        metrics.count_event("view", source, "ignored")
        return TrackAnswer(TrackStatus(status=IGNORED), status_code=200)
    viewer = caller.viewer(request, runtime)
    key = await caller.idempotency(request, "trackView", viewer)
    fingerprint = None
    if viewer.user_id is None and runtime.fingerprints is not None and runtime.clients:
        # Signed-in viewers are deduplicated by user id and never capped by address.
        fingerprint = runtime.fingerprints.of(runtime.clients.of(request.scope),
                                              caller.user_agent)
    event = ViewEvent(pid, viewer.user_id, viewer.session_hash, source, viewer.dedup_key,
                      fingerprint)
    written = await runtime.views.write((event,), key)
    (outcome,) = written.results
    if not written.replayed:
        metrics.count_event("view", source, "skipped" if outcome == "not_found" else outcome)
    if outcome == "not_found":
        raise NotFound(NOT_FOUND, _replayed(written.replayed))
    if outcome == "capped":  # the same answer as a dedup: the client learns nothing new
        outcome = "deduplicated"
    status = 201 if outcome == "recorded" else 200
    return _respond(TrackStatus(status=outcome), status, viewer, runtime, written.replayed)


@post(TRACK_CLICK_PATH, operation_id="trackClick", guards=[check_origin], status_code=201,
      opt={metrics.EVENT_KIND: "click"}, responses={
    200: ResponseSpec(TrackStatus, generate_examples=False,
                      description="ignored: a known bot, nothing stored"),
    **ERRORS,
})
async def track_click(request: Request, data: JSONBody[FeedCardIn]) -> Response[TrackStatus]:
    """Record a click on a project card in a feed."""
    runtime = runtime_of(request)
    caller = _Caller.of(request)
    if caller.is_bot(runtime):
        metrics.count_event("click", data.source, "ignored")
        return TrackAnswer(TrackStatus(status=IGNORED), status_code=200)
    viewer = caller.viewer(request, runtime)
    key = await caller.idempotency(request, "trackClick", viewer)
    event = ClickEvent(data.project_id, viewer.user_id, viewer.session_hash, data.source,
                       data.position, data.variant)
    written = await runtime.clicks.write((event,), key)
    (stored,) = written.results
    if not written.replayed:
        metrics.count_click(data.source, data.position, stored)
    if not stored:
        raise NotFound(NOT_FOUND, _replayed(written.replayed))
    return _respond(TrackStatus(status="recorded"), 201, viewer, runtime, written.replayed)


@post(TRACK_CLICKS_PATH, operation_id="trackClicks", guards=[check_origin], status_code=201,
      opt={metrics.EVENT_KIND: "click"}, responses={
    200: ResponseSpec(TrackClicksOut, generate_examples=False,
                      description="ignored: a known bot, nothing stored"),
    **ERRORS_NO_404,
})
async def track_clicks(request: Request, data: JSONBody[TrackClicksIn]) -> Response[TrackClicksOut]:
    """Record up to 50 clicks at once; clicks on unknown or invisible projects are skipped."""
    runtime = runtime_of(request)
    caller = _Caller.of(request)
    if caller.is_bot(runtime):
        for click in data.clicks:
            metrics.count_event("click", click.source, "ignored")
        return TrackAnswer(TrackClicksOut(count=0, skipped=0, status=IGNORED), status_code=200)
    viewer = caller.viewer(request, runtime)
    key = await caller.idempotency(request, "trackClicks", viewer)
    events = [
        ClickEvent(c.project_id, viewer.user_id, viewer.session_hash, c.source, c.position,
                   c.variant)
        for c in data.clicks
    ]
    written = await runtime.clicks.write(events, key)
    stored = written.results
    if not written.replayed:
        metrics.count_batch("click", zip((c.source for c in data.clicks), stored, strict=True))
        metrics.observe_positions((c.source, c.position, ok)
                                  for c, ok in zip(data.clicks, stored, strict=True))
    count = sum(stored)
    return _respond(TrackClicksOut(count=count, skipped=len(stored) - count), 201, viewer,
                    runtime, written.replayed)


@post(TRACK_IMPRESSIONS_PATH, operation_id="trackImpressions", guards=[check_origin],
      status_code=201, opt={metrics.EVENT_KIND: "impression"}, responses={
    200: ResponseSpec(TrackImpressionsOut, generate_examples=False,
                      description="ignored: a known bot, nothing stored"),
    **ERRORS_NO_404,
})
async def track_impressions(request: Request,
                            data: JSONBody[TrackImpressionsIn]) -> Response[TrackImpressionsOut]:
    """Record up to 50 project cards seen in a feed; unknown or invisible projects are skipped."""
    runtime = runtime_of(request)
    caller = _Caller.of(request)
    if caller.is_bot(runtime):
        for item in data.impressions:
            metrics.count_event("impression", item.source, "ignored")
        return TrackAnswer(TrackImpressionsOut(count=0, skipped=0, status=IGNORED), status_code=200)
    # The viewer: a private project's owner sees it in their own feeds.
    viewer = caller.viewer(request, runtime)
    key = await caller.idempotency(request, "trackImpressions", viewer)
    events = [ImpressionEvent(i.project_id, viewer.user_id, i.source, i.position, i.variant)
              for i in data.impressions]
    written = await runtime.impressions.write(events, key)
    stored = written.results
    if not written.replayed:
        metrics.count_batch("impression",
                            zip((i.source for i in data.impressions), stored, strict=True))
    count = sum(stored)
    return _respond(TrackImpressionsOut(count=count, skipped=len(stored) - count), 201, viewer,
                    runtime, written.replayed)


handlers = [track_view, track_click, track_clicks, track_impressions]
