"""A started app has frozen what its startup built and raised the young GC threshold."""

from __future__ import annotations

import gc

from litestar.testing import TestClient

from service.app import create_app
from service.gc_tuning import YOUNG_THRESHOLD


def test_a_started_app_freezes_its_startup_heap_and_collects_less_often(settings):  # type: ignore[no-untyped-def]
    with TestClient(create_app(settings)) as client:
        assert client.get("/healthz").status_code == 200
        assert gc.get_threshold()[0] == YOUNG_THRESHOLD
        # The app, its routes and the modules: tens of thousands of objects.
        assert gc.get_freeze_count() > 10_000
