"""Nodes, the sources of work orders (with their suppression) and the registry."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from hub.api.deps import CoreDep, Read, StaffAct, StaffRead
from hub.registry import as_dict

router = APIRouter()


class SuppressIn(BaseModel):
    """Suppress or release a noisy source."""

    model_config = ConfigDict(extra="forbid")
    source: str = Field(min_length=1, max_length=400, description="node/device/pipeline")
    hours: float = Field(ge=0, le=24 * 90, description="0 releases")
    reason: str = Field(default="", max_length=500, description="why")


class SuppressionPublic(BaseModel):
    """A source's suppression after a change."""

    source: str = Field(description="node/device/pipeline")
    suppressed_until: str | None = Field(description="ISO time; null when released")


@router.get("/api/v1/nodes", tags=["nodes"])
def nodes(user: Read, core: CoreDep) -> dict[str, Any]:
    return {"items": core.store.list_nodes(), "next": None}


@router.get("/api/v1/sources", tags=["nodes"])
def sources(user: StaffRead, core: CoreDep) -> dict[str, Any]:
    return {"items": core.orders.sources(), "next": None}


@router.post("/api/v1/sources/suppress", tags=["nodes"])
def suppress(body: SuppressIn, user: StaffAct, core: CoreDep) -> SuppressionPublic:
    out = core.orders.set_suppression(body.source, body.hours, user, body.reason)
    return SuppressionPublic(**out)


@router.get("/api/v1/registry", tags=["registry"])
def registry_view(user: Read, core: CoreDep) -> dict[str, Any]:
    return as_dict(core.registry)
