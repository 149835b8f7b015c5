"""Work orders: the seven steps (7单流程, ARCHITECTURE §6) as an explicit state machine.

Every transition is checked against ``TRANSITIONS`` (anything else is refused with the
allowed actions), against the caller's role and scope, and written as an audit row (who,
when, from → to, note, photos). Deadlines come from the SLA policy; the scheduler escalates
what is late, reassigns what is not accepted in time, escalates unacknowledged emergencies
and closes verified orders nobody rated. Each of those is a conditional update in a locked
transaction: exactly once per deadline, also with several hub workers.
"""

from __future__ import annotations

import builtins
import json
import logging
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Integer, and_, func, select

from hub import messages, notify, schema
from hub.registry import Placement, Registry
from hub.routing import Router, next_level
from hub.sla import SlaPolicy
from hub.store import aware, dumps, iso
from hub.users import ROLE_ACTIONS, SYSTEM, Principal
from hub.workflow import (
    STATE_NAMES,
    STATES,
    TERMINAL,
    TRANSITION_ACTIONS,
    TRANSITIONS,
    Action,
    Record,
)
from shaobing.config import HubConfig
from shaobing.contract import FALSE_ALARM_REASONS, new_event_id
from shaobing.taxonomy import Taxonomy, level_rank, max_severity

if TYPE_CHECKING:
    from hub.store import Store

__all__ = [
    "TRANSITIONS",
    "STATES",
    "STATE_NAMES",
    "WorkOrders",
    "OrderFilter",
    "TransitionRefused",
    "Forbidden",
    "NotFound",
    "Invalid",
]

log = logging.getLogger(__name__)


class TransitionRefused(Exception):
    """An action that the order's state does not allow (HTTP 409)."""

    def __init__(
        self, state: str, action: str, allowed: Sequence[str], reason: str | None = None
    ) -> None:
        self.state = state
        self.action = action
        self.allowed = list(allowed)
        msg = (
            reason
            or f"action {action!r} is not allowed in state {state!r}; expected one of: {', '.join(self.allowed) or 'none (terminal state)'}"
        )
        super().__init__(msg)


class Forbidden(Exception):
    """The caller may not do this (HTTP 403)."""


class NotFound(Exception):
    """No such order (HTTP 404)."""


class Invalid(Exception):
    """The request's data is wrong (HTTP 422)."""


@dataclass(frozen=True)
class _Ctx:
    """Who takes an action, with what note, photos and data."""

    actor: Principal
    note: str
    photos: list[str]
    data: dict[str, Any]


def _system(note: str, **data: Any) -> _Ctx:
    """An action the hub takes by itself."""
    return _Ctx(SYSTEM, note, [], data)


@dataclass
class _Effect:
    """What an action changes on the order's row, and whom it notifies (with the action as
    the reason)."""

    changes: dict[str, Any]
    notify: str | None = None


@dataclass
class OrderFilter:
    """What a work-order list is filtered by (None: any); the API takes these as query
    parameters."""

    state: str | None = None
    board: str | None = None
    level: str | None = None
    grid_id: str | None = None
    assignee_id: str | None = None
    severity: str | None = None
    screening: bool | None = None
    incident_id: str | None = None

    def equals(self) -> tuple[tuple[str, str | None], ...]:
        """(column, value) pairs of the text filters."""
        return tuple(
            (name, getattr(self, name))
            for name in ("state", "board", "level", "grid_id", "assignee_id", "severity")
        ) + (("incident_id", self.incident_id),)


def _placement(row: dict[str, Any]) -> Placement:
    return Placement(
        row["grid_id"], row["community_id"], row["town_id"], row["district_id"], "order"
    )


def order_view(row: Any, registry: Registry | None = None) -> dict[str, Any]:
    """API form of a work-order row."""
    r = row if isinstance(row, dict) else dict(row._mapping)
    out: dict[str, Any] = {}
    for k, v in r.items():
        if k in ("version",):
            continue
        out[k] = iso(v) if isinstance(v, datetime) else v
    out["step"] = STATE_NAMES.get(r["state"], r["state"])
    out["allowed"] = list(TRANSITIONS.get(r["state"], {}))
    if registry is not None:
        out["grid_name"] = registry.name_of(r["grid_id"])
    out["screening"] = bool(r["screening"])
    out["on_time"] = None if r["on_time"] is None else bool(r["on_time"])
    return out


