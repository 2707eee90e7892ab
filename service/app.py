"""The app factory: all wiring (routes, errors, OpenAPI, lifespan) in one place."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

from litestar import Litestar, Router
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import RedocRenderPlugin
from litestar.openapi.spec import Components, SecurityScheme
from litestar.static_files import create_static_files_router
from litestar.types import ControllerRouterHandler

from engagement.db.pool import make_pool
from engagement.settings import Settings, load_settings
from service import metrics, metrics_endpoint
from service.bots import is_bot
from service.browser_client import cors_config, static_files_router
from service.errors import handle_exception
from service.fastpath import asgi as outermost
from service.fastpath.strict_body import StrictRequest
from service.fingerprint import Fingerprinter
from service.gc_tuning import tune_for_serving
from service.health import healthz, readyz
from service.identity import IdentityResolver
from service.index import index
from service.insights.controller import router as insights_router
from service.internal.auth import ServiceToken
from service.internal.controller import router as internal_router
from service.origins import OriginPolicy
from service.ratelimit import ClientAddress, rate_limit_middleware, rate_limiter
from service.runtime import Runtime
from service.security_headers import add_security_headers
from service.tracking import controller as tracking
from service.tracking.writers import ClickWriter, ImpressionWriter, ViewWriter
from service.trending.controller import list_trending

log = logging.getLogger("engagement.app")
REDOC_DIR = Path(__file__).parent / "vendor" / "redoc"  # ReDoc 2.5.4, see its README.md
REDOC_ASSETS = "/schema/assets"


def create_app(settings: Settings | None = None, *,
               routers: Sequence[ControllerRouterHandler] = ()) -> Litestar:
    """The service; `routers` are mounted beside its own (the demo page, in development)."""
    settings = settings or load_settings()
    limiter = rate_limiter(settings)

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        pool = make_pool(settings)
        # The tracking writers' pool: each kind has at most write_concurrency batches in
        # flight; autocommit with the write budget as every statement's timeout.
        writer_pool = make_pool(settings, min_size=1, max_size=3 * settings.write_concurrency,
                                name="engagement-writer", autocommit=True,
                                statement_timeout_ms=int(settings.write_timeout_seconds * 1000),
                                generic_plans=True)
        # wait=False: the service starts (and /readyz says why) even if the DB is down.
        await pool.open(wait=False)
        await writer_pool.open(wait=False)
        # The rate limiter's flushes: one small statement every 50 ms at most, on a
        # connection of their own so a busy request pool never delays them.
        limiter_pool = limiter_task = None
        if limiter is not None:
            limiter_pool = make_pool(settings, min_size=1, max_size=1,
                                     name="engagement-ratelimit", autocommit=True,
                                     statement_timeout_ms=1000)
            await limiter_pool.open(wait=False)
            limiter_task = asyncio.create_task(limiter.run(limiter_pool),
                                               name="rate-limit-flush")
        is_bot("Mozilla/5.0", settings.bot_filter)  # compiles the patterns before traffic
        runtime = Runtime(
            settings=settings,
            pool=pool,
            identity=IdentityResolver(settings.jwt_secret, settings.session_secret),
            views=ViewWriter(writer_pool, settings),
            clicks=ClickWriter(writer_pool, settings),
            impressions=ImpressionWriter(writer_pool, settings),
            clients=ClientAddress(settings.trusted_proxies),
            fingerprints=(Fingerprinter(settings.session_secret)
                          if settings.views_per_fingerprint > 0 else None),
        )
        app.state.runtime = runtime
        tune_for_serving()  # last: what startup built is frozen
        try:
            yield
        finally:
            if limiter_task is not None:
                limiter_task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await limiter_task
            if limiter_pool is not None:
                await limiter_pool.close()
            await runtime.drain()
            await writer_pool.close()
            await pool.close()

    def app_runtime() -> Runtime:
        # The lifespan's, looked up per request (a restarted lifespan builds a new one).
        return app.state.runtime  # type: ignore[no-any-return]

    app = Litestar(
        route_handlers=[
            *tracking.handlers(app_runtime),
            # The site backend's and the staff's endpoints, behind the service token.
            Router("/", route_handlers=[internal_router, insights_router],
                   guards=[ServiceToken(settings.service_token)]),
            list_trending,
            index,
            healthz,
            readyz,
            metrics_endpoint.metrics,
            static_files_router(),
            *routers,
            create_static_files_router(path=REDOC_ASSETS, directories=[REDOC_DIR],
                                       name="redoc", include_in_schema=False),
        ],
        # What the other handlers may ask for by name (`pool: Injected[...]`); the track
        # handlers get theirs by closure above, as litestar's resolution costs them 5-8 %.
        dependencies={
            "runtime": Provide(app_runtime, sync_to_thread=False),  # /readyz
            "pool": Provide(lambda: app_runtime().pool, sync_to_thread=False),
            "settings": Provide(lambda: settings, sync_to_thread=False),
            "identity": Provide(lambda: app_runtime().identity, sync_to_thread=False),
        },
        cors_config=cors_config(settings),
        lifespan=[lifespan],
        middleware=rate_limit_middleware(settings, limiter),
        request_class=StrictRequest,
        on_shutdown=[metrics.mark_worker_stopped],
        exception_handlers={Exception: handle_exception},
        logging_config=None,  # the process's own (engagement/logs.py), text or JSON
        request_max_body_size=settings.public_max_body_bytes,
        openapi_config=OpenAPIConfig(
            title="Engagement service",
            version="1.0.0",
            description="Views, clicks and likes of projects; hourly counts; trending.",
            path="/schema",
            # ReDoc from our own files (service/vendor/redoc), not a CDN: the page renders
            # offline, and nothing else (Swagger, RapiDoc...) is served from CDNs either.
            render_plugins=[RedocRenderPlugin(path=["/", "/redoc"], google_fonts=False,
                                              js_url=f"{REDOC_ASSETS}/redoc.standalone.js",
                                              favicon="<link rel='icon' href='data:,'>")],
            components=Components(security_schemes={
                "serviceToken": SecurityScheme(type="http", scheme="bearer",
                                               description="ENGAGEMENT_SERVICE_TOKEN"),
                "userToken": SecurityScheme(type="http", scheme="bearer", bearer_format="JWT"),
            }),
        ),
    )
    app.state.origin_policy = OriginPolicy(settings)
    metrics.count_rejections_of(app)
    # Outermost, around litestar's own handler (CORS, exception handling, routing): request
    # metrics and security headers for every answer, in one layer (service/fastpath/asgi.py).
    outermost.install(app, on_start=add_security_headers if settings.security_headers else None)
    return app


def app_from_env() -> Litestar:
    """ASGI entry point for servers started by import string (`service.app:app_from_env`)."""
    return create_app()
