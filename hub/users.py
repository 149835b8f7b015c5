"""Users, roles and scoping; bearer tokens stored hashed.

Roles: ``admin`` (everything), ``command_centre`` (screens and dispatches in its scope),
``board_handler`` (one board, in its scope), ``grid_worker`` (one grid), ``viewer`` (read
only). A scope is a district, town, community or grid id: a user sees and acts on what lies
inside it. Every mutating call is audited.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, Table, delete, false, or_, select

from hub import schema
from hub.workflow import ALL_ACTIONS, Action
from shaobing.taxonomy import BOARDS

if TYPE_CHECKING:
    from hub.registry import Registry
    from hub.store import Store

__all__ = [
    "ROLES",
    "Principal",
    "SYSTEM",
    "ANONYMOUS",
    "create_user",
    "authenticate",
    "login",
    "hash_token",
    "LoginGuard",
    "logout",
    "issue_token",
    "disable_user",
    "revoke_user",
]

ROLES: tuple[str, ...] = ("admin", "command_centre", "board_handler", "grid_worker", "viewer")


def _actions(*actions: Action) -> frozenset[str]:
    return frozenset(a.value for a in actions)


# actions each role may take on a work order (inside its scope); admins, the command centre
# and the system may take all of them
ROLE_ACTIONS: dict[str, frozenset[str]] = {
    "admin": ALL_ACTIONS,
    "command_centre": ALL_ACTIONS,
    "board_handler": _actions(
        Action.ESCALATE, Action.ACCEPT, Action.HANDLE, Action.VERIFY, Action.REWORK, Action.ACK
    ),
    "grid_worker": _actions(
        Action.TRACK, Action.FALSE_ALARM, Action.ESCALATE, Action.ACCEPT, Action.HANDLE, Action.ACK
    ),
    "viewer": frozenset(),
    "system": ALL_ACTIONS,
}


@dataclass(frozen=True)
class Principal:
    """Who is calling."""

    name: str
    role: str
    scope_id: str | None = None
    board: str | None = None
    person_id: str | None = None

    @property
    def ident(self) -> str:
        """The person id when linked to the registry, else the login name."""
        return self.person_id or self.name

    def may(self, action: str) -> bool:
        """The role allows this work-order action."""
        return action in ROLE_ACTIONS.get(self.role, frozenset())

    def sees(self, row: Any) -> bool:
        """True when a work order / incident row lies inside this user's scope and board."""
        if self.role in ("admin", "system"):
            return True
        if self.scope_id is not None:
            places = {
                getattr(row, c, None) for c in ("grid_id", "community_id", "town_id", "district_id")
            }
            if self.scope_id not in places:
                return False
        if (
            self.role == "board_handler"
            and self.board
            and getattr(row, "board", self.board) != self.board
        ):
            return False
        return True

    def where(self, table: Table, scope_level: str | None = None) -> ColumnElement[bool] | None:
        """SQL filter for a table with grid/community/town/district columns (None: no filter).

        Args:
            table: incidents or work_orders.
            scope_level: the registry level of ``scope_id`` (grid, community, town,
                district) when known: one indexed column instead of four.
        """
        if self.role in ("admin", "system"):
            return None
        conds = []
        if self.scope_id is not None:
            c = table.c
            if scope_level in ("grid", "community", "town", "district"):
                conds.append(c[f"{scope_level}_id"] == self.scope_id)
            else:
                conds.append(
                    or_(
                        c.grid_id == self.scope_id,
                        c.community_id == self.scope_id,
                        c.town_id == self.scope_id,
                        c.district_id == self.scope_id,
                    )
                )
        if self.role == "board_handler" and "board" in table.c:
            conds.append(table.c.board == self.board if self.board else false())
        if not conds:
            return None
        out = conds[0]
        for extra in conds[1:]:
            out = out & extra
        return out


SYSTEM = Principal(name="system", role="system")
ANONYMOUS = Principal(name="anonymous", role="viewer")


