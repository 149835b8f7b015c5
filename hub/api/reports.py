"""Reports from the worker's page: a plain report, the extraction shown for checking, the
confirmed report (which leaves a labelled example) and the labelled examples."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException
from pydantic import ValidationError

from hub.api.deps import Act, CoreDep, IntakeDep
from hub.labelled import (
    ConfirmedReportIn,
    ExtractIn,
    extract_view,
    labelled_rows,
    record_example,
)
from hub.open311 import ReportIn
from shaobing.severity import SEVERITIES

router = APIRouter(tags=["events"])


@router.post("/api/v1/reports", status_code=201)
def post_report(body: ReportIn, user: Act, core: CoreDep, intake: IntakeDep) -> dict[str, Any]:
    tax = core.taxonomy
    if body.type is not None and body.type not in tax:
        raise HTTPException(status_code=422, detail=f"type: expected a taxonomy code, found {body.type!r}")  # fmt: skip
    grid = user.scope_id if user.role == "grid_worker" and body.lat is None else None
    ev_id = f"rpt-{body.client_id}"[:64] if body.client_id else None
    if ev_id is not None and core.store.get_event(ev_id, "hub") is not None:
        return {"id": ev_id, "duplicate": True}
    try:
        ev = intake.submit(
            kind="report",
            device_id=user.person_id or user.name,
            pipeline="worker_report",
            text=body.text,
            type_=body.type,
            lat=body.lat,
            lon=body.lon,
            address=body.address,
            grid_id=grid,
            photos=body.photos,
            event_id=ev_id,
            made_at=body.made_at,
        )
    except (ValidationError, ValueError) as exc:
        raise HTTPException(status_code=422, detail=str(exc)[:300]) from None
    return {"id": ev.id, "type": ev.type, "severity": ev.severity, "duplicate": False}


@router.post("/api/v1/reports/extract")
def extract_report(body: ExtractIn, user: Act, core: CoreDep, intake: IntakeDep) -> dict[str, Any]:
    tax = core.taxonomy
    view = extract_view(intake.extract(body.text))
    view["type_name"] = tax.get(view["type"]).name if view["type"] in tax else view["type"]
    return view


@router.post("/api/v1/reports/confirmed", status_code=201)
def post_confirmed(
    body: ConfirmedReportIn, user: Act, core: CoreDep, intake: IntakeDep
) -> dict[str, Any]:
    tax = core.taxonomy
    if body.type not in tax:
        raise HTTPException(status_code=422, detail=f"type: expected a taxonomy code, found {body.type!r}")  # fmt: skip
    if body.severity not in SEVERITIES:
        raise HTTPException(status_code=422, detail=f"severity: expected one of {', '.join(SEVERITIES)}, found {body.severity!r}")  # fmt: skip
    ev_id = f"rpt-{body.client_id}"[:64] if body.client_id else None
    if ev_id is not None and core.store.get_event(ev_id) is not None:
        return {"id": ev_id, "duplicate": True}
    extracted = extract_view(intake.extract(body.text))
    final = {
        "type": body.type,
        "location": (body.address or "").strip(),
        "severity": body.severity,
    }
    grid = user.scope_id if user.role == "grid_worker" and body.lat is None else None
    if final["location"] and final["location"] == extracted["location"]:
        grid = extracted["grid_id"] or grid
    actor = user.person_id or user.name
    try:
        ev = intake.submit(
            kind="report",
            device_id=actor,
            pipeline="worker_report",
            text=body.text,
            type_=body.type,
            lat=body.lat,
            lon=body.lon,
            address=final["location"] or None,
            grid_id=grid,
            photos=body.photos,
            event_id=ev_id,
            made_at=body.made_at,
            severity_=body.severity,
        )
    except (ValidationError, ValueError) as exc:
        raise HTTPException(status_code=422, detail=str(exc)[:300]) from None
    corrected = record_example(
        core.store,
        event_id=ev.id,
        actor=actor,
        text=body.text,
        extracted=extracted,
        final=final,
        at=core.store.now(),
    )
    return {
        "id": ev.id,
        "type": ev.type,
        "severity": ev.severity,
        "corrected": corrected,
        "duplicate": False,
    }


@router.get("/api/v1/reports/labelled")
def list_labelled(user: Act, core: CoreDep, limit: int = 200) -> dict[str, Any]:
    if user.role not in ("admin", "command_centre"):
        raise HTTPException(status_code=403, detail="expected role admin or command_centre")
    rows = labelled_rows(core.store, max(1, min(limit, 1000)))
    return {"items": rows, "count": len(rows)}
