"""GET /metrics in the Prometheus text format (multiprocess-aware)."""

from __future__ import annotations

import os

from litestar import Response, get
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    generate_latest,
    multiprocess,
)


def _registry() -> CollectorRegistry:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return registry
    return REGISTRY


@get("/metrics", operation_id="metrics", include_in_schema=False, sync_to_thread=False)
def metrics() -> Response[bytes]:
    """Prometheus exposition of this service's metrics."""
    return Response(generate_latest(_registry()), media_type=CONTENT_TYPE_LATEST)
