"""Login and logout, who am I, users (admin) and the audit log."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from hub.api.deps import SESSION_COOKIE, AdminAct, CoreDep, Read, StaffAct, bearer
from hub.users import ANONYMOUS, ROLE_ACTIONS, LoginGuard, create_user, list_users, login, logout

router = APIRouter(tags=["users"])


class LoginIn(BaseModel):
    """Web login."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=64, description="login name")
    password: str = Field(min_length=1, max_length=256, description="password")


class UserIn(BaseModel):
    """A new user (admin only)."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9_.@\-]+$",
        description="login name (a registry person id links the user to that person)",
    )
    role: str = Field(description="admin, command_centre, board_handler, grid_worker or viewer")
    scope: str | None = Field(default=None, description="district/town/community/grid id")
    board: str | None = Field(default=None, description="board code (board handlers)")
    password: str | None = Field(
        default=None, max_length=256, description="password for the web login"
    )


class UserPublic(BaseModel):
    """A logged-in user."""

    name: str
    role: str
    scope_id: str | None
    board: str | None


class LoginPublic(BaseModel):
    """The session: the token (null when it went into the cookie) and the user."""

    token: str | None = Field(description="bearer token; null with ?cookie=true")
    user: UserPublic


class LogoutPublic(BaseModel):
    """The session ended."""

    ok: bool
    revoked: bool = Field(description="a session or token was found and revoked")


class MePublic(BaseModel):
    """Who is calling and what their role may do."""

    name: str
    role: str
    scope_id: str | None
    board: str | None
    person_id: str | None
    anonymous: bool
    actions: list[str] = Field(description="work-order actions of the role")


class NewUserPublic(BaseModel):
    """A user was added; the token is shown once."""

    name: str
    token: str


@router.post("/api/v1/login")
def do_login(
    body: LoginIn,
    request: Request,
    response: Response,
    core: CoreDep,
    cookie: Annotated[
        bool, Query(description="also set the HttpOnly SameSite=Strict session cookie")
    ] = False,
) -> LoginPublic:
    config = core.config
    guard: LoginGuard = request.app.state.login_guard
    address = request.client.host if request.client else ""
    wait = guard.retry_after(f"name:{body.name}", f"addr:{address}")
    if wait is not None:
        raise HTTPException(
            status_code=429,
            detail=f"too many failed logins: try again in {wait:.0f} s",
            headers={"Retry-After": str(max(1, int(wait + 0.999)))},
        )
    res = login(core.store, body.name, body.password, config.auth.session_ttl_h, address, guard)
    if res is None:
        raise HTTPException(status_code=401, detail="wrong name or password")
    token, who = res
    if cookie:
        secure = config.auth.secure_cookies
        response.set_cookie(
            SESSION_COOKIE,
            token,
            max_age=int(config.auth.session_ttl_h * 3600),
            httponly=True,
            samesite="strict",
            path="/",
            secure=request.url.scheme == "https" if secure is None else secure,
        )
    user = UserPublic(name=who.name, role=who.role, scope_id=who.scope_id, board=who.board)
    return LoginPublic(token=None if cookie else token, user=user)


@router.post("/api/v1/logout")
def do_logout(request: Request, response: Response, core: CoreDep) -> LogoutPublic:
    revoked = logout(core.store, bearer(request) or request.cookies.get(SESSION_COOKIE) or "")
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")
    return LogoutPublic(ok=True, revoked=revoked)


@router.get("/api/v1/me")
def me(user: Read) -> MePublic:
    return MePublic(
        name=user.name,
        role=user.role,
        scope_id=user.scope_id,
        board=user.board,
        person_id=user.person_id,
        anonymous=user is ANONYMOUS,
        actions=sorted(ROLE_ACTIONS.get(user.role, frozenset())),
    )


@router.get("/api/v1/users")
def users(user: AdminAct, core: CoreDep) -> dict[str, Any]:
    return {"items": list_users(core.store), "next": None}


@router.post("/api/v1/users", status_code=201)
def add_user(body: UserIn, user: AdminAct, core: CoreDep) -> NewUserPublic:
    try:
        token = create_user(
            core.store,
            body.name,
            body.role,
            body.scope,
            body.board,
            body.password,
            core.registry,
            actor=user.name,
        )
    except ValueError as exc:
        raise HTTPException(status_code=422, detail=str(exc)) from None
    return NewUserPublic(name=body.name, token=token)


@router.get("/api/v1/audit")
def audit(
    user: StaffAct,
    core: CoreDep,
    target: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    return {"items": core.store.list_audit(target, limit), "next": None}
