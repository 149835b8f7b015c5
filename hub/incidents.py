"""Incidents: events that describe one real situation merge into one incident.

An event joins an incident when it has the same ``incident_key`` from the same node, names
one of the incident's events in ``related``, or has the same taxonomy family (fire, smoke
and gas are one family) close in time (``incidents.merge_window_s``) and place (distance,
grid, zone, floor, address) — across cameras, sensors, voice reports and citizens. An
incident keeps its events, sources, evidence, the highest severity and a timeline.

Exactly once: events are processed inside one locked write transaction (SQLite
``BEGIN IMMEDIATE``, PostgreSQL advisory lock); an event already linked to an incident is
skipped; ``incident_keys`` and ``work_orders.incident_id`` are unique. Events whose
processing was interrupted (a crash between commit and processing) are picked up by the
``IncidentWorker`` at its start and by the scheduler (``process_pending``). Committed
events enter through ``IncidentWorker.on_committed``.

Hotspots (问题热点): repeated incidents of one type at one place within
``incidents.hotspot_period_days`` become a hotspot with counts and a trend.
"""

from __future__ import annotations

import builtins
import difflib
import json
import logging
import re
import threading
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, and_, func, select
from sqlalchemy.exc import DBAPIError

from hub import schema
from hub.geo import haversine_m
from hub.registry import Placement, Registry, wgs84_point
from hub.store import aware, dumps, iso
from hub.users import Principal
from hub.workorders import NotFound, WorkOrders, scoped_page
from shaobing.config import HubConfig
from shaobing.contract import ContractError, Event, Evidence, new_event_id
from shaobing.taxonomy import Taxonomy, max_severity, severity_rank

if TYPE_CHECKING:
    from hub.store import Store

__all__ = ["IncidentEngine", "IncidentWorker", "source_key", "UNPROCESSABLE"]

UNPROCESSABLE = "!unprocessable"  # events.incident_id of an event the rules could not handle

log = logging.getLogger(__name__)

_MAX_HANDED = 10_000  # handed events kept in memory; beyond, the database is read instead

_PUNCT = re.compile(r"[\s,，。.;；:：()（）\-—_/]+")


def _utc(dt: datetime) -> datetime:
    return dt.astimezone(UTC)


def source_key(ev: Event) -> str:
    """node/device/pipeline: the unit whose false-alarm rate is counted."""
    return f"{ev.source.node_id}/{ev.source.device_id}/{ev.source.pipeline}"[:400]


def _norm(text: str | None) -> str:
    return _PUNCT.sub("", text or "")


# placements that say little about where the event really is
WEAK_PLACEMENTS = frozenset({"default", "node", "unresolved", "none"})


def _similar_address(a: str | None, b: str | None) -> bool:
    x, y = _norm(a), _norm(b)
    if not x or not y:
        return False
    if x == y or x in y or y in x:
        return True
    return difflib.SequenceMatcher(None, x, y).ratio() >= 0.75


