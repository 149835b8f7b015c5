"""The hub's ingest core: a batch of MQTT messages → what to commit, acknowledge and dead-letter.

No broker here: ``IngestCore.process`` takes messages (topic, raw bytes, time received),
validates each against the contract, stores the new events, node statuses, evidence and
dead letters through the store, and returns what the transport does next: the end-to-end
acks to publish (one per sender, signed when a secret is set) and the committed events for
incident processing. The paho transport (``hub.ingest.Ingest``) only queues messages,
batches them and carries out the outcome.

- an event is acknowledged once it is stored, duplicates included;
- a message that cannot satisfy the contract is a dead letter with the reason and the raw
  bytes, and acknowledged when its id is readable (the sender stops re-sending it);
- one event the database refuses is isolated by halving the batch, dead-lettered
  (``unstorable: …``) and acknowledged; the rest commit;
- a failure of the store itself (read-only, disk, connection) raises, so the transport
  keeps the batch and retries.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Protocol

from pydantic import ValidationError

from hub.evidence import EvidenceMismatch, EvidenceRecorder, EvidenceStore
from shaobing import topics
from shaobing.config import IngestConfig
from shaobing.contract import (
    SCHEMA,
    ContractError,
    Event,
    Location,
    NodeStatus,
    Source,
    ack_key_for,
    describe_validation_error,
    encode_ack,
    sign_ack,
)

if TYPE_CHECKING:
    from hub.store import Store

__all__ = ["DeadLetter", "IngestCore", "IngestStore", "Message", "Outcome", "Plan"]

log = logging.getLogger(__name__)

_DEAD_LETTER_KEEP_BYTES = 64 * 1024
_MAX_TRACKED_NODES = 100_000  # online-status times kept for will detection
_ACKABLE_ID = re.compile(r"^[A-Za-z0-9_.:\-]{1,64}$")
ACK_CHUNK = 500  # ids per end-to-end ack message

DeadLetter = tuple[str, bytes, str, datetime]
"""(topic, raw payload, reason, received_at)"""


class IngestStore(EvidenceRecorder, Protocol):
    """What ingest needs from the hub's store (evidence records included)."""

    def insert_events(self, items: Sequence[tuple[Event, datetime]]) -> list[tuple[str, str]]:
        """Insert idempotently by (node id, id) in one transaction; return the pairs inserted."""
        ...

    def add_dead_letters(self, rows: Sequence[tuple[str, bytes, str, datetime]]) -> None:
        """Store (topic, raw payload, reason, received_at) rows."""
        ...

    def prune_dead_letters(self, max_age_days: float, max_bytes: int) -> int:
        """Delete old dead letters and the oldest beyond a size; returns how many."""
        ...

    def upsert_node_status(
        self, node_id: str, online: bool, payload: bytes, received_at: datetime
    ) -> None:
        """Remember a node's latest status."""
        ...


@dataclass(frozen=True)
class Message:
    """One message as the broker delivered it."""

    topic: str
    payload: bytes
    received_at: datetime


@dataclass
class Outcome:
    """What a processed batch asks of the transport (everything in it is already stored)."""

    committed: list[Event] = field(default_factory=list)
    """events newly stored by this batch, for incident processing"""
    acks: list[tuple[str, bytes]] = field(default_factory=list)
    """end-to-end acks to publish: (topic, payload)"""
    dead_letters: list[DeadLetter] = field(default_factory=list)
    """the dead letters this batch stored"""


@dataclass
class Plan:
    """A batch sorted out before anything is stored."""

    events: list[tuple[Event, datetime]] = field(default_factory=list)
    raw_of: dict[tuple[str, str], Message] = field(default_factory=dict)
    ack_ids: dict[str, list[str]] = field(default_factory=dict)
    dead: list[DeadLetter] = field(default_factory=list)
    statuses: list[tuple[str, bool, bytes, datetime]] = field(default_factory=list)
    evidence: list[Message] = field(default_factory=list)