class WorkOrders:
    """Opens, moves and supervises work orders.

    Args:
        store: the store.
        config: hub config (routing, SLA, notify).
        registry: grid registry.
        router: routing rules.
        taxonomy: event types.
    """

    def __init__(
        self,
        store: Store,
        config: HubConfig,
        registry: Registry,
        router: Router,
        taxonomy: Taxonomy,
    ) -> None:
        self.store = store
        self.config = config
        self.registry = registry
        self.router = router
        self.taxonomy = taxonomy
        self.policy = SlaPolicy(config.sla, config.timezone)

    # ------------------------------------------------------------------ opening

    def open(self, conn: Connection, incident: dict[str, Any], source_key: str) -> dict[str, Any]:
        """Open the work order of a new incident (in the incident's transaction).

        The unique ``incident_id`` makes a second order for one incident impossible.
        """
        now = self.store.now()
        route = self.router.route(incident["type"], incident["severity"])
        placement = Placement(
            incident["grid_id"],
            incident["community_id"],
            incident["town_id"],
            incident["district_id"],
        )
        screening = not placement.placed
        assignee = None
        if screening:
            placement, cc = self.router.screener()
            assignee = cc
        else:
            for level in ("grid", "community", "town"):
                people = self.router.owners(placement, level, route.board)
                if people:
                    assignee = people[0]
                    break
        row: dict[str, Any] = {
            "id": new_event_id(),
            "rating_code": secrets.token_urlsafe(9),
            "incident_id": incident["id"],
            "state": "reported",
            "type": incident["type"],
            "board": route.board,
            "level": route.level,
            "severity": incident["severity"],
            "grid_id": placement.grid_id,
            "community_id": placement.community_id,
            "town_id": placement.town_id,
            "district_id": placement.district_id,
            "screening": screening,
            "assignee_id": assignee.id if assignee else None,
            "assignee_name": assignee.name if assignee else None,
            "handler_id": None,
            "summary": incident["summary"],
            "source_key": source_key,
            "created_at": now,
            "updated_at": now,
            "escalations": 0,
            "reassigns": 0,
            "reworks": 0,
            "reopens": 0,
            "version": 1,
            # tracking/screening must start within the accept time too (the scheduler reminds)
            "accept_due_at": self.policy.accept_deadline(
                now, incident["type"], incident["severity"], route.level
            ),
        }
        conn.execute(schema.work_orders.insert().values(**row))
        row = self._load(conn, row["id"])
        self._log(
            conn,
            row,
            SYSTEM,
            Record.OPEN,
            "reported",
            "reported",
            messages.opened(screening),
            [],
            {},
        )
        if row["severity"] == "emergency":
            row = self._emergency(conn, row)
        elif row["assignee_id"]:
            notify.enqueue(
                self.store, conn, self.config, row, [row["assignee_id"]], Action.TRACK.value
            )
        self.store.change(
            conn,
            "work_order",
            row["id"],
            {"state": row["state"], "severity": row["severity"], "incident_id": row["incident_id"]},
        )
        return row

    def _emergency(self, conn: Connection, row: dict[str, Any]) -> dict[str, Any]:
        """Red order: skip the queue, notify every responsible person at once, pin the incident."""
        for action in (Action.TRACK, Action.SCREEN, Action.DISPATCH):
            if action in TRANSITIONS[row["state"]]:
                row = self._apply(conn, row, action, _system(messages.EMERGENCY, quiet=True))
        people = [p.id for p in self.registry.responsible(_placement(row), row["board"])]
        if row["assignee_id"]:
            people.insert(0, row["assignee_id"])
        notify.enqueue(self.store, conn, self.config, row, people, "emergency")
        now = self.store.now()
        conn.execute(
            schema.incidents.update()
            .where(
                schema.incidents.c.id == row["incident_id"], schema.incidents.c.acked_at.is_(None)
            )
            .values(
                pinned=True,
                ack_due_at=now + timedelta(minutes=self.config.sla.ack_min),
                updated_at=now,
            )
        )
        return row

    def raise_severity(self, conn: Connection, incident_id: str, severity: str, type_: str) -> None:
        """An incident became more severe: the order follows (never lowered)."""
        t = schema.work_orders
        row = conn.execute(
            self.store.for_update(select(t).where(t.c.incident_id == incident_id))
        ).first()
        if row is None:
            return
        old = dict(row._mapping)
        new_sev = max_severity(old["severity"], severity)
        route = self.router.route(type_, new_sev)
        level = old["level"] if level_rank(old["level"]) >= level_rank(route.level) else route.level
        if new_sev == old["severity"] and level == old["level"]:
            return
        conn.execute(
            t.update()
            .where(t.c.id == old["id"])
            .values(
                severity=new_sev,
                level=level,
                type=type_,
                updated_at=self.store.now(),
                version=t.c.version + 1,
            )
        )
        new = self._load(conn, old["id"])
        self._log(
            conn,
            new,
            SYSTEM,
            Record.SEVERITY,
            old["state"],
            old["state"],
            messages.severity_raised(old["severity"], new_sev),
            [],
            {"level": level},
        )
        if (
            new_sev == "emergency"
            and old["severity"] != "emergency"
            and old["state"] not in TERMINAL
        ):
            self._emergency(conn, new)

    # ------------------------------------------------------------------ transitions

    def transition(
        self,
        wo_id: str,
        action: str,
        actor: Principal,
        note: str = "",
        photos: Sequence[str] = (),
        data: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Apply one action (plus the automatic follow-ups) and return the order.

        Raises:
            NotFound, Forbidden, TransitionRefused, Invalid.
        """
        ctx = _Ctx(actor, note[:4000], list(photos)[:32], dict(data or {}))
        with self.store.write(lock="workflow") as conn:
            t = schema.work_orders
            r = conn.execute(self.store.for_update(select(t).where(t.c.id == wo_id))).first()
            if r is None or not actor.sees(r):
                raise NotFound(f"work order {wo_id!r} not found")
            row = dict(r._mapping)
            if action not in TRANSITION_ACTIONS:  # a bad request, not a state conflict
                raise Invalid(
                    f"action: expected one of {', '.join(sorted(TRANSITION_ACTIONS))}, found {action!r}"
                )
            if not actor.may(action):
                raise Forbidden(
                    f"role {actor.role!r} may not {action!r}; allowed: {', '.join(sorted(ROLE_ACTIONS.get(actor.role, frozenset())))}"
                )
            if action not in TRANSITIONS.get(row["state"], {}):
                raise TransitionRefused(
                    row["state"], action, list(TRANSITIONS.get(row["state"], {}))
                )
            self._check_photos(conn, ctx.photos, wo_id)
            row = self._apply(conn, row, action, ctx)
            row = self._follow_up(conn, row, action)
            return order_view(row, self.registry)

    def _check_photos(self, conn: Connection, photos: list[str], wo_id: str) -> None:
        """The photos exist; those not yet attached now belong to this order (and its scope)."""
        if not photos:
            return
        u = schema.uploads
        found = {r[0] for r in conn.execute(select(u.c.id).where(u.c.id.in_(photos)))}
        missing = [p for p in photos if p not in found]
        if missing:
            raise Invalid(
                f"photos: expected ids of uploads (POST /api/v1/uploads), found unknown {missing}"
            )
        conn.execute(
            u.update()
            .where(u.c.id.in_(photos), u.c.work_order_id.is_(None))
            .values(work_order_id=wo_id)
        )

    def _follow_up(self, conn: Connection, row: dict[str, Any], action: str) -> dict[str, Any]:
        """The system's own next steps: auto screening and dispatch, closing or reopening."""
        if action == Action.TRACK and self.config.routing.auto_screen and not row["screening"]:
            row = self._apply(conn, row, Action.SCREEN, _system(messages.AUTO_SCREEN))
            row = self._apply(conn, row, Action.DISPATCH, _system(messages.AUTO_DISPATCH))
        elif action == Action.RATE:
            if (row["rating"] or 0) >= self.config.sla.satisfied_min:
                row = self._apply(conn, row, Action.CLOSE, _system(messages.RATED_SATISFIED))
            else:
                row = self._apply(conn, row, Action.REOPEN, _system(messages.RATED_UNSATISFIED))
        return row

    def _apply(
        self, conn: Connection, row: dict[str, Any], action: str, ctx: _Ctx
    ) -> dict[str, Any]:
        """One step of the table: its effect on the row, the write, the trail, the notices."""
        action = str(action)  # plain text in the database and the notices
        frm = row["state"]
        allowed = TRANSITIONS.get(frm, {})
        if action not in allowed:
            raise TransitionRefused(frm, action, list(allowed))
        to = allowed[action]
        now = self.store.now()
        d = ctx.data
        effect = _EFFECTS[Action(action)](self, row, ctx, now)
        ch = {**effect.changes, "state": to, "updated_at": now, "version": row["version"] + 1}
        t = schema.work_orders
        res = conn.execute(
            t.update().where(and_(t.c.id == row["id"], t.c.version == row["version"])).values(**ch)
        )
        if res.rowcount != 1:
            raise TransitionRefused(
                frm, action, list(allowed), "the order changed meanwhile; reload and retry"
            )
        new = self._load(conn, row["id"])
        self._log(
            conn,
            new,
            ctx.actor,
            action,
            frm,
            to,
            ctx.note,
            ctx.photos,
            {k: v for k, v in d.items() if k != "quiet"},
        )
        if to in TERMINAL:
            self._incident_closed(conn, new, to)
        if action == Action.FALSE_ALARM:
            self._false_alarm(conn, new, ctx.actor)
            notify.enqueue_verdicts(
                self.store, conn, self.config, new, ctx.actor.name, str(d["reason"]), ctx.note
            )
        if effect.notify is not None:
            notify.enqueue(self.store, conn, self.config, new, [effect.notify], action)
        self._changed(conn, new, action)
        return new

    def _changed(self, conn: Connection, row: dict[str, Any], action: str) -> None:
        """Tell the change feed (dashboard, live stream) that an order moved."""
        self.store.change(
            conn,
            "work_order",
            row["id"],
            {
                "state": row["state"],
                "action": action,
                "severity": row["severity"],
                "incident_id": row["incident_id"],
            },
        )

    # ------------------------------------------------------------------ effects, one per action

    def _track(self, row: dict[str, Any], ctx: _Ctx, now: datetime) -> _Effect:
        return _Effect({})

    def _false_alarm_effect(self, row: dict[str, Any], ctx: _Ctx, now: datetime) -> _Effect:
        reason = ctx.data.setdefault("reason", "其他")
        if reason not in FALSE_ALARM_REASONS:
            raise Invalid(
                f"reason: expected one of {'、'.join(FALSE_ALARM_REASONS)}, found {reason!r}"
            )
        return self._close(row, ctx, now)

    def _screen(self, row: dict[str, Any], ctx: _Ctx, now: datetime) -> _Effect:
        d = ctx.data
        level = d.get("level", row["level"])
        board = d.get("board", row["board"])
        if level not in self.taxonomy.levels:
            raise Invalid(
                f"level: expected one of {', '.join(self.taxonomy.levels)}, found {level!r}"
            )
        if board not in self.taxonomy.boards:
            raise Invalid(
                f"board: expected one of {', '.join(self.taxonomy.boards)}, found {board!r}"
            )
        ch: dict[str, Any] = {"level": level, "board": board}
        if d.get("grid_id"):
            gid = d["grid_id"]
            if gid not in self.registry.grids:
                raise Invalid(f"grid_id: expected a grid of the registry, found {gid!r}")
            p = self.registry.place_grid(gid, "screening")
            ch.update(
                grid_id=p.grid_id,
                community_id=p.community_id,
                town_id=p.town_id,
                district_id=p.district_id,
                screening=False,
            )
        return _Effect(ch)

    def _assign(self, row: dict[str, Any], ctx: _Ctx, now: datetime, level: str) -> _Effect:
        """Dispatch at ``level``: the owner (or the one asked for), new deadlines, a notice."""
        people = self.router.owners(_placement(row), level, row["board"])
        assignee = self._pick(ctx.data.get("assignee_id"), people)
        accept_due, handle_due = self.policy.deadlines(now, row["type"], row["severity"], level)
        ch = {
            "level": level,
            "assignee_id": assignee[0],
            "assignee_name": assignee[1],
            "accept_due_at": accept_due,
            "handle_due_at": handle_due,
            "dispatched_at": now,
        }
        quiet = ctx.data.get("quiet")
        return _Effect(ch, assignee[0] if assignee[0] and not quiet else None)

    def _dispatch(self, row: dict[str, Any], ctx: _Ctx, now: datetime) -> _Effect:
        return self._assign(row, ctx, now, row["level"])

    def _escalate(self, row: dict[str, Any], ctx: _Ctx, now: datetime) -> _Effect:
        level = next_level(row["level"])
        if level is None:
            raise TransitionRefused(
                row["state"],
                Action.ESCALATE.value,
                [a for a in TRANSITIONS[row["state"]] if a != Action.ESCALATE],
                "escalate: already at the district level (the highest); reassign instead",
            )
        effect = self._assign(row, ctx, now, level)
        effect.changes["escalations"] = row["escalations"] + 1
        return effect

    def _reopen(self, row: dict[str, Any], ctx: _Ctx, now: datetime) -> _Effect:
        effect = self._assign(row, ctx, now, row["level"])
        effect.changes.update(
            reopens=row["reopens"] + 1, handler_id=None, rating=None, closed_at=None
        )
        return effect

    def _reassign(self, row: dict[str, Any], ctx: _Ctx, now: datetime) -> _Effect:
        people = self.router.owners(_placement(row), row["level"], row["board"])
        target = ctx.data.get("assignee_id")
        if target is None:
            backups = [p for p in people if p.id != row["assignee_id"]]
            if not backups:
                raise Invalid(
                    "assignee_id: expected the person to reassign to (no backup on duty in the registry), found none"
                )
            target = backups[0].id
        assignee = self._pick(target, people)
        ch = {
            "assignee_id": assignee[0],
            "assignee_name": assignee[1],
            "reassigns": row["reassigns"] + 1,
            "accept_due_at": self.policy.accept_deadline(
                now, row["type"], row["severity"], row["level"]
            ),
        }
        return _Effect(ch, assignee[0])

    def _accept(self, row: dict[str, Any], ctx: _Ctx, now: datetime) -> _Effect:
        ch: dict[str, Any] = {"handler_id": ctx.actor.ident, "accepted_at": now}
        if row["dispatched_at"] is not None:
            ch["accept_s"] = (now - aware(row["dispatched_at"])).total_seconds()  # type: ignore[operator]
        return _Effect(ch)

    def _handle(self, row: dict[str, Any], ctx: _Ctx, now: datetime) -> _Effect:
        due = aware(row["handle_due_at"])
        on_time = bool(row["on_time"] is not False and (due is None or now <= due))
        return _Effect({"handled_at": now, "on_time": on_time})

    def _not_the_handler(self, row: dict[str, Any], ctx: _Ctx, action: str) -> None:
        """Verification is by someone other than the handler (四眼原则)."""
        if ctx.actor.ident == row["handler_id"] or ctx.actor.name == row["handler_id"]:
            raise TransitionRefused(
                row["state"],
                action,
                [],
                f"{action}: expected someone other than the handler ({row['handler_id']}), found the handler",
            )

    def _verify(self, row: dict[str, Any], ctx: _Ctx, now: datetime) -> _Effect:
        self._not_the_handler(row, ctx, Action.VERIFY)
        return _Effect({"verified_at": now, "rate_due_at": self.policy.rating_deadline(now)})

    def _rework(self, row: dict[str, Any], ctx: _Ctx, now: datetime) -> _Effect:
        self._not_the_handler(row, ctx, Action.REWORK)
        ch = {"reworks": row["reworks"] + 1, "handled_at": None}
        return _Effect(ch, row["handler_id"] or None)

    def _rate(self, row: dict[str, Any], ctx: _Ctx, now: datetime) -> _Effect:
        rating = ctx.data.get("rating")
        if not isinstance(rating, int) or isinstance(rating, bool) or not 1 <= rating <= 5:
            raise Invalid(f"rating: expected an integer 1–5, found {rating!r}")
        return _Effect({"rating": rating})

    def _close(self, row: dict[str, Any], ctx: _Ctx, now: datetime) -> _Effect:
        close_s = (now - aware(row["created_at"])).total_seconds()  # type: ignore[operator]
        return _Effect({"closed_at": now, "close_s": close_s})

    def _pick(self, wanted: str | None, people: Sequence[Any]) -> tuple[str | None, str | None]:
        if wanted:
            for p in people:
                if p.id == wanted:
                    return p.id, p.name
            from hub.registry import iter_people

            for p in iter_people(self.registry):
                if p.id == wanted:
                    return p.id, p.name
            return str(wanted)[:64], None
        if people:
            return people[0].id, people[0].name
        return None, None

    def _load(self, conn: Connection, wo_id: str) -> dict[str, Any]:
        t = schema.work_orders
        return dict(conn.execute(select(t).where(t.c.id == wo_id)).one()._mapping)

    def _log(
        self,
        conn: Connection,
        row: dict[str, Any],
        actor: Principal,
        action: str,
        frm: str,
        to: str,
        note: str,
        photos: list[str],
        data: dict[str, Any],
    ) -> None:
        action = str(action)  # plain text in the database
        now = self.store.now()
        conn.execute(
            schema.transitions.insert().values(
                work_order_id=row["id"],
                at=now,
                actor=actor.name,
                action=action,
                from_state=frm,
                to_state=to,
                note=note,
                photos=dumps(photos),
                data=dumps(data),
            )
        )
        self.store.audit(
            conn,
            actor.name,
            f"work_order.{action}",
            f"work_order:{row['id']}",
            {"from": frm, "to": to, "note": note[:200]},
        )
        conn.execute(
            schema.incident_timeline.insert().values(
                incident_id=row["incident_id"],
                at=now,
                kind="work_order",
                event_id=None,
                severity=None,
                text=messages.timeline_line(action, frm, to, note),
            )
        )

    def _incident_closed(self, conn: Connection, row: dict[str, Any], state: str) -> None:
        i = schema.incidents
        conn.execute(
            i.update()
            .where(i.c.id == row["incident_id"])
            .values(
                state="false_alarm" if state == "false_alarm" else "closed",
                pinned=False,
                updated_at=self.store.now(),
            )
        )

    def _false_alarm(self, conn: Connection, row: dict[str, Any], actor: Principal) -> None:
        """Feed the source's false-alarm rate; suppress a noisy source for a while (audited)."""
        cfg = self.config.incidents
        t = schema.work_orders
        key = row["source_key"]
        total, false = conn.execute(
            select(func.count(), func.sum((t.c.state == "false_alarm").cast(Integer))).where(
                t.c.source_key == key,
                t.c.state.in_(
                    [
                        "false_alarm",
                        "closed",
                        "verified",
                        "rated",
                        "handled",
                        "accepted",
                        "dispatched",
                    ]
                ),
            )
        ).one()
        false = int(false or 0)
        if (
            cfg.suppress_h <= 0
            or total < cfg.false_alarm_min_count
            or false / max(1, total) < cfg.false_alarm_rate
        ):
            return
        now = self.store.now()
        until = now + timedelta(hours=cfg.suppress_h)
        reason = messages.false_alarm_rate(false, total, cfg.false_alarm_rate)
        self._suppress(conn, key, until, reason, actor, reason)

    def _suppress(
        self,
        conn: Connection,
        key: str,
        until: datetime,
        reason: str,
        actor: Principal,
        audited: str,
    ) -> None:
        """Suppress a source until a time (insert or replace), audited with ``audited``."""
        now = self.store.now()
        values = {"until": until, "reason": reason, "created_by": actor.name, "created_at": now}
        stmt = self.store.insert(schema.suppressions).values(source_key=key, **values)
        conn.execute(stmt.on_conflict_do_update(index_elements=["source_key"], set_=values))
        self.store.audit(
            conn,
            actor.name,
            "source.suppress",
            f"source:{key}",
            {"until": until.isoformat(), "reason": audited},
        )

    # ------------------------------------------------------------------ scheduler actions

    def _late(self, column: str, state: str, limit: int = 200) -> list[str]:
        t = schema.work_orders
        now = self.store.now()
        with self.store.engine.connect() as conn:
            return [
                r[0]
                for r in conn.execute(
                    select(t.c.id)
                    .where(t.c.state == state, t.c[column].is_not(None), t.c[column] <= now)
                    .order_by(t.c[column])
                    .limit(limit)
                )
            ]

    def _locked_if(
        self, conn: Connection, wo_id: str, state: str, column: str
    ) -> dict[str, Any] | None:
        t = schema.work_orders
        r = conn.execute(self.store.for_update(select(t).where(t.c.id == wo_id))).first()
        if r is None:
            return None
        row = dict(r._mapping)
        due = aware(row[column])
        if row["state"] != state or due is None or due > self.store.now():
            return None  # someone else acted on this deadline already
        return row

    def on_deadline(
        self,
        column: str,
        state: str,
        act: Callable[[Connection, dict[str, Any]], object],
    ) -> int:
        """Act once on every order in ``state`` whose ``column`` deadline has passed.

        Each order is locked and checked again in its own transaction (another worker may have
        acted on it meanwhile); ``act`` runs only for those still late. Returns how many.
        """
        n = 0
        for wo_id in self._late(column, state):
            with self.store.write(lock="workflow") as conn:
                row = self._locked_if(conn, wo_id, state, column)
                if row is None:
                    continue
                act(conn, row)
                n += 1
        return n

    def act_on_accept_deadlines(self) -> int:
        """Dispatched but not accepted in time: reassign to the backup on duty, else escalate.

        Orders not yet tracked, screened or dispatched in time are supervised: their owner and
        the town's command centre are reminded and a new deadline is set (no state change).
        """
        n = 0
        for state in ("reported", "tracked", "screened"):
            remind = partial(
                self._supervise,
                column="accept_due_at",
                note=messages.late_before_dispatch(state),
                raise_level=False,
            )
            n += self.on_deadline("accept_due_at", state, remind)
        return n + self.on_deadline("accept_due_at", "dispatched", self._not_accepted)

    def _not_accepted(self, conn: Connection, row: dict[str, Any]) -> None:
        """A dispatched order nobody accepted in time: the next on duty, else one level up."""
        people = self.router.owners(_placement(row), row["level"], row["board"])
        ids = [p.id for p in people]
        nxt = (
            ids[ids.index(row["assignee_id"]) + 1]
            if row["assignee_id"] in ids and ids.index(row["assignee_id"]) + 1 < len(ids)
            else None
        )
        if self.config.sla.reassign_first and nxt is not None:
            ctx = _system(messages.LATE_ACCEPT_REASSIGN, assignee_id=nxt)
            self._apply(conn, row, Action.REASSIGN, ctx)
        elif next_level(row["level"]) is not None:
            self._apply(conn, row, Action.ESCALATE, _system(messages.LATE_ACCEPT_ESCALATE))
        else:
            self._supervise(conn, row, "accept_due_at", messages.LATE_ACCEPT_AT_TOP)

    def act_on_handle_deadlines(self) -> int:
        """Accepted but not handled in time: supervise (督办) — raise the level, notify, new deadline."""
        return self.on_deadline(
            "handle_due_at",
            "accepted",
            lambda conn, row: self._supervise(conn, row, "handle_due_at", messages.LATE_HANDLE),
        )

    def _supervise(
        self,
        conn: Connection,
        row: dict[str, Any],
        column: str,
        note: str,
        raise_level: bool = True,
    ) -> dict[str, Any]:
        """督办: a late order gets a new deadline and its people are reminded (once per deadline).

        With ``raise_level`` the order also moves one level up (handling late, red order
        unacknowledged); without it only the owner and the command centre are reminded
        (tracking, screening or dispatching late).
        """
        now = self.store.now()
        level = (next_level(row["level"]) or row["level"]) if raise_level else row["level"]
        accept_due, handle_due = self.policy.deadlines(now, row["type"], row["severity"], level)
        t = schema.work_orders
        ch: dict[str, Any] = {"level": level, "updated_at": now, "version": row["version"] + 1}
        if raise_level:
            ch.update(escalations=row["escalations"] + 1, on_time=False)
        ch[column] = accept_due if column == "accept_due_at" else handle_due
        conn.execute(
            t.update().where(t.c.id == row["id"], t.c.version == row["version"]).values(**ch)
        )
        new = self._load(conn, row["id"])
        self._log(
            conn,
            new,
            SYSTEM,
            Record.SUPERVISE,
            row["state"],
            row["state"],
            note,
            [],
            {"level": level},
        )
        owners = [p.id for p in self.router.owners(_placement(new), level, new["board"])[:1]]
        if not raise_level and new["town_id"] in self.registry.towns:
            owners.append(self.registry.towns[new["town_id"]][0].command_centre.id)
        targets = [x for x in [new["assignee_id"], new["handler_id"], *owners] if x]
        notify.enqueue(self.store, conn, self.config, new, targets, Record.SUPERVISE.value)
        self._changed(conn, new, Record.SUPERVISE.value)
        return new

    def escalate_unacknowledged(self) -> int:
        """Emergencies nobody acknowledged within ``sla.ack_min``: escalate once and re-notify."""
        i = schema.incidents
        now = self.store.now()
        with self.store.engine.connect() as conn:
            ids = [
                r[0]
                for r in conn.execute(
                    select(i.c.id)
                    .where(
                        i.c.pinned.is_(True),
                        i.c.acked_at.is_(None),
                        i.c.ack_escalated.is_(False),
                        i.c.ack_due_at <= now,
                    )
                    .limit(100)
                )
            ]
        n = 0
        for inc_id in ids:
            with self.store.write(lock="workflow") as conn:
                res = conn.execute(
                    i.update()
                    .where(
                        i.c.id == inc_id,
                        i.c.acked_at.is_(None),
                        i.c.ack_escalated.is_(False),
                        i.c.ack_due_at <= now,
                    )
                    .values(ack_escalated=True, updated_at=now)
                )
                if res.rowcount != 1:
                    continue
                t = schema.work_orders
                r = conn.execute(
                    self.store.for_update(select(t).where(t.c.incident_id == inc_id))
                ).first()
                conn.execute(
                    schema.incident_timeline.insert().values(
                        incident_id=inc_id,
                        at=now,
                        kind="ack_timeout",
                        event_id=None,
                        severity="emergency",
                        text=messages.ACK_TIMEOUT_ESCALATE,
                    )
                )
                if r is not None:
                    row = dict(r._mapping)
                    if row["state"] == "dispatched" and next_level(row["level"]) is not None:
                        ctx = _system(messages.ACK_TIMEOUT_ESCALATE)
                        self._apply(conn, row, Action.ESCALATE, ctx)
                    elif row["state"] not in TERMINAL:
                        self._supervise(conn, row, "handle_due_at", messages.ACK_TIMEOUT_SUPERVISE)
                n += 1
        return n

    def close_unrated(self) -> int:
        """Verified orders without a rating within the rating window close."""
        return self.on_deadline(
            "rate_due_at",
            "verified",
            lambda conn, row: self._apply(
                conn, row, Action.CLOSE, _system(messages.RATING_WINDOW_OVER)
            ),
        )

    # ------------------------------------------------------------------ reads

    def get(self, wo_id: str, viewer: Principal) -> dict[str, Any]:
        """One order (NotFound when missing or out of the viewer's scope)."""
        t = schema.work_orders
        with self.store.engine.connect() as conn:
            r = conn.execute(select(t).where(t.c.id == wo_id)).first()
        if r is None or not viewer.sees(r):
            raise NotFound(f"work order {wo_id!r} not found")
        return order_view(r, self.registry)

    def list(
        self,
        viewer: Principal,
        limit: int = 50,
        before_seq: int | None = None,
        where: OrderFilter | None = None,
    ) -> tuple[builtins.list[dict[str, Any]], int | None]:
        """Newest first, filtered and scoped; returns (orders, next cursor)."""
        where = where or OrderFilter()
        rows, nxt = scoped_page(
            self.store.engine,
            schema.work_orders,
            viewer,
            self.registry,
            where.equals(),
            (("screening", where.screening),),
            limit,
            before_seq,
        )
        return [order_view(r, self.registry) for r in rows], nxt

    def audit_trail(self, wo_id: str, viewer: Principal) -> builtins.list[dict[str, Any]]:
        """Every transition of an order, oldest first."""
        self.get(wo_id, viewer)
        t = schema.transitions
        with self.store.engine.connect() as conn:
            rows = conn.execute(select(t).where(t.c.work_order_id == wo_id).order_by(t.c.seq)).all()
        return [
            {
                "seq": r.seq,
                "at": iso(r.at),
                "actor": r.actor,
                "action": r.action,
                "from": r.from_state,
                "to": r.to_state,
                "note": r.note,
                "photos": json.loads(r.photos),
                "data": json.loads(r.data),
            }
            for r in rows
        ]

    def sources(self, limit: int = 200) -> builtins.list[dict[str, Any]]:
        """Per-source (node/device/pipeline) order counts, false-alarm rate and suppression."""
        t, s = schema.work_orders, schema.suppressions
        with self.store.engine.connect() as conn:
            rows = conn.execute(
                select(
                    t.c.source_key,
                    func.count(),
                    func.sum((t.c.state == "false_alarm").cast(Integer)),
                )
                .group_by(t.c.source_key)
                .order_by(func.count().desc())
                .limit(limit)
            ).all()
            sup = {r.source_key: r for r in conn.execute(select(s))}
        now = self.store.now()
        out = []
        for key, total, false in rows:
            sp = sup.get(key)
            until = aware(sp.until) if sp is not None else None
            out.append(
                {
                    "source": key,
                    "orders": int(total),
                    "false_alarms": int(false or 0),
                    "false_alarm_rate": round(int(false or 0) / max(1, int(total)), 3),
                    "suppressed_until": until.isoformat() if until and until > now else None,
                }
            )
        return out

    def by_rating_code(self, code: str) -> dict[str, Any] | None:
        """The order a citizen's rating link names (what the citizen may see of it), or None."""
        t = schema.work_orders
        with self.store.engine.connect() as conn:
            r = conn.execute(select(t).where(t.c.rating_code == code)).first()
        if r is None:
            return None
        return {
            "id": r.id,
            "type": r.type,
            "type_name": self.taxonomy.name_of(r.type),
            "summary": r.summary,
            "place": self.registry.name_of(r.grid_id) or None,
            "state": r.state,
            "step": STATE_NAMES.get(r.state, r.state),
            "rating": r.rating,
            "can_rate": r.state == "verified",
        }

    def false_alarm_stats(self, viewer: Principal, days: float) -> dict[str, Any]:
        """False alarms of the last ``days`` within the viewer's scope.

        Rates per camera (node/device), per pipeline and counts per reason: a false alarm
        counts against the orders its source raised in the same window.
        """
        t, tr = schema.work_orders, schema.transitions
        since = self.store.now() - timedelta(days=days)
        scope = viewer.where(
            t, self.registry.scope_of(viewer.scope_id) if viewer.scope_id else None
        )
        q_orders = select(t.c.source_key, func.count()).where(t.c.created_at >= since)
        q_false = (
            select(t.c.source_key, tr.c.data)
            .select_from(tr.join(t, t.c.id == tr.c.work_order_id))
            .where(tr.c.action == "false_alarm", tr.c.at >= since)
        )
        if scope is not None:
            q_orders, q_false = q_orders.where(scope), q_false.where(scope)
        with self.store.engine.connect() as conn:
            orders: dict[str, int] = {
                str(k): int(n) for k, n in conn.execute(q_orders.group_by(t.c.source_key)).all()
            }
            falses = conn.execute(q_false.limit(100_000)).all()
        by_camera: dict[str, list[int]] = {}
        by_pipeline: dict[str, list[int]] = {}
        by_reason: dict[str, int] = {}
        for key, n in orders.items():
            node, device, pipeline = (str(key).split("/", 2) + ["", ""])[:3]
            by_camera.setdefault(f"{node}/{device}", [0, 0])[1] += int(n)
            by_pipeline.setdefault(pipeline, [0, 0])[1] += int(n)
        for key, data in falses:
            node, device, pipeline = (str(key).split("/", 2) + ["", ""])[:3]
            by_camera.setdefault(f"{node}/{device}", [0, 0])[0] += 1
            by_pipeline.setdefault(pipeline, [0, 0])[0] += 1
            try:
                reason = json.loads(data or "{}").get("reason") or "其他"
            except ValueError:
                reason = "其他"
            by_reason[reason] = by_reason.get(reason, 0) + 1

        def rates(table: dict[str, list[int]]) -> list[dict[str, Any]]:
            rows = [
                {"key": k, "false_alarms": f, "orders": n, "rate": round(f / max(1, n), 3)}
                for k, (f, n) in table.items()
                if f
            ]
            return sorted(rows, key=lambda r: (-r["rate"], -r["false_alarms"]))

        return {
            "days": days,
            "total": sum(by_reason.values()),
            "by_camera": rates(by_camera),
            "by_pipeline": rates(by_pipeline),
            "by_reason": dict(sorted(by_reason.items(), key=lambda kv: -kv[1])),
        }

    def set_suppression(
        self, source_key: str, hours: float, actor: Principal, reason: str
    ) -> dict[str, Any]:
        """Suppress (hours > 0) or release (0) a source by hand; audited."""
        s = schema.suppressions
        now = self.store.now()
        with self.store.write() as conn:
            if hours <= 0:
                conn.execute(s.delete().where(s.c.source_key == source_key))
                self.store.audit(
                    conn, actor.name, "source.release", f"source:{source_key}", {"reason": reason}
                )
                return {"source": source_key, "suppressed_until": None}
            until = now + timedelta(hours=hours)
            stored = reason or messages.MANUAL_SUPPRESSION
            self._suppress(conn, source_key, until, stored, actor, reason)
        return {"source": source_key, "suppressed_until": until.isoformat()}


_EffectFn = Callable[[WorkOrders, dict[str, Any], _Ctx, datetime], _Effect]

# one effect per action: what the step changes on the order beyond its state
_EFFECTS: dict[Action, _EffectFn] = {
    Action.TRACK: WorkOrders._track,
    Action.FALSE_ALARM: WorkOrders._false_alarm_effect,
    Action.SCREEN: WorkOrders._screen,
    Action.DISPATCH: WorkOrders._dispatch,
    Action.ESCALATE: WorkOrders._escalate,
    Action.REASSIGN: WorkOrders._reassign,
    Action.ACCEPT: WorkOrders._accept,
    Action.HANDLE: WorkOrders._handle,
    Action.VERIFY: WorkOrders._verify,
    Action.REWORK: WorkOrders._rework,
    Action.RATE: WorkOrders._rate,
    Action.CLOSE: WorkOrders._close,
    Action.REOPEN: WorkOrders._reopen,
}


def scoped_page(
    engine: Any,
    table: Any,
    viewer: Principal,
    registry: Registry,
    equals: Sequence[tuple[str, Any]],
    flags: Sequence[tuple[str, bool | None]] = (),
    limit: int = 50,
    before_seq: int | None = None,
) -> tuple[list[dict[str, Any]], int | None]:
    """One page of a table, newest first, limited to what ``viewer`` may see.

    Args:
        engine: the database engine.
        table: incidents or work_orders.
        viewer: who asks (their scope filters the rows).
        registry: resolves the viewer's scope level.
        equals: (column, value) filters; None values are ignored.
        flags: (boolean column, wanted) filters; None is ignored.
        limit: page size.
        before_seq: cursor of the previous page.

    Returns:
        (rows as dicts, cursor of the next page or None).
    """
    q = select(table).order_by(table.c.seq.desc()).limit(limit + 1)
    scope = viewer.where(table, registry.scope_of(viewer.scope_id) if viewer.scope_id else None)
    if scope is not None:
        q = q.where(scope)
    for col, val in equals:
        if val is not None:
            q = q.where(table.c[col] == val)
    for col, wanted in flags:
        if wanted is not None:
            q = q.where(table.c[col].is_(wanted))
    if before_seq is not None:
        q = q.where(table.c.seq < before_seq)
    with engine.connect() as conn:
        res = conn.execute(q)
        keys = list(res.keys())
        rows = res.all()
    items = [dict(zip(keys, r, strict=True)) for r in rows[:limit]]
    return items, (rows[limit - 1].seq if len(rows) > limit else None)
