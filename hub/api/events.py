"""Events: the list, one event, dead letters and the live stream (SSE)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import Response, StreamingResponse

from hub import schema
from hub.api.deps import (
    CoreDep,
    EventScope,
    Page,
    Read,
    StaffRead,
    page,
    parse_cursor,
)
from hub.repository import visible_changes

router = APIRouter(tags=["events"])


@router.get("/api/v1/events", response_model=Page)
def list_events(
    where: EventScope,
    core: CoreDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(description="`next` of the previous page")] = None,
    type: str | None = None,
    node_id: str | None = None,
    severity: str | None = None,
    grid_id: str | None = None,
    incident_id: str | None = None,
) -> Response:
    items, nxt = core.store.list_events(
        limit,
        parse_cursor(cursor),
        type,
        node_id,
        severity,
        grid_id,
        incident_id=incident_id,
        where=where,
    )
    return page(items, nxt)


@router.get("/api/v1/events/{event_id}")
def get_event(
    event_id: str,
    user: Read,
    core: CoreDep,
    node_id: Annotated[
        str | None, Query(description="the node that sent it (ids are unique per node)")
    ] = None,
) -> dict[str, Any]:
    found = core.store.get_events(event_id, node_id)
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
        core.incidents.get(item["incident_id"], user)  # 404 when out of scope
    return item


@router.get("/api/v1/dead-letters")
def dead_letters(
    user: StaffRead, core: CoreDep, limit: Annotated[int, Query(ge=1, le=500)] = 50
) -> dict[str, Any]:
    return {"items": core.store.list_dead_letters(limit), "next": None}


@router.get("/api/v1/stream")
async def stream(
    request: Request, user: Read, where: EventScope, core: CoreDep
) -> StreamingResponse:
    store, registry = core.store, core.registry
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
                visible = await asyncio.to_thread(visible_changes, store, registry, user, changes)
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
