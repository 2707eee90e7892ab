"""Internal endpoints for the site backend: project registry, likes, imports, erasure."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from litestar import Response, Router, delete, post, put
from litestar.openapi import ResponseSpec
from litestar.params import JSONBody
from psycopg_pool import AsyncConnectionPool

from engagement.settings import Settings
from service import metrics
from service.dependencies import Injected
from service.errors import BadRequest, NotFound, error_responses
from service.identity import IdentityResolver
from service.ids import PathId, parse_path_id
from service.internal import store
from service.internal.schemas import (
    AnonymizedOut,
    ImportClick,
    ImportImpression,
    ImportIn,
    ImportLike,
    ImportOut,
    ImportView,
    LikeIn,
    LikeOut,
    ProjectIn,
    ProjectOut,
)

PROJECT_PATH = "/projects/{project_id:str}"
LIKES_PATH = "/likes/"
IMPORT_PATH = "/events/import"
USER_EVENTS_PATH = "/users/{user_id:str}/events"
FUTURE_SKEW = timedelta(minutes=5)
# 10,000 items with session keys fit well inside; the public endpoints keep 64 KiB.
IMPORT_MAX_BODY_BYTES = 16 * 1024 * 1024
# Answers besides success, declared so the OpenAPI document is complete.
ERRORS = error_responses(400, 401, 404, 413, 503)


@put(PROJECT_PATH, operation_id="upsertProject", responses={
    201: ResponseSpec(ProjectOut, generate_examples=False, description="created"), **ERRORS})
async def upsert_project(pool: Injected[AsyncConnectionPool], project_id: PathId,
                         data: JSONBody[ProjectIn]) -> Response[ProjectOut]:
    """Create or update a trackable project (201 created, 200 updated)."""
    pid = parse_path_id(project_id, "project_id")
    async with pool.connection() as conn:
        created = await store.upsert_project(conn, pid, data.owner_id, data.is_private,
                                             data.created_at)
    return Response(ProjectOut(project_id=pid, status="created" if created else "updated"),
                    status_code=201 if created else 200)


@delete(PROJECT_PATH, operation_id="deleteProject", status_code=204, responses=ERRORS)
async def delete_project(pool: Injected[AsyncConnectionPool], project_id: PathId) -> None:
    """Delete a project and, by cascade, every event and count of it."""
    pid = parse_path_id(project_id, "project_id")
    async with pool.connection() as conn:
        await store.delete_project(conn, pid)


@post(LIKES_PATH, operation_id="recordLike", opt={metrics.EVENT_KIND: "like"}, responses={
    200: ResponseSpec(LikeOut, generate_examples=False, description="no-op: already so"),
    **ERRORS})
async def record_like(pool: Injected[AsyncConnectionPool],
                      data: JSONBody[LikeIn]) -> Response[LikeOut]:
    """Record a like or unlike; a repeat of the current state is a no-op (200)."""
    async with pool.connection() as conn:
        changed = await store.apply_like(conn, data.project_id, data.user_id, data.action)
        if not changed and not await store.project_exists(conn, data.project_id):
            raise NotFound("project not found")
    metrics.count_event(data.action, "internal", "recorded" if changed else "deduplicated")
    if changed:
        return Response(LikeOut(status="recorded"), status_code=201)
    return Response(LikeOut(status="unchanged"), status_code=200)


@post(IMPORT_PATH, operation_id="importEvents", status_code=201,
      request_max_body_size=IMPORT_MAX_BODY_BYTES, responses=ERRORS)
async def import_events(pool: Injected[AsyncConnectionPool], settings: Injected[Settings],
                        identity: Injected[IdentityResolver],
                        data: JSONBody[ImportIn]) -> ImportOut:
    """Backfill history with explicit timestamps; no dedup; unknown projects are skipped."""
    total = len(data.views) + len(data.clicks) + len(data.likes) + len(data.impressions)
    if total == 0:
        raise BadRequest("nothing to import: send at least one of `views`, `clicks`, `likes`, "
                         "`impressions`")
    if total > settings.import_max_items:
        raise BadRequest(f"at most {settings.import_max_items} items per import, got {total}")
    now = datetime.now(UTC)
    oldest = now - timedelta(days=settings.raw_retention_days)
    batches: tuple[tuple[str, Sequence[ImportView | ImportClick | ImportLike
                                       | ImportImpression]], ...] = (
        ("views", data.views), ("clicks", data.clicks), ("likes", data.likes),
        ("impressions", data.impressions))
    for kind, items in batches:
        for index, item in enumerate(items):
            if item.created_at > now + FUTURE_SKEW:
                raise BadRequest(f"`{kind}[{index}].created_at` is in the future")
            if item.created_at < oldest:
                raise BadRequest(
                    f"`{kind}[{index}].created_at` is older than the raw-event retention "
                    f"({settings.raw_retention_days} days)"
                )
    async with pool.connection() as conn, conn.transaction():
        views, clicks, likes, impressions = await store.import_events(
            conn, data, identity.hash_session)
    return ImportOut(views=views, clicks=clicks, likes=likes, impressions=impressions,
                     skipped=total - views - clicks - likes - impressions)


@delete(USER_EVENTS_PATH, operation_id="anonymizeUser", status_code=200,
        responses=ERRORS)
async def anonymize_user(pool: Injected[AsyncConnectionPool], user_id: PathId) -> AnonymizedOut:
    """Detach a deleted user's events from them; the events keep counting."""
    uid = parse_path_id(user_id, "user_id")
    async with pool.connection() as conn, conn.transaction():
        count = await store.anonymize_user(conn, uid)
    return AnonymizedOut(anonymized=count)


router = Router(
    path="/api/v1/internal",
    route_handlers=[upsert_project, delete_project, record_like, import_events, anonymize_user],
    tags=["internal"],
    security=[{"serviceToken": []}],
)
