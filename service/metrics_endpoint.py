"""GET /metrics in the Prometheus text format (multiprocess-aware)."""

from __future__ import annotations

from collections.abc import Iterator

from litestar import Response, get
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from psycopg_pool import AsyncConnectionPool

from engagement.exposition import exposition_registry
from service import metrics as service_metrics
from service.dependencies import Injected

DATABASE_UP = "engagement_database_up"
PROBE_TIMEOUT_SECONDS = 1.0


class DatabaseUp(Collector):
    """engagement_database_up, measured at scrape time: no worker has to remember it."""

    def __init__(self, up: bool) -> None:
        self.up = up

    def collect(self) -> Iterator[GaugeMetricFamily]:
        yield GaugeMetricFamily(DATABASE_UP, "1 when the database answered the last probe.",
                                value=1.0 if self.up else 0.0)


async def _database_answers(pool: AsyncConnectionPool) -> bool:
    try:
        async with pool.connection(timeout=PROBE_TIMEOUT_SECONDS) as conn:
            await conn.execute("SELECT 1")
    except Exception:  # any failure is "down"; /metrics itself must still answer
        return False
    return True


@get("/metrics", operation_id="metrics", include_in_schema=False)
async def metrics(pool: Injected[AsyncConnectionPool]) -> Response[bytes]:
    """Prometheus exposition of this service's metrics."""
    probe = CollectorRegistry(auto_describe=False)
    probe.register(DatabaseUp(await _database_answers(pool)))
    service_metrics.BUFFER.flush()  # this worker's own updates, up to the moment
    body = generate_latest(exposition_registry()) + generate_latest(probe)
    return Response(body, media_type=CONTENT_TYPE_LATEST)
