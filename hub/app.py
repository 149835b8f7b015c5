"""The hub's HTTP surface (ARCHITECTURE §10).

Health, events, incidents (with ``ack``), work orders and their transitions (POST to move,
GET for the audit trail), uploads and evidence, hotspots, stats/KPIs, nodes, the live
stream (SSE from the database's change feed, so every hub worker can serve it), users and
login, and the dashboard. Lists return ``{"items": [...], "next": cursor-or-null}``; errors
return ``{"error": {"status", "code", "message", …}, "detail": message}``.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import secrets
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from fastapi import Body, Depends, FastAPI, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import (
    FileResponse,
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    Response,
    StreamingResponse,
)
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from starlette.exceptions import HTTPException as StarletteHTTPException

from hub import schema
from hub.health import CAUSES, HealthMonitor
from hub.incidents import IncidentEngine
from hub.objects import S3_PREFIX, S3Objects
from hub.registry import Registry, as_dict, empty_registry, load_registry
from hub.routing import Router
from hub.stats import kpis
from hub.store import Store
from hub.users import (
    ANONYMOUS,
    ROLE_ACTIONS,
    LoginGuard,
    Principal,
    authenticate,
    create_user,
    list_users,
    login,
    logout,
)
from hub.workorders import Forbidden, Invalid, NotFound, TransitionRefused, WorkOrders
from shaobing import __version__
from shaobing.config import HubConfig
from shaobing.http_limits import BodyLimit
from shaobing.taxonomy import Taxonomy, default_taxonomy, load_taxonomy

STATIC = Path(__file__).resolve().parent / "static"

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; "
    "media-src 'self' blob:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)

STATS_TTL_S = 2.0
DOCS_ASSETS = frozenset({"swagger-ui-bundle.js", "swagger-ui.css", "favicon.png"})


def docs_assets() -> Path | None:
    """The folder of the Swagger UI and ReDoc files (the ``fastapi-offline`` package)."""
    try:
        import fastapi_offline
    except ImportError:
        return None
    return Path(fastapi_offline.__file__).resolve().parent / "static"


_RATING_CODE = re.compile(r"^[A-Za-z0-9_\-]{6,24}$")
_STATIC_NAME = re.compile(r"^[A-Za-z0-9_\-][A-Za-z0-9_.\-]{0,127}$")

UPLOAD_TYPES: dict[str, tuple[str, tuple[bytes, ...]]] = {
    "image/jpeg": (".jpg", (b"\xff\xd8\xff",)),
    "image/png": (".png", (b"\x89PNG\r\n\x1a\n",)),
    "image/webp": (".webp", (b"RIFF",)),
}


@dataclass
class Core:
    """The hub's parts, built once from the config."""

    config: HubConfig
    store: Store
    taxonomy: Taxonomy
    registry: Registry
    router: Router
    orders: WorkOrders
    incidents: IncidentEngine


def check_codes(config: HubConfig, taxonomy: Taxonomy) -> None:
    """Routing and SLA rules name only codes of the taxonomy (ConfigError otherwise)."""
    from shaobing.config import ConfigError, ConfigIssue

    families = {t.family for t in taxonomy.types.values()}
    where = str(config.resolve("hub config"))
    issues = []
    groups: tuple[tuple[str, Sequence[Any]], ...] = (
        ("routing", config.routing.rules),
        ("sla", config.sla.rules),
    )
    for kind, rules in groups:
        for i, rule in enumerate(rules):
            if rule.type is not None and rule.type not in taxonomy:
                issues.append(
                    ConfigIssue(
                        file=where,
                        line=None,
                        path=f"{kind}.rules.{i}.type",
                        message=f"expected a taxonomy code, found {rule.type!r}",
                    )
                )
            fam = getattr(rule, "family", None)
            if fam is not None and fam not in families:
                issues.append(
                    ConfigIssue(
                        file=where,
                        line=None,
                        path=f"{kind}.rules.{i}.family",
                        message=f"expected a taxonomy family ({', '.join(sorted(families))}), found {fam!r}",
                    )
                )
            board = getattr(rule, "board", None)
            if board is not None and board not in taxonomy.boards:
                issues.append(
                    ConfigIssue(
                        file=where,
                        line=None,
                        path=f"{kind}.rules.{i}.board",
                        message=f"expected a board ({', '.join(taxonomy.boards)}), found {board!r}",
                    )
                )
    if issues:
        raise ConfigError(issues)


def build_core(config: HubConfig, store: Store) -> Core:
    """Registry, taxonomy, routing, work orders and incidents for a config."""
    taxonomy = (
        load_taxonomy(config.resolve(config.taxonomy)) if config.taxonomy else default_taxonomy()
    )
    registry = (
        load_registry(config.resolve(config.registry)) if config.registry else empty_registry()
    )
    check_codes(config, taxonomy)
    router = Router(config.routing, taxonomy, registry)
    orders = WorkOrders(store, config, registry, router, taxonomy)
    incidents = IncidentEngine(store, config, registry, orders, taxonomy)
    return Core(config, store, taxonomy, registry, router, orders, incidents)


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip()
    return None


