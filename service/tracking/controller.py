"""Public tracking endpoints, called from browsers.

Each handler names the writer its events go through (`tracking.views`, `.clicks`,
`.impressions`: service/tracking/writers.py binds each to the flush that stores it) and
hands `record` (service/tracking/flow.py) a TrackCall saying what it adds to the steps
every track call shares. create_app gives `handlers` the worker's TrackingContext.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import ClassVar, TypeVar

from litestar import Request, Response, post
from litestar.handlers import HTTPRouteHandler
from litestar.openapi import ResponseSpec
from litestar.openapi.spec import Operation, RequestBody
from litestar.params import JSONBody

from service import metrics
from service.errors import error_responses
from service.identity import Viewer
from service.ids import PathId, parse_path_id
from service.origins import check_origin
from service.tracking.context import TrackingContext
from service.tracking.flow import Caller, TrackCall, record
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
from service.tracking.store import ClickEvent, ImpressionEvent, ViewEvent, ViewOutcome

TRACK_VIEW_PATH = "/api/v1/projects/{project_id:str}/track-view/"
TRACK_CLICK_PATH = "/api/v1/projects/track-click/"
TRACK_CLICKS_PATH = "/api/v1/projects/track-clicks/"
TRACK_IMPRESSIONS_PATH = "/api/v1/projects/track-impressions/"
# What a track call can answer besides its success (declared so the OpenAPI is complete).
ERRORS = error_responses(400, 401, 403, 404, 413, 422, 429, 503)
ERRORS_NO_404 = error_responses(400, 401, 403, 413, 422, 429, 503)
E = TypeVar("E")


@dataclass
class OptionalBodyOperation(Operation):
    """track-view's body may be left out; Litestar documents every body as required."""

    def __post_init__(self) -> None:
        if isinstance(self.request_body, RequestBody):
            self.request_body.required = False


class _View(TrackCall[ViewEvent, ViewOutcome], operation_id="trackView", kind="view"):
    __slots__ = ("project_id", "source", "tracking")
    ignored = TrackStatus(status=IGNORED)

    def __init__(self, project_id: int, source: str, tracking: TrackingContext) -> None:
        self.project_id = project_id
        self.source = source
        self.tracking = tracking

    def count_ignored(self) -> None:
        metrics.count_event(self.kind, self.source, "ignored")

    def events(self, caller: Caller, viewer: Viewer) -> Sequence[ViewEvent]:
        # Signed-in viewers are deduplicated by user id and never capped by address.
        fingerprint = (None if viewer.user_id is not None
                       else self.tracking.fingerprint(caller.scope, caller.user_agent))
        return (ViewEvent(self.project_id, viewer.user_id, viewer.session_hash, self.source,
                          viewer.dedup_key, fingerprint),)

    def count(self, results: list[ViewOutcome]) -> None:
        (outcome,) = results
        metrics.count_event(self.kind, self.source,
                            "skipped" if outcome == "not_found" else outcome)

    def answer(self, results: list[ViewOutcome]) -> tuple[object, int] | None:
        (outcome,) = results
        if outcome == "not_found":
            return None
        if outcome == "capped":  # the same answer as a dedup: the client learns nothing new
            outcome = "deduplicated"
        return TrackStatus(status=outcome), 201 if outcome == "recorded" else 200


class _Click(TrackCall[ClickEvent, bool], operation_id="trackClick", kind="click"):
    __slots__ = ("card",)
    ignored = TrackStatus(status=IGNORED)

    def __init__(self, card: FeedCardIn) -> None:
        self.card = card

    def count_ignored(self) -> None:
        metrics.count_event(self.kind, self.card.source, "ignored")

    def events(self, caller: Caller, viewer: Viewer) -> Sequence[ClickEvent]:
        c = self.card
        return (ClickEvent(c.project_id, viewer.user_id, viewer.session_hash, c.source,
                           c.position, c.variant),)

    def count(self, results: list[bool]) -> None:
        (stored,) = results
        metrics.count_click(self.card.source, self.card.position, stored)

    def answer(self, results: list[bool]) -> tuple[object, int] | None:
        (stored,) = results
        return (TrackStatus(status="recorded"), 201) if stored else None


class _Cards(TrackCall[E, bool]):
    """A batch of feed cards: the stored ones are counted, the others skipped."""

    __slots__ = ("cards",)
    out: ClassVar[type[TrackClicksOut] | type[TrackImpressionsOut]]

    def __init_subclass__(cls, out: type[TrackClicksOut] | type[TrackImpressionsOut] | None = None,
                          **kwargs: str) -> None:
        super().__init_subclass__(**kwargs)
        if out is not None:
            cls.out = out
            cls.ignored = out(count=0, skipped=0, status=IGNORED)

    def __init__(self, cards: list[FeedCardIn]) -> None:
        self.cards = cards

    def count_ignored(self) -> None:
        for card in self.cards:
            metrics.count_event(self.kind, card.source, "ignored")

    def count(self, results: list[bool]) -> None:
        metrics.count_batch(self.kind, zip((c.source for c in self.cards), results, strict=True))

    def answer(self, results: list[bool]) -> tuple[object, int] | None:
        count = sum(results)
        return self.out(count=count, skipped=len(results) - count), 201


