"""Citizen and worker reports into the hub: Open311 GeoReport v2 and ``/api/v1/reports``.

A posted request becomes a wire :class:`~shaobing.contract.Event` (``source.node_id`` "hub")
that is stored like an ingested one and merged into incidents and work orders on the normal
path (``Store.insert_events`` then ``IncidentEngine.process``, which is idempotent, so the
background incident worker may see it too). Open311 ``status`` is open/closed from the work
order; ``expected_datetime`` is its current SLA deadline. Errors follow the spec: a JSON list
of ``{"code", "description"}``.
"""

from __future__ import annotations

import hashlib
import json
import re
import urllib.parse
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import ColumnElement, select

from hub import schema
from hub.store import iso
from shaobing.contract import Event, new_event_id

if TYPE_CHECKING:
    from hub.app import Core

__all__ = ["open311_router", "ReportIn"]

MAX_FORM_BYTES = 64 * 1024
CLOSED_STATES = ("closed", "false_alarm")
_ID_OK = re.compile(r"^[A-Za-z0-9_.:\-]{1,64}$")


def _errors(status: int, *items: tuple[int | str, str]) -> JSONResponse:
    return JSONResponse(
        [{"code": code, "description": text} for code, text in items], status_code=status
    )


def _dumps(data: Any) -> Response:
    return Response(
        json.dumps(data, ensure_ascii=False, separators=(",", ":")), media_type="application/json"
    )


class ReportIn(BaseModel):
    """A report from the worker's page (photo ids from ``POST /api/v1/uploads``)."""

    model_config = ConfigDict(extra="forbid")
    text: str = Field(min_length=1, max_length=480, description="what was seen, in a few words")
    type: str | None = Field(default=None, description="taxonomy code (default: from the text)")
    photos: list[str] = Field(default_factory=list, max_length=8, description="upload ids")
    lat: float | None = Field(default=None, ge=-90, le=90, description="WGS-84 latitude")
    lon: float | None = Field(default=None, ge=-180, le=180, description="WGS-84 longitude")
    address: str | None = Field(default=None, max_length=200, description="where")
    client_id: str | None = Field(
        default=None,
        max_length=64,
        pattern=r"^[A-Za-z0-9_\-]+$",
        description="id made on the phone; a re-sent offline report is stored once",
    )
    made_at: datetime | None = Field(default=None, description="when it was made (offline)")


class Intake:
    """Turns a request or report into an event and runs it through incidents."""

    def __init__(self, core: Core) -> None:
        self.core = core
        self._gazetteer: Any = None

    def _extract(self, text: str) -> Any:
        from pipelines.report_extract import extract, gazetteer_from_registry

        if self._gazetteer is None:
            from hub.registry import as_dict

            self._gazetteer = gazetteer_from_registry(as_dict(self.core.registry))
        return extract(text, self.core.taxonomy, self._gazetteer)

    def submit(
        self,
        *,
        kind: str,
        device_id: str,
        pipeline: str,
        text: str,
        type_: str | None,
        lat: float | None,
        lon: float | None,
        address: str | None,
        grid_id: str | None,
        photos: list[str],
        event_id: str | None = None,
        made_at: datetime | None = None,
        attributes: dict[str, Any] | None = None,
        severity_: str | None = None,
    ) -> Event:
        """Store the event and merge it into an incident now; returns it.

        ``severity_`` is a severity a person confirmed; it replaces the extracted one (never
        below the type's default).
        """
        store = self.core.store
        now = store.now()
        fields = self._extract(text)
        code = type_ or fields.type
        severity = fields.severity if not type_ or type_ == fields.type else "normal"
        if severity_ is not None:
            severity = severity_
        base = self.core.taxonomy.get(code).severity
        from shaobing.taxonomy import max_severity

        severity = max_severity(severity, base)
        # the place said in the text counts even when the reporter has a default grid: the
        # registry places it (a report about another district is never filed in that grid)
        if not address:
            address = fields.location.address
        if fields.location.grid_id:
            grid_id = fields.location.grid_id
        if grid_id is None and lat is None and not address:
            address = "未注明地点"
        detail = {
            level: value
            for level in ("district", "town", "community")
            if (value := getattr(fields.location, level, None))
        }
        evidence = self._evidence(photos, now)
        ev_id = event_id or new_event_id()
        at = made_at if made_at is not None and made_at <= now else now
        event = Event.model_validate(
            {
                "id": ev_id,
                "type": code,
                "severity": severity,
                "incident_key": f"{pipeline}/{ev_id}",
                "occurred_at": at,
                "detected_at": now,
                "source": {
                    "node_id": "hub",
                    "kind": kind,
                    "device_id": device_id[:128] or "anonymous",
                    "pipeline": pipeline,
                },
                "location": {"grid_id": grid_id, "address": address, "lat": lat, "lon": lon},
                "confidence": max(0.3, float(fields.confidence)) if not type_ else 0.9,
                "summary": text.strip()[:480],
                "attributes": {
                    **(attributes or {}),
                    "photos": photos,
                    **({"location_detail": detail} if detail else {}),
                },
                "evidence": evidence,
            }
        )
        store.insert_events([(event, now)])
        self.core.incidents.process([event])
        return event

    def _evidence(self, photos: list[str], now: datetime) -> list[dict[str, Any]]:
        if not photos:
            return []
        u = schema.uploads
        with self.core.store.engine.connect() as conn:
            rows = conn.execute(select(u).where(u.c.id.in_(photos))).all()
        found = {r.id: r for r in rows}
        out = []
        for pid in photos:
            r = found.get(pid)
            if r is None or not Path(r.path).exists():
                raise ValueError(f"photos: expected upload ids, found unknown {pid!r}")
            self.core.store.record_evidence("hub", r.id, r.sha256, r.bytes, r.path, now)
            out.append(
                {"id": r.id, "kind": "image", "content_type": r.content_type, "sha256": r.sha256,
                 "bytes": r.bytes}
            )  # fmt: skip
        return out

    # ------------------------------------------------------------------ Open311 views

    def request_view(self, ev_row: Any) -> dict[str, Any]:
        """GeoReport v2 form of a stored citizen event."""
        payload = json.loads(ev_row.payload)
        loc = payload.get("location") or {}
        wo = None
        if ev_row.incident_id:
            w = schema.work_orders
            with self.core.store.engine.connect() as conn:
                wo = conn.execute(select(w).where(w.c.incident_id == ev_row.incident_id)).first()
        state = wo.state if wo is not None else "reported"
        closed = state in CLOSED_STATES
        expected = None
        if wo is not None and not closed:
            expected = wo.handle_due_at if wo.accepted_at is not None else wo.accept_due_at
            expected = expected or wo.handle_due_at
        from hub.workorders import STATE_NAMES

        media = (payload.get("attributes") or {}).get("media_url")
        return {
            "service_request_id": ev_row.id,
            "status": "closed" if closed else "open",
            "status_notes": STATE_NAMES.get(state, state),
            "service_name": self.core.taxonomy.name_of(ev_row.type),
            "service_code": ev_row.type,
            "description": ev_row.summary,
            "agency_responsible": (wo.assignee_name if wo is not None else None),
            "service_notice": None,
            "requested_datetime": iso(ev_row.occurred_at),
            "updated_datetime": iso(wo.updated_at) if wo is not None else iso(ev_row.received_at),
            "expected_datetime": iso(expected) if expected is not None else None,
            "address": loc.get("address"),
            "address_id": None,
            "zipcode": None,
            "lat": loc.get("lat"),
            "long": loc.get("lon"),
            "media_url": media,
        }


