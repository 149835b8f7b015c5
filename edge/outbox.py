"""The node's durable outbox: SQLite (WAL) between the pipelines and the broker.

An event is committed here before anything is sent (ARCHITECTURE §5). Life of a row:
pending → sent (published) → in flight (PUBACK from the broker) → deleted when the
hub's end-to-end ack names its id. A sent row with no hub ack within the ack timeout
is sent again (the wait doubles per attempt, up to 4× the timeout); after a restart every remaining row is replayed in order. The outbox is
bounded by bytes: when full it evicts the oldest ``normal`` rows first, then ``urgent``,
never an ``emergency``, and counts every drop (persisted).

Send state (sent / in flight) lives in memory: a restart makes every row pending again,
which is exactly the replay the contract asks for.
"""

from __future__ import annotations

import logging
import math
import sqlite3
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from shaobing.contract import Event
from shaobing.severity import SEVERITIES, severity_rank

__all__ = ["Outbox", "OutboxRecord"]

log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    severity TEXT NOT NULL,
    payload BLOB NOT NULL,
    size INTEGER NOT NULL,
    n_evidence INTEGER NOT NULL DEFAULT 0,
    created_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS events_severity_seq ON events (severity, seq);
CREATE TABLE IF NOT EXISTS evidence (
    event_seq INTEGER NOT NULL,
    evidence_id TEXT NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (event_seq, evidence_id)
);
CREATE TABLE IF NOT EXISTS evidence_notes (
    event_id TEXT NOT NULL,
    evidence_id TEXT NOT NULL,
    size INTEGER NOT NULL,
    reason TEXT NOT NULL,
    noted_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""

_EVICTABLE = SEVERITIES[:-1]  # lowest first; never "emergency"
_MAX_BACKOFF_FACTOR = 4


@dataclass
class OutboxRecord:
    """One event handed to the publisher: wire bytes plus its evidence, in send order."""

    seq: int
    id: str
    payload: bytes
    evidence: list[tuple[str, bytes]] = field(default_factory=list)
    attempt: int = 1


@dataclass
class _Flight:
    seq: int
    sent_at: float
    attempts: int
    pubacked: bool = False


class Outbox:
    """Durable, byte-bounded SQLite outbox (thread-safe).

    Args:
        path: SQLite file (created with its folder).
        max_bytes: bound on stored bytes (event JSON + evidence).
        ack_timeout_s: default wait for the hub's ack before a row is sent again.
        synchronous: SQLite ``synchronous`` mode; ``FULL`` (default) survives power loss,
            ``NORMAL`` (with WAL) survives process crashes only.
    """

    def __init__(
        self,
        path: str | Path,
        max_bytes: int = 256 * 2**20,
        ack_timeout_s: float = 10.0,
        *,
        synchronous: str = "FULL",
    ) -> None:
        if max_bytes <= 0:
            raise ValueError(f"max_bytes: expected a positive size, found {max_bytes}")
        if synchronous.upper() not in ("FULL", "NORMAL", "EXTRA"):
            raise ValueError(f"synchronous: expected FULL, NORMAL or EXTRA, found {synchronous!r}")
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.max_bytes = max_bytes
        self.ack_timeout_s = ack_timeout_s
        self._lock = threading.RLock()
        self._db = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(f"PRAGMA synchronous={synchronous.upper()}")
        self._db.execute("PRAGMA busy_timeout=5000")
        self._db.executescript(_SCHEMA)
        row = self._db.execute("SELECT COUNT(*), COALESCE(SUM(size), 0) FROM events").fetchone()
        self._count: int = row[0]
        self._bytes: int = row[1]
        dropped = self._db.execute("SELECT value FROM meta WHERE key = 'dropped'").fetchone()
        self._dropped: int = dropped[0] if dropped else 0
        self._cursor = 0  # highest seq handed out for a first send in this process
        self._flights: OrderedDict[str, _Flight] = OrderedDict()
        self._listeners: list[Callable[[], None]] = []
        self._closed = False
        self.replayed_at_open = self._count

    # ----------------------------------------------------------------- producer side

    def put(self, event: Event, evidence: Mapping[str, bytes] | None = None) -> None:
        """Commit ``event`` (and its evidence bytes) durably; returns after the commit.

        Args:
            event: the wire event.
            evidence: evidence id → bytes, for ids listed in ``event.evidence``.

        Raises:
            ValueError: when an evidence id is not one of the event's evidence entries.
        """
        self.put_many([(event, evidence)])

    def put_many(self, items: Iterable[tuple[Event, Mapping[str, bytes] | None]]) -> None:
        """Commit several events in one transaction (in order)."""
        rows = []
        for event, evidence in items:
            known = {e.id for e in event.evidence}
            blobs = dict(evidence or {})
            unknown = sorted(set(blobs) - known)
            if unknown:
                raise ValueError(
                    f"evidence: expected ids of the event's evidence ({', '.join(sorted(known)) or 'none'}), found {unknown}"
                )
            payload = event.to_bytes()
            size = len(payload) + sum(len(b) for b in blobs.values())
            rows.append((event.id, event.severity, payload, size, blobs))
        if not rows:
            return
        with self._lock:
            self._check_open()
            now = time.time()
            cur = self._db.cursor()
            cur.execute("BEGIN IMMEDIATE")
            try:
                for event_id, severity, payload, size, blobs in rows:
                    if not self._make_room(cur, size, severity):
                        self._dropped += 1
                        log.warning(
                            "outbox full: dropped new %s event %s (%d bytes)",
                            severity,
                            event_id,
                            size,
                        )
                        continue
                    cur.execute(
                        "INSERT OR IGNORE INTO events (id, severity, payload, size, n_evidence, created_at) VALUES (?, ?, ?, ?, ?, ?)",
                        (event_id, severity, payload, size, len(blobs), now),
                    )
                    if cur.rowcount == 0:
                        continue  # already stored: put is idempotent by id
                    seq = cur.lastrowid
                    for ev_id, data in blobs.items():
                        cur.execute(
                            "INSERT INTO evidence (event_seq, evidence_id, data) VALUES (?, ?, ?)",
                            (seq, ev_id, bytes(data)),
                        )
                    self._count += 1
                    self._bytes += size
                cur.execute(
                    "INSERT INTO meta (key, value) VALUES ('dropped', ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                    (self._dropped,),
                )
                cur.execute("COMMIT")
            except BaseException:
                cur.execute("ROLLBACK")
                self._recount()
                raise
            listeners = list(self._listeners)
        for fn in listeners:
            try:
                fn()
            except Exception:
                log.exception("outbox listener failed")

    def _make_room(self, cur: sqlite3.Cursor, size: int, severity: str) -> bool:
        """Evict old rows until ``size`` fits; False when the new row must be dropped."""
        if self._bytes + size <= self.max_bytes:
            return True
        # a new normal event may only evict normal ones; urgent evicts normal then urgent;
        # emergency evicts both and is stored even when only emergencies remain
        allowed = _EVICTABLE[: severity_rank(severity) + 1]
        for victim_severity in allowed:
            while self._bytes + size > self.max_bytes:
                victims = cur.execute(
                    "SELECT seq, id, size FROM events WHERE severity = ? ORDER BY seq LIMIT 64",
                    (victim_severity,),
                ).fetchall()
                if not victims:
                    break
                for seq, event_id, vsize in victims:
                    cur.execute("DELETE FROM events WHERE seq = ?", (seq,))
                    cur.execute("DELETE FROM evidence WHERE event_seq = ?", (seq,))
                    self._flights.pop(event_id, None)
                    self._count -= 1
                    self._bytes -= vsize
                    self._dropped += 1
                    log.warning(
                        "outbox full: evicted %s event %s (%d bytes)",
                        victim_severity,
                        event_id,
                        vsize,
                    )
                    if self._bytes + size <= self.max_bytes:
                        break
            if self._bytes + size <= self.max_bytes:
                return True
        if severity == "emergency":
            log.warning(
                "outbox over its bound (%d > %d bytes): keeping emergency events",
                self._bytes + size,
                self.max_bytes,
            )
            return True
        return False

    def _recount(self) -> None:
        row = self._db.execute("SELECT COUNT(*), COALESCE(SUM(size), 0) FROM events").fetchone()
        self._count, self._bytes = row[0], row[1]

    def add_listener(self, fn: Callable[[], None]) -> None:
        """Call ``fn`` (cheap, non-blocking) after every committed ``put``."""
        with self._lock:
            self._listeners.append(fn)

    def remove_listener(self, fn: Callable[[], None]) -> None:
        """Stop calling ``fn``."""
        with self._lock:
            if fn in self._listeners:
                self._listeners.remove(fn)

    # ----------------------------------------------------------------- figures

    def depth(self) -> int:
        """Events not yet acknowledged by the hub."""
        with self._lock:
            return self._count

    @property
    def dropped(self) -> int:
        """Events evicted (or refused) because of ``max_bytes`` since the file was created."""
        with self._lock:
            return self._dropped

    @property
    def stored_bytes(self) -> int:
        """Bytes of events and evidence held."""
        with self._lock:
            return self._bytes

    def outstanding(self) -> int:
        """Events sent and not yet acknowledged by the hub (the in-flight window)."""
        with self._lock:
            return len(self._flights)

    def ids(self) -> list[str]:
        """Ids of every stored event, in send order."""
        with self._lock:
            self._check_open()
            return [r[0] for r in self._db.execute("SELECT id FROM events ORDER BY seq")]

    def evidence_notes(self) -> list[dict[str, object]]:
        """Evidence that was not sent over MQTT (too large), for a later HTTP upload."""
        with self._lock:
            self._check_open()
            rows = self._db.execute(
                "SELECT event_id, evidence_id, size, reason, noted_at FROM evidence_notes ORDER BY rowid"
            ).fetchall()
        return [
            dict(zip(("event_id", "evidence_id", "size", "reason", "noted_at"), r, strict=True))
            for r in rows
        ]

    # ----------------------------------------------------------------- publisher side

    def take(
        self, window: int, now: float | None = None, ack_timeout_s: float | None = None
    ) -> list[OutboxRecord]:
        """Records to publish now: overdue re-sends first, then new rows while the window allows.

        Every returned record is marked sent at ``now``.

        Args:
            window: the most events that may be sent and not yet acknowledged by the hub.
            now: monotonic time (default: now).
            ack_timeout_s: re-send after this long without the hub's ack (default: the outbox's).
        """
        now = time.monotonic() if now is None else now
        timeout = self.ack_timeout_s if ack_timeout_s is None else ack_timeout_s
        with self._lock:
            self._check_open()
            due = [
                (eid, f) for eid, f in self._flights.items() if now - f.sent_at >= _wait(f, timeout)
            ]
            room = max(0, window - len(self._flights))
            fresh = []
            if room:
                fresh = self._db.execute(
                    "SELECT seq, id, payload, n_evidence FROM events WHERE seq > ? ORDER BY seq LIMIT ?",
                    (self._cursor, room),
                ).fetchall()
            records: list[OutboxRecord] = []
            with_evidence: dict[int, OutboxRecord] = {}
            if due:
                seqs = [f.seq for _, f in due]
                found = {
                    r[0]: r
                    for chunk in _chunks(seqs, 500)
                    for r in self._db.execute(
                        f"SELECT seq, id, payload, n_evidence FROM events WHERE seq IN ({','.join('?' * len(chunk))})",
                        chunk,
                    )
                }
                for eid, flight in sorted(due, key=lambda item: item[1].seq):
                    row = found.get(flight.seq)
                    if row is None:  # deleted meanwhile (acked or evicted)
                        self._flights.pop(eid, None)
                        continue
                    flight.sent_at, flight.pubacked = now, False
                    flight.attempts += 1
                    rec = OutboxRecord(
                        seq=row[0], id=row[1], payload=bytes(row[2]), attempt=flight.attempts
                    )
                    records.append(rec)
                    if row[3]:
                        with_evidence[rec.seq] = rec
            for seq, eid, payload, n_evidence in fresh:
                self._cursor = max(self._cursor, seq)
                if eid in self._flights:
                    continue
                self._flights[eid] = _Flight(seq=seq, sent_at=now, attempts=1)
                rec = OutboxRecord(seq=seq, id=eid, payload=bytes(payload))
                records.append(rec)
                if n_evidence:
                    with_evidence[seq] = rec
            if with_evidence:
                seqs = list(with_evidence)
                for chunk in _chunks(seqs, 500):
                    for seq, ev_id, data in self._db.execute(
                        f"SELECT event_seq, evidence_id, data FROM evidence WHERE event_seq IN ({','.join('?' * len(chunk))}) ORDER BY rowid",
                        chunk,
                    ):
                        with_evidence[seq].evidence.append((ev_id, bytes(data)))
            return records

    def next_due(self, ack_timeout_s: float | None = None) -> float:
        """Monotonic time the oldest sent row becomes due for a re-send (inf when none)."""
        timeout = self.ack_timeout_s if ack_timeout_s is None else ack_timeout_s
        with self._lock:
            if not self._flights:
                return math.inf
            return min(f.sent_at + _wait(f, timeout) for f in self._flights.values())

    def has_unsent(self) -> bool:
        """True when rows exist that were never handed out in this process."""
        with self._lock:
            return self._count > len(self._flights) and self._count > 0

    def mark_puback(self, event_id: str) -> None:
        """The broker accepted the publish of ``event_id`` (it is now in flight)."""
        with self._lock:
            flight = self._flights.get(event_id)
            if flight is not None:
                flight.pubacked = True

    def release_unconfirmed(self) -> int:
        """After a lost connection: rows without PUBACK become due at once; returns how many."""
        n = 0
        with self._lock:
            for flight in self._flights.values():
                if not flight.pubacked:
                    flight.sent_at = -math.inf
                    n += 1
        return n

    def ack(self, ids: Iterable[str]) -> int:
        """The hub committed these events: delete them; returns how many rows were deleted."""
        ids = list(ids)
        if not ids:
            return 0
        deleted = 0
        with self._lock:
            self._check_open()
            cur = self._db.cursor()
            cur.execute("BEGIN IMMEDIATE")
            try:
                for chunk in _chunks(ids, 500):
                    marks = ",".join("?" * len(chunk))
                    rows = cur.execute(
                        f"SELECT seq, size FROM events WHERE id IN ({marks})", chunk
                    ).fetchall()
                    if not rows:
                        continue
                    seqs = [r[0] for r in rows]
                    smarks = ",".join("?" * len(seqs))
                    cur.execute(f"DELETE FROM events WHERE seq IN ({smarks})", seqs)
                    cur.execute(f"DELETE FROM evidence WHERE event_seq IN ({smarks})", seqs)
                    deleted += len(rows)
                    self._count -= len(rows)
                    self._bytes -= sum(r[1] for r in rows)
                cur.execute("COMMIT")
            except BaseException:
                cur.execute("ROLLBACK")
                self._recount()
                raise
            for event_id in ids:
                self._flights.pop(event_id, None)
        return deleted

    def note_evidence(self, event_id: str, evidence_id: str, size: int, reason: str) -> None:
        """Remember evidence that was not sent over MQTT (e.g. larger than the MQTT limit)."""
        with self._lock:
            self._check_open()
            self._db.execute(
                "INSERT INTO evidence_notes (event_id, evidence_id, size, reason, noted_at) VALUES (?, ?, ?, ?, ?)",
                (event_id, evidence_id, size, reason, time.time()),
            )

    # ----------------------------------------------------------------- lifecycle

    def close(self) -> None:
        """Close the database (rows stay for the next start)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            try:
                self._db.execute("PRAGMA wal_checkpoint(PASSIVE)")
            except sqlite3.Error:
                pass
            self._db.close()

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError(f"outbox {self.path}: expected an open outbox, found it closed")

    def __enter__(self) -> Outbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _wait(flight: _Flight, timeout: float) -> float:
    """Ack wait before a re-send: doubles with each attempt (at most 4×), so a hub that is
    down for long is not flooded with copies."""
    factor: int = min(1 << max(0, flight.attempts - 1), _MAX_BACKOFF_FACTOR)
    return timeout * factor


def _chunks(items: list, size: int) -> Iterable[list]:  # type: ignore[type-arg]
    for i in range(0, len(items), size):
        yield items[i : i + size]
