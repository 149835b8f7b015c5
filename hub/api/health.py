"""``/healthz`` and ``/metrics``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse

from hub.health import CAUSES, HealthMonitor
from hub.store import Store
from shaobing import __version__

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz(request: Request) -> JSONResponse:
    state = request.app.state
    health: HealthMonitor | None = state.health
    if health is not None:
        ok, body = health.report()
    else:
        store: Store = state.store
        db_ok, mqtt_ok = store.is_migrated(), state.ingest_ready()
        ok = db_ok and mqtt_ok
        body = {
            "status": "ok" if ok else "unavailable",
            "database": db_ok,
            "mqtt_subscribed": mqtt_ok,
            "reasons": [],
        }
    body["version"] = __version__
    return JSONResponse(body, status_code=200 if ok else 503)


@router.get("/metrics", response_class=PlainTextResponse)
def prometheus(request: Request) -> PlainTextResponse:
    state = request.app.state
    return PlainTextResponse(
        render_metrics(
            state.metrics() if state.metrics else {}, state.health, state.ingest_ready()
        ),
        media_type="text/plain; version=0.0.4",
    )


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