def hash_token(token: str) -> str:
    """sha256 hex of a bearer token (tokens are random; the hash is what is stored)."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _hash_password(password: str, salt: bytes | None = None) -> str:
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode("utf-8"), salt=salt, n=2**14, r=8, p=1, dklen=32)
    return f"scrypt${salt.hex()}${digest.hex()}"


def _check_password(password: str, stored: str) -> bool:
    try:
        _algo, salt_hex, _digest = stored.split("$")
    except ValueError:
        return False
    return hmac.compare_digest(_hash_password(password, bytes.fromhex(salt_hex)), stored)


# checked against when the name is unknown, so that both answers cost one scrypt
_DUMMY_HASH = _hash_password(secrets.token_urlsafe(16))


def _principal(row: Any) -> Principal:
    return Principal(
        name=row.name,
        role=row.role,
        scope_id=row.scope_id,
        board=row.board,
        person_id=row.person_id,
    )


def validate_user(
    role: str, scope: str | None, board: str | None, registry: Registry | None
) -> None:
    """Raise ValueError (expected vs found) when a user's role, scope or board do not fit."""
    if role not in ROLES:
        raise ValueError(f"role: expected one of {', '.join(ROLES)}, found {role!r}")
    if board is not None and board not in BOARDS:
        raise ValueError(f"board: expected one of {', '.join(BOARDS)}, found {board!r}")
    if role == "board_handler" and board is None:
        raise ValueError("board: expected a board for a board_handler, found none")
    if role == "grid_worker" and scope is None:
        raise ValueError("scope: expected the grid of a grid_worker, found none")
    if registry is not None and scope is not None:
        level = registry.scope_of(scope)
        if level is None:
            raise ValueError(
                f"scope: expected a district, town, community or grid id of the registry, found {scope!r}"
            )
        if role == "grid_worker" and level != "grid":
            raise ValueError(
                f"scope: expected a grid id for a grid_worker, found the {level} {scope!r}"
            )


def create_user(
    store: Store,
    name: str,
    role: str,
    scope: str | None = None,
    board: str | None = None,
    password: str | None = None,
    registry: Registry | None = None,
    actor: str = "cli",
) -> str:
    """Add a user; returns its bearer token (shown once, stored hashed).

    A user whose name is a registry person id is linked to that person (orders assigned to
    that person are theirs).
    """
    validate_user(role, scope, board, registry)
    person_id = None
    if registry is not None:
        from hub.registry import iter_people

        if any(p.id == name for p in iter_people(registry)):
            person_id = name
    token = secrets.token_urlsafe(32)
    t = schema.users
    with store.write() as conn:
        if conn.execute(select(t.c.seq).where(t.c.name == name)).first() is not None:
            raise ValueError(f"name: expected a new user name, found {name!r} already taken")
        conn.execute(
            t.insert().values(
                name=name,
                role=role,
                scope_id=scope,
                board=board,
                person_id=person_id,
                token_hash=hash_token(token),
                password_hash=_hash_password(password) if password else None,
                disabled=False,
                created_at=store.now(),
                token_issued_at=store.now(),
            )
        )
        store.audit(
            conn, actor, "user.add", f"user:{name}", {"role": role, "scope": scope, "board": board}
        )
    return token


def authenticate(store: Store, token: str, token_ttl_days: float | None = None) -> Principal | None:
    """The user of a bearer token (user token or login session), or None.

    A user's bearer token expires ``token_ttl_days`` after it was issued (None: never);
    a session expires at its ``expires_at``; a disabled user has neither.
    """
    if not token:
        return None
    h = hash_token(token)
    u, s = schema.users, schema.sessions
    with store.engine.connect() as conn:
        row = conn.execute(select(u).where(u.c.token_hash == h, u.c.disabled.is_(False))).first()
        if row is not None and token_ttl_days is not None:
            from hub.store import aware

            issued = aware(row.token_issued_at or row.created_at)
            if issued is not None and issued + timedelta(days=token_ttl_days) <= store.now():
                return None
        if row is None:
            sess = conn.execute(select(s).where(s.c.token_hash == h)).first()
            if sess is None:
                return None
            from hub.store import aware

            if aware(sess.expires_at) <= store.now():  # type: ignore[operator]
                return None
            row = conn.execute(
                select(u).where(u.c.name == sess.user_name, u.c.disabled.is_(False))
            ).first()
            if row is None:
                return None
    return _principal(row)


