"""Work orders: the list, one order, its transitions (POST to move, GET for the audit trail)
and the citizen's rating link."""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from hub import messages
from hub.api.deps import Act, CoreDep, Page, Read, page, parse_cursor
from hub.core import Core
from hub.users import Principal
from hub.workflow import TRANSITION_ACTIONS, Action
from hub.workorders import OrderFilter

router = APIRouter(tags=["work orders"])

_RATING_CODE = re.compile(r"^[A-Za-z0-9_\-]{6,24}$")
_TRANSITION_DATA = ("rating", "assignee_id", "level", "board", "grid_id", "reason")


class TransitionIn(BaseModel):
    """One action on a work order."""

    model_config = ConfigDict(extra="forbid")

    action: str = Field(description=", ".join(TRANSITION_ACTIONS))
    note: str = Field(default="", max_length=4000, description="what was done or seen")
    photos: list[str] = Field(
        default_factory=list, max_length=32, description="upload ids (POST /api/v1/uploads)"
    )
    rating: int | None = Field(default=None, description="rate: 1–5")
    assignee_id: str | None = Field(default=None, description="dispatch/reassign: person id")
    level: str | None = Field(default=None, description="screen: level override")
    board: str | None = Field(default=None, description="screen: board override")
    grid_id: str | None = Field(
        default=None, description="screen: place an unplaced order in a grid"
    )
    reason: str | None = Field(
        default=None,
        description="false_alarm: why (鸟, 树影, 光照, 水面反光, 人员正常活动, 设备故障, 其他)",
    )


class RatingIn(BaseModel):
    """The citizen's rating of a handled order (from the rating link)."""

    model_config = ConfigDict(extra="forbid")
    rating: int = Field(ge=1, le=5, description="1 (very unsatisfied) … 5 (very satisfied)")
    comment: str = Field(default="", max_length=500, description="what the citizen says")


class RatingLinkPublic(BaseModel):
    """What a citizen's rating link shows of its order."""

    id: str = Field(description="work-order id")
    type: str = Field(description="taxonomy code")
    type_name: str = Field(description="the type's name")
    summary: str = Field(description="what was reported")
    place: str | None = Field(description="the grid's name")
    state: str = Field(description="work-order state")
    step: str = Field(description="the step's name (七步)")
    rating: int | None = Field(description="1–5 once rated")
    can_rate: bool = Field(description="true once verified")


@router.get("/api/v1/work-orders", response_model=Page)
def list_orders(
    user: Read,
    core: CoreDep,
    where: Annotated[OrderFilter, Depends()],
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: str | None = None,
    mine: Annotated[bool, Query(description="only orders assigned to me")] = False,
) -> Response:
    if mine:
        where.assignee_id = user.ident
    items, nxt = core.orders.list(user, limit, parse_cursor(cursor), where)
    return page(items, nxt)


@router.get("/api/v1/work-orders/{wo_id}")
def get_order(wo_id: str, user: Read, core: CoreDep) -> dict[str, Any]:
    out = core.orders.get(wo_id, user)
    out["my_actions"] = [a for a in out["allowed"] if user.may(a)]
    return out


def _by_rating_code(core: Core, code: str) -> dict[str, Any]:
    found = core.orders.by_rating_code(code) if _RATING_CODE.match(code) else None
    if found is None:
        raise HTTPException(status_code=404, detail=messages.RATING_LINK_INVALID)
    return found


@router.get("/api/v1/ratings/{code}")
def rating_view(code: str, core: CoreDep) -> RatingLinkPublic:
    return RatingLinkPublic(**_by_rating_code(core, code))


@router.post("/api/v1/ratings/{code}")
def rate_by_citizen(code: str, body: RatingIn, core: CoreDep) -> dict[str, Any]:
    found = _by_rating_code(core, code)
    if not found["can_rate"]:
        raise HTTPException(status_code=409, detail=messages.cannot_rate_yet(found["step"]))
    citizen = Principal(name=f"citizen:{code[:4]}", role="system")
    core.orders.transition(
        found["id"], Action.RATE, citizen, body.comment, (), {"rating": body.rating}
    )
    return core.orders.by_rating_code(code) or {}


@router.get("/api/v1/work-orders/{wo_id}/transitions")
def order_transitions(wo_id: str, user: Read, core: CoreDep) -> dict[str, Any]:
    return {"items": core.orders.audit_trail(wo_id, user), "next": None}


@router.post("/api/v1/work-orders/{wo_id}/transitions")
def transition(wo_id: str, body: TransitionIn, user: Act, core: CoreDep) -> dict[str, Any]:
    data = {k: v for k, v in body.model_dump().items() if k in _TRANSITION_DATA and v is not None}
    return core.orders.transition(wo_id, body.action, user, body.note, body.photos, data)
