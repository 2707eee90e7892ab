"""Framework ceiling: the service's server and body validation, answering without a database.

Same route, same request Struct (FeedCardIn: the same msgspec validation), same response
Struct and status, served by uvicorn with the service's own options, worker count and
garbage-collector settings. The gap between this and track-click is what identity, bot
filtering, metrics and the database cost.
"""

from __future__ import annotations

import argparse
import sys

from litestar import Litestar, get, post
from litestar.params import JSONBody

from service.gc_tuning import tune_for_serving
from service.tracking.controller import TRACK_CLICK_PATH
from service.tracking.schemas import FeedCardIn, TrackStatus

RECORDED = TrackStatus(status="recorded")


@post(TRACK_CLICK_PATH, status_code=201)
async def track_click(data: JSONBody[FeedCardIn]) -> TrackStatus:
    """Validate the click and answer as if it had been stored."""
    return RECORDED


@get("/healthz")
async def healthz() -> str:
    """Up."""
    return "ok"


def create_app() -> Litestar:
    # The service's garbage-collector settings too (service/gc_tuning.py): same server.
    return Litestar(route_handlers=[track_click, healthz], openapi_config=None,
                    on_startup=[tune_for_serving])


def main(argv: list[str] | None = None) -> int:
    import uvicorn

    from cli.main import server_options

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args(argv)
    uvicorn.run("bench.ceiling_app:create_app", factory=True, host=args.host, port=args.port,
                workers=args.workers, **server_options())  # type: ignore[arg-type]
    return 0


if __name__ == "__main__":
    sys.exit(main())
