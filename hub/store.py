"""The hub's store: events (idempotent by id), dead letters, node status, evidence records.

SQLAlchemy 2 Core over SQLite (WAL) by default or PostgreSQL by URL; the schema is
created and upgraded by Alembic migrations (``Store.migrate``).

Writers that read before they write use ``Store.write()``: on SQLite a ``BEGIN IMMEDIATE``
transaction (one writer at a time, across processes), on PostgreSQL a transaction that can
take a named advisory lock, so several hub workers on one database stay exactly-once.
"""

from __future__ import annotations

import json
import logging
import threading
import zlib
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, delete, event, func, select
from sqlalchemy.dialects import postgresql, sqlite

from hub import schema
from shaobing.contract import Event

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def _aware(dt: datetime | None) -> datetime | None:
    if dt is None:
        return None
    return dt if dt.tzinfo is not None else dt.replace(tzinfo=UTC)


def dumps(value: Any) -> str:
    """Compact JSON with Chinese kept readable."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)


def aware(dt: datetime | None) -> datetime | None:
    """A database time as an aware UTC datetime (SQLite returns naive UTC)."""
    return _aware(dt)


def iso(dt: datetime | None) -> str | None:
    """RFC 3339 of a database time, or None."""
    a = _aware(dt)
    return a.isoformat() if a is not None else None


class SystemClock:
    """The wall clock (UTC)."""

    def now(self) -> datetime:
        """Current time."""
        return datetime.now(UTC)


class ManualClock:
    """A clock that moves only when told (tests and simulations)."""

    def __init__(self, start: datetime) -> None:
        self._now = start.astimezone(UTC)
        self._lock = threading.Lock()

    def now(self) -> datetime:
        """Current (set) time."""
        with self._lock:
            return self._now

    def advance(self, **delta: float) -> datetime:
        """Move forward by ``timedelta(**delta)``; returns the new time."""
        with self._lock:
            self._now += timedelta(**delta)
            return self._now

    def set(self, when: datetime) -> None:
        """Jump to ``when``."""
        with self._lock:
            self._now = when.astimezone(UTC)


def make_engine(url: str) -> Engine:
    """An engine with the settings the hub needs (SQLite: WAL, busy timeout, FK on)."""
    if url.startswith("sqlite"):
        if url.startswith("sqlite:///") and ":memory:" not in url:
            Path(url[len("sqlite:///") :]).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url, connect_args={"timeout": 30, "check_same_thread": False}, pool_pre_ping=True
        )

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.isolation_level = None  # transactions are begun below (IMMEDIATE when asked)
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        @event.listens_for(engine, "begin")
        def _begin(conn: Connection) -> None:
            immediate = conn.get_execution_options().get("sqlite_immediate")
            conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=5)


class Store:
    """Events and their side tables.

    Args:
        url: SQLAlchemy URL (``sqlite:///path`` or ``postgresql://…``).
        clock_skew_s: an event whose edge time differs from the hub's receive time by more
            is flagged ``clock_skew``.
    """

    def __init__(
        self, url: str, clock_skew_s: float = 5.0, clock: SystemClock | ManualClock | None = None
    ) -> None:
        self.url = url
        self.engine = make_engine(url)
        self.clock_skew_s = clock_skew_s
        self.clock = clock or SystemClock()
        self.is_postgres = self.engine.dialect.name == "postgresql"
        self._insert = postgresql.insert if self.is_postgres else sqlite.insert
        self.on_change: Callable[[], None] | None = None

    def now(self) -> datetime:
        """The hub's current time (the store's clock)."""
        return self.clock.now()

    @property
    def insert(self) -> Callable[..., Any]:
        """The dialect's INSERT (with ``on_conflict_do_nothing``/``do_update``)."""
        return self._insert

    @contextmanager
    def write(self, lock: str | None = None) -> Iterator[Connection]:
        """A write transaction that is safe to read-then-write in, across processes.

        Args:
            lock: on PostgreSQL, a name serialising this transaction with others that
                take the same name (SQLite serialises every writer anyway).
        """
        with self.engine.connect() as conn:
            if not self.is_postgres:
                conn = conn.execution_options(sqlite_immediate=True)
            with conn.begin():
                if lock and self.is_postgres:
                    conn.exec_driver_sql(
                        "SELECT pg_advisory_xact_lock(%(k)s)", {"k": zlib.crc32(lock.encode())}
                    )
                yield conn

    def for_update(self, stmt: Any) -> Any:
        """``SELECT … FOR UPDATE`` on PostgreSQL (SQLite's write lock already holds)."""
        return stmt.with_for_update() if self.is_postgres else stmt

    def audit(
        self,
        conn: Connection,
        actor: str,
        action: str,
        target: str,
        detail: dict[str, Any] | None = None,
    ) -> None:
        """One audit row (in the caller's transaction)."""
        conn.execute(
            schema.audit.insert().values(
                at=self.now(),
                actor=actor[:64],
                action=action[:64],
                target=target[:128],
                detail=dumps(detail or {}),
            )
        )

    def change(self, conn: Connection, kind: str, ref_id: str, payload: dict[str, Any]) -> None:
        """Append to the change feed (read by every worker's SSE stream)."""
        conn.execute(
            schema.changes.insert().values(
                at=self.now(), kind=kind, ref_id=ref_id, payload=dumps(payload)
            )
        )

    def list_changes(self, after_seq: int, limit: int = 200) -> list[dict[str, Any]]:
        """Changes after a sequence number, oldest first."""
        t = schema.changes
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(t).where(t.c.seq > after_seq).order_by(t.c.seq).limit(limit)
            ).all()
        return [
            {"seq": r.seq, "kind": r.kind, "ref_id": r.ref_id, "data": json.loads(r.payload)}
            for r in rows
        ]

    def last_seq(self, table: str) -> int:
        """Highest ``seq`` of a table (0 when empty)."""
        t = schema.metadata.tables[table]
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.coalesce(func.max(t.c.seq), 0))).scalar_one())

    def acquire_lease(self, name: str, holder: str, seconds: float) -> bool:
        """Hold a named lease (e.g. the scheduler's) for ``seconds``; False when someone else holds it."""
        t = schema.leases
        now = self.now()
        with self.write(lock=f"lease:{name}") as conn:
            row = conn.execute(self.for_update(select(t).where(t.c.name == name))).first()
            until = now + timedelta(seconds=seconds)
            if row is None:
                conn.execute(t.insert().values(name=name, holder=holder, expires_at=until))
                return True
            if row.holder == holder or _aware(row.expires_at) <= now:  # type: ignore[operator]
                conn.execute(
                    t.update().where(t.c.name == name).values(holder=holder, expires_at=until)
                )
                return True
            return False

    def probe_write(self, name: str) -> None:
        """A tiny write transaction (the health probe); raises when the database cannot write."""
        t = schema.leases
        now = self.now()
        stmt = (
            self._insert(t)
            .values(name=name[:64], holder="health-probe", expires_at=now)
            .on_conflict_do_update(index_elements=["name"], set_={"expires_at": now})
        )
        with self.engine.begin() as conn:
            conn.execute(stmt)

    def prune_dead_letters(self, max_age_days: float, max_bytes: int) -> int:
        """Delete dead letters older than ``max_age_days``, then the oldest beyond ``max_bytes``.

        Returns how many were deleted.
        """
        t = schema.dead_letters
        cutoff = self.now() - timedelta(days=max_age_days)
        size = func.length(t.c.payload) + func.length(t.c.reason)
        deleted = 0
        with self.engine.begin() as conn:
            deleted += conn.execute(delete(t).where(t.c.received_at < cutoff)).rowcount or 0
            total = int(conn.execute(select(func.coalesce(func.sum(size), 0))).scalar_one())
            if total > max_bytes:
                # newest first: keep rows until the budget is spent, delete the rest
                kept = 0
                keep_from: int | None = None
                for seq, n in conn.execute(select(t.c.seq, size).order_by(t.c.seq.desc())).all():
                    kept += int(n or 0)
                    if kept > max_bytes:
                        keep_from = int(seq)
                        break
                if keep_from is not None:
                    deleted += conn.execute(delete(t).where(t.c.seq <= keep_from)).rowcount or 0
        return deleted

    def list_audit(self, target: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        """Audit rows, newest first."""
        t = schema.audit
        q = select(t).order_by(t.c.seq.desc()).limit(limit)
        if target:
            q = q.where(t.c.target == target)
        with self.engine.connect() as conn:
            rows = conn.execute(q).all()
        return [
            {
                "seq": r.seq,
                "at": iso(r.at),
                "actor": r.actor,
                "action": r.action,
                "target": r.target,
                "detail": json.loads(r.detail),
            }
            for r in rows
        ]

    # ------------------------------------------------------------------ schema

    def migrate(self) -> None:
        """Create or upgrade the schema to the newest migration (safe to call every start)."""
        from alembic import command
        from alembic.config import Config

        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        with self.engine.begin() as conn:
            if self.engine.dialect.name == "postgresql":
                # several hub workers may start at once: one migrates, the others wait
                conn.exec_driver_sql("SELECT pg_advisory_xact_lock(727001)")
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")

    def is_migrated(self) -> bool:
        """True when the newest migration is applied."""
        from alembic.config import Config
        from alembic.runtime.migration import MigrationContext
        from alembic.script import ScriptDirectory

        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        heads = set(ScriptDirectory.from_config(cfg).get_heads())
        try:
            with self.engine.connect() as conn:
                current = set(MigrationContext.configure(conn).get_current_heads())
        except Exception:  # database unreachable
            return False
        return current == heads

    # ------------------------------------------------------------------ writes

    def insert_events(self, items: Sequence[tuple[Event, datetime]]) -> list[tuple[str, str]]:
        """Insert events in one transaction, idempotent by (node id, event id).

        Returns the (node_id, id) pairs newly inserted; an id is unique within its node, so
        one node's id never hides another node's event.
        """
        if not items:
            return []
        rows = []
        seen: set[tuple[str, str]] = set()
        for ev, received_at in items:
            key = (ev.source.node_id, ev.id)
            if key in seen:
                continue
            seen.add(key)
            skew = abs((received_at - ev.detected_at).total_seconds()) > self.clock_skew_s
            rows.append(
                {
                    "id": ev.id,
                    "type": ev.type,
                    "severity": ev.severity,
                    "state": ev.state,
                    "incident_key": ev.incident_key,
                    "node_id": ev.source.node_id,
                    "source_kind": ev.source.kind,
                    "device_id": ev.source.device_id,
                    "pipeline": ev.source.pipeline,
                    "grid_id": ev.location.grid_id,
                    "summary": ev.summary,
                    "confidence": ev.confidence,
                    "occurred_at": ev.occurred_at.astimezone(UTC),
                    "detected_at": ev.detected_at.astimezone(UTC),
                    "received_at": received_at.astimezone(UTC),
                    "clock_skew": skew,
                    "payload": ev.to_json(),
                }
            )
        inserted: list[tuple[str, str]] = []
        stmt = (
            self._insert(schema.events)
            .on_conflict_do_nothing(index_elements=["node_id", "id"])
            .returning(schema.events.c.node_id, schema.events.c.id)
        )
        with self.engine.begin() as conn:
            # one cached statement, executed for many rows (SQLAlchemy batches it into
            # multi-row INSERTs within the driver's parameter limit); skipped duplicates
            # return no row
            inserted.extend((r[0], r[1]) for r in conn.execute(stmt, rows))
        return inserted

    def add_dead_letters(self, rows: Sequence[tuple[str, bytes, str, datetime]]) -> None:
        """Store malformed messages with the reason (committed on return)."""
        if not rows:
            return
        with self.engine.begin() as conn:
            conn.execute(
                schema.dead_letters.insert(),
                [
                    {
                        "topic": t[:512],
                        "payload": p,
                        "reason": r[:4000],
                        "received_at": at.astimezone(UTC),
                    }
                    for t, p, r, at in rows
                ],
            )

    def upsert_node_status(
        self, node_id: str, online: bool, payload: bytes, received_at: datetime
    ) -> None:
        """Remember a node's latest status message."""
        text = payload.decode("utf-8", errors="replace")
        values = {
            "node_id": node_id,
            "online": online,
            "payload": text,
            "updated_at": received_at.astimezone(UTC),
        }
        stmt = self._insert(schema.nodes).values(values)
        stmt = stmt.on_conflict_do_update(
            index_elements=["node_id"],
            set_={"online": online, "payload": text, "updated_at": values["updated_at"]},
        )
        with self.engine.begin() as conn:
            conn.execute(stmt)

    def record_evidence(
        self,
        node_id: str,
        evidence_id: str,
        sha256: str,
        size: int,
        path: str,
        received_at: datetime,
    ) -> None:
        """Remember where an evidence file is stored."""
        values = {
            "node_id": node_id,
            "evidence_id": evidence_id,
            "sha256": sha256,
            "bytes": size,
            "path": path,
            "received_at": received_at.astimezone(UTC),
        }
        stmt = (
            self._insert(schema.evidence)
            .values(values)
            .on_conflict_do_nothing(index_elements=["node_id", "evidence_id"])
        )
        with self.engine.begin() as conn:
            conn.execute(stmt)

    # ------------------------------------------------------------------ reads

    def list_events(
        self,
        limit: int = 50,
        before_seq: int | None = None,
        type_: str | None = None,
        node_id: str | None = None,
        severity: str | None = None,
        grid_id: str | None = None,
        incident_id: str | None = None,
        grid_ids: Sequence[str] | None = None,
        where: Any = None,
    ) -> tuple[list[dict[str, Any]], int | None]:
        """Newest first; returns (events, cursor of the next page or None).

        ``grid_ids`` limits to those grids (a scoped user); ``incident_id`` to one incident.
        """
        t = schema.events
        q = (
            select(t.c.seq, t.c.payload, t.c.received_at, t.c.clock_skew, t.c.incident_id)
            .order_by(t.c.seq.desc())
            .limit(limit + 1)
        )
        if incident_id:
            q = q.where(t.c.incident_id == incident_id)
        if grid_ids is not None:
            q = q.where(t.c.grid_id.in_(list(grid_ids)))
        if where is not None:
            q = q.where(where)
        if before_seq is not None:
            q = q.where(t.c.seq < before_seq)
        if type_:
            q = q.where(t.c.type == type_)
        if node_id:
            q = q.where(t.c.node_id == node_id)
        if severity:
            q = q.where(t.c.severity == severity)
        if grid_id:
            q = q.where(t.c.grid_id == grid_id)
        with self.engine.connect() as conn:
            rows = conn.execute(q).all()
        items = []
        for row in rows[:limit]:
            item = json.loads(row.payload)
            item["received_at"] = _aware(row.received_at).isoformat()  # type: ignore[union-attr]
            item["clock_skew"] = bool(row.clock_skew)
            item["incident_id"] = row.incident_id
            items.append(item)
        next_cursor = rows[limit - 1].seq if len(rows) > limit else None
        return items, next_cursor

    def events_after(
        self, after_seq: int, limit: int = 100, where: Any = None
    ) -> list[tuple[int, dict[str, Any]]]:
        """Events stored after ``after_seq``, oldest first, as (seq, event) pairs (the live feed)."""
        t = schema.events
        q = (
            select(t.c.seq, t.c.payload, t.c.received_at, t.c.clock_skew, t.c.incident_id)
            .where(t.c.seq > after_seq)
            .order_by(t.c.seq)
            .limit(limit)
        )
        if where is not None:
            q = q.where(where)
        with self.engine.connect() as conn:
            rows = conn.execute(q).all()
        out = []
        for row in rows:
            item = json.loads(row.payload)
            item["received_at"] = _aware(row.received_at).isoformat()  # type: ignore[union-attr]
            item["clock_skew"] = bool(row.clock_skew)
            item["incident_id"] = row.incident_id
            out.append((int(row.seq), item))
        return out

    def get_events(self, event_id: str, node_id: str | None = None) -> list[dict[str, Any]]:
        """The events with this id (one per node that used it), or only ``node_id``'s."""
        t = schema.events
        q = select(t.c.payload, t.c.received_at, t.c.incident_id, t.c.clock_skew).where(
            t.c.id == event_id
        )
        if node_id is not None:
            q = q.where(t.c.node_id == node_id)
        with self.engine.connect() as conn:
            rows = conn.execute(q.order_by(t.c.seq).limit(50)).all()
        out = []
        for row in rows:
            item: dict[str, Any] = json.loads(row.payload)
            item["received_at"] = _aware(row.received_at).isoformat()  # type: ignore[union-attr]
            item["incident_id"] = row.incident_id
            item["clock_skew"] = bool(row.clock_skew)
            out.append(item)
        return out

    def get_event(self, event_id: str, node_id: str | None = None) -> dict[str, Any] | None:
        """One event by id (and node): the first stored when several nodes used the id."""
        found = self.get_events(event_id, node_id)
        return found[0] if found else None

    def count_events(self, where: Any = None) -> int:
        """Events stored (those matching ``where``, e.g. a viewer's scope)."""
        q = select(func.count()).select_from(schema.events)
        if where is not None:
            q = q.where(where)
        with self.engine.connect() as conn:
            return int(conn.execute(q).scalar_one())

    def counts_by(self, column: str, where: Any = None) -> dict[str, int]:
        """Event counts grouped by a column (type, severity, node_id, grid_id …)."""
        col = schema.events.c[column]
        q = select(col, func.count()).group_by(col)
        if where is not None:
            q = q.where(where)
        with self.engine.connect() as conn:
            rows = conn.execute(q).all()
        return {str(k): int(v) for k, v in rows}

    def count_dead_letters(self) -> int:
        """Dead letters stored."""
        with self.engine.connect() as conn:
            return int(
                conn.execute(select(func.count()).select_from(schema.dead_letters)).scalar_one()
            )

    def list_dead_letters(self, limit: int = 50) -> list[dict[str, Any]]:
        """Newest dead letters (payload shown as text, cut to 500 characters)."""
        t = schema.dead_letters
        with self.engine.connect() as conn:
            rows = conn.execute(select(t).order_by(t.c.seq.desc()).limit(limit)).all()
        return [
            {
                "seq": r.seq,
                "topic": r.topic,
                "reason": r.reason,
                "payload": bytes(r.payload[:500]).decode("utf-8", errors="replace"),
                "bytes": len(r.payload),
                "received_at": _aware(r.received_at).isoformat(),  # type: ignore[union-attr]
            }
            for r in rows
        ]

    def list_nodes(self) -> list[dict[str, Any]]:
        """Every node's latest status."""
        t = schema.nodes
        with self.engine.connect() as conn:
            rows = conn.execute(select(t).order_by(t.c.node_id)).all()
        out = []
        for r in rows:
            try:
                status = json.loads(r.payload)
            except ValueError:
                status = {}
            out.append(
                {
                    "node_id": r.node_id,
                    "online": bool(r.online),
                    "updated_at": iso(r.updated_at),
                    "status": status,
                }
            )
        return out

    def get_evidence(self, node_id: str, evidence_id: str) -> dict[str, Any] | None:
        """Where an evidence file is, by the node that sent it and its id (ids are per node)."""
        t = schema.evidence
        q = select(t).where(t.c.evidence_id == evidence_id, t.c.node_id == node_id)
        with self.engine.connect() as conn:
            r = conn.execute(q).first()
        return (
            None
            if r is None
            else {
                "node_id": r.node_id,
                "evidence_id": r.evidence_id,
                "sha256": r.sha256,
                "bytes": r.bytes,
                "path": r.path,
            }
        )

    def delete_all(self) -> None:
        """Empty every table (tests and benchmarks)."""
        with self.write() as conn:
            for table in reversed(schema.metadata.sorted_tables):
                conn.execute(delete(table))

    def close(self) -> None:
        """Release connections."""
        self.engine.dispose()