SESSION_COOKIE = "sb_session"
CSRF_HEADER = "x-shaobing-csrf"


def _cookie_token(request: Request) -> str | None:
    """The web session token from the HttpOnly cookie.

    A cookie-authenticated mutation must also carry the ``X-Shaobing-CSRF`` header (a
    cross-site form cannot set it; a cross-site script cannot without a CORS preflight).
    """
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    if request.method not in ("GET", "HEAD", "OPTIONS") and not request.headers.get(CSRF_HEADER):
        return None
    return token


def _token(request: Request) -> str | None:
    return _bearer(request) or _cookie_token(request)


def principal_of(request: Request) -> Principal | None:
    """The authenticated user of a request (bearer token, else session cookie), or None."""
    token = _token(request)
    if not token:
        return None
    checker = getattr(request.app.state, "authenticate", None)
    return checker(request) if checker is not None else None


def require_reader(request: Request) -> Principal:
    """Reads are open to anonymous users only where ``auth.anonymous_read`` says so."""
    user = principal_of(request)
    if user is not None:
        return user
    if _bearer(request):
        raise HTTPException(
            status_code=401,
            detail="invalid or expired token",
            headers={"WWW-Authenticate": "Bearer"},
        )
    config: HubConfig = request.app.state.config
    if config.auth.anonymous_read:
        return ANONYMOUS
    raise HTTPException(
        status_code=401,
        detail="login required (auth.anonymous_read is off)",
        headers={"WWW-Authenticate": "Bearer"},
    )


def require_actor(request: Request) -> Principal:
    """Mutations need a bearer token."""
    user = principal_of(request)
    if user is None:
        raise HTTPException(
            status_code=401,
            detail="login required: send Authorization: Bearer <token>",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return user


Read = Annotated[Principal, Depends(require_reader)]
Act = Annotated[Principal, Depends(require_actor)]


def events_in_scope(user: Principal, registry: Registry) -> Any:
    """SQL filter: the events of incidents the user may see (None: no filter)."""
    where = user.where(
        schema.incidents, registry.scope_of(user.scope_id) if user.scope_id else None
    )
    if where is None:
        return None
    return schema.events.c.incident_id.in_(select(schema.incidents.c.id).where(where))


def _cursor(cursor: str | None) -> int | None:
    if not cursor:
        return None
    try:
        if not (cursor.isascii() and cursor.isdigit()):
            raise ValueError(cursor)
        value = int(cursor)
        if not 0 <= value < 2**63:  # a database integer
            raise ValueError(cursor)
        return value
    except ValueError:
        raise HTTPException(
            status_code=400,
            detail=f"cursor: expected the `next` value of a previous page, found {cursor!r}",
        ) from None


class Page(BaseModel):
    """A page of a list: ``next`` is the cursor of the following page, or null."""

    items: list[dict[str, Any]] = Field(description="the items, newest first")
    next: str | None = Field(description="pass as `cursor` for the next page; null on the last")


def _page(items: list[dict[str, Any]], nxt: int | None) -> Response:
    body = json.dumps(
        {"items": items, "next": str(nxt) if nxt is not None else None},
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return Response(body, media_type="application/json")


def _error(status: int, message: str, **extra: Any) -> JSONResponse:
    codes = {
        400: "bad_request",
        401: "unauthorized",
        403: "forbidden",
        404: "not_found",
        409: "conflict",
        413: "too_large",
        415: "unsupported_media_type",
        422: "invalid",
        429: "too_many_requests",
        503: "unavailable",
    }
    body = {
        "error": {
            "status": status,
            "code": codes.get(status, "error"),
            "message": message,
            **extra,
        },
        "detail": message,
    }
    return JSONResponse(body, status_code=status)


class ErrorDetail(BaseModel):
    """What went wrong; 409s also carry ``state``, ``action`` and ``allowed``, 422s ``issues``."""

    model_config = ConfigDict(extra="allow")
    status: int = Field(description="HTTP status")
    code: str = Field(
        description="bad_request, unauthorized, forbidden, not_found, conflict, too_large, unsupported_media_type, invalid"
    )
    message: str = Field(description="expected … found …")


class ErrorBody(BaseModel):
    """Every error response has this shape."""

    error: ErrorDetail = Field(description="the error")
    detail: str = Field(description="the message again (FastAPI clients read `detail`)")


ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody} for code in (400, 401, 403, 404, 409, 413, 415, 422)
}