class LoginGuard:
    """Failed-login throttle per name and per address, with a doubling backoff.

    After ``max_failures`` failures within ``window_s`` for a name or an address, further
    attempts are refused (HTTP 429) for ``backoff_s``, doubling with each failure while
    locked, up to an hour. Bounded: the oldest of at most ``max_keys`` records is dropped.
    Each hub worker keeps its own counts (a burst at one worker is stopped there).
    """

    def __init__(
        self,
        max_failures: int = 5,
        window_s: float = 300.0,
        backoff_s: float = 30.0,
        max_keys: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_failures = max_failures
        self.window_s = window_s
        self.backoff_s = backoff_s
        self.max_keys = max_keys
        self.clock = clock
        self._fails: OrderedDict[str, deque[float]] = OrderedDict()
        self._locked: dict[str, tuple[float, float]] = {}  # key → (until, current backoff)
        self._lock = threading.Lock()
        self.refused = 0

    def retry_after(self, *keys: str) -> float | None:
        """Seconds until these keys may try again, or None when they may now."""
        now = self.clock()
        with self._lock:
            waits = [
                until - now for k in keys if (until := self._locked.get(k, (0.0, 0.0))[0]) > now
            ]
            if waits:
                self.refused += 1
                return max(waits)
        return None

    def failed(self, *keys: str) -> bool:
        """Record a failure; True when it starts (or extends) a lockout."""
        now = self.clock()
        locked = False
        with self._lock:
            for key in keys:
                times = self._fails.pop(key, None) or deque(maxlen=self.max_failures)
                times.append(now)
                self._fails[key] = times
                while len(self._fails) > self.max_keys:
                    old, _ = self._fails.popitem(last=False)
                    self._locked.pop(old, None)
                recent = [t for t in times if now - t <= self.window_s]
                if len(recent) >= self.max_failures:
                    _, backoff = self._locked.get(key, (0.0, self.backoff_s / 2))
                    backoff = min(3600.0, backoff * 2)
                    self._locked[key] = (now + backoff, backoff)
                    locked = True
        return locked

    def succeeded(self, name_key: str) -> None:
        """A good password clears the name's record (not the address's)."""
        with self._lock:
            self._fails.pop(name_key, None)
            self._locked.pop(name_key, None)


def login(
    store: Store,
    name: str,
    password: str,
    ttl_h: float,
    address: str = "",
    guard: LoginGuard | None = None,
) -> tuple[str, Principal] | None:
    """Check a password; returns a new session token and the user, or None.

    Unknown names cost the same password check as known ones. A failure is audited
    (``login.failed``, with the address) and counted by ``guard``.
    """
    u = schema.users
    with store.engine.connect() as conn:
        row = conn.execute(select(u).where(u.c.name == name, u.c.disabled.is_(False))).first()
    stored = row.password_hash if row is not None and row.password_hash else _DUMMY_HASH
    good = _check_password(password, stored) and row is not None and bool(row.password_hash)
    if not good or row is None:
        locked = guard.failed(f"name:{name}", f"addr:{address}") if guard else False
        with store.write() as conn:
            store.audit(
                conn,
                name[:64],
                "login.failed",
                f"user:{name}"[:128],
                {"address": address, "known": row is not None, "locked": locked},
            )
        return None
    if guard is not None:
        guard.succeeded(f"name:{name}")
    token = secrets.token_urlsafe(32)
    with store.write() as conn:
        conn.execute(
            schema.sessions.insert().values(
                token_hash=hash_token(token),
                user_name=name,
                expires_at=store.now() + timedelta(hours=ttl_h),
            )
        )
        store.audit(conn, name, "login", f"user:{name}", {"address": address})
    return token, _principal(row)


def logout(store: Store, token: str) -> bool:
    """Revoke a login session server-side; True when one was revoked."""
    if not token:
        return False
    with store.write() as conn:
        done = conn.execute(
            delete(schema.sessions).where(schema.sessions.c.token_hash == hash_token(token))
        ).rowcount
    return bool(done)


def issue_token(store: Store, name: str, actor: str = "cli") -> str:
    """A new bearer token for a user (the old one stops working); returns it."""
    token = secrets.token_urlsafe(32)
    u = schema.users
    with store.write() as conn:
        done = conn.execute(
            u.update()
            .where(u.c.name == name)
            .values(token_hash=hash_token(token), token_issued_at=store.now())
        ).rowcount
        if not done:
            raise ValueError(f"name: expected an existing user, found {name!r}")
        store.audit(conn, actor, "user.token", f"user:{name}", {})
    return token


def revoke_user(store: Store, name: str, actor: str = "cli") -> None:
    """End a user's sessions and void its bearer token (a new one is not shown)."""
    issue_token(store, name, actor)
    with store.write() as conn:
        conn.execute(delete(schema.sessions).where(schema.sessions.c.user_name == name))
        store.audit(conn, actor, "user.revoke", f"user:{name}", {})


def disable_user(store: Store, name: str, disabled: bool = True, actor: str = "cli") -> None:
    """Disable (or enable) a user: a disabled user's token and sessions stop working."""
    u = schema.users
    with store.write() as conn:
        done = conn.execute(u.update().where(u.c.name == name).values(disabled=disabled)).rowcount
        if not done:
            raise ValueError(f"name: expected an existing user, found {name!r}")
        if disabled:
            conn.execute(delete(schema.sessions).where(schema.sessions.c.user_name == name))
        store.audit(conn, actor, "user.disable" if disabled else "user.enable", f"user:{name}", {})


def list_users(store: Store) -> list[dict[str, Any]]:
    """Users without secrets."""
    u = schema.users
    with store.engine.connect() as conn:
        rows = conn.execute(select(u).order_by(u.c.name)).all()
    return [
        {
            "name": r.name,
            "role": r.role,
            "scope_id": r.scope_id,
            "board": r.board,
            "person_id": r.person_id,
            "disabled": bool(r.disabled),
        }
        for r in rows
    ]
