"""Queries of the HTTP API that are not a store method: uploads, what a viewer may see of
evidence and of the change feed, citizen requests. The routes hold no SQL; it lives here and
in :mod:`hub.store`."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Row, and_, select

from hub import schema
from hub.registry import Registry
from hub.store import Store
from hub.users import Principal

__all__ = [
    "add_upload",
    "upload_row",
    "events_in_scope",
    "evidence_visible",
    "visible_changes",
    "citizen_events",
    "citizen_filter",
    "order_of_incident",
]


def _scope_level(user: Principal, registry: Registry) -> str | None:
    return registry.scope_of(user.scope_id) if user.scope_id else None


def events_in_scope(user: Principal, registry: Registry) -> Any:
    """SQL filter: the events of incidents the user may see (None: no filter)."""
    where = user.where(schema.incidents, _scope_level(user, registry))
    if where is None:
        return None
    return schema.events.c.incident_id.in_(select(schema.incidents.c.id).where(where))


def add_upload(
    store: Store,
    up_id: str,
    work_order_id: str | None,
    content_type: str,
    size: int,
    sha256: str,
    path: str,
    uploaded_by: str,
) -> None:
    """Record a stored upload (and audit it)."""
    with store.write() as conn:
        conn.execute(
            schema.uploads.insert().values(
                id=up_id,
                work_order_id=work_order_id,
                content_type=content_type,
                bytes=size,
                sha256=sha256,
                path=path,
                uploaded_by=uploaded_by,
                created_at=store.now(),
            )
        )
        store.audit(
            conn,
            uploaded_by,
            "upload",
            f"upload:{up_id}",
            {"bytes": size, "work_order_id": work_order_id},
        )


def upload_row(store: Store, upload_id: str) -> Row[Any] | None:
    """The upload row, or None."""
    with store.engine.connect() as conn:
        return conn.execute(select(schema.uploads).where(schema.uploads.c.id == upload_id)).first()


def evidence_visible(
    store: Store, registry: Registry, user: Principal, node_id: str, evidence_id: str
) -> bool:
    """True when an incident the user may see holds this evidence."""
    where = user.where(schema.incidents, _scope_level(user, registry))
    if where is None:
        return True
    if node_id == "hub":  # a photo uploaded at the hub: the upload's own rules apply
        up = upload_row(store, evidence_id)
        if up is not None and up.uploaded_by == user.name:
            return True
    i = schema.incidents
    needle = f'%"id":"{evidence_id}"%'
    with store.engine.connect() as conn:
        rows = conn.execute(
            select(i.c.evidence).where(where, i.c.evidence.like(needle)).limit(20)
        ).all()
    for row in rows:
        for item in json.loads(row.evidence):
            if item.get("id") == evidence_id and item.get("node_id") in (node_id, None):
                return True
    return False


def visible_changes(
    store: Store, registry: Registry, user: Principal, changes: list[dict[str, Any]]
) -> set[str]:
    """The ids among a change-feed batch that the user may see (incidents, orders)."""
    level = _scope_level(user, registry)
    out: set[str] = set()
    for kind, table in (("incident", schema.incidents), ("work_order", schema.work_orders)):
        ids = [c["ref_id"] for c in changes if c["kind"] == kind]
        if not ids:
            continue
        q = select(table.c.id).where(table.c.id.in_(ids))
        where = user.where(table, level)
        if where is not None:
            q = q.where(where)
        with store.engine.connect() as conn:
            out.update(str(r[0]) for r in conn.execute(q))
    return out


def citizen_filter(
    scope: Any,
    ids: list[str],
    codes: list[str],
    start: datetime | None,
    end: datetime | None,
) -> ColumnElement[bool] | None:
    """Filter of an Open311 request listing (None: all the viewer may see)."""
    e = schema.events
    conds: list[ColumnElement[bool]] = []
    if scope is not None:
        conds.append(scope)
    if ids:
        conds.append(e.c.id.in_(ids))
    if codes:
        conds.append(e.c.type.in_(codes))
    if start is not None:
        conds.append(e.c.occurred_at >= start)
    if end is not None:
        conds.append(e.c.occurred_at <= end)
    return and_(*conds) if conds else None


def citizen_id_filter(event_id: str, scope: Any) -> ColumnElement[bool]:
    """Filter of one Open311 request by its id, within a scope (None: no scope)."""
    where = schema.events.c.id == event_id
    return where if scope is None else where & scope


def citizen_events(store: Store, where: Any, limit: int) -> list[Row[Any]]:
    """Citizen requests (events the hub made from Open311 posts), newest first."""
    e = schema.events
    q = (
        select(e)
        .where(e.c.node_id == "hub", e.c.source_kind == "citizen")
        .order_by(e.c.seq.desc())
        .limit(limit)
    )
    if where is not None:
        q = q.where(where)
    with store.engine.connect() as conn:
        return list(conn.execute(q).all())


def order_of_incident(store: Store, incident_id: str) -> Row[Any] | None:
    """The work order of an incident, or None."""
    w = schema.work_orders
    with store.engine.connect() as conn:
        return conn.execute(select(w).where(w.c.incident_id == incident_id)).first()


def uploads_by_id(store: Store, ids: list[str]) -> dict[str, Row[Any]]:
    """Upload rows of these ids (missing ones left out)."""
    u = schema.uploads
    with store.engine.connect() as conn:
        rows = conn.execute(select(u).where(u.c.id.in_(ids))).all()
    return {r.id: r for r in rows}