class TransitionIn(BaseModel):
    """One action on a work order."""

    model_config = ConfigDict(extra="forbid")

    action: str = Field(
        description="track, false_alarm, screen, dispatch, escalate, reassign, accept, handle, verify, rework, rate, close, reopen"
    )
    note: str = Field(default="", max_length=4000, description="what was done or seen")
    photos: list[str] = Field(
        default_factory=list, max_length=32, description="upload ids (POST /api/v1/uploads)"
    )
    rating: int | None = Field(default=None, description="rate: 1–5")
    assignee_id: str | None = Field(default=None, description="dispatch/reassign: person id")
    level: str | None = Field(default=None, description="screen: level override")
    board: str | None = Field(default=None, description="screen: board override")
    grid_id: str | None = Field(
        default=None, description="screen: place an unplaced order in a grid"
    )
    reason: str | None = Field(
        default=None,
        description="false_alarm: why (鸟, 树影, 光照, 水面反光, 人员正常活动, 设备故障, 其他)",
    )


class RatingIn(BaseModel):
    """The citizen's rating of a handled order (from the rating link)."""

    model_config = ConfigDict(extra="forbid")
    rating: int = Field(ge=1, le=5, description="1 (very unsatisfied) … 5 (very satisfied)")
    comment: str = Field(default="", max_length=500, description="what the citizen says")


class SplitIn(BaseModel):
    """Take a wrongly merged event out of an incident."""

    model_config = ConfigDict(extra="forbid")
    event_id: str = Field(min_length=1, max_length=64, description="the event to take out")
    node_id: str | None = Field(
        default=None, max_length=64, description="its node (when several nodes used the id)"
    )
    note: str = Field(default="", max_length=1000, description="why")


class AckIn(BaseModel):
    """Acknowledge a red incident."""

    model_config = ConfigDict(extra="forbid")
    note: str = Field(default="", max_length=1000, description="optional note")


class LoginIn(BaseModel):
    """Web login."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=64, description="login name")
    password: str = Field(min_length=1, max_length=256, description="password")


class UserIn(BaseModel):
    """A new user (admin only)."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9_.@\-]+$",
        description="login name (a registry person id links the user to that person)",
    )
    role: str = Field(description="admin, command_centre, board_handler, grid_worker or viewer")
    scope: str | None = Field(default=None, description="district/town/community/grid id")
    board: str | None = Field(default=None, description="board code (board handlers)")
    password: str | None = Field(
        default=None, max_length=256, description="password for the web login"
    )


