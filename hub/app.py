"""The hub's HTTP surface (ARCHITECTURE §10): health, events, stats, nodes, stream, dashboard."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response, StreamingResponse

from hub.store import Store
from shaobing import __version__
from shaobing.config import HubConfig

STATIC = Path(__file__).resolve().parent / "static"

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; "
    "media-src 'self' blob:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)


def require_reader(request: Request) -> None:
    """Reads are open to anonymous users only where ``auth.anonymous_read`` says so."""
    config: HubConfig = request.app.state.config
    if config.auth.anonymous_read:
        return
    checker = getattr(request.app.state, "authenticate", None)
    if checker is not None and checker(request) is not None:
        return
    raise HTTPException(status_code=401, detail="login required (auth.anonymous_read is off)", headers={"WWW-Authenticate": "Bearer"})


Read = Annotated[None, Depends(require_reader)]


def create_app(config: HubConfig, store: Store, ingest_ready: Callable[[], bool]) -> FastAPI:
    """Build the FastAPI application.

    Args:
        config: hub config.
        store: the database.
        ingest_ready: True once the MQTT subscription is acknowledged.
    """
    app = FastAPI(
        title="Shaobing hub (哨兵)",
        version=__version__,
        description="Events, incidents and work orders of the town's command centre.",
    )
    app.state.config = config
    app.state.store = store

    @app.middleware("http")
    async def security_headers(request: Request, call_next: Callable[[Request], Any]) -> Response:
        response: Response = await call_next(request)
        response.headers.setdefault("Content-Security-Policy", CSP)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "no-referrer")
        return response


    @app.get("/healthz", tags=["health"])
    def healthz() -> JSONResponse:
        db_ok = store.is_migrated()
        mqtt_ok = ingest_ready()
        ok = db_ok and mqtt_ok
        return JSONResponse(
            {"status": "ok" if ok else "unavailable", "database": db_ok, "mqtt_subscribed": mqtt_ok, "version": __version__},
            status_code=200 if ok else 503,
        )

    @app.get("/api/v1/events", tags=["events"])
    def list_events(
        _: Read,
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
        cursor: Annotated[str | None, Query(description="`next` of the previous page")] = None,
        type: str | None = None,
        node_id: str | None = None,
        severity: str | None = None,
        grid_id: str | None = None,
    ) -> dict[str, Any]:
        before = None
        if cursor:
            try:
                before = int(cursor)
            except ValueError:
                raise HTTPException(status_code=400, detail=f"cursor: expected the `next` value of a previous page, found {cursor!r}") from None
        items, nxt = store.list_events(limit, before, type, node_id, severity, grid_id)
        return {"items": items, "next": str(nxt) if nxt is not None else None}

    @app.get("/api/v1/events/{event_id}", tags=["events"])
    def get_event(event_id: str, _: Read) -> dict[str, Any]:
        item = store.get_event(event_id)
        if item is None:
            raise HTTPException(status_code=404, detail=f"event {event_id!r} not found")
        return item

    @app.get("/api/v1/stats", tags=["stats"])
    def stats(_: Read) -> dict[str, Any]:
        return {
            "events_total": store.count_events(),
            "dead_letters_total": store.count_dead_letters(),
            "events_by_type": store.counts_by("type"),
            "events_by_severity": store.counts_by("severity"),
            "events_by_node": store.counts_by("node_id"),
        }

    @app.get("/api/v1/nodes", tags=["nodes"])
    def nodes(_: Read) -> dict[str, Any]:
        return {"items": store.list_nodes(), "next": None}

    @app.get("/api/v1/dead-letters", tags=["events"])
    def dead_letters(_: Read, limit: Annotated[int, Query(ge=1, le=500)] = 50) -> dict[str, Any]:
        return {"items": store.list_dead_letters(limit), "next": None}

    @app.get("/api/v1/evidence/{evidence_id}", tags=["evidence"])
    def evidence(evidence_id: str, _: Read, node_id: str | None = None) -> FileResponse:
        rec = store.get_evidence(node_id, evidence_id)
        if rec is None or not Path(rec["path"]).exists():
            raise HTTPException(status_code=404, detail=f"evidence {evidence_id!r} not found")
        return FileResponse(rec["path"])

    @app.get("/api/v1/stream", tags=["events"])
    async def stream(request: Request, _: Read) -> StreamingResponse:
        async def feed() -> AsyncIterator[bytes]:
            items, _next = await asyncio.to_thread(store.list_events, 1)
            last_id = items[0]["id"] if items else None
            yield b": connected\n\n"
            idle = 0
            while not await request.is_disconnected():
                await asyncio.sleep(0.25)
                items, _n = await asyncio.to_thread(store.list_events, 50)
                fresh = []
                for it in items:
                    if it["id"] == last_id:
                        break
                    fresh.append(it)
                if fresh:
                    last_id = fresh[0]["id"]
                    for it in reversed(fresh):
                        yield f"event: event\ndata: {json.dumps(it, ensure_ascii=False)}\n\n".encode()
                    idle = 0
                else:
                    idle += 1
                    if idle % 60 == 0:
                        yield b": keep-alive\n\n"

        return StreamingResponse(feed(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def dashboard() -> HTMLResponse:
        return HTMLResponse((STATIC / "index.html").read_text(encoding="utf-8"))

    @app.get("/m/", response_class=HTMLResponse, include_in_schema=False)
    def mobile() -> HTMLResponse:
        return HTMLResponse((STATIC / "mobile.html").read_text(encoding="utf-8"))

    @app.get("/static/{name}", include_in_schema=False)
    def static(name: str) -> FileResponse:
        path = (STATIC / name).resolve()
        if path.parent != STATIC or not path.is_file():
            raise HTTPException(status_code=404, detail="not found")
        return FileResponse(path)

    return app
