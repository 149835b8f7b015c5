"""The hub's HTTP surface (ARCHITECTURE §10), assembled from one router per resource
(:mod:`hub.api`).

Health, events, incidents (with ``ack``), work orders and their transitions (POST to move,
GET for the audit trail), uploads and evidence, hotspots, stats/KPIs, nodes, the live
stream (SSE from the database's change feed, so every hub worker can serve it), users and
login, Open311 and reports, and the pages. Lists return ``{"items": [...], "next":
cursor-or-null}``; errors return ``{"error": {"status", "code", "message", …}, "detail":
message}``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import Response

from hub.api import (
    events,
    incidents,
    nodes,
    open311,
    pages,
    reports,
    stats,
    uploads,
    users,
    workorders,
)
from hub.api import health as health_api
from hub.api.deps import token_of
from hub.api.errors import ERRORS, install_error_handlers
from hub.core import Core, build_core
from hub.health import HealthMonitor
from hub.objects import S3Objects
from hub.open311 import Intake
from hub.store import Store
from hub.users import LoginGuard, authenticate
from shaobing import __version__
from shaobing.config import HubConfig
from shaobing.http_limits import BodyLimit

__all__ = ["create_app", "build_core", "Core", "CSP"]

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; "
    "media-src 'self' blob:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)


async def _security_headers(request: Request, call_next: Callable[[Request], Any]) -> Response:
    response: Response = await call_next(request)
    response.headers.setdefault("Content-Security-Policy", CSP)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "no-referrer")
    return response


def create_app(
    config: HubConfig,
    store: Store,
    ingest_ready: Callable[[], bool],
    core: Core | None = None,
    metrics: Callable[[], dict[str, Any]] | None = None,
    health: HealthMonitor | None = None,
) -> FastAPI:
    """Build the FastAPI application.

    Args:
        config: hub config.
        store: the database.
        ingest_ready: True once the MQTT subscription is acknowledged.
        core: registry, routing, work orders, incidents (built from the config when None).
        metrics: ingest counters shown in /api/v1/stats and /metrics.
        health: the health monitor behind /healthz (default: database and subscription).
    """
    core = core or build_core(config, store)
    app = FastAPI(
        title="Shaobing hub (哨兵)",
        version=__version__,
        description="Events, incidents and work orders of the town's command centre.",
        responses=ERRORS,
        docs_url=None,  # served from packaged assets: the page's CSP allows no CDN
        redoc_url=None,  # ReDoc fetches its logo from a CDN: the Swagger UI alone is served
    )
    state = app.state
    state.config = config
    state.store = store
    state.core = core
    state.ingest_ready = ingest_ready
    state.metrics = metrics
    state.health = health
    state.intake = Intake(core)
    state.bucket = S3Objects(config.evidence_url) if config.evidence_url else None
    state.stats_cache = {}
    state.authenticate = lambda request: authenticate(
        store, token_of(request) or "", config.auth.token_ttl_days
    )
    state.login_guard = LoginGuard(
        config.auth.login_max_failures, config.auth.login_window_s, config.auth.login_backoff_s
    )
    app.add_middleware(
        BodyLimit,
        default_limit=config.max_body_bytes,
        path_limits=[("/api/v1/uploads", config.upload_max_bytes + 64 * 1024)],
    )
    install_error_handlers(app)
    app.middleware("http")(_security_headers)
    for module in (health_api, events, incidents, workorders):
        app.include_router(module.router)
    app.include_router(pages.rating_router)
    for module in (uploads, stats, nodes, users, open311, reports):
        app.include_router(module.router)
    app.include_router(pages.router)
    return app
