"""The steps every track call takes: bot check, viewer, Idempotency-Key, write, metrics, answer.

`record` runs them; what an endpoint adds (its events, its metrics, its answer) is a
`TrackCall` of its own (service/tracking/controller.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, TypeVar

from litestar import Request, Response
from litestar.datastructures import Cookie
from litestar.types import Scope

from engagement.settings import Settings
from service.bots import is_bot
from service.errors import NotFound
from service.fastpath.answers import TrackAnswer
from service.idempotency import HEADER as IDEMPOTENCY_HEADER
from service.idempotency import REPLAYED_HEADER, IdempotencyKey, parse_key
from service.identity import ISSUED_COOKIE, SESSION_HEADER, Viewer
from service.tracking.context import TrackingContext
from service.tracking.writer import BatchWriter

E = TypeVar("E")
R = TypeVar("R")

NOT_FOUND = "project not found"
ONE_YEAR = 365 * 24 * 3600
# The request headers a tracking call reads, by their place in a Caller.
_READ_HEADERS = {b"user-agent": 0, b"authorization": 1, SESSION_HEADER.encode(): 2,
                 IDEMPOTENCY_HEADER.encode(): 3}


@dataclass(slots=True)
class Caller:
    """What a tracking call reads from its request headers, and what it decides from them."""

    scope: Scope
    user_agent: str | None
    authorization: str | None
    session_key: str | None
    idempotency_key: str | None
    cookies: bool

    @classmethod
    def of(cls, request: Request) -> Caller:
        """One pass over the raw header list (ASGI names are lower-case), keeping the first
        of each as `request.headers.get` would: each `request.headers` lookup goes through
        the connection state and a case-insensitive multidict, and a call reads five."""
        found: list[str | None] = [None, None, None, None]
        cookies = False
        scope = request.scope
        for name, value in scope["headers"]:
            place = _READ_HEADERS.get(name)
            if place is not None:
                if found[place] is None:
                    found[place] = value.decode("latin-1")
            elif name == b"cookie":
                cookies = True
        user_agent, authorization, session_key, idempotency_key = found
        return cls(scope, user_agent, authorization, session_key, idempotency_key, cookies)

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


class TrackCall(Generic[E, R]):
    """One endpoint's part of a track call: its events, its metrics and its answer."""

    __slots__ = ()
    operation_id: ClassVar[str]  # the scope of its Idempotency-Keys
    kind: ClassVar[str]  # its events' kind in the metrics
    ignored: ClassVar[object]  # the answer to a known bot: 200, nothing stored

    def __init_subclass__(cls, operation_id: str = "", kind: str = "", **kwargs: object) -> None:
        """An endpoint's call states its operation id and event kind in its class line."""
        super().__init_subclass__(**kwargs)
        if operation_id:
            cls.operation_id = operation_id
        if kind:
            cls.kind = kind

    def count_ignored(self) -> None:
        raise NotImplementedError

    def events(self, caller: Caller, viewer: Viewer) -> Sequence[E]:
        raise NotImplementedError

    def count(self, results: list[R]) -> None:
        """The metrics of what was stored (not called for a replayed answer)."""
        raise NotImplementedError

    def answer(self, results: list[R]) -> tuple[object, int] | None:
        """The body and status code; None when the project is not found (404)."""
        raise NotImplementedError


async def record(request: Request, tracking: TrackingContext, writer: BatchWriter[E, R],
                 call: TrackCall[E, R]) -> Response[Any]:
    """Run a track call: a known bot is answered at once, anyone else's events written."""
    caller = Caller.of(request)
    if is_bot(caller.user_agent, tracking.settings.bot_filter):
        call.count_ignored()
        return TrackAnswer(call.ignored, status_code=200)
    viewer = tracking.identity.resolve(caller.authorization,
                                       request.cookies if caller.cookies else {},
                                       caller.session_key)
    key = await caller.idempotency(request, call.operation_id, viewer)
    written = await writer.write(call.events(caller, viewer), key)
    if not written.replayed:
        call.count(written.results)
    answer = call.answer(written.results)
    if answer is None:
        raise NotFound(NOT_FOUND, _replayed(written.replayed))
    body, status = answer
    return _respond(body, status, viewer, tracking.settings, written.replayed)


def _respond(body: object, status: int, viewer: Viewer, settings: Settings,
             replayed: bool) -> Response[Any]:
    if not viewer.issued_session and not replayed:  # the common case: nothing to add
        return TrackAnswer(content=body, status_code=status)
    cookies = []
    if viewer.issued_session:
        cookies.append(Cookie(
            key=ISSUED_COOKIE, value=viewer.issued_session, max_age=ONE_YEAR, path="/",
            httponly=True, secure=settings.cookie_secure,
            samesite=settings.cookie_samesite,  # type: ignore[arg-type]
        ))
    return TrackAnswer(content=body, status_code=status, cookies=cookies,
                       headers=_replayed(replayed))


def _replayed(replayed: bool) -> dict[str, str]:
    return {REPLAYED_HEADER: "true"} if replayed else {}