class IngestCore:
    """Validates, stores and acknowledges batches of messages (no broker).

    Args:
        opts: the ingest options (payload limit, dead-letter retention).
        store: the hub's store.
        evidence: where evidence bytes go.
        ack_secret: sign acks with a key derived per node from this secret (None: unsigned).
    """

    def __init__(
        self,
        opts: IngestConfig,
        store: Store | IngestStore,
        evidence: EvidenceStore,
        ack_secret: str | None = None,
    ) -> None:
        self.opts = opts
        self.store = store
        self.evidence = evidence
        self._ack_secret = ack_secret
        self._node_keys: dict[str, str] = {}
        # latest online status time per node (edge clock), to tell a will from a clean stop
        self._online_ts: dict[str, datetime] = {}
        self._poisoned_last = 0
        self.counters: dict[str, int] = dict.fromkeys(
            (
                "received",
                "committed",
                "duplicates",
                "dead_lettered",
                "status",
                "evidence",
                "batches",
                "offline_faults",
                "poison_isolated",
                "dead_letters_pruned",
            ),
            0,
        )

    def process(self, batch: Sequence[Message]) -> Outcome:
        """Store what ``batch`` holds; return the acks to send and the events committed.

        Raises:
            Exception: the store itself failed; nothing of the batch may be acknowledged.
        """
        plan = self.plan(batch)
        # evidence first: it normally precedes its event
        for msg in plan.evidence:
            try:
                problem = self._store_evidence(msg)
            except OSError:
                raise  # disk full or unwritable: retry the batch, health reports it
            except Exception as exc:  # anything else is this message's fault
                problem = f"unstorable evidence: {type(exc).__name__}: {str(exc)[:200]}"
            if problem:
                plan.dead.append((msg.topic, _keep(msg.payload), problem, msg.received_at))
        inserted = self._insert_isolated(plan.events, plan.raw_of)
        new_events = [ev for ev, _ in plan.events if (ev.source.node_id, ev.id) in inserted]
        self.counters["duplicates"] += len(plan.events) - len(new_events) - self._poisoned_last
        self.counters["committed"] += len(new_events)
        for node, reason in self.evidence.events_committed(
            [ev for ev in new_events if ev.evidence], self.store
        ):
            plan.dead.append((topics.event_topic(node), b"", reason, datetime.now(UTC)))
        if plan.dead:
            self.store.add_dead_letters(plan.dead)
            self.counters["dead_lettered"] += len(plan.dead)
        latest: dict[str, tuple[bool, bytes, datetime]] = {}
        for node, online, payload, at in plan.statuses:
            latest[node] = (online, payload, at)
        for node, (online, payload, at) in latest.items():
            self.store.upsert_node_status(node, online, payload, at)
        self.counters["status"] += len(plan.statuses)
        self.counters["batches"] += 1
        return Outcome(new_events, self.acks(plan.ack_ids), plan.dead)

    def plan(self, batch: Sequence[Message]) -> Plan:
        """Sort a batch into events to store, ids to acknowledge, statuses, evidence and
        dead letters (nothing is stored yet)."""
        plan = Plan()
        seen: set[tuple[str, str]] = set()
        for msg in batch:
            node = topics.parse_node(msg.topic)
            kind = msg.topic.split("/")[3] if node else ""
            if kind == "event":
                self._plan_event(plan, seen, msg, node or "")
            elif kind == "status" and node:
                self._plan_status(plan, seen, msg, node)
            elif kind == "evidence" and node:
                plan.evidence.append(msg)
            else:
                plan.dead.append(
                    (msg.topic, _keep(msg.payload), "unexpected topic", msg.received_at)
                )
        return plan

    def _plan_event(self, plan: Plan, seen: set[tuple[str, str]], msg: Message, node: str) -> None:
        self.counters["received"] += 1
        try:
            ev, reason, raw_id = self._parse_event(msg, node)
        except Exception as exc:  # bad input never stops ingest
            ev, reason, raw_id = None, f"unparseable: {type(exc).__name__}: {str(exc)[:200]}", None
        if ev is None:
            plan.dead.append((msg.topic, _keep(msg.payload), reason, msg.received_at))
            if raw_id and node:  # a poison message is stored (as a dead letter): ack it
                plan.ack_ids.setdefault(node, []).append(raw_id)
            return
        plan.ack_ids.setdefault(ev.source.node_id, []).append(ev.id)
        key = (ev.source.node_id, ev.id)
        if key in seen:
            self.counters["duplicates"] += 1
            return
        seen.add(key)
        plan.events.append((ev, msg.received_at))
        plan.raw_of[key] = msg

    def _plan_status(self, plan: Plan, seen: set[tuple[str, str]], msg: Message, node: str) -> None:
        try:
            parsed = self._parse_status(msg, node)
        except Exception as exc:
            parsed = f"unparseable status: {type(exc).__name__}"
        if isinstance(parsed, str):
            plan.dead.append((msg.topic, _keep(msg.payload), parsed, msg.received_at))
        elif parsed is not None:
            plan.statuses.append((node, parsed.online, msg.payload, msg.received_at))
            fault = self._offline_fault(parsed, msg.received_at)
            if fault is not None and (node, fault.id) not in seen:
                seen.add((node, fault.id))
                plan.events.append((fault, msg.received_at))

    def acks(self, ack_ids: dict[str, list[str]]) -> list[tuple[str, bytes]]:
        """The end-to-end acks (topic, payload) for these ids, at most 500 ids each."""
        out: list[tuple[str, bytes]] = []
        for node, ids in ack_ids.items():
            try:
                for i in range(0, len(ids), ACK_CHUNK):
                    out.append(
                        (topics.ack_topic(node), self._ack_payload(node, ids[i : i + ACK_CHUNK]))
                    )
            except ValueError as exc:
                log.warning("hub ingest: cannot ack node %r: %s", node, exc)
        return out

    def prune_dead_letters(self) -> int:
        """Dead-letter retention by age and size (bounded whatever the input)."""
        try:
            pruned = self.store.prune_dead_letters(
                self.opts.dead_letter_max_age_days, int(self.opts.dead_letter_max_mb * 2**20)
            )
        except Exception as exc:  # the health check reports a failing database
            log.warning("hub ingest: dead-letter pruning failed: %s", exc)
            return 0
        if pruned:
            self.counters["dead_letters_pruned"] += pruned
            log.info("hub ingest: pruned %d dead letters", pruned)
        return pruned

    def _ack_payload(self, node: str, ids: list[str]) -> bytes:
        """The end-to-end ack for ``node``: signed with its derived key when a secret is set."""
        if self._ack_secret is None:
            return encode_ack(ids)
        key = self._node_keys.get(node)
        if key is None:
            if len(self._node_keys) >= _MAX_TRACKED_NODES:
                self._node_keys.pop(next(iter(self._node_keys)))
            key = self._node_keys[node] = ack_key_for(self._ack_secret, node)
        return sign_ack(ids, key, node)

    def _insert_isolated(
        self,
        events: list[tuple[Event, datetime]],
        raw_of: dict[tuple[str, str], Message],
    ) -> set[tuple[str, str]]:
        """Insert ``events``; a batch the store refuses is split until the culprit is alone.

        One event that can never be stored (a value the database cannot hold) goes to the
        dead letters with the reason and is acknowledged like any stored message; the rest
        commit. A failure of the store itself (read-only, disk full, connection lost)
        fails every part alike and is raised, so the batch is kept and retried.
        """
        self._poisoned_last = 0
        if not events:
            return set()
        try:
            return set(self.store.insert_events(events))
        except Exception as exc:
            if _store_failure(exc):
                raise
            if len(events) == 1:
                ev, received_at = events[0]
                key = (ev.source.node_id, ev.id)
                msg = raw_of.get(key)
                orig = getattr(exc, "orig", None) or exc
                reason = f"unstorable: {type(orig).__name__}: {str(orig)[:300]}"
                # proves the store still writes: if this fails too, the store is at fault
                self.store.add_dead_letters(
                    [
                        (
                            msg.topic if msg else topics.event_topic(ev.source.node_id),
                            _keep(msg.payload if msg else ev.to_bytes()),
                            reason,
                            received_at,
                        )
                    ]
                )
                self.counters["dead_lettered"] += 1
                self.counters["poison_isolated"] += 1
                self._poisoned_last = 1
                log.warning(
                    "hub ingest: event %s of node %s cannot be stored; dead-lettered: %s",
                    ev.id,
                    ev.source.node_id,
                    reason,
                )
                return set()
        mid = len(events) // 2
        first = self._insert_isolated(events[:mid], raw_of)
        poisoned = self._poisoned_last
        second = self._insert_isolated(events[mid:], raw_of)
        self._poisoned_last += poisoned
        return first | second

    def _offline_fault(self, status: NodeStatus, received_at: datetime) -> Event | None:
        """A ``device_fault`` event when ``status`` is a node's will (an unexpected drop).

        The will is composed before the node connects, so its ``ts`` is older than the
        node's latest online status (same clock); a clean stop publishes a fresh offline
        status and raises nothing. The id is derived from node and will time, so every hub
        worker (each sees all statuses) makes the same event and the store keeps one.
        """
        node = status.node_id
        if status.online:
            last = self._online_ts.get(node)
            if last is None or status.ts > last:
                if last is None and len(self._online_ts) >= _MAX_TRACKED_NODES:
                    self._online_ts.pop(next(iter(self._online_ts)))
                self._online_ts[node] = status.ts
            return None
        last = self._online_ts.pop(node, None)
        if last is None or status.ts >= last:
            return None
        self.counters["offline_faults"] += 1
        digest = hashlib.sha256(f"{node}|{status.ts.isoformat()}".encode()).hexdigest()[:40]
        return Event(
            id=f"lwt-{digest}",
            type="device_fault",
            severity="normal",
            incident_key=f"{node}/offline",
            occurred_at=received_at,
            detected_at=received_at,
            source=Source(node_id=node, kind="system", device_id="status", pipeline="lwt"),
            location=Location(address=f"边缘节点 {node}"),
            confidence=1.0,
            summary=f"边缘节点 {node} 异常离线（连接中断，未正常下线）",
            attributes={"last_online": last.isoformat(), "will_ts": status.ts.isoformat()},
        )

    def _parse_event(self, msg: Message, node: str) -> tuple[Event | None, str, str | None]:
        """The event, or (None, reason, id-if-readable)."""
        size = len(msg.payload)
        if size > self.opts.max_payload_bytes:
            return (
                None,
                f"oversized: expected at most {self.opts.max_payload_bytes} bytes, found {size}",
                None,
            )
        try:
            # strict: no string or bool coercion, times only as RFC 3339 strings
            ev = Event.model_validate_json(msg.payload, strict=True)
        except ValidationError as exc:
            problem = describe_validation_error(exc)
        except (ValueError, RecursionError) as exc:
            problem = f"{type(exc).__name__}: {str(exc)[:200]}"
        else:
            if ev.source.node_id != node:
                return (
                    None,
                    f"node mismatch: topic node {node!r}, found source.node_id {ev.source.node_id!r}",
                    None,
                )
            return ev, "", ev.id
        # why it failed, in the words of the contract, and its id if readable (to ack it)
        try:
            data = json.loads(msg.payload)
        except (ValueError, UnicodeDecodeError, RecursionError) as exc:
            return None, f"malformed JSON: {type(exc).__name__}: {str(exc)[:200]}", None
        if not isinstance(data, dict):
            return None, f"malformed: expected a JSON object, found {type(data).__name__}", None
        raw = data.get("id")
        raw_id = raw if isinstance(raw, str) and _ACKABLE_ID.match(raw) else None
        source = data.get("source")
        if isinstance(source, dict) and source.get("node_id") not in (None, node):
            raw_id = None  # never ack another node's id
        schema = data.get("schema")
        if schema != SCHEMA:
            return None, f"unknown schema version: expected {SCHEMA!r}, found {schema!r}", raw_id
        return None, f"invalid: {problem}", raw_id

    def _parse_status(self, msg: Message, node: str) -> NodeStatus | str | None:
        if not msg.payload:
            return None  # a cleared retained status
        if len(msg.payload) > self.opts.max_payload_bytes:
            return f"oversized status: expected at most {self.opts.max_payload_bytes} bytes, found {len(msg.payload)}"
        try:
            status = NodeStatus.from_json(msg.payload)
        except ContractError as exc:
            return f"invalid status: {exc}"
        if status.node_id != node:
            return f"node mismatch: topic node {node!r}, found node_id {status.node_id!r}"
        return status

    def _store_evidence(self, msg: Message) -> str | None:
        node = topics.parse_node(msg.topic) or ""
        evidence_id = topics.parse_evidence_id(msg.topic)
        if not evidence_id:
            return "evidence topic without an evidence id"
        try:
            item = self.evidence.write(node, evidence_id, msg.payload, msg.received_at)
        except ValueError as exc:
            return f"oversized evidence: {exc}"
        try:
            self.evidence.receive(item, self.store)
        except EvidenceMismatch as exc:
            return str(exc)
        self.counters["evidence"] += 1
        return None


def _store_failure(exc: BaseException) -> bool:
    """True when ``exc`` says the store cannot write at all (not that one row is bad)."""
    from sqlalchemy.exc import (
        DataError,
        DBAPIError,
        DisconnectionError,
        IntegrityError,
        InterfaceError,
        OperationalError,
    )

    if isinstance(exc, DataError | IntegrityError):
        return False  # this row's values
    if isinstance(exc, OperationalError | InterfaceError | DisconnectionError | OSError):
        return True
    # the driver's own words, not the statement (which holds the payload)
    text = str(exc.orig if isinstance(exc, DBAPIError) else exc).lower()
    return any(word in text for word in ("readonly", "read-only", "disk", "no space", "connection"))


def _keep(payload: bytes) -> bytes:
    """Raw bytes for a dead letter (very large payloads are cut)."""
    return payload if len(payload) <= _DEAD_LETTER_KEEP_BYTES else payload[:_DEAD_LETTER_KEEP_BYTES]