class _Clicks(_Cards[ClickEvent], operation_id="trackClicks", kind="click", out=TrackClicksOut):
    __slots__ = ()

    def events(self, caller: Caller, viewer: Viewer) -> Sequence[ClickEvent]:
        return [ClickEvent(c.project_id, viewer.user_id, viewer.session_hash, c.source,
                           c.position, c.variant) for c in self.cards]

    def count(self, results: list[bool]) -> None:
        super().count(results)
        metrics.observe_positions((c.source, c.position, ok)
                                  for c, ok in zip(self.cards, results, strict=True))


class _Impressions(_Cards[ImpressionEvent], operation_id="trackImpressions", kind="impression",
                   out=TrackImpressionsOut):
    __slots__ = ()

    def events(self, caller: Caller, viewer: Viewer) -> Sequence[ImpressionEvent]:
        # The viewer: a private project's owner sees it in their own feeds.
        return [ImpressionEvent(c.project_id, viewer.user_id, c.source, c.position, c.variant)
                for c in self.cards]


def handlers(context: Callable[[], TrackingContext]) -> list[HTTPRouteHandler]:
    """The track endpoints of one app; `context` returns its worker's TrackingContext.

    Injected by closure, not as a litestar dependency: resolving one costs a track-click
    about 5-8 % of its requests per second in-process (docs/performance.md).
    """

    @post(TRACK_VIEW_PATH, operation_id=_View.operation_id, guards=[check_origin],
          status_code=201, operation_class=OptionalBodyOperation,
          opt={metrics.EVENT_KIND: _View.kind}, responses={
        200: ResponseSpec(TrackStatus, generate_examples=False,
                          description="deduplicated (this viewer's view is recent) or ignored "
                                      "(a known bot): nothing stored"),
        **ERRORS,
    })
    async def track_view(request: Request, project_id: PathId,
                         data: JSONBody[TrackViewIn | None] = None) -> Response[TrackStatus]:
        """Record that someone opened a project page (deduplicated per viewer for 5 minutes)."""
        pid = parse_path_id(project_id, "project_id")
        tracking = context()
        call = _View(pid, (data or TrackViewIn()).source, tracking)
        return await record(request, tracking, tracking.views, call)

    @post(TRACK_CLICK_PATH, operation_id=_Click.operation_id, guards=[check_origin],
          status_code=201, opt={metrics.EVENT_KIND: _Click.kind}, responses={
        200: ResponseSpec(TrackStatus, generate_examples=False,
                          description="ignored: a known bot, nothing stored"),
        **ERRORS,
    })
    async def track_click(request: Request, data: JSONBody[FeedCardIn]) -> Response[TrackStatus]:
        """Record a click on a project card in a feed."""
        tracking = context()
        return await record(request, tracking, tracking.clicks, _Click(data))

    @post(TRACK_CLICKS_PATH, operation_id=_Clicks.operation_id, guards=[check_origin],
          status_code=201, opt={metrics.EVENT_KIND: _Clicks.kind}, responses={
        200: ResponseSpec(TrackClicksOut, generate_examples=False,
                          description="ignored: a known bot, nothing stored"),
        **ERRORS_NO_404,
    })
    async def track_clicks(request: Request,
                           data: JSONBody[TrackClicksIn]) -> Response[TrackClicksOut]:
        """Record up to 50 clicks at once; clicks on unknown or invisible projects are skipped."""
        tracking = context()
        return await record(request, tracking, tracking.clicks, _Clicks(data.clicks))

    @post(TRACK_IMPRESSIONS_PATH, operation_id=_Impressions.operation_id, guards=[check_origin],
          status_code=201, opt={metrics.EVENT_KIND: _Impressions.kind}, responses={
        200: ResponseSpec(TrackImpressionsOut, generate_examples=False,
                          description="ignored: a known bot, nothing stored"),
        **ERRORS_NO_404,
    })
    async def track_impressions(
            request: Request, data: JSONBody[TrackImpressionsIn]) -> Response[TrackImpressionsOut]:
        """Record up to 50 project cards seen in a feed; unknown or invisible projects are
        skipped."""
        tracking = context()
        return await record(request, tracking, tracking.impressions,
                            _Impressions(data.impressions))

    return [track_view, track_click, track_clicks, track_impressions]
