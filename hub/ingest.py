"""MQTT ingest: edge events → validated, committed in small batches, then acknowledged.

The hub keeps a persistent broker session (stable client id, clean start off, long
session expiry) and subscribes to ``shaobing/v1/+/event`` (or ``$share/{group}/…`` when
several hub workers share the load), to evidence and to retained node status. paho runs
with ``manual_ack``: the network thread only queues what arrives; a worker thread
validates, commits a batch in one transaction, and only then sends the MQTT PUBACKs and
the end-to-end ack (the committed ids, duplicates included) on each sender's
``shaobing/v1/{node}/ack``. Anything that does not satisfy the contract becomes a
dead-letter row with the reason and the raw bytes.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import queue
import re
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlsplit

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from pydantic import ValidationError

from hub.evidence import EvidenceMismatch, EvidenceStore
from hub.objects import object_store
from shaobing import topics
from shaobing.config import BrokerConfig, HubConfig
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

__all__ = ["Ingest", "IngestStore"]

log = logging.getLogger(__name__)

_SESSION_EXPIRY_S = 7 * 24 * 3600
# In a shared group a dead worker's session would keep taking its turn of the messages
# (queued for nobody until it returns); a short expiry hands its share to the others and
# the edge outboxes re-send what it had not acknowledged.
_SHARED_SESSION_EXPIRY_S = 5
_DEAD_LETTER_KEEP_BYTES = 64 * 1024
_MAX_TRACKED_NODES = 100_000  # online-status times kept for will detection
_V5_CONNACK_TIMEOUT_S = 3.0
_PRUNE_EVERY_S = 600.0
_ACKABLE_ID = re.compile(r"^[A-Za-z0-9_.:\-]{1,64}$")


class IngestStore(Protocol):
    """What ingest needs from the hub's store."""

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
        ...


@dataclass
class _Msg:
    topic: str
    payload: bytes
    mid: int
    qos: int
    generation: int
    received_at: datetime


# --------------------------------------------------------------------------- paho helpers
# (the hub does not import the edge package; these mirror edge.mqtt's few helpers)


def _address(url: str) -> tuple[str, int, bool]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    defaults = {"mqtt": 1883, "tcp": 1883, "mqtts": 8883, "ssl": 8883}
    if scheme not in defaults:
        raise ValueError(
            f"broker url: expected mqtt://host:port or mqtts://host:port, found {url!r}"
        )
    return parts.hostname or "127.0.0.1", parts.port or defaults[scheme], scheme in ("mqtts", "ssl")


def _password(broker: BrokerConfig) -> str | None:
    if broker.password_env and os.environ.get(broker.password_env) is not None:
        return os.environ[broker.password_env]
    return broker.password


def _protocols(broker: BrokerConfig) -> list[MQTTProtocolVersion]:
    if broker.protocol == "5":
        return [MQTTProtocolVersion.MQTTv5]
    if broker.protocol == "3.1.1":
        return [MQTTProtocolVersion.MQTTv311]
    return [MQTTProtocolVersion.MQTTv5, MQTTProtocolVersion.MQTTv311]


def _unsupported_protocol(reason_code: Any) -> bool:
    value = getattr(reason_code, "value", reason_code)
    return value in (1, 132) or "protocol version" in str(reason_code).lower()


