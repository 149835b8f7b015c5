"""Users, roles and scoping; bearer tokens stored hashed.

Roles: ``admin`` (everything), ``command_centre`` (screens and dispatches in its scope),
``board_handler`` (one board, in its scope), ``grid_worker`` (one grid), ``viewer`` (read
only). A scope is a district, town, community or grid id: a user sees and acts on what lies
inside it. Every mutating call is audited.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import secrets
import sys
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, Table, false, or_, select

from hub import schema
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
    "user_add_command",
    "hash_token",
]

ROLES: tuple[str, ...] = ("admin", "command_centre", "board_handler", "grid_worker", "viewer")

# every work-order action; admins and the command centre may take all of them
ALL_ACTIONS: frozenset[str] = frozenset(
    {
        "track",
        "false_alarm",
        "screen",
        "dispatch",
        "escalate",
        "reassign",
        "accept",
        "handle",
        "verify",
        "rework",
        "rate",
        "close",
        "reopen",
        "ack",
    }
)

# actions each role may take on a work order (inside its scope)
ROLE_ACTIONS: dict[str, frozenset[str]] = {
    "admin": ALL_ACTIONS,
    "command_centre": ALL_ACTIONS,
    "board_handler": frozenset({"escalate", "accept", "handle", "verify", "rework", "ack"}),
    "grid_worker": frozenset({"track", "false_alarm", "escalate", "accept", "handle", "ack"}),
    "viewer": frozenset(),
    "system": frozenset(
        {
            "track",
            "false_alarm",
            "screen",
            "dispatch",
            "escalate",
            "reassign",
            "accept",
            "handle",
            "verify",
            "rework",
            "rate",
            "close",
            "reopen",
            "ack",
        }
    ),
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
            )
        )
        store.audit(
            conn, actor, "user.add", f"user:{name}", {"role": role, "scope": scope, "board": board}
        )
    return token


def authenticate(store: Store, token: str) -> Principal | None:
    """The user of a bearer token (user token or login session), or None."""
    if not token:
        return None
    h = hash_token(token)
    u, s = schema.users, schema.sessions
    with store.engine.connect() as conn:
        row = conn.execute(select(u).where(u.c.token_hash == h, u.c.disabled.is_(False))).first()
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


def login(store: Store, name: str, password: str, ttl_h: float) -> tuple[str, Principal] | None:
    """Check a password; returns a new session token and the user, or None."""
    u = schema.users
    with store.engine.connect() as conn:
        row = conn.execute(select(u).where(u.c.name == name, u.c.disabled.is_(False))).first()
    if row is None or not row.password_hash or not _check_password(password, row.password_hash):
        return None
    token = secrets.token_urlsafe(32)
    with store.write() as conn:
        conn.execute(
            schema.sessions.insert().values(
                token_hash=hash_token(token),
                user_name=name,
                expires_at=store.now() + timedelta(hours=ttl_h),
            )
        )
        store.audit(conn, name, "login", f"user:{name}", {})
    return token, _principal(row)


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


def user_add_command(args: argparse.Namespace) -> int:
    """``shaobing hub user add NAME --role R [--scope ID] [--board B] [--password P] -c HUB.yaml [--db URL]``."""
    from hub.registry import load_registry
    from hub.serve import apply_overrides
    from hub.store import Store
    from shaobing.config import ConfigError, load_hub_config

    try:
        cfg = apply_overrides(load_hub_config(args.config), getattr(args, "db", None), None, None)
        registry = load_registry(cfg.resolve(cfg.registry)) if cfg.registry else None
    except ConfigError as exc:
        for issue in exc.issues:
            print(str(issue), file=sys.stderr)
        return 2
    store = Store(cfg.db_url())
    try:
        store.migrate()
        token = create_user(
            store, args.name, args.role, args.scope, args.board, args.password, registry
        )
    except ValueError as exc:
        print(f"shaobing hub user add: {exc}", file=sys.stderr)
        return 2
    finally:
        store.close()
    print(token)
    print(
        f"user {args.name!r} ({args.role}) added; the line above is its bearer token (shown once)",
        file=sys.stderr,
    )
    return 0
