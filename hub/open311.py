"""Citizen and worker reports into the hub (the routes are :mod:`hub.api.open311` and
:mod:`hub.api.reports`).

A posted request becomes a wire :class:`~shaobing.contract.Event` (``source.node_id`` "hub")
that is stored like an ingested one and merged into incidents and work orders on the normal
path (``Store.insert_events`` then ``IncidentEngine.process``, which is idempotent, so the
background incident worker may see it too). Open311 ``status`` is open/closed from the work
order; ``expected_datetime`` is its current SLA deadline. Errors follow the spec: a JSON list
of ``{"code", "description"}``.
"""

from __future__ import annotations

import json
import urllib.parse
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from hub.repository import order_of_incident, uploads_by_id
from hub.store import iso
from hub.workflow import STATE_NAMES
from shaobing.contract import Event, new_event_id

if TYPE_CHECKING:
    from hub.core import Core

__all__ = ["Intake", "ReportIn", "form_of", "json_list", "number_in", "open311_errors"]

MAX_FORM_BYTES = 64 * 1024
CLOSED_STATES = ("closed", "false_alarm")


def open311_errors(status: int, *items: tuple[int | str, str]) -> JSONResponse:
    """An Open311 error: a JSON list of ``{"code", "description"}``."""
    return JSONResponse(
        [{"code": code, "description": text} for code, text in items], status_code=status
    )


def json_list(data: Any) -> Response:
    """Compact JSON (Open311 answers are lists)."""
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

    def extract(self, text: str) -> Any:
        """The fields the extractor reads from a report's text."""
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
        fields = self.extract(text)
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
        found = uploads_by_id(self.core.store, photos)
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
            wo = order_of_incident(self.core.store, ev_row.incident_id)
        state = wo.state if wo is not None else "reported"
        closed = state in CLOSED_STATES
        expected = None
        if wo is not None and not closed:
            expected = wo.handle_due_at if wo.accepted_at is not None else wo.accept_due_at
            expected = expected or wo.handle_due_at
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


def form_of(raw: bytes, content_type: str) -> dict[str, str]:
    """The posted fields, from a form or a JSON object."""
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


def number_in(form: dict[str, str], key: str, lo: float, hi: float) -> float | None:
    """A number field within [lo, hi], or None when empty (ValueError outside)."""
    raw = form.get(key, "").strip()
    if not raw:
        return None
    value = float(raw)
    if not lo <= value <= hi:
        raise ValueError(f"{key}: expected a number in [{lo}, {hi}], found {raw}")
    return value