class Ingest:
    """Subscribes to edge events, commits them in batches and acknowledges after commit.

    Args:
        config: the hub config (broker, ingest options, evidence folder).
        store: the hub's store.
        on_committed: called (in the worker thread) after each commit with the events
            newly inserted by it.
    """

    def __init__(
        self,
        config: HubConfig,
        store: Store | IngestStore,
        on_committed: Callable[[list[Event]], None] | None = None,
    ) -> None:
        self.config = config
        self.store = store
        self.on_committed = on_committed
        self._opts = config.ingest
        self._client_id = (
            config.ingest.client_id or config.broker.client_id or f"shaobing-hub-{config.hub_id}"
        )
        self._host, self._port, self._tls = _address(config.broker.url)
        self._protocols = _protocols(config.broker)
        self._proto_idx = 0
        self._event_sub = topics.event_subscription(self._opts.shared_group)
        self._evidence_sub = topics.evidence_subscription(self._opts.shared_group)
        self._status_sub = topics.status_subscription()
        self.evidence = EvidenceStore(
            config.resolve(config.evidence_dir),
            max_bytes=config.evidence_max_bytes,
            objects=object_store(config.evidence_url, config.resolve(config.evidence_dir)),
        )
        self._queue: queue.Queue[_Msg] = queue.Queue(maxsize=max(1000, 4 * self._opts.batch_size))
        self._client: paho.Client | None = None
        self._generation = 0
        self._sub_mid: int | None = None
        self._connack_seen = False
        self._ready = threading.Event()
        self._stop = threading.Event()
        self._rebuild = threading.Event()
        self._worker: threading.Thread | None = None
        self._supervisor: threading.Thread | None = None
        self._client_lock = threading.Lock()
        self.counters: dict[str, int] = {
            "received": 0,
            "committed": 0,
            "duplicates": 0,
            "dead_lettered": 0,
            "status": 0,
            "evidence": 0,
            "acks_sent": 0,
            "batches": 0,
            "commit_errors": 0,
            "connects": 0,
        }
        self.counters["offline_faults"] = 0
        self.counters["poison_isolated"] = 0
        self.counters["dead_letters_pruned"] = 0
        self.last_commit_ms = 0.0
        self._poisoned_last = 0
        # health: the worker loop's last turn, the last good commit, a failing streak
        self.heartbeat = time.monotonic()
        self.last_commit_at = time.monotonic()
        self.commit_failing_since: float | None = None
        self.last_commit_error = ""
        secret = config.ingest.ack_secret_value()
        self._ack_secret: str | None = secret
        self._node_keys: dict[str, str] = {}
        # latest online status time per node (edge clock), to tell a will from a clean stop
        self._online_ts: dict[str, datetime] = {}

    # ----------------------------------------------------------------- lifecycle

    def start(self) -> None:
        """Connect (in the background) and start the commit worker."""
        if self._worker is not None:
            return
        self._stop.clear()
        self._worker = threading.Thread(target=self._work, name="hub-ingest-worker", daemon=True)
        self._worker.start()
        self._supervisor = threading.Thread(
            target=self._supervise, name="hub-ingest-mqtt", daemon=True
        )
        self._supervisor.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Commit what is queued, disconnect and stop the threads."""
        deadline = time.monotonic() + timeout
        self._stop.set()
        self._rebuild.set()
        if self._worker is not None:
            self._worker.join(max(0.1, deadline - time.monotonic()))
        if self._supervisor is not None:
            self._supervisor.join(max(0.1, deadline - time.monotonic()))
        self._worker = None
        self._supervisor = None
        self._ready.clear()

    @property
    def ready(self) -> bool:
        """True once the event subscription is acknowledged (SUBACK) on the live connection."""
        return self._ready.is_set()

    def wait_ready(self, timeout: float) -> bool:
        """Block until ``ready`` (or the timeout); returns ``ready``."""
        return self._ready.wait(timeout)

    def metrics(self) -> dict[str, float]:
        """Counters for /metrics and /api/v1/stats."""
        return {
            **self.counters,
            "queue": self._queue.qsize(),
            "ready": int(self.ready),
            "last_commit_ms": self.last_commit_ms,
        }

    # ----------------------------------------------------------------- MQTT side

    def _new_client(self) -> paho.Client:
        protocol = self._protocols[self._proto_idx]
        broker = self.config.broker
        kwargs: dict[str, Any] = {
            "callback_api_version": CallbackAPIVersion.VERSION2,
            "client_id": self._client_id,
            "protocol": protocol,
            "manual_ack": True,
        }
        if protocol != MQTTProtocolVersion.MQTTv5:
            kwargs["clean_session"] = False
        client = paho.Client(**kwargs)
        if broker.username:
            client.username_pw_set(broker.username, _password(broker))
        if self._tls or broker.tls is not None:
            import ssl

            tls = broker.tls
            ca = str(self.config.resolve(tls.ca_file)) if tls and tls.ca_file else None
            ctx = ssl.create_default_context(cafile=ca)
            if tls and tls.cert_file:
                ctx.load_cert_chain(
                    str(self.config.resolve(tls.cert_file)),
                    str(self.config.resolve(tls.key_file)) if tls.key_file else None,
                )
            if tls and tls.insecure:
                ctx.check_hostname = False
            client.tls_set_context(ctx)
        client.max_inflight_messages_set(max(20, 2 * self._opts.batch_size))
        client.reconnect_delay_set(1, 10)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_subscribe = self._on_subscribe
        client.on_message = self._on_message
        return client

    def _supervise(self) -> None:
        while not self._stop.is_set():
            self._rebuild.clear()
            client = self._new_client()
            with self._client_lock:
                self._client = client
            protocol = self._protocols[self._proto_idx]
            props = None
            if protocol == MQTTProtocolVersion.MQTTv5:
                from paho.mqtt.packettypes import PacketTypes
                from paho.mqtt.properties import Properties

                props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
                props.SessionExpiryInterval = (
                    _SHARED_SESSION_EXPIRY_S if self._opts.shared_group else _SESSION_EXPIRY_S
                )
                props.ReceiveMaximum = min(65535, max(100, 4 * self._opts.batch_size))
                client.connect_async(
                    self._host,
                    self._port,
                    self.config.broker.keepalive_s,
                    clean_start=False,
                    properties=props,
                )
            else:
                client.connect_async(self._host, self._port, self.config.broker.keepalive_s)
            self._connack_seen = False
            client.loop_start()
            if (
                not self._rebuild.wait(_V5_CONNACK_TIMEOUT_S)
                and not self._connack_seen
                and self._proto_idx + 1 < len(self._protocols)
            ):
                # some 3.1.1-only brokers never answer an MQTT 5 CONNECT with properties
                log.info(
                    "hub ingest: no CONNACK to MQTT 5 within %.0f s; trying 3.1.1",
                    _V5_CONNACK_TIMEOUT_S,
                )
                self._proto_idx += 1
                self._rebuild.set()
            self._rebuild.wait()
            try:
                if self._stop.is_set():
                    client.disconnect()
                    time.sleep(0.05)
            finally:
                client.loop_stop()
            with self._client_lock:
                self._client = None
            self._ready.clear()

    def _on_connect(
        self, client: paho.Client, userdata: Any, flags: Any, reason_code: Any, properties: Any
    ) -> None:
        if reason_code.is_failure:
            if _unsupported_protocol(reason_code) and self._proto_idx + 1 < len(self._protocols):
                log.info("hub ingest: broker refused MQTT 5; using 3.1.1")
                self._proto_idx += 1
                self._rebuild.set()
            else:
                log.warning("hub ingest: broker refused the connection: %s", reason_code)
            return
        self._connack_seen = True
        self._generation += 1
        self.counters["connects"] += 1
        self._ready.clear()
        qos1 = 1
        result, mid = client.subscribe(
            [(self._event_sub, qos1), (self._evidence_sub, qos1), (self._status_sub, qos1)]
        )
        self._sub_mid = mid
        log.info(
            "hub ingest: connected to %s (session present: %s)",
            self.config.broker.url,
            getattr(flags, "session_present", None),
        )

    def _on_subscribe(
        self, client: paho.Client, userdata: Any, mid: int, reason_codes: Any, properties: Any
    ) -> None:
        if mid != self._sub_mid:
            return
        codes = list(reason_codes or [])
        failures = [
            rc
            for rc in codes
            if getattr(rc, "is_failure", False) or getattr(rc, "value", 0) >= 0x80
        ]
        if (
            codes
            and getattr(codes[0], "value", 0) < 0x80
            and not getattr(codes[0], "is_failure", False)
        ):
            self._ready.set()
        if failures:
            log.warning("hub ingest: subscription refused for some topics: %s", failures)

    def _on_disconnect(
        self, client: paho.Client, userdata: Any, flags: Any, reason_code: Any, properties: Any
    ) -> None:
        self._ready.clear()
        self._generation += 1  # pending acks of the old connection are void; the broker redelivers
        if not self._stop.is_set():
            log.warning("hub ingest: disconnected (%s); reconnecting", reason_code)

    def _on_message(self, client: paho.Client, userdata: Any, message: paho.MQTTMessage) -> None:
        msg = _Msg(
            message.topic,
            bytes(message.payload),
            message.mid,
            message.qos,
            self._generation,
            datetime.now(UTC),
        )
        while not self._stop.is_set():
            try:
                self._queue.put(
                    msg, timeout=0.5
                )  # a full queue slows the broker down (backpressure)
                return
            except queue.Full:
                continue

    # ----------------------------------------------------------------- worker

    def _work(self) -> None:
        max_wait = self._opts.batch_ms / 1000.0
        batch: list[_Msg] = []
        next_prune = time.monotonic() + 5.0
        while True:
            self.heartbeat = time.monotonic()
            if self.heartbeat >= next_prune and not batch:
                next_prune = self.heartbeat + _PRUNE_EVERY_S
                self._prune_dead_letters()
            if not batch:
                try:
                    batch.append(self._queue.get(timeout=0.2))
                except queue.Empty:
                    if self._stop.is_set():
                        return
                    continue
                deadline = time.monotonic() + max_wait
                while len(batch) < self._opts.batch_size:
                    remaining = deadline - time.monotonic()
                    try:
                        batch.append(
                            self._queue.get(timeout=remaining)
                            if remaining > 0
                            else self._queue.get_nowait()
                        )
                    except queue.Empty:
                        break
            try:
                self._process(batch)
                batch = []
                self.commit_failing_since = None
                self.last_commit_error = ""
            except Exception as exc:
                # the store itself failed (a poison message was isolated in _commit): keep
                # the batch, report unhealthy, retry
                self.counters["commit_errors"] += 1
                if self.commit_failing_since is None:
                    self.commit_failing_since = time.monotonic()
                orig = getattr(exc, "orig", None) or exc
                self.last_commit_error = f"{type(orig).__name__}: {str(orig)[:300]}"
                log.exception("hub ingest: commit of %d messages failed; retrying", len(batch))
                if self._stop.wait(1.0):
                    return

    def _process(self, batch: list[_Msg]) -> None:
        t0 = time.perf_counter()
        events: list[tuple[Event, datetime]] = []
        seen: set[tuple[str, str]] = set()
        ack_ids: dict[str, list[str]] = {}
        dead: list[tuple[str, bytes, str, datetime]] = []
        statuses: list[tuple[str, bool, bytes, datetime]] = []
        evidence_msgs: list[_Msg] = []
        raw_of: dict[tuple[str, str], _Msg] = {}
        for msg in batch:
            node = topics.parse_node(msg.topic)
            kind = msg.topic.split("/")[3] if node else ""
            if kind == "event":
                self.counters["received"] += 1
                try:
                    ev, reason, raw_id = self._parse_event(msg, node or "")
                except Exception as exc:  # bad input never stops ingest
                    ev, reason, raw_id = (
                        None,
                        f"unparseable: {type(exc).__name__}: {str(exc)[:200]}",
                        None,
                    )
                if ev is None:
                    dead.append((msg.topic, _keep(msg.payload), reason, msg.received_at))
                    if raw_id and node:  # a poison message is stored (as a dead letter): ack it
                        ack_ids.setdefault(node, []).append(raw_id)
                    continue
                ack_ids.setdefault(ev.source.node_id, []).append(ev.id)
                key = (ev.source.node_id, ev.id)
                if key in seen:
                    self.counters["duplicates"] += 1
                    continue
                seen.add(key)
                events.append((ev, msg.received_at))
                raw_of[key] = msg
            elif kind == "status" and node:
                try:
                    parsed = self._parse_status(msg, node)
                except Exception as exc:
                    parsed = f"unparseable status: {type(exc).__name__}"
                if isinstance(parsed, str):
                    dead.append((msg.topic, _keep(msg.payload), parsed, msg.received_at))
                elif parsed is not None:
                    statuses.append((node, parsed.online, msg.payload, msg.received_at))
                    fault = self._offline_fault(parsed, msg.received_at)
                    if fault is not None and (node, fault.id) not in seen:
                        seen.add((node, fault.id))
                        events.append((fault, msg.received_at))
            elif kind == "evidence" and node:
                evidence_msgs.append(msg)
            else:
                dead.append((msg.topic, _keep(msg.payload), "unexpected topic", msg.received_at))

        # evidence first: it normally precedes its event
        for msg in evidence_msgs:
            try:
                problem = self._store_evidence(msg)
            except OSError:
                raise  # disk full or unwritable: retry the batch, health reports it
            except Exception as exc:  # anything else is this message's fault
                problem = f"unstorable evidence: {type(exc).__name__}: {str(exc)[:200]}"
            if problem:
                dead.append((msg.topic, _keep(msg.payload), problem, msg.received_at))

        inserted = self._insert_isolated(events, raw_of)
        new_events = [ev for ev, _ in events if (ev.source.node_id, ev.id) in inserted]
        self.counters["duplicates"] += len(events) - len(new_events) - self._poisoned_last
        self.counters["committed"] += len(new_events)
        for node, reason in self.evidence.events_committed(
            [ev for ev in new_events if ev.evidence], self.store
        ):
            dead.append((topics.event_topic(node), b"", reason, datetime.now(UTC)))
        if dead:
            self.store.add_dead_letters(dead)
            self.counters["dead_lettered"] += len(dead)
        latest: dict[str, tuple[bool, bytes, datetime]] = {}
        for node, online, payload, at in statuses:
            latest[node] = (online, payload, at)
        for node, (online, payload, at) in latest.items():
            self.store.upsert_node_status(node, online, payload, at)
        self.counters["status"] += len(statuses)
        self.counters["batches"] += 1
        self.last_commit_ms = (time.perf_counter() - t0) * 1000.0
        self.last_commit_at = time.monotonic()

        # committed: now acknowledge, MQTT first, then end to end
        with self._client_lock:
            client = self._client
        if client is not None:
            generation = self._generation
            for msg in batch:
                if msg.qos > 0 and msg.generation == generation:
                    client.ack(msg.mid, msg.qos)
            for node, ids in ack_ids.items():
                try:
                    for i in range(0, len(ids), 500):
                        client.publish(
                            topics.ack_topic(node), self._ack_payload(node, ids[i : i + 500]), qos=1
                        )
                        self.counters["acks_sent"] += 1
                except ValueError as exc:
                    log.warning("hub ingest: cannot ack node %r: %s", node, exc)
        if new_events and self.on_committed is not None:
            try:
                self.on_committed(new_events)
            except Exception:
                log.exception("hub ingest: on_committed failed")

    def _prune_dead_letters(self) -> None:
        """Dead-letter retention by age and size (bounded whatever the input)."""
        try:
            pruned = self.store.prune_dead_letters(
                self._opts.dead_letter_max_age_days, int(self._opts.dead_letter_max_mb * 2**20)
            )
        except Exception as exc:  # the health check reports a failing database
            log.warning("hub ingest: dead-letter pruning failed: %s", exc)
            return
        if pruned:
            self.counters["dead_letters_pruned"] += pruned
            log.info("hub ingest: pruned %d dead letters", pruned)

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
        raw_of: dict[tuple[str, str], _Msg],
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

    def _parse_event(self, msg: _Msg, node: str) -> tuple[Event | None, str, str | None]:
        """The event, or (None, reason, id-if-readable)."""
        size = len(msg.payload)
        if size > self._opts.max_payload_bytes:
            return (
                None,
                f"oversized: expected at most {self._opts.max_payload_bytes} bytes, found {size}",
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

    def _parse_status(self, msg: _Msg, node: str) -> NodeStatus | str | None:
        if not msg.payload:
            return None  # a cleared retained status
        if len(msg.payload) > self._opts.max_payload_bytes:
            return f"oversized status: expected at most {self._opts.max_payload_bytes} bytes, found {len(msg.payload)}"
        try:
            status = NodeStatus.from_json(msg.payload)
        except ContractError as exc:
            return f"invalid status: {exc}"
        if status.node_id != node:
            return f"node mismatch: topic node {node!r}, found node_id {status.node_id!r}"
        return status

    def _store_evidence(self, msg: _Msg) -> str | None:
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


def main(argv: list[str] | None = None) -> int:
    """``python -m hub.ingest``: run ingest alone (no API), e.g. as an extra hub worker or for benchmarks.

    Prints ``READY`` once the event subscription is acknowledged; stops on SIGTERM/SIGINT.
    """
    import argparse
    import signal
    import sys

    from shaobing.config import IngestConfig, load_hub_config

    p = argparse.ArgumentParser(prog="python -m hub.ingest", description="hub MQTT ingest worker")
    p.add_argument(
        "-c", "--config", default=None, help="hub config YAML (default: built-in defaults)"
    )
    p.add_argument("--broker", default=None, help="broker URL (overrides the config)")
    p.add_argument("--db", default=None, help="database URL (overrides the config)")
    p.add_argument("--dir", default=None, help="base folder for relative paths (evidence)")
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--batch-ms", type=float, default=None)
    p.add_argument("--client-id", default=None, help="MQTT client id (stable → persistent session)")
    p.add_argument(
        "--naive", action="store_true", help="run the naive baseline instead (benchmarks only)"
    )
    args = p.parse_args(argv)
    if args.naive:
        return _naive_main(args.broker or HubConfig().broker.url, args.db or HubConfig().db_url())
    logging.basicConfig(
        level=logging.WARNING,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    config = load_hub_config(args.config) if args.config else HubConfig()
    updates: dict[str, Any] = {}
    if args.broker:
        updates["broker"] = config.broker.model_copy(update={"url": args.broker})
    if args.db:
        updates["db"] = args.db
    if args.dir:
        updates["base_dir"] = args.dir
    ingest_updates = {
        k: v
        for k, v in (
            ("batch_size", args.batch_size),
            ("batch_ms", args.batch_ms),
            ("client_id", args.client_id),
        )
        if v is not None
    }
    if ingest_updates:
        updates["ingest"] = IngestConfig(**{**config.ingest.model_dump(), **ingest_updates})
    config = config.model_copy(update=updates)
    from hub.store import Store

    store = Store(config.db_url(), clock_skew_s=config.ingest.clock_skew_s)
    store.migrate()
    ingest = Ingest(config, store)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    ingest.start()
    if ingest.wait_ready(30):
        sys.stdout.write("READY\n")
        sys.stdout.flush()
    done.wait()
    ingest.stop()
    store.close()
    return 0


def _naive_main(broker_url: str, db_url: str) -> int:
    """The baseline ``shaobing bench hub`` compares against: QoS 0, one transaction per
    message inside the MQTT callback, no acknowledgement. Never used in production.

    Prints ``READY`` when subscribed; on SIGTERM prints ``{"latencies": [...]}`` (seconds
    from the event's ``detected_at`` to its commit).
    """
    import signal
    import sys

    from hub.store import Store
    from shaobing.contract import now_utc

    host, port, _ = _address(broker_url)
    store = Store(db_url)
    store.migrate()
    latencies: list[float] = []
    subscribed = threading.Event()

    def on_message(client: paho.Client, userdata: Any, msg: paho.MQTTMessage) -> None:
        try:
            ev = Event.from_json(bytes(msg.payload))
        except ContractError:
            return
        store.insert_events([(ev, now_utc())])
        latencies.append((now_utc() - ev.detected_at).total_seconds())

    client = paho.Client(CallbackAPIVersion.VERSION2, client_id="naive-hub")
    client.on_message = on_message
    client.on_subscribe = lambda *a: subscribed.set()
    client.connect(host, port)
    client.subscribe(topics.event_subscription(), qos=0)
    client.loop_start()
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    if subscribed.wait(10):
        sys.stdout.write("READY\n")
        sys.stdout.flush()
    done.wait()
    client.loop_stop()
    sys.stdout.write(json.dumps({"latencies": latencies}) + "\n")
    sys.stdout.flush()
    store.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
