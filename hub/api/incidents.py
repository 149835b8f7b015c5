"""Incidents: the list, one incident, acknowledging a red one, splitting a wrong merge."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Query
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from hub.api.deps import Act, CoreDep, Page, Read, page, parse_cursor

router = APIRouter(tags=["incidents"])


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


@router.get("/api/v1/incidents", response_model=Page)
def list_incidents(
    user: Read,
    core: CoreDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: str | None = None,
    state: str | None = None,
    type: str | None = None,
    severity: str | None = None,
    grid_id: str | None = None,
    pinned: bool | None = None,
) -> Response:
    items, nxt = core.incidents.list(
        user, limit, parse_cursor(cursor), state, type, severity, grid_id, pinned
    )
    return page(items, nxt)


@router.get("/api/v1/incidents/{incident_id}")
def get_incident(incident_id: str, user: Read, core: CoreDep) -> dict[str, Any]:
    return core.incidents.get(incident_id, user)


@router.post("/api/v1/incidents/{incident_id}/ack")
def ack_incident(
    incident_id: str, user: Act, core: CoreDep, body: Annotated[AckIn | None, Body()] = None
) -> dict[str, Any]:
    return core.incidents.acknowledge(incident_id, user, body.note if body else "")


@router.post("/api/v1/incidents/{incident_id}/split", status_code=201)
def split_incident(incident_id: str, user: Act, core: CoreDep, body: SplitIn) -> dict[str, Any]:
    return core.incidents.split(incident_id, body.event_id, user, body.node_id, body.note)