class SuppressIn(BaseModel):
    """Suppress or release a noisy source."""

    model_config = ConfigDict(extra="forbid")
    source: str = Field(min_length=1, max_length=400, description="node/device/pipeline")
    hours: float = Field(ge=0, le=24 * 90, description="0 releases")
    reason: str = Field(default="", max_length=500, description="why")


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
        docs_url=None,  # served below from packaged assets: the page's CSP allows no CDN
        redoc_url=None,  # ReDoc fetches its logo from a CDN: the Swagger UI alone is served
    )
    app.state.config = config
    app.state.store = store
    app.state.core = core
    app.state.authenticate = lambda request: authenticate(
        store, _token(request) or "", config.auth.token_ttl_days
    )
    app.add_middleware(
        BodyLimit,
        default_limit=config.max_body_bytes,
        path_limits=[("/api/v1/uploads", config.upload_max_bytes + 64 * 1024)],
    )
    guard = LoginGuard(
        config.auth.login_max_failures, config.auth.login_window_s, config.auth.login_backoff_s
    )
    app.state.login_guard = guard
    orders, incidents, registry = core.orders, core.incidents, core.registry

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        resp = _error(exc.status_code, str(exc.detail))
        for k, v in (exc.headers or {}).items():
            resp.headers[k] = v
        return resp

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        issues = [
            {"loc": ".".join(str(p) for p in e.get("loc", ())), "message": e.get("msg", "")}
            for e in exc.errors()
        ]
        return _error(
            422,
            "; ".join(f"{i['loc']}: {i['message']}" for i in issues) or "invalid request",
            issues=issues,
        )

    @app.exception_handler(TransitionRefused)
    async def refused(request: Request, exc: TransitionRefused) -> JSONResponse:
        return _error(409, str(exc), state=exc.state, action=exc.action, allowed=exc.allowed)

    @app.exception_handler(Forbidden)
    async def forbidden(request: Request, exc: Forbidden) -> JSONResponse:
        return _error(403, str(exc))

    @app.exception_handler(NotFound)
    async def not_found(request: Request, exc: NotFound) -> JSONResponse:
        return _error(404, str(exc))

    @app.exception_handler(Invalid)
    async def invalid(request: Request, exc: Invalid) -> JSONResponse:
        return _error(422, str(exc))

    @app.middleware("http")
    async def security_headers(request: Request, call_next: Callable[[Request], Any]) -> Response:
        response: Response = await call_next(request)
        response.headers.setdefault("Content-Security-Policy", CSP)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "no-referrer")
        return response

    def staff(user: Principal) -> None:
        if user.role not in ("admin", "command_centre"):
            raise HTTPException(
                status_code=403, detail=f"role {user.role!r}: expected admin or command_centre"
            )

    def evidence_visible(user: Principal, node_id: str, evidence_id: str) -> bool:
        """True when an incident the user may see holds this evidence."""
        where = user.where(
            schema.incidents, registry.scope_of(user.scope_id) if user.scope_id else None
        )
        if where is None:
            return True
        if node_id == "hub":  # a photo uploaded at the hub: the upload's own rules apply
            with store.engine.connect() as conn:
                up = conn.execute(
                    select(schema.uploads).where(schema.uploads.c.id == evidence_id)
                ).first()
            if up is not None and up.uploaded_by == user.name:
                return True
        i = schema.incidents
        needle = f'%"id":"{evidence_id}"%'
        with store.engine.connect() as conn:
            rows = conn.execute(
                select(i.c.evidence).where(where, i.c.evidence.like(needle)).limit(20)
            ).all()
        for row in rows:
            for item in json.loads(row.evidence):
                if item.get("id") == evidence_id and item.get("node_id") in (node_id, None):
                    return True
        return False

    def visible_changes(user: Principal, changes: list[dict[str, Any]]) -> set[str]:
        """The ids among a change-feed batch that the user may see (incidents, orders)."""
        level = registry.scope_of(user.scope_id) if user.scope_id else None
        out: set[str] = set()
        for kind, table in (("incident", schema.incidents), ("work_order", schema.work_orders)):
            ids = [c["ref_id"] for c in changes if c["kind"] == kind]
            if not ids:
                continue
            q = select(table.c.id).where(table.c.id.in_(ids))
            where = user.where(table, level)
            if where is not None:
                q = q.where(where)
            with store.engine.connect() as conn:
                out.update(str(r[0]) for r in conn.execute(q))
        return out

    def event_scope(user: Principal) -> Any:
        return events_in_scope(user, registry)

    # ------------------------------------------------------------------ health

    @app.get("/healthz", tags=["health"])
    def healthz() -> JSONResponse:
        if health is not None:
            ok, body = health.report()
        else:
            db_ok, mqtt_ok = store.is_migrated(), ingest_ready()
            ok = db_ok and mqtt_ok
            body = {
                "status": "ok" if ok else "unavailable",
                "database": db_ok,
                "mqtt_subscribed": mqtt_ok,
                "reasons": [],
            }
        body["version"] = __version__
        return JSONResponse(body, status_code=200 if ok else 503)

    @app.get("/metrics", tags=["health"], response_class=PlainTextResponse)
    def prometheus() -> PlainTextResponse:
        return PlainTextResponse(
            render_metrics(metrics() if metrics else {}, health, ingest_ready()),
            media_type="text/plain; version=0.0.4",
        )

    # ------------------------------------------------------------------ events

    @app.get("/api/v1/events", tags=["events"], response_model=Page)
    def list_events(
        user: Read,
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
        cursor: Annotated[str | None, Query(description="`next` of the previous page")] = None,
        type: str | None = None,
        node_id: str | None = None,
        severity: str | None = None,
        grid_id: str | None = None,
        incident_id: str | None = None,
    ) -> Response:
        items, nxt = store.list_events(
            limit,
            _cursor(cursor),
            type,
            node_id,
            severity,
            grid_id,
            incident_id=incident_id,
            where=event_scope(user),
        )
        return _page(items, nxt)

    @app.get("/api/v1/events/{event_id}", tags=["events"])
    def get_event(
        event_id: str,
        user: Read,
        node_id: Annotated[
            str | None, Query(description="the node that sent it (ids are unique per node)")
        ] = None,
    ) -> dict[str, Any]:
        found = store.get_events(event_id, node_id)
        if not found:
            raise HTTPException(status_code=404, detail=f"event {event_id!r} not found")
        if len(found) > 1:
            nodes = sorted({str(f.get("source", {}).get("node_id")) for f in found})
            raise HTTPException(
                status_code=409,
                detail=f"event id {event_id!r} is used by the nodes {', '.join(nodes)}: "
                "expected ?node_id= to say which",
            )
        item = found[0]
        if user.where(schema.incidents) is not None and item.get("incident_id"):
            incidents.get(item["incident_id"], user)  # 404 when out of scope
        return item

    @app.get("/api/v1/dead-letters", tags=["events"])
    def dead_letters(user: Read, limit: Annotated[int, Query(ge=1, le=500)] = 50) -> dict[str, Any]:
        staff(user)
        return {"items": store.list_dead_letters(limit), "next": None}

    # ------------------------------------------------------------------ incidents

    @app.get("/api/v1/incidents", tags=["incidents"], response_model=Page)
    def list_incidents(
        user: Read,
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
        cursor: str | None = None,
        state: str | None = None,
        type: str | None = None,
        severity: str | None = None,
        grid_id: str | None = None,
        pinned: bool | None = None,
    ) -> Response:
        items, nxt = incidents.list(
            user, limit, _cursor(cursor), state, type, severity, grid_id, pinned
        )
        return _page(items, nxt)

    @app.get("/api/v1/incidents/{incident_id}", tags=["incidents"])
    def get_incident(incident_id: str, user: Read) -> dict[str, Any]:
        return incidents.get(incident_id, user)

    @app.post("/api/v1/incidents/{incident_id}/ack", tags=["incidents"])
    def ack_incident(
        incident_id: str, user: Act, body: Annotated[AckIn | None, Body()] = None
    ) -> dict[str, Any]:
        return incidents.acknowledge(incident_id, user, body.note if body else "")

    @app.post("/api/v1/incidents/{incident_id}/split", tags=["incidents"], status_code=201)
    def split_incident(incident_id: str, user: Act, body: SplitIn) -> dict[str, Any]:
        return incidents.split(incident_id, body.event_id, user, body.node_id, body.note)

    # ------------------------------------------------------------------ work orders

    @app.get("/api/v1/work-orders", tags=["work orders"], response_model=Page)
    def list_orders(
        user: Read,
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
        cursor: str | None = None,
        state: str | None = None,
        board: str | None = None,
        level: str | None = None,
        grid_id: str | None = None,
        assignee_id: str | None = None,
        severity: str | None = None,
        screening: bool | None = None,
        incident_id: str | None = None,
        mine: Annotated[bool, Query(description="only orders assigned to me")] = False,
    ) -> Response:
        if mine:
            assignee_id = user.ident
        items, nxt = orders.list(
            user,
            limit,
            _cursor(cursor),
            state,
            board,
            level,
            grid_id,
            assignee_id,
            severity,
            screening,
            incident_id,
        )
        return _page(items, nxt)

    @app.get("/api/v1/work-orders/{wo_id}", tags=["work orders"])
    def get_order(wo_id: str, user: Read) -> dict[str, Any]:
        out = orders.get(wo_id, user)
        out["my_actions"] = [a for a in out["allowed"] if user.may(a)]
        return out

    # ------------------------------------------------------------------ citizen rating

    @app.get("/r/{code}", response_class=HTMLResponse, include_in_schema=False)
    def rate_page(code: str) -> HTMLResponse:
        return HTMLResponse((STATIC / "rate.html").read_text(encoding="utf-8"))

    @app.get("/api/v1/ratings/{code}", tags=["work orders"])
    def rating_view(code: str) -> dict[str, Any]:
        found = orders.by_rating_code(code) if _RATING_CODE.match(code) else None
        if found is None:
            raise HTTPException(status_code=404, detail="评价链接无效或已失效")
        return found

    @app.post("/api/v1/ratings/{code}", tags=["work orders"])
    def rate_by_citizen(code: str, body: RatingIn) -> dict[str, Any]:
        found = orders.by_rating_code(code) if _RATING_CODE.match(code) else None
        if found is None:
            raise HTTPException(status_code=404, detail="评价链接无效或已失效")
        if not found["can_rate"]:
            raise HTTPException(
                status_code=409,
                detail=f"此工单当前为「{found['step']}」，暂不能评价（核查通过后才能评价）",
            )
        citizen = Principal(name=f"citizen:{code[:4]}", role="system")
        orders.transition(found["id"], "rate", citizen, body.comment, (), {"rating": body.rating})
        return orders.by_rating_code(code) or {}

    @app.get("/api/v1/work-orders/{wo_id}/transitions", tags=["work orders"])
    def order_transitions(wo_id: str, user: Read) -> dict[str, Any]:
        return {"items": orders.audit_trail(wo_id, user), "next": None}

    @app.post("/api/v1/work-orders/{wo_id}/transitions", tags=["work orders"])
    def transition(wo_id: str, body: TransitionIn, user: Act) -> dict[str, Any]:
        data = {
            k: v
            for k, v in body.model_dump().items()
            if k in ("rating", "assignee_id", "level", "board", "grid_id", "reason")
            and v is not None
        }
        return orders.transition(wo_id, body.action, user, body.note, body.photos, data)

    # ------------------------------------------------------------------ uploads and evidence

    @app.post("/api/v1/uploads", tags=["evidence"], status_code=201)
    async def upload(
        request: Request, user: Act, work_order_id: str | None = None
    ) -> dict[str, Any]:
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype not in UPLOAD_TYPES:
            raise HTTPException(
                status_code=415,
                detail=f"content type: expected one of {', '.join(UPLOAD_TYPES)}, found {ctype or 'none'!r}",
            )
        limit = config.upload_max_bytes
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > limit:
            raise HTTPException(
                status_code=413, detail=f"upload: expected at most {limit} bytes, found {declared}"
            )
        buf = bytearray()
        async for chunk in request.stream():
            buf.extend(chunk)
            if len(buf) > limit:
                raise HTTPException(
                    status_code=413, detail=f"upload: expected at most {limit} bytes, found more"
                )
        data = bytes(buf)
        ext, magics = UPLOAD_TYPES[ctype]
        if (
            not data
            or not any(data.startswith(m) for m in magics)
            or (ctype == "image/webp" and data[8:12] != b"WEBP")
        ):
            raise HTTPException(
                status_code=415, detail=f"upload: expected {ctype} bytes, found something else"
            )
        if work_order_id:
            orders.get(work_order_id, user)
        digest = hashlib.sha256(data).hexdigest()
        up_id = secrets.token_hex(16)
        folder = config.resolve(config.evidence_dir) / "uploads"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{up_id}{ext}"
        await asyncio.to_thread(path.write_bytes, data)
        with store.write() as conn:
            conn.execute(
                schema.uploads.insert().values(
                    id=up_id,
                    work_order_id=work_order_id,
                    content_type=ctype,
                    bytes=len(data),
                    sha256=digest,
                    path=str(path),
                    uploaded_by=user.name,
                    created_at=store.now(),
                )
            )
            store.audit(
                conn,
                user.name,
                "upload",
                f"upload:{up_id}",
                {"bytes": len(data), "work_order_id": work_order_id},
            )
        return {"id": up_id, "content_type": ctype, "bytes": len(data), "sha256": digest}

    @app.get("/api/v1/uploads/{upload_id}", tags=["evidence"])
    def get_upload(upload_id: str, user: Read) -> FileResponse:
        with store.engine.connect() as conn:
            r = conn.execute(select(schema.uploads).where(schema.uploads.c.id == upload_id)).first()
        if r is None or not Path(r.path).exists():
            raise HTTPException(status_code=404, detail=f"upload {upload_id!r} not found")
        if r.work_order_id:
            orders.get(r.work_order_id, user)  # 404 outside the viewer's scope
        elif user.role not in ("admin", "command_centre") and user.name != r.uploaded_by:
            # not attached to an order yet: only its uploader and the command centre
            raise HTTPException(status_code=404, detail=f"upload {upload_id!r} not found")
        return FileResponse(r.path, media_type=r.content_type)

    bucket = S3Objects(config.evidence_url) if config.evidence_url else None

    @app.get("/api/v1/evidence/{evidence_id}", tags=["evidence"], response_model=None)
    def evidence(
        evidence_id: str,
        user: Read,
        node_id: Annotated[
            str, Query(min_length=1, description="the node that sent it (ids are per node)")
        ],
    ) -> Response:
        rec = store.get_evidence(node_id, evidence_id)
        if rec is not None and not evidence_visible(user, node_id, evidence_id):
            rec = None  # evidence follows the scope of the incident it belongs to
        if rec is not None and bucket is not None and rec["path"].startswith(S3_PREFIX):
            try:
                data = bucket.get(rec["path"])
            except Exception as exc:  # the object store is down or the object is gone
                raise HTTPException(
                    status_code=404, detail=f"evidence {evidence_id!r} not available: {exc}"
                ) from None
            return Response(data, media_type=_sniff(data))
        if rec is None or not Path(rec["path"]).exists():
            raise HTTPException(status_code=404, detail=f"evidence {evidence_id!r} not found")
        return FileResponse(rec["path"], media_type=_sniff(_head(rec["path"])))

    # ------------------------------------------------------------------ hotspots, stats, nodes

    @app.get("/api/v1/hotspots", tags=["stats"])
    def hotspots(
        user: Read,
        limit: Annotated[int, Query(ge=1, le=500)] = 100,
        since_days: float | None = None,
    ) -> dict[str, Any]:
        return {"items": incidents.list_hotspots(user, limit, since_days), "next": None}

    stats_cache: dict[tuple[str, str | None, str | None], tuple[float, dict[str, Any]]] = {}

    @app.get("/api/v1/stats", tags=["stats"])
    def stats(user: Read) -> dict[str, Any]:
        # aggregates over the whole database: recomputed at most every STATS_TTL_S per scope
        key = (user.role, user.scope_id, user.board)
        hit = stats_cache.get(key)
        if hit is not None and time.monotonic() - hit[0] < STATS_TTL_S:
            return hit[1]
        where = event_scope(user)  # computed within the viewer's scope
        out: dict[str, Any] = {
            "events_total": store.count_events(where),
            "events_by_type": store.counts_by("type", where),
            "events_by_severity": store.counts_by("severity", where),
            "events_by_node": store.counts_by("node_id", where),
        }
        if user.role in ("admin", "command_centre", "system"):
            out["dead_letters_total"] = store.count_dead_letters()
        out.update(
            kpis(
                store,
                user,
                config.timezone,
                scope_level=registry.scope_of(user.scope_id) if user.scope_id else None,
            )
        )
        out["false_alarms"] = {f"{d}d": orders.false_alarm_stats(user, float(d)) for d in (7, 30)}
        if metrics is not None and user.role in ("admin", "command_centre", "system"):
            out["ingest"] = metrics()
        if len(stats_cache) > 256:
            stats_cache.clear()
        stats_cache[key] = (time.monotonic(), out)
        return out

    @app.get("/api/v1/nodes", tags=["nodes"])
    def nodes(user: Read) -> dict[str, Any]:
        return {"items": store.list_nodes(), "next": None}

    @app.get("/api/v1/sources", tags=["nodes"])
    def sources(user: Read) -> dict[str, Any]:
        staff(user)
        return {"items": orders.sources(), "next": None}

    @app.post("/api/v1/sources/suppress", tags=["nodes"])
    def suppress(body: SuppressIn, user: Act) -> dict[str, Any]:
        staff(user)
        return orders.set_suppression(body.source, body.hours, user, body.reason)

    @app.get("/api/v1/registry", tags=["registry"])
    def registry_view(user: Read) -> dict[str, Any]:
        return as_dict(registry)

    # ------------------------------------------------------------------ users

    @app.post("/api/v1/login", tags=["users"])
    def do_login(
        body: LoginIn,
        request: Request,
        response: Response,
        cookie: Annotated[
            bool, Query(description="also set the HttpOnly SameSite=Strict session cookie")
        ] = False,
    ) -> dict[str, Any]:
        address = request.client.host if request.client else ""
        wait = guard.retry_after(f"name:{body.name}", f"addr:{address}")
        if wait is not None:
            raise HTTPException(
                status_code=429,
                detail=f"too many failed logins: try again in {wait:.0f} s",
                headers={"Retry-After": str(max(1, int(wait + 0.999)))},
            )
        res = login(store, body.name, body.password, config.auth.session_ttl_h, address, guard)
        if res is None:
            raise HTTPException(status_code=401, detail="wrong name or password")
        token, who = res
        if cookie:
            secure = config.auth.secure_cookies
            response.set_cookie(
                SESSION_COOKIE,
                token,
                max_age=int(config.auth.session_ttl_h * 3600),
                httponly=True,
                samesite="strict",
                path="/",
                secure=request.url.scheme == "https" if secure is None else secure,
            )
        return {
            "token": None if cookie else token,
            "user": {
                "name": who.name,
                "role": who.role,
                "scope_id": who.scope_id,
                "board": who.board,
            },
        }

    @app.post("/api/v1/logout", tags=["users"])
    def do_logout(request: Request, response: Response) -> dict[str, Any]:
        revoked = logout(store, _bearer(request) or request.cookies.get(SESSION_COOKIE) or "")
        response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")
        return {"ok": True, "revoked": revoked}

    @app.get("/api/v1/me", tags=["users"])
    def me(user: Read) -> dict[str, Any]:
        return {
            "name": user.name,
            "role": user.role,
            "scope_id": user.scope_id,
            "board": user.board,
            "person_id": user.person_id,
            "anonymous": user is ANONYMOUS,
            "actions": sorted(ROLE_ACTIONS.get(user.role, frozenset())),
        }

    @app.get("/api/v1/users", tags=["users"])
    def users(user: Act) -> dict[str, Any]:
        if user.role != "admin":
            raise HTTPException(status_code=403, detail="role: expected admin")
        return {"items": list_users(store), "next": None}

    @app.post("/api/v1/users", tags=["users"], status_code=201)
    def add_user(body: UserIn, user: Act) -> dict[str, Any]:
        if user.role != "admin":
            raise HTTPException(status_code=403, detail="role: expected admin")
        try:
            token = create_user(
                store,
                body.name,
                body.role,
                body.scope,
                body.board,
                body.password,
                registry,
                actor=user.name,
            )
        except ValueError as exc:
            raise HTTPException(status_code=422, detail=str(exc)) from None
        return {"name": body.name, "token": token}

    @app.get("/api/v1/audit", tags=["users"])
    def audit(
        user: Act, target: str | None = None, limit: Annotated[int, Query(ge=1, le=1000)] = 100
    ) -> dict[str, Any]:
        staff(user)
        return {"items": store.list_audit(target, limit), "next": None}

    # ------------------------------------------------------------------ live stream

    @app.get("/api/v1/stream", tags=["events"])
    async def stream(request: Request, user: Read) -> StreamingResponse:
        where = event_scope(user)
        scoped = where is not None

        async def feed() -> AsyncIterator[bytes]:
            last_event = await asyncio.to_thread(store.last_seq, "events")
            last_change = await asyncio.to_thread(store.last_seq, "changes")
            yield b": connected\n\n"
            idle = 0
            visible: set[str] = set()
            while not await request.is_disconnected():
                await asyncio.sleep(0.25)
                fresh = await asyncio.to_thread(store.events_after, last_event, 100, where)
                changes = await asyncio.to_thread(store.list_changes, last_change, 200)
                for seq, item in fresh:
                    last_event = seq
                    yield f"id: e{seq}\nevent: event\ndata: {json.dumps(item, ensure_ascii=False)}\n\n".encode()
                if changes and scoped:
                    visible = await asyncio.to_thread(visible_changes, user, changes)
                for ch in changes:
                    last_change = ch["seq"]
                    if scoped and ch["ref_id"] not in visible:
                        continue  # another grid's incident or order
                    yield f"id: c{ch['seq']}\nevent: {ch['kind']}\ndata: {json.dumps({'id': ch['ref_id'], **ch['data']}, ensure_ascii=False)}\n\n".encode()
                if fresh or changes:
                    idle = 0
                else:
                    idle += 1
                    if idle % 60 == 0:
                        yield b": keep-alive\n\n"

        return StreamingResponse(
            feed(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"}
        )

    # ------------------------------------------------------------------ pages

    from hub.open311 import open311_router

    app.include_router(open311_router(core))
    from hub.labelled import labelled_router

    app.include_router(labelled_router(core))

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def dashboard() -> HTMLResponse:
        return HTMLResponse((STATIC / "index.html").read_text(encoding="utf-8"))

    @app.get("/m/", response_class=HTMLResponse, include_in_schema=False)
    def mobile() -> HTMLResponse:
        return HTMLResponse((STATIC / "mobile.html").read_text(encoding="utf-8"))

    @app.get("/docs", response_class=HTMLResponse, include_in_schema=False)
    def docs() -> HTMLResponse:
        return HTMLResponse((STATIC / "docs.html").read_text(encoding="utf-8"))

    @app.get("/docs-assets/{name}", include_in_schema=False)
    def docs_asset(name: str) -> FileResponse:
        folder = docs_assets()
        if name not in DOCS_ASSETS or folder is None or not (folder / name).is_file():
            raise HTTPException(status_code=404, detail="not found")
        return FileResponse(folder / name)

    @app.get("/static/{name}", include_in_schema=False)
    def static(name: str) -> FileResponse:
        if not _STATIC_NAME.match(name):
            raise HTTPException(status_code=404, detail="not found")
        path = (STATIC / name).resolve()
        if path.parent != STATIC or not path.is_file():
            raise HTTPException(status_code=404, detail="not found")
        return FileResponse(path)

    return app


def _sniff(head: bytes) -> str:
    """Content type of evidence bytes from their first bytes (files are named by hash only)."""
    if head.startswith(b"\xff\xd8"):
        return "image/jpeg"
    if head.startswith(b"\x89PNG"):
        return "image/png"
    if head.startswith(b"RIFF") and head[8:12] == b"AVI ":
        return "video/x-msvideo"
    if head.startswith(b"RIFF") and head[8:12] == b"WAVE":
        return "audio/wav"
    if head[4:8] == b"ftyp":
        return "video/mp4"
    return "application/octet-stream"


def _head(path: str) -> bytes:
    """The first bytes of a file."""
    with open(path, "rb") as fh:
        return fh.read(16)


def render_metrics(counters: dict[str, Any], health: HealthMonitor | None, subscribed: bool) -> str:
    """Prometheus text: ingest counters and the health causes (current and how often)."""
    lines: list[str] = []
    for name, value in sorted(counters.items()):
        if not isinstance(value, int | float):
            continue
        metric = f"shaobing_hub_ingest_{name}"
        kind = "gauge" if name in ("queue", "ready", "last_commit_ms") else "counter"
        if kind == "counter":
            metric += "_total"
        lines += [f"# TYPE {metric} {kind}", f"{metric} {value}"]
    lines += [
        "# TYPE shaobing_hub_mqtt_subscribed gauge",
        f"shaobing_hub_mqtt_subscribed {int(subscribed)}",
    ]
    if health is not None:
        active = health.active()
        counts = health.counts()
        lines.append("# HELP shaobing_hub_unhealthy Causes that make /healthz 503 now (1)")
        lines.append("# TYPE shaobing_hub_unhealthy gauge")
        lines += [f'shaobing_hub_unhealthy{{cause="{c}"}} {int(c in active)}' for c in CAUSES]
        lines.append("# HELP shaobing_hub_unhealthy_total Times each cause started")
        lines.append("# TYPE shaobing_hub_unhealthy_total counter")
        lines += [f'shaobing_hub_unhealthy_total{{cause="{c}"}} {counts.get(c, 0)}' for c in CAUSES]
    return "\n".join(lines) + "\n"