class IncidentEngine:
    """Turns committed events into incidents, work orders and hotspots.

    Args:
        store: the store.
        config: hub config (merge window, distances, hotspots).
        registry: grid registry (placement).
        orders: work orders (one per incident).
        taxonomy: event types (family, default severity).
    """

    def __init__(
        self,
        store: Store,
        config: HubConfig,
        registry: Registry,
        orders: WorkOrders,
        taxonomy: Taxonomy,
    ) -> None:
        self.store = store
        self.config = config
        self.cfg = config.incidents
        self.registry = registry
        self.orders = orders
        self.taxonomy = taxonomy

    # ------------------------------------------------------------------ processing

    def process(self, events: Sequence[Event]) -> list[str]:
        """Merge events into incidents (idempotent); returns the incident ids touched.

        Committed events come here through ``IncidentWorker.on_committed``; an Open311
        request is processed within its own HTTP request.

        A batch runs in one transaction. When it fails for a reason other than the database
        (a bug, a value the rules cannot handle), each event is retried alone and one that
        still fails is marked ``UNPROCESSABLE`` and recorded as a dead letter, so it cannot
        block the others; database errors propagate (the events stay pending and are retried).
        """
        if not events:
            return []
        try:
            return self._process_batch(events)
        except DBAPIError:
            raise
        except Exception:
            if len(events) == 1:
                self._mark_failed(events[0])
                return []
            log.exception("incidents: batch of %d failed; processing one by one", len(events))
        touched: list[str] = []
        for ev in events:
            try:
                touched += self._process_batch([ev])
            except DBAPIError:
                raise
            except Exception:
                self._mark_failed(ev)
        return touched

    def _process_batch(self, events: Sequence[Event]) -> list[str]:
        touched: list[str] = []
        ordered = sorted(events, key=lambda e: (e.occurred_at, e.id))
        with self.store.write(lock="workflow") as conn:
            e = schema.events
            ids = [ev.id for ev in ordered]
            state = {
                (r.node_id, r.id): r.incident_id
                for r in conn.execute(
                    select(e.c.node_id, e.c.id, e.c.incident_id).where(e.c.id.in_(ids))
                )
            }
            for ev in ordered:
                key = (ev.source.node_id, ev.id)
                if key not in state or state[key] is not None:
                    continue  # not stored, or already processed (another worker, a redelivery)
                inc_id = self._one(conn, ev)
                state[key] = inc_id
                touched.append(inc_id)
        return touched

    def _mark_failed(self, ev: Event | tuple[str, str], reason: str | None = None) -> None:
        import traceback

        node_id, event_id = ev if isinstance(ev, tuple) else (ev.source.node_id, ev.id)
        why = reason or traceback.format_exc(limit=3)
        log.error("incidents: event %s of node %s cannot be processed: %s", event_id, node_id, why)
        e = schema.events
        with self.store.write() as conn:
            conn.execute(
                e.update()
                .where(e.c.node_id == node_id, e.c.id == event_id, e.c.incident_id.is_(None))
                .values(incident_id=UNPROCESSABLE)
            )
            conn.execute(
                schema.dead_letters.insert().values(
                    topic=f"hub/incidents/{event_id}"[:512],
                    reason=f"incident processing failed (event kept): {why}"[:4000],
                    payload=b"",
                    received_at=self.store.now(),
                )
            )

    def process_pending(self, grace_s: float = 10.0, limit: int = 500) -> int:
        """Process stored events that no incident holds yet (older than ``grace_s``)."""
        e = schema.events
        cutoff = self.store.now() - timedelta(seconds=grace_s)
        pending = (e.c.incident_id.is_(None), e.c.received_at <= cutoff)
        with self.store.engine.connect() as conn:
            # a backlog never keeps an emergency waiting behind ordinary events
            rows = list(
                conn.execute(
                    select(e.c.node_id, e.c.id, e.c.payload)
                    .where(*pending, e.c.severity == "emergency")
                    .order_by(e.c.seq)
                    .limit(limit)
                ).all()
            )
            if len(rows) < limit:
                rows += conn.execute(
                    select(e.c.node_id, e.c.id, e.c.payload)
                    .where(*pending, e.c.severity != "emergency")
                    .order_by(e.c.seq)
                    .limit(limit - len(rows))
                ).all()
        events = []
        for r in rows:
            try:
                events.append(Event.from_json(r.payload))
            except ContractError as exc:  # stored under an older taxonomy or contract
                self._mark_failed((r.node_id, r.id), f"stored event no longer parses: {exc}")
        return len(self.process(events))

    def _one(self, conn: Connection, ev: Event) -> str:
        et = self.taxonomy.get(ev.type)
        severity = max_severity(ev.severity, et.severity)
        placement = self.registry.place(ev)
        point = wgs84_point(ev) if ev.location.lat is not None else None
        found = self._find(conn, ev, et.family, placement, point)
        if found is None:
            inc_id = self._create(conn, ev, severity, et.family, placement, point)
        else:
            inc_id, reason = found
            self._attach(conn, inc_id, ev, severity, point, reason)
        conn.execute(
            schema.events.update()
            .where(schema.events.c.node_id == ev.source.node_id, schema.events.c.id == ev.id)
            .values(incident_id=inc_id)
        )
        key = f"{ev.source.node_id}\x1f{ev.incident_key}"[:340]
        conn.execute(
            self.store.insert(schema.incident_keys)
            .values(key=key, incident_id=inc_id)
            .on_conflict_do_nothing(index_elements=["key"])
        )
        return inc_id

    def _find(
        self,
        conn: Connection,
        ev: Event,
        family: str,
        placement: Placement,
        point: tuple[float, float] | None,
    ) -> tuple[str, str] | None:
        """The open incident this event belongs to, with the reason (for the timeline)."""
        key = f"{ev.source.node_id}\x1f{ev.incident_key}"[:340]
        k = schema.incident_keys
        row = conn.execute(select(k.c.incident_id).where(k.c.key == key)).first()
        if row is not None:
            return str(row.incident_id), "同一事件键（同一现场持续上报）"
        if ev.related:
            e = schema.events
            row = conn.execute(
                select(e.c.incident_id)
                .where(
                    e.c.node_id == ev.source.node_id,  # ids name events of the same node
                    e.c.id.in_(ev.related),
                    e.c.incident_id.is_not(None),
                )
                .limit(1)
            ).first()
            if row is not None:
                return str(row.incident_id), "关联事件（related）"
        i = schema.incidents
        window = timedelta(seconds=self.cfg.merge_window_s)
        at = _utc(ev.occurred_at)
        cands = conn.execute(
            select(i)
            .where(
                i.c.family == family,
                i.c.state == "open",
                i.c.last_at >= at - window,
                i.c.first_at <= at + window,
            )
            .order_by(i.c.last_at.desc())
            .limit(50)
        ).all()
        for c in cands:
            why = self._near(c, ev, placement, point)
            if why is not None:
                return str(c.id), f"同类事件、同一地点（{why}）、时间相近"
        return None

    def _near(
        self, c: Any, ev: Event, placement: Placement, point: tuple[float, float] | None
    ) -> str | None:
        """How ``ev`` is at the same place as incident ``c`` (a phrase), or None.

        A weak place (a reporter's or node's default grid, an unresolved or missing place)
        never merges by type and time alone: it needs the same address, zone or nearby
        coordinates.
        """
        loc = ev.location
        if (
            c.floor is not None
            and loc.floor is not None
            and abs(c.floor - loc.floor) > self.cfg.floor_tolerance
        ):
            return None
        if point is not None and c.lat is not None:
            dist = haversine_m(point[0], point[1], c.lat, c.lon)
            return f"相距 {dist:.0f} 米" if dist <= self.cfg.merge_distance_m else None
        if c.zone and loc.zone:
            if c.zone != loc.zone:
                return None
            if c.grid_id == placement.grid_id:
                return f"同一区域 {loc.zone}"
        similar = _similar_address(c.address, loc.address)
        weak = placement.method in WEAK_PLACEMENTS or (c.place_method in WEAK_PLACEMENTS)
        if placement.grid_id and c.grid_id:
            if placement.grid_id != c.grid_id:
                return None
            if (c.address and loc.address and point is None and c.lat is None) or weak:
                return "地址相同或相近" if similar else None
            return f"同一网格 {placement.grid_id}"
        if not placement.placed and not c.placed:
            return "地址相同或相近" if similar else None
        if (
            placement.grid_id is None
            and placement.community_id
            and c.community_id == placement.community_id
        ):
            return "地址相同或相近" if similar else None
        return None

    def _source(self, ev: Event) -> dict[str, Any]:
        return {
            "node_id": ev.source.node_id,
            "kind": ev.source.kind,
            "device_id": ev.source.device_id,
            "pipeline": ev.source.pipeline,
        }

    def _suppressed(self, conn: Connection, key: str) -> bool:
        s = schema.suppressions
        row = conn.execute(select(s.c.until).where(s.c.source_key == key)).first()
        return row is not None and aware(row.until) > self.store.now()  # type: ignore[operator]

    def _create(
        self,
        conn: Connection,
        ev: Event,
        severity: str,
        family: str,
        placement: Placement,
        point: tuple[float, float] | None,
    ) -> str:
        now = self.store.now()
        skey = source_key(ev)
        suppressed = severity != "emergency" and self._suppressed(conn, skey)
        loc = ev.location
        row: dict[str, Any] = {
            "id": new_event_id(),
            "type": ev.type,
            "family": family,
            "severity": severity,
            "state": "open",
            "grid_id": placement.grid_id,
            "community_id": placement.community_id,
            "town_id": placement.town_id,
            "district_id": placement.district_id,
            "placed": placement.placed,
            "place_method": placement.method,
            "lat": point[0] if point else None,
            "lon": point[1] if point else None,
            "zone": loc.zone,
            "floor": loc.floor,
            "address": loc.address,
            "summary": ev.summary,
            "first_at": _utc(ev.occurred_at),
            "last_at": _utc(ev.occurred_at),
            "created_at": now,
            "updated_at": now,
            "event_count": 1,
            "sources": dumps([self._source(ev)]),
            "evidence": dumps([_evidence_item(ev, e) for e in ev.evidence]),
            "suppressed": suppressed,
            "pinned": False,
            "ack_escalated": False,
        }
        conn.execute(schema.incidents.insert().values(**row))
        how = {
            "grid_id": "按网格编号",
            "polygon": "按坐标落格",
            "address": "按地址匹配",
            "node": "按节点登记网格",
            "default": "按上报人或节点默认网格",
            "unresolved": f"未能定位 / 待核实位置（{self.registry.names_unknown_place(ev) or loc.address}）：转镇街指挥中心筛选",
            "none": "无法定位，转镇街指挥中心筛选",
        }.get(placement.method, placement.method)
        self._timeline(
            conn,
            row["id"],
            "opened",
            ev,
            f"新事件：{ev.summary}（{ev.source.kind}·{ev.source.node_id}/{ev.source.device_id}；{how}）",
        )
        if suppressed:
            self._timeline(
                conn, row["id"], "suppressed", ev, f"来源 {skey} 误报率高，已屏蔽：不生成工单"
            )
        else:
            self.orders.open(conn, row, skey)
        self._hotspot(conn, row)
        self.store.change(
            conn,
            "incident",
            row["id"],
            {"state": "open", "type": ev.type, "severity": severity, "new": True},
        )
        return str(row["id"])

    def _attach(
        self,
        conn: Connection,
        inc_id: str,
        ev: Event,
        severity: str,
        point: tuple[float, float] | None,
        reason: str = "",
    ) -> None:
        i = schema.incidents
        c = conn.execute(select(i).where(i.c.id == inc_id)).one()
        now = self.store.now()
        sources = json.loads(c.sources)
        src = self._source(ev)
        new_source = src not in sources
        if new_source:
            sources.append(src)
        evidence = json.loads(c.evidence)
        known = {(x.get("node_id"), x.get("id")) for x in evidence}
        evidence.extend(
            _evidence_item(ev, e) for e in ev.evidence if (ev.source.node_id, e.id) not in known
        )
        new_sev = max_severity(c.severity, severity)
        raised = severity_rank(new_sev) > severity_rank(c.severity)
        ch: dict[str, Any] = {
            "event_count": c.event_count + 1,
            "sources": dumps(sources[:200]),
            "evidence": dumps(evidence[:500]),
            "severity": new_sev,
            "last_at": max(aware(c.last_at), _utc(ev.occurred_at)),  # type: ignore[type-var]
            "first_at": min(aware(c.first_at), _utc(ev.occurred_at)),  # type: ignore[type-var]
            "updated_at": now,
        }
        if raised:
            ch.update(type=ev.type, summary=ev.summary)
        if c.lat is None and point is not None:
            ch.update(lat=point[0], lon=point[1])
        if not c.address and ev.location.address:
            ch["address"] = ev.location.address
        conn.execute(i.update().where(i.c.id == inc_id).values(**ch))
        what = {"cleared": "已解除", "update": "更新"}.get(ev.state, "合并")
        text = f"{what}：{ev.summary}（{ev.source.kind}·{ev.source.node_id}/{ev.source.device_id}）"
        if reason:
            text += f"；原因：{reason}"
        if raised:
            text += f"；级别提升为 {self.taxonomy.severities.get(new_sev, new_sev)}"
        self._timeline(conn, inc_id, "cleared" if ev.state == "cleared" else "event", ev, text)
        wo = conn.execute(
            select(schema.work_orders.c.id).where(schema.work_orders.c.incident_id == inc_id)
        ).first()
        if (
            wo is None
            and c.state == "open"
            and (severity == "emergency" or not self._suppressed(conn, source_key(ev)))
        ):
            # a suppressed incident confirmed by another (or a severe) source gets its order now
            inc = dict(conn.execute(select(i).where(i.c.id == inc_id)).one()._mapping)
            conn.execute(i.update().where(i.c.id == inc_id).values(suppressed=False))
            self.orders.open(conn, inc, source_key(ev))
        elif wo is not None and raised:
            self.orders.raise_severity(conn, inc_id, new_sev, ev.type)
        self.store.change(
            conn,
            "incident",
            inc_id,
            {"state": c.state, "type": ch.get("type", c.type), "severity": new_sev, "new": False},
        )

    def _timeline(
        self, conn: Connection, inc_id: str, kind: str, ev: Event | None, text: str
    ) -> None:
        conn.execute(
            schema.incident_timeline.insert().values(
                incident_id=inc_id,
                at=self.store.now(),
                kind=kind,
                event_id=ev.id if ev else None,
                severity=ev.severity if ev else None,
                text=text[:2000],
            )
        )

    # ------------------------------------------------------------------ hotspots

    def _place_key(self, row: dict[str, Any]) -> tuple[str, str] | None:
        if row["grid_id"]:
            return f"grid:{row['grid_id']}", self.registry.name_of(row["grid_id"]) or row["grid_id"]
        if row["lat"] is not None:
            cell = f"{round(row['lat'] * 500) / 500:.3f},{round(row['lon'] * 500) / 500:.3f}"  # ~200 m cells
            return f"geo:{cell}", cell
        if row["address"]:
            return f"addr:{_norm(row['address'])[:200]}", row["address"]
        return None

    def _hotspot(self, conn: Connection, row: dict[str, Any]) -> None:
        place = self._place_key(row)
        if place is None:
            return
        key, name = place
        i = schema.incidents
        at: datetime = aware(row["first_at"]) or row["first_at"]
        period = timedelta(days=self.cfg.hotspot_period_days)
        cond = [i.c.type == row["type"], i.c.state != "false_alarm"]
        if key.startswith("grid:"):
            cond.append(i.c.grid_id == row["grid_id"])
        elif key.startswith("geo:"):
            cond += [
                i.c.lat.between(row["lat"] - 0.001, row["lat"] + 0.001),
                i.c.lon.between(row["lon"] - 0.001, row["lon"] + 0.001),
            ]
        else:
            cond.append(i.c.address == row["address"])
        count = conn.execute(
            select(func.count()).where(and_(*cond, i.c.first_at > at - period, i.c.first_at <= at))
        ).scalar_one()
        prev = conn.execute(
            select(func.count()).where(
                and_(*cond, i.c.first_at > at - 2 * period, i.c.first_at <= at - period)
            )
        ).scalar_one()
        if count < self.cfg.hotspot_min_count:
            return
        first = conn.execute(
            select(func.min(i.c.first_at)).where(and_(*cond, i.c.first_at > at - period))
        ).scalar_one()
        trend = "rising" if count > prev else ("falling" if count < prev else "steady")
        h = schema.hotspots
        now = self.store.now()
        values = {
            "type": row["type"],
            "place_key": key,
            "grid_id": row["grid_id"],
            "place_name": name,
            "count": count,
            "prev_count": prev,
            "trend": trend,
            "first_at": first,
            "last_at": at,
            "updated_at": now,
        }
        stmt = self.store.insert(h).values(**values)
        conn.execute(
            stmt.on_conflict_do_update(
                index_elements=["type", "place_key"],
                set_={
                    k: values[k]
                    for k in (
                        "count",
                        "prev_count",
                        "trend",
                        "first_at",
                        "last_at",
                        "updated_at",
                        "place_name",
                    )
                },
            )
        )
        self.store.change(
            conn, "hotspot", key, {"type": row["type"], "count": count, "trend": trend}
        )

    def list_hotspots(
        self, viewer: Principal, limit: int = 100, since_days: float | None = None
    ) -> list[dict[str, Any]]:
        """Hotspots, most repeated first (scoped to the viewer's grids)."""
        h = schema.hotspots
        q = select(h).order_by(h.c.count.desc(), h.c.last_at.desc()).limit(limit)
        if since_days is not None:
            q = q.where(h.c.last_at >= self.store.now() - timedelta(days=since_days))
        if viewer.scope_id is not None and viewer.role not in ("admin", "system"):
            q = q.where(h.c.grid_id.in_(self.registry.grids_under(viewer.scope_id)))
        with self.store.engine.connect() as conn:
            rows = conn.execute(q).all()
        return [
            {
                "type": r.type,
                "type_name": self.taxonomy.name_of(r.type),
                "place": r.place_key,
                "place_name": r.place_name,
                "grid_id": r.grid_id,
                "count": r.count,
                "prev_count": r.prev_count,
                "trend": r.trend,
                "first_at": iso(r.first_at),
                "last_at": iso(r.last_at),
            }
            for r in rows
        ]

    # ------------------------------------------------------------------ reads and ack

    def _view(self, r: Any) -> dict[str, Any]:
        d = r if isinstance(r, dict) else dict(r._mapping)
        out = {k: (iso(v) if isinstance(v, datetime) else v) for k, v in d.items()}
        out["sources"] = json.loads(d["sources"])
        out["evidence"] = json.loads(d["evidence"])
        for b in ("placed", "pinned", "suppressed", "ack_escalated"):
            out[b] = bool(d[b])
        out["type_name"] = self.taxonomy.name_of(d["type"])
        out["grid_name"] = self.registry.name_of(d["grid_id"])
        return out

    def list(
        self,
        viewer: Principal,
        limit: int = 50,
        before_seq: int | None = None,
        state: str | None = None,
        type_: str | None = None,
        severity: str | None = None,
        grid_id: str | None = None,
        pinned: bool | None = None,
    ) -> tuple[list[dict[str, Any]], int | None]:
        """Newest first, scoped; returns (incidents, next cursor)."""
        rows, nxt = scoped_page(
            self.store.engine,
            schema.incidents,
            viewer,
            self.registry,
            (("state", state), ("type", type_), ("severity", severity), ("grid_id", grid_id)),
            (("pinned", pinned),),
            limit,
            before_seq,
        )
        views = [self._view(r) for r in rows]
        said = self._said(
            [
                v["id"]
                for v in views
                if v["sources"]
                and any(s.get("kind") in ("report", "citizen") for s in v["sources"])
            ]
        )
        for v in views:
            if v["id"] in said:
                v["said"] = said[v["id"]]
        return views, nxt

    def _said(self, incident_ids: builtins.list[str]) -> dict[str, dict[str, Any]]:
        """What a person said or showed in each incident's first report: the transcript or
        text, and the type a photo was read as (for the red card)."""
        if not incident_ids:
            return {}
        e = schema.events
        out: dict[str, dict[str, Any]] = {}
        with self.store.engine.connect() as conn:
            rows = conn.execute(
                select(e.c.incident_id, e.c.payload)
                .where(
                    e.c.incident_id.in_(incident_ids), e.c.source_kind.in_(("report", "citizen"))
                )
                .order_by(e.c.seq)
            ).all()
        for r in rows:
            if r.incident_id in out:
                continue
            attrs = json.loads(r.payload).get("attributes") or {}
            hints = attrs.get("photo_hints") or {}
            kinds = hints.get("types") if isinstance(hints, dict) else None
            item = {
                "transcript": attrs.get("transcript"),
                "text": attrs.get("text"),
                "photo_type": kinds[0] if isinstance(kinds, list) and kinds else None,
            }
            if item["photo_type"]:
                item["photo_type_name"] = self.taxonomy.name_of(item["photo_type"])
            out[r.incident_id] = {k: v for k, v in item.items() if v}
        return out

    def get(self, inc_id: str, viewer: Principal) -> dict[str, Any]:
        """One incident with its timeline, event ids and work order."""
        i, tl, e = schema.incidents, schema.incident_timeline, schema.events
        with self.store.engine.connect() as conn:
            r = conn.execute(select(i).where(i.c.id == inc_id)).first()
            if r is None or not viewer.sees(r):
                raise NotFound(f"incident {inc_id!r} not found")
            out = self._view(r)
            out["timeline"] = [
                {
                    "at": iso(t.at),
                    "kind": t.kind,
                    "event_id": t.event_id,
                    "severity": t.severity,
                    "text": t.text,
                }
                for t in conn.execute(
                    select(tl).where(tl.c.incident_id == inc_id).order_by(tl.c.seq).limit(1000)
                )
            ]
            out["event_ids"] = [
                x[0]
                for x in conn.execute(
                    select(e.c.id).where(e.c.incident_id == inc_id).order_by(e.c.seq).limit(1000)
                )
            ]
            wo = conn.execute(
                select(schema.work_orders.c.id).where(schema.work_orders.c.incident_id == inc_id)
            ).first()
        out["work_order_id"] = wo[0] if wo else None
        return out

    def split(
        self,
        inc_id: str,
        event_id: str,
        actor: Principal,
        node_id: str | None = None,
        note: str = "",
    ) -> dict[str, Any]:
        """Take a wrongly merged event out into an incident (and work order) of its own.

        For the command centre and admins; audited, and written in both timelines.
        Returns the new incident.
        """
        from hub.workorders import Forbidden, Invalid

        if actor.role not in ("admin", "command_centre", "system"):
            raise Forbidden(f"role {actor.role!r}: expected admin or command_centre to split")
        i, e = schema.incidents, schema.events
        with self.store.write(lock="workflow") as conn:
            r = conn.execute(self.store.for_update(select(i).where(i.c.id == inc_id))).first()
            if r is None or not actor.sees(r):
                raise NotFound(f"incident {inc_id!r} not found")
            q = select(e.c.node_id, e.c.id, e.c.payload).where(
                e.c.incident_id == inc_id, e.c.id == event_id
            )
            if node_id:
                q = q.where(e.c.node_id == node_id)
            rows = conn.execute(q).all()
            if len(rows) != 1:
                raise Invalid(
                    f"event_id: expected one event of incident {inc_id}, found {len(rows)}"
                    + (" (name its node_id)" if len(rows) > 1 else "")
                )
            if r.event_count <= 1:
                raise Invalid(f"incident {inc_id} has one event: nothing to split")
            ev = Event.from_json(rows[0].payload)
            et = self.taxonomy.get(ev.type)
            placement = self.registry.place(ev)
            point = wgs84_point(ev) if ev.location.lat is not None else None
            severity = max_severity(ev.severity, et.severity)
            new_id = self._create(conn, ev, severity, et.family, placement, point)
            conn.execute(
                e.update()
                .where(e.c.node_id == ev.source.node_id, e.c.id == ev.id)
                .values(incident_id=new_id)
            )
            key = f"{ev.source.node_id}\x1f{ev.incident_key}"[:340]
            k = schema.incident_keys
            conn.execute(
                k.update()
                .where(k.c.key == key, k.c.incident_id == inc_id)
                .values(incident_id=new_id)
            )
            now = self.store.now()
            conn.execute(
                i.update()
                .where(i.c.id == inc_id)
                .values(event_count=r.event_count - 1, updated_at=now)
            )
            why = f"（{note}）" if note else ""
            self._timeline(conn, inc_id, "split", ev, f"拆分：{ev.summary} 移出为新事件 {new_id}，操作人 {actor.name}{why}")  # fmt: skip
            self._timeline(conn, new_id, "split", ev, f"由事件 {inc_id} 拆分而来，操作人 {actor.name}{why}")  # fmt: skip
            self.store.audit(
                conn,
                actor.name,
                "incident.split",
                f"incident:{inc_id}",
                {
                    "event_id": ev.id,
                    "node_id": ev.source.node_id,
                    "new": new_id,
                    "note": note[:200],
                },
            )
            self.store.change(conn, "incident", inc_id, {"state": r.state, "new": False})
        return self.get(new_id, actor)

    def acknowledge(self, inc_id: str, actor: Principal, note: str = "") -> dict[str, Any]:
        """Stop the flashing of a red incident (audited); idempotent."""
        if not actor.may("ack"):
            from hub.workorders import Forbidden

            raise Forbidden(f"role {actor.role!r} may not acknowledge")
        i = schema.incidents
        now = self.store.now()
        with self.store.write() as conn:
            r = conn.execute(self.store.for_update(select(i).where(i.c.id == inc_id))).first()
            if r is None or not actor.sees(r):
                raise NotFound(f"incident {inc_id!r} not found")
            if r.acked_at is None:
                conn.execute(
                    i.update()
                    .where(i.c.id == inc_id)
                    .values(acked_at=now, acked_by=actor.name, pinned=False, updated_at=now)
                )
                self._timeline(
                    conn,
                    inc_id,
                    "ack",
                    None,
                    f"已确认：{actor.name}" + (f"（{note}）" if note else ""),
                )
                self.store.audit(
                    conn, actor.name, "incident.ack", f"incident:{inc_id}", {"note": note[:200]}
                )
                self.store.change(conn, "incident", inc_id, {"state": r.state, "acked": True})
        return self.get(inc_id, actor)


