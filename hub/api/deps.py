"""What the routes share: who is calling (principal, role and scope checks as dependencies),
the hub's core and store, cursors and pages."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field

from hub.core import Core
from hub.open311 import Intake
from hub.repository import events_in_scope
from hub.store import Store
from hub.users import ANONYMOUS, Principal
from shaobing.config import HubConfig

__all__ = [
    "SESSION_COOKIE",
    "CSRF_HEADER",
    "bearer",
    "token_of",
    "principal_of",
    "require_reader",
    "require_actor",
    "Read",
    "Act",
    "StaffRead",
    "StaffAct",
    "AdminAct",
    "CoreDep",
    "StoreDep",
    "ConfigDep",
    "IntakeDep",
    "events_in_scope",
    "EventScope",
    "scope_of",
    "parse_cursor",
    "Page",
    "page",
]

SESSION_COOKIE = "sb_session"
CSRF_HEADER = "x-shaobing-csrf"
STAFF_ROLES = ("admin", "command_centre")


def bearer(request: Request) -> str | None:
    """The bearer token of the Authorization header, or None."""
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip()
    return None


def _cookie_token(request: Request) -> str | None:
    """The web session token from the HttpOnly cookie.

    A cookie-authenticated mutation must also carry the ``X-Shaobing-CSRF`` header (a
    cross-site form cannot set it; a cross-site script cannot without a CORS preflight).
    """
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    if request.method not in ("GET", "HEAD", "OPTIONS") and not request.headers.get(CSRF_HEADER):
        return None
    return token


def token_of(request: Request) -> str | None:
    """The request's token: bearer, else the session cookie."""
    return bearer(request) or _cookie_token(request)


def principal_of(request: Request) -> Principal | None:
    """The authenticated user of a request (bearer token, else session cookie), or None."""
    token = token_of(request)
    if not token:
        return None
    checker = getattr(request.app.state, "authenticate", None)
    return checker(request) if checker is not None else None


def require_reader(request: Request) -> Principal:
    """Reads are open to anonymous users only where ``auth.anonymous_read`` says so."""
    user = principal_of(request)
    if user is not None:
        return user
    if bearer(request):
        raise HTTPException(
            status_code=401,
            detail="invalid or expired token",
            headers={"WWW-Authenticate": "Bearer"},
        )
    config: HubConfig = request.app.state.config
    if config.auth.anonymous_read:
        return ANONYMOUS
    raise HTTPException(
        status_code=401,
        detail="login required (auth.anonymous_read is off)",
        headers={"WWW-Authenticate": "Bearer"},
    )


def require_actor(request: Request) -> Principal:
    """Mutations need a bearer token."""
    user = principal_of(request)
    if user is None:
        raise HTTPException(
            status_code=401,
            detail="login required: send Authorization: Bearer <token>",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return user


Read = Annotated[Principal, Depends(require_reader)]
Act = Annotated[Principal, Depends(require_actor)]


def _staff(user: Principal) -> Principal:
    if user.role not in STAFF_ROLES:
        raise HTTPException(
            status_code=403, detail=f"role {user.role!r}: expected admin or command_centre"
        )
    return user


def require_staff_reader(user: Read) -> Principal:
    """A reader of the command centre (admin or command_centre)."""
    return _staff(user)


def require_staff_actor(user: Act) -> Principal:
    """An actor of the command centre (admin or command_centre)."""
    return _staff(user)


def require_admin(user: Act) -> Principal:
    """An admin."""
    if user.role != "admin":
        raise HTTPException(status_code=403, detail="role: expected admin")
    return user


StaffRead = Annotated[Principal, Depends(require_staff_reader)]
StaffAct = Annotated[Principal, Depends(require_staff_actor)]
AdminAct = Annotated[Principal, Depends(require_admin)]


def get_core(request: Request) -> Core:
    """The hub's core of this app."""
    core: Core = request.app.state.core
    return core


def get_store(request: Request) -> Store:
    """The store of this app."""
    store: Store = request.app.state.store
    return store


def get_config(request: Request) -> HubConfig:
    """The hub config of this app."""
    config: HubConfig = request.app.state.config
    return config


def get_intake(request: Request) -> Intake:
    """Turns reports into events (one per app: it caches the gazetteer)."""
    intake: Intake = request.app.state.intake
    return intake


CoreDep = Annotated[Core, Depends(get_core)]
StoreDep = Annotated[Store, Depends(get_store)]
ConfigDep = Annotated[HubConfig, Depends(get_config)]
IntakeDep = Annotated[Intake, Depends(get_intake)]


def event_scope(user: Read, core: CoreDep) -> Any:
    """SQL filter of the events the caller may see (None: all)."""
    return events_in_scope(user, core.registry)


# the caller's scope over events, as a dependency (``where`` of the event queries)
EventScope = Annotated[Any, Depends(event_scope)]


def scope_of(user: Principal, core: Core) -> str | None:
    """The level (district/town/community/grid) of the user's scope, or None."""
    return core.registry.scope_of(user.scope_id) if user.scope_id else None


def parse_cursor(cursor: str | None) -> int | None:
    """The ``next`` value of a previous page as a sequence number (400 when malformed)."""
    if not cursor:
        return None
    try:
        if not (cursor.isascii() and cursor.isdigit()):
            raise ValueError(cursor)
        value = int(cursor)
        if not 0 <= value < 2**63:  # a database integer
            raise ValueError(cursor)
        return value
    except ValueError:
        raise HTTPException(
            status_code=400,
            detail=f"cursor: expected the `next` value of a previous page, found {cursor!r}",
        ) from None


class Page(BaseModel):
    """A page of a list: ``next`` is the cursor of the following page, or null."""

    items: list[dict[str, Any]] = Field(description="the items, newest first")
    next: str | None = Field(description="pass as `cursor` for the next page; null on the last")


def page(items: list[dict[str, Any]], nxt: int | None) -> Response:
    """A page as compact JSON (``{"items": …, "next": …}``)."""
    body = json.dumps(
        {"items": items, "next": str(nxt) if nxt is not None else None},
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return Response(body, media_type="application/json")