def _form(raw: bytes, content_type: str) -> dict[str, str]:
    if content_type.startswith("application/json"):
        data = json.loads(raw.decode("utf-8") or "{}")
        if not isinstance(data, dict):
            raise ValueError("body: expected a JSON object")
        return {str(k): "" if v is None else str(v) for k, v in data.items()}
    pairs = urllib.parse.parse_qsl(raw.decode("utf-8"), keep_blank_values=True)
    out: dict[str, str] = {}
    for k, v in pairs:
        if k.startswith("attribute[") and k in out:
            out[k] += "," + v
        else:
            out[k] = v
    return out


def _float(form: dict[str, str], key: str, lo: float, hi: float) -> float | None:
    raw = form.get(key, "").strip()
    if not raw:
        return None
    value = float(raw)
    if not lo <= value <= hi:
        raise ValueError(f"{key}: expected a number in [{lo}, {hi}], found {raw}")
    return value


def open311_router(core: Core) -> APIRouter:
    """Routes of Open311 GeoReport v2 (``/open311/v2``) and ``POST /api/v1/reports``."""
    router = APIRouter()
    intake = Intake(core)
    tax = core.taxonomy

    def settings(request: Request) -> Any:
        config = getattr(request.app.state, "config", None) or core.config
        return config.open311

    def service(code: str) -> dict[str, Any]:
        t = tax.get(code)
        return {
            "service_code": t.code,
            "service_name": t.name,
            "description": f"{t.name}（{tax.boards.get(t.board, t.board)}）",
            "metadata": False,
            "type": "realtime",
            "keywords": ",".join(t.keywords),
            "group": tax.boards.get(t.board, t.board),
        }

    def jurisdiction_ok(request: Request) -> bool:
        wanted = request.query_params.get("jurisdiction_id")
        served = settings(request).jurisdiction_id
        return not (served and wanted and wanted != served)

    @router.get("/open311/v2/services.json", tags=["open311"])
    def services(request: Request) -> Response:
        if not jurisdiction_ok(request):
            return _errors(404, (404, "jurisdiction_id: not served here"))
        return _dumps([service(c) for c in tax.types])

    @router.get("/open311/v2/services/{code}.json", tags=["open311"])
    def service_definition(code: str) -> Response:
        if code not in tax:
            return _errors(404, (404, f"service_code: expected a known code, found {code!r}"))
        return _dumps({"service_code": code, "attributes": []})

    def rows(where: Any, limit: int) -> list[Any]:
        e = schema.events
        q = (
            select(e)
            .where(e.c.node_id == "hub", e.c.source_kind == "citizen")
            .order_by(e.c.seq.desc())
            .limit(limit)
        )
        if where is not None:
            q = q.where(where)
        with core.store.engine.connect() as conn:
            return list(conn.execute(q).all())

    @router.get("/open311/v2/requests.json", tags=["open311"])
    def list_requests(request: Request) -> Response:
        from hub.app import events_in_scope, require_reader

        try:
            user = require_reader(request)
        except Exception:
            return _errors(401, (401, "login required (auth.anonymous_read is off)"))
        qp = request.query_params
        e = schema.events
        conds: list[ColumnElement[bool]] = []
        scope = events_in_scope(user, core.registry)
        if scope is not None:
            conds.append(scope)
        ids = [i for i in qp.get("service_request_id", "").split(",") if i]
        if ids:
            conds.append(e.c.id.in_(ids[:200]))
        if qp.get("service_code"):
            conds.append(e.c.type.in_(qp["service_code"].split(",")))
        try:
            if qp.get("start_date"):
                conds.append(e.c.occurred_at >= datetime.fromisoformat(qp["start_date"]))
            if qp.get("end_date"):
                conds.append(e.c.occurred_at <= datetime.fromisoformat(qp["end_date"]))
        except ValueError:
            return _errors(400, (400, "start_date/end_date: expected ISO 8601"))
        from sqlalchemy import and_

        found = rows(and_(*conds) if conds else None, 1000 if qp.get("status") else 200)
        out = [intake.request_view(r) for r in found]
        status = qp.get("status")
        if status:
            out = [x for x in out if x["status"] in status.split(",")]
        return _dumps(out[:200])

    @router.get("/open311/v2/requests/{req_id}.json", tags=["open311"])
    def get_request(req_id: str, request: Request) -> Response:
        from hub.app import events_in_scope, require_reader

        try:
            user = require_reader(request)
        except Exception:
            return _errors(401, (401, "login required (auth.anonymous_read is off)"))
        scope = events_in_scope(user, core.registry)
        where = schema.events.c.id == req_id
        found = rows(where if scope is None else where & scope, 1) if _ID_OK.match(req_id) else []
        if not found:
            return _errors(404, (404, f"service_request_id: {req_id!r} not found"))
        return _dumps([intake.request_view(found[0])])

    @router.get("/open311/v2/tokens/{token}.json", tags=["open311"])
    def get_token(token: str) -> Response:
        found = rows(schema.events.c.id == token, 1) if _ID_OK.match(token) else []
        if not found:
            return _errors(404, (404, f"token: {token!r} not found"))
        return _dumps([{"service_request_id": found[0].id, "token": token}])

    @router.post("/open311/v2/requests.json", tags=["open311"])
    async def post_request(request: Request) -> Response:
        raw = await request.body()
        if len(raw) > MAX_FORM_BYTES:
            return _errors(413, (413, f"body: expected at most {MAX_FORM_BYTES} bytes"))
        try:
            form = _form(raw, request.headers.get("content-type", ""))
        except (ValueError, UnicodeDecodeError) as exc:
            return _errors(400, (400, f"body: {exc}"))
        keys = settings(request).keys()
        key = form.get("api_key") or request.query_params.get("api_key", "")
        if not keys or key not in keys:
            return _errors(403, (403, "api_key: expected a key issued by this hub"))
        code = form.get("service_code", "").strip()
        if code not in tax:
            return _errors(400, (400, f"service_code: expected a code of services.json, found {code!r}"))  # fmt: skip
        try:
            lat = _float(form, "lat", -90, 90)
            lon = _float(form, "long", -180, 180)
        except ValueError as exc:
            return _errors(400, (400, str(exc)))
        address = form.get("address_string", "").strip()[:200] or None
        if (lat is None) != (lon is None):
            return _errors(400, (400, "lat and long: expected both or neither"))
        if lat is None and not address and not form.get("address_id"):
            return _errors(400, (400, "location: expected lat & long, address_string or address_id"))  # fmt: skip
        description = form.get("description", "").strip()[:480] or tax.name_of(code)
        media = form.get("media_url", "").strip()[:500] or None
        # who posted stays out of the event (personal data): a short hash of the device id
        who = form.get("device_id") or form.get("email") or ""
        device = "open311-" + hashlib.sha256(who.encode()).hexdigest()[:12] if who else "open311"
        try:
            ev = intake.submit(
                kind="citizen",
                device_id=device,
                pipeline="open311",
                text=description,
                type_=code,
                lat=lat,
                lon=lon,
                address=address,
                grid_id=None,
                photos=[],
                attributes={"media_url": media} if media else {},
            )
        except (ValidationError, ValueError) as exc:
            return _errors(400, (400, str(exc)[:300]))
        return _dumps([{"service_request_id": ev.id, "service_notice": "已受理", "account_id": None}])  # fmt: skip

    @router.post("/api/v1/reports", tags=["events"], status_code=201)
    def post_report(body: ReportIn, request: Request) -> dict[str, Any]:
        from fastapi import HTTPException

        from hub.app import require_actor

        user = require_actor(request)
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

    return router