class IncidentWorker:
    """The one way into incident processing for committed events.

    Whoever commits events (ingest's ``on_committed`` callback in production, tests alike)
    hands them to ``on_committed``; the worker processes them as handed, emergencies
    first, in small transactions on its own thread, so ingest never waits for it. The
    database stays the source of truth for what is pending: on the first turn after a
    start, and after any failed turn, the worker takes the events no incident holds yet
    from the database (oldest first, emergencies before them), so nothing is lost when
    the process stops between commit and processing.

    Args:
        engine: the incident engine.
        batch: events per transaction (keeps the SQLite write lock short).
    """

    def __init__(self, engine: IncidentEngine, batch: int = 50) -> None:
        self.engine = engine
        self.batch = batch
        self._handed: list[Event] = []
        self._lock = threading.Lock()
        self._recover = True  # the database may hold pending events from before the start
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.processed = 0

    def on_committed(self, events: list[Event]) -> None:
        """Hand over events just committed to the database (returns at once)."""
        with self._lock:
            if len(self._handed) + len(events) > _MAX_HANDED:
                self._handed = []  # far behind: the database has them all
                self._recover = True
            else:
                self._handed.extend(events)
        self._wake.set()

    def start(self) -> None:
        """Start the background thread."""
        self._thread = threading.Thread(target=self._loop, name="hub-incidents", daemon=True)
        self._thread.start()
        self._wake.set()

    def stop(self) -> None:
        """Stop after the current batch."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(10)

    def run_once(self) -> int:
        """One turn of the worker (what its thread runs on each wake): the pending events
        of the database when due, then the handed events. Returns how many were processed.

        Raises:
            Exception: processing failed; what is left stays pending in the database and
                the next turn takes it from there.
        """
        with self._lock:
            handed, self._handed = self._handed, []
            recover, self._recover = self._recover, False
        done = 0
        try:
            if recover:
                done += self._recover_pending()
            handed.sort(key=lambda ev: ev.severity != "emergency")  # stable: emergencies first
            for i in range(0, len(handed), self.batch):
                if self._stop.is_set():
                    self._recover = True
                    break
                chunk = handed[i : i + self.batch]
                self.engine.process(chunk)
                done += len(chunk)
        except Exception:
            with self._lock:
                self._recover = True
            raise
        finally:
            self.processed += done
        return done

    def _recover_pending(self, max_batches: int = 1000) -> int:
        """Process pending events of the database until none is left (or ``max_batches``)."""
        done = 0
        for _ in range(max_batches):
            n = self.engine.process_pending(grace_s=0.0, limit=self.batch)
            done += n
            if n == 0 or self._stop.is_set():
                break
        return done

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(1.0)
            self._wake.clear()
            try:
                self.run_once()
            except Exception:
                log.exception("incidents: processing failed; retrying from the database")
                self._stop.wait(1.0)


def _evidence_item(ev: Event, item: Evidence) -> dict[str, Any]:
    """An incident's evidence entry: the contract's fields and the node that holds it."""
    return {**item.model_dump(mode="json"), "node_id": ev.source.node_id}
