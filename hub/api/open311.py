"""Open311 GeoReport v2 (``/open311/v2``): services, requests, tokens. Errors follow the spec:
a JSON list of ``{"code", "description"}``."""

from __future__ import annotations

import hashlib
import re
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import ValidationError

from hub.api.deps import ConfigDep, CoreDep, IntakeDep, events_in_scope, require_reader
from hub.open311 import MAX_FORM_BYTES, form_of, json_list, number_in, open311_errors
from hub.repository import citizen_events, citizen_filter, citizen_id_filter
from shaobing.taxonomy import Taxonomy

router = APIRouter(tags=["open311"])

_ID_OK = re.compile(r"^[A-Za-z0-9_.:\-]{1,64}$")
_LOGIN = "login required (auth.anonymous_read is off)"


def _service(tax: Taxonomy, code: str) -> dict[str, Any]:
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


@router.get("/open311/v2/services.json")
def services(request: Request, core: CoreDep, config: ConfigDep) -> Response:
    wanted = request.query_params.get("jurisdiction_id")
    served = config.open311.jurisdiction_id
    if served and wanted and wanted != served:
        return open311_errors(404, (404, "jurisdiction_id: not served here"))
    return json_list([_service(core.taxonomy, c) for c in core.taxonomy.types])


@router.get("/open311/v2/services/{code}.json")
def service_definition(code: str, core: CoreDep) -> Response:
    if code not in core.taxonomy:
        return open311_errors(404, (404, f"service_code: expected a known code, found {code!r}"))
    return json_list({"service_code": code, "attributes": []})


@router.get("/open311/v2/requests.json")
def list_requests(request: Request, core: CoreDep, intake: IntakeDep) -> Response:
    try:
        user = require_reader(request)
    except Exception:
        return open311_errors(401, (401, _LOGIN))
    qp = request.query_params
    ids = [i for i in qp.get("service_request_id", "").split(",") if i]
    codes = qp["service_code"].split(",") if qp.get("service_code") else []
    try:
        start = datetime.fromisoformat(qp["start_date"]) if qp.get("start_date") else None
        end = datetime.fromisoformat(qp["end_date"]) if qp.get("end_date") else None
    except ValueError:
        return open311_errors(400, (400, "start_date/end_date: expected ISO 8601"))
    where = citizen_filter(events_in_scope(user, core.registry), ids[:200], codes, start, end)
    found = citizen_events(core.store, where, 1000 if qp.get("status") else 200)
    out = [intake.request_view(r) for r in found]
    status = qp.get("status")
    if status:
        out = [x for x in out if x["status"] in status.split(",")]
    return json_list(out[:200])


@router.get("/open311/v2/requests/{req_id}.json")
def get_request(req_id: str, request: Request, core: CoreDep, intake: IntakeDep) -> Response:
    try:
        user = require_reader(request)
    except Exception:
        return open311_errors(401, (401, _LOGIN))
    where = citizen_id_filter(req_id, events_in_scope(user, core.registry))
    found = citizen_events(core.store, where, 1) if _ID_OK.match(req_id) else []
    if not found:
        return open311_errors(404, (404, f"service_request_id: {req_id!r} not found"))
    return json_list([intake.request_view(found[0])])


@router.get("/open311/v2/tokens/{token}.json")
def get_token(token: str, core: CoreDep) -> Response:
    found = citizen_events(core.store, citizen_id_filter(token, None), 1) if _ID_OK.match(token) else []  # fmt: skip
    if not found:
        return open311_errors(404, (404, f"token: {token!r} not found"))
    return json_list([{"service_request_id": found[0].id, "token": token}])


@router.post("/open311/v2/requests.json")
async def post_request(
    request: Request, core: CoreDep, config: ConfigDep, intake: IntakeDep
) -> Response:
    tax = core.taxonomy
    raw = await request.body()
    if len(raw) > MAX_FORM_BYTES:
        return open311_errors(413, (413, f"body: expected at most {MAX_FORM_BYTES} bytes"))
    try:
        form = form_of(raw, request.headers.get("content-type", ""))
    except (ValueError, UnicodeDecodeError) as exc:
        return open311_errors(400, (400, f"body: {exc}"))
    keys = config.open311.keys()
    key = form.get("api_key") or request.query_params.get("api_key", "")
    if not keys or key not in keys:
        return open311_errors(403, (403, "api_key: expected a key issued by this hub"))
    code = form.get("service_code", "").strip()
    if code not in tax:
        return open311_errors(400, (400, f"service_code: expected a code of services.json, found {code!r}"))  # fmt: skip
    try:
        lat = number_in(form, "lat", -90, 90)
        lon = number_in(form, "long", -180, 180)
    except ValueError as exc:
        return open311_errors(400, (400, str(exc)))
    address = form.get("address_string", "").strip()[:200] or None
    if (lat is None) != (lon is None):
        return open311_errors(400, (400, "lat and long: expected both or neither"))
    if lat is None and not address and not form.get("address_id"):
        return open311_errors(400, (400, "location: expected lat & long, address_string or address_id"))  # fmt: skip
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
        return open311_errors(400, (400, str(exc)[:300]))
    return json_list([{"service_request_id": ev.id, "service_notice": "已受理", "account_id": None}])  # fmt: skip
