"""The tracking writers: one BatchWriter per event kind, each bound to the flush that stores it."""

from __future__ import annotations

from typing import Any

from psycopg_pool import AsyncConnectionPool

from engagement.settings import Settings
from service.tracking.store import (
    ClickEvent,
    ImpressionEvent,
    ViewEvent,
    ViewOutcome,
    ViewStore,
    flush_clicks,
    flush_impressions,
)
from service.tracking.writer import BatchWriter


def _bounds(settings: Settings) -> dict[str, Any]:
    """What every writer may hold and spend: batch size, flushes in flight, queue, time."""
    return {"max_batch": settings.write_batch_max, "concurrency": settings.write_concurrency,
            "max_pending": settings.write_queue_max, "timeout": settings.write_timeout_seconds,
            "idempotency_ttl": settings.idempotency_ttl_seconds}


class ViewWriter(BatchWriter[ViewEvent, ViewOutcome]):
    """track-view's views, stored by ViewStore.flush (the dedup window and the view cap)."""

    def __init__(self, pool: AsyncConnectionPool, settings: Settings) -> None:
        store = ViewStore(settings.view_dedup_seconds, settings.views_per_fingerprint)
        super().__init__(pool, store.flush, name="views", **_bounds(settings))


class ClickWriter(BatchWriter[ClickEvent, bool]):
    """track-click's and track-clicks' clicks, stored by flush_clicks."""

    def __init__(self, pool: AsyncConnectionPool, settings: Settings) -> None:
        super().__init__(pool, flush_clicks, name="clicks", **_bounds(settings))


class ImpressionWriter(BatchWriter[ImpressionEvent, bool]):
    """track-impressions' impressions, stored by flush_impressions."""

    def __init__(self, pool: AsyncConnectionPool, settings: Settings) -> None:
        super().__init__(pool, flush_impressions, name="impressions", **_bounds(settings))
