"""Hotspots and the statistics/KPIs of the dashboard."""

from __future__ import annotations

import time
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from hub.api.deps import CoreDep, EventScope, Read, scope_of
from hub.stats import kpis

router = APIRouter(tags=["stats"])

STATS_TTL_S = 2.0
STAFF_OR_SYSTEM = ("admin", "command_centre", "system")


@router.get("/api/v1/hotspots")
def hotspots(
    user: Read,
    core: CoreDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    since_days: float | None = None,
) -> dict[str, Any]:
    return {"items": core.incidents.list_hotspots(user, limit, since_days), "next": None}


@router.get("/api/v1/stats")
def stats(user: Read, where: EventScope, core: CoreDep, request: Request) -> dict[str, Any]:
    # aggregates over the whole database: recomputed at most every STATS_TTL_S per scope
    cache: dict[tuple[str, str | None, str | None], tuple[float, dict[str, Any]]]
    cache = request.app.state.stats_cache
    metrics = request.app.state.metrics
    key = (user.role, user.scope_id, user.board)
    hit = cache.get(key)
    if hit is not None and time.monotonic() - hit[0] < STATS_TTL_S:
        return hit[1]
    store = core.store
    # ``where``: computed within the viewer's scope
    out: dict[str, Any] = {
        "events_total": store.count_events(where),
        "events_by_type": store.counts_by("type", where),
        "events_by_severity": store.counts_by("severity", where),
        "events_by_node": store.counts_by("node_id", where),
    }
    if user.role in STAFF_OR_SYSTEM:
        out["dead_letters_total"] = store.count_dead_letters()
    out.update(kpis(store, user, core.config.timezone, scope_level=scope_of(user, core)))
    out["false_alarms"] = {f"{d}d": core.orders.false_alarm_stats(user, float(d)) for d in (7, 30)}
    if metrics is not None and user.role in STAFF_OR_SYSTEM:
        out["ingest"] = metrics()
    if len(cache) > 256:
        cache.clear()
    cache[key] = (time.monotonic(), out)
    return out
