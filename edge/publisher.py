"""The node's MQTT publisher: outbox → broker, with the hub's end-to-end ack.

Events leave the outbox in order on ``shaobing/v1/{node}/event`` (QoS 1), each after its
evidence on ``shaobing/v1/{node}/evidence/{id}``. A bounded window limits how many events
are sent and not yet acknowledged by the hub; an event without the hub's ack within
``ack_timeout_s`` is sent again. The publisher keeps a retained status (LWT = offline),
subscribes to its own ack topic (again on every reconnect) and reconnects with
exponential backoff. It never blocks ``Outbox.put``: a broker that is down only means
the outbox grows.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import MQTTErrorCode

from edge.mqtt import MqttLoop
from edge.outbox import Outbox
from shaobing import topics
from shaobing.config import BrokerConfig
from shaobing.contract import (
    AckError,
    ContractError,
    NodeStatus,
    Verdict,
    decode_ack,
    now_utc,
    verify_ack,
)
from shaobing.mqtt import (
    Backoff,
    ConnectionLog,
    ProtocolChoice,
    Will,
    connect_args,
    describe_connect_error,
    describe_refusal,
    describe_silence,
    is_unsupported_protocol,
    new_client,
    parse_broker_url,
)

__all__ = ["Publisher"]

log = logging.getLogger(__name__)


class Publisher:
    """Sends one node's outbox to the broker and applies the hub's acks.

    Args:
        node_id: this node's id (topic segment and status node_id).
        broker: broker URL, credentials, TLS, protocol.
        outbox: the node's durable outbox.
        status: returns the node's current status (online, cameras …); outbox figures
            are filled in by the publisher.
        max_inflight: the most events sent and not yet acknowledged by the hub.
        ack_timeout_s: re-send an event when the hub's ack has not come within this.
        status_interval_s: how often the retained online status is refreshed.
        evidence_max_bytes: larger evidence is not sent over MQTT (noted in the outbox).
        loop: a shared ``MqttLoop`` (many publishers on one thread); default: its own.
        client_id: MQTT client id (default ``shaobing-edge-{node_id}``).
        backoff_min_s: first reconnect delay.
        backoff_max_s: reconnect delay ceiling (at most 30 s).
        session_expiry_s: broker session kept this long while the node is away.
        base_dir: folder that relative TLS paths resolve against.
        version: software version reported in the status.
        ack_key: this node's ack key; when set, an ack counts only with the hub's
            signature over its ids (a forged ack deletes nothing and is counted).
        on_verdict: called with each ``Verdict`` the hub sends on the node's verdict topic.
        source: the config file the broker settings came from (named in error messages).
    """

    def __init__(
        self,
        node_id: str,
        broker: BrokerConfig,
        outbox: Outbox,
        *,
        status: Callable[[], NodeStatus] | None = None,
        max_inflight: int = 100,
        ack_timeout_s: float = 10.0,
        status_interval_s: float = 15.0,
        evidence_max_bytes: int = 2 * 2**20,
        loop: MqttLoop | None = None,
        client_id: str | None = None,
        backoff_min_s: float = 0.5,
        backoff_max_s: float = 30.0,
        session_expiry_s: int = 7 * 24 * 3600,
        base_dir: str | None = None,
        version: str = "",
        ack_key: str | None = None,
        on_verdict: Callable[[Verdict], None] | None = None,
        source: str = "",
    ) -> None:
        if max_inflight < 1:
            raise ValueError(f"max_inflight: expected at least 1, found {max_inflight}")
        self.node_id = node_id
        self.broker = broker
        self.outbox = outbox
        self._status_fn = status
        self.max_inflight = max_inflight
        self.ack_timeout_s = ack_timeout_s
        self.status_interval_s = status_interval_s
        self.evidence_max_bytes = evidence_max_bytes
        parse_broker_url(broker.url)  # an unusable URL is refused now
        self._source = source
        self._conn_log = ConnectionLog(log, node_id)
        self._client_id = client_id or broker.client_id or f"shaobing-edge-{node_id}"
        self._backoff = Backoff(backoff_min_s, min(30.0, backoff_max_s))
        self._session_expiry = session_expiry_s
        self._base_dir = base_dir
        self._version = version
        self._ack_key = ack_key
        self._on_verdict = on_verdict
        self._verdict_topic = topics.verdict_topic(node_id)
        self._event_topic = topics.event_topic(node_id)
        self._status_topic = topics.status_topic(node_id)
        self._ack_topic = topics.ack_topic(node_id)
        self._protocols = ProtocolChoice(broker)
        self._own_loop = loop is None
        self._loop = loop or MqttLoop(name=f"mqtt-{node_id}")
        # state below is touched on the loop thread only
        self._client: paho.Client | None = None
        self._connected = False
        self._connack = False
        self._connect_started = 0.0
        self._next_attempt = 0.0
        self._mids: dict[int, str] = {}
        self._next_status = 0.0
        self._stopping = False
        self._started = False
        self._offline_mid: int | None = None
        self._offline_acked = False
        self.stats: dict[str, int] = {
            "published": 0,
            "resent": 0,
            "acked": 0,
            "evidence_sent": 0,
            "evidence_skipped": 0,
            "connects": 0,
            "connect_failures": 0,
            "publish_refused": 0,
            "acks_rejected": 0,
        }

    # ----------------------------------------------------------------- public

    def start(self) -> None:
        """Start sending in the background (returns at once; connects asynchronously)."""
        if self._started:
            return
        self._started = True
        self._stopping = False
        self.outbox.add_listener(self.wake)
        self._loop.start()
        self._loop.add(self)

    def stop(self, timeout: float = 5.0) -> None:
        """Publish the retained offline status, disconnect cleanly and stop."""
        if not self._started:
            return
        self._started = False
        self.outbox.remove_listener(self.wake)
        deadline = time.monotonic() + timeout
        self._loop.call_wait(self._begin_stop, timeout)
        while (
            time.monotonic() < deadline
            and self._offline_mid is not None
            and not self._offline_acked
        ):
            time.sleep(0.01)
        self._loop.call_wait(self._finish_stop, max(0.1, deadline - time.monotonic()))
        while time.monotonic() < deadline and self._client is not None:
            time.sleep(0.01)
        self._loop.call_wait(self._drop_client, 1.0)
        self._loop.remove(self)
        self._loop.stop(max(0.1, deadline - time.monotonic()))

    @property
    def connected(self) -> bool:
        """True while connected to the broker (CONNACK received)."""
        return self._connected

    def wake(self) -> None:
        """New data in the outbox: send soon."""
        self._loop.wake()

    # ----------------------------------------------------------------- loop thread

    def tick(self, now: float) -> float:
        """Connect, send, re-send and refresh status as due; returns the next deadline."""
        if self._stopping:
            return now + 0.25
        if self._client is None:
            if now >= self._next_attempt:
                self._connect(now)
            return self._next_attempt if self._client is None else now + 0.25
        if not self._connected:
            limit = self._protocols.connack_timeout_s
            if now - self._connect_started > limit:
                self._conn_log.problem(describe_silence(self.broker, limit, self._source))
                self._fail(now, switch_protocol=True)
                return self._next_attempt
            return now + 0.25
        self._pump(now)
        if now >= self._next_status:
            self._publish_status(online=True)
            self._next_status = now + self.status_interval_s
        due = self.outbox.next_due(self.ack_timeout_s)
        nxt = min(self._next_status, due, now + 1.0)
        if self.outbox.has_unsent() and self.outbox.outstanding() < self.max_inflight:
            nxt = now
        return nxt

    def _connect(self, now: float) -> None:
        protocol = self._protocols.current
        try:
            client = new_client(
                self.broker,
                self._client_id,
                protocol,
                persistent=True,
                base_dir=self._base_dir,
                will=Will(self._status_topic, self._status_payload(online=False)),
                source=self._source,
            )
        except (OSError, ValueError) as exc:
            self._conn_log.problem(f"cannot set up the MQTT client: {exc}")
            self._schedule_retry(now)
            return
        client.max_inflight_messages_set(max(20, self.max_inflight))
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        client.on_message = self._on_message
        client.on_subscribe = None
        self._loop.attach(client)
        self._client = client
        self._connack = False
        self._connect_started = now
        try:
            client.connect(
                **connect_args(
                    self.broker, protocol, persistent=True, session_expiry_s=self._session_expiry
                )
            )
        except (OSError, ValueError) as exc:
            self._fail(now, switch_protocol=False)
            self._conn_log.problem(describe_connect_error(self.broker, exc, self._source))

    def _fail(self, now: float, *, switch_protocol: bool) -> None:
        self._drop_client()
        self.stats["connect_failures"] += 1
        if switch_protocol and self._protocols.fall_back():
            self._next_attempt = now
            return
        self._schedule_retry(now)

    def _fail_if_current(self, client: paho.Client, now: float, *, switch_protocol: bool) -> None:
        if client is self._client:
            self._fail(now, switch_protocol=switch_protocol)

    def _schedule_retry(self, now: float) -> None:
        self._next_attempt = now + self._backoff.delay()

    def _drop_client(self) -> None:
        client, self._client = self._client, None
        self._connected = False
        if client is None:
            return
        try:
            client.on_disconnect = None
            if client.socket() is not None:
                # close without a DISCONNECT packet: a lost link, not a clean goodbye
                client._sock_close()
        except Exception:
            pass
        self._loop.detach(client)
        self._mids.clear()

    def _on_connect(
        self, client: paho.Client, userdata: Any, flags: Any, reason_code: Any, properties: Any
    ) -> None:
        if client is not self._client:
            return
        now = time.monotonic()
        if reason_code.is_failure:
            # tear down after this callback returns: paho holds its callback lock here
            if is_unsupported_protocol(reason_code) and self._protocols.can_fall_back:
                log.info("%s: broker refused MQTT 5; trying 3.1.1", self.node_id)
                self._loop.call(lambda: self._fail_if_current(client, now, switch_protocol=True))
            else:
                self._conn_log.problem(describe_refusal(self.broker, reason_code, self._source))
                self._loop.call(lambda: self._fail_if_current(client, now, switch_protocol=False))
            return
        self._connack = True
        self._connected = True
        self._conn_log.connected(f"connected to {self.broker.url}")
        self._backoff.reset()
        self.stats["connects"] += 1
        client.subscribe(self._ack_topic, qos=1)
        if self._on_verdict is not None:
            client.subscribe(self._verdict_topic, qos=1)
        self._publish_status(online=True)
        self._next_status = now + self.status_interval_s
        self._pump(now)

    def _on_disconnect(
        self, client: paho.Client, userdata: Any, flags: Any, reason_code: Any, properties: Any
    ) -> None:
        if client is not self._client:
            return
        now = time.monotonic()
        had_connack = self._connack
        self._connected = False
        released = self.outbox.release_unconfirmed()
        if self._stopping:
            self._loop.detach(client)
            self._client = None
            return
        log.info(
            "%s: disconnected (%s); %d unconfirmed to re-send", self.node_id, reason_code, released
        )
        self._loop.call(lambda: self._after_disconnect(client, now, had_connack))

    def _after_disconnect(self, client: paho.Client, now: float, had_connack: bool) -> None:
        if client is not self._client:
            return
        self._drop_client()
        if not had_connack and self._protocols.fall_back():
            self._next_attempt = now  # closed before CONNACK: maybe MQTT 5 is not spoken
            return
        if had_connack:
            self._backoff.reset()
        self._schedule_retry(now)

    def _on_publish(
        self, client: paho.Client, userdata: Any, mid: int, reason_code: Any, properties: Any
    ) -> None:
        if mid == self._offline_mid:
            self._offline_acked = True
        event_id = self._mids.pop(mid, None)
        if event_id is None:
            return
        if getattr(reason_code, "is_failure", False):
            self.stats["publish_refused"] += 1
            log.warning("%s: broker refused event %s: %s", self.node_id, event_id, reason_code)
            return  # stays due for a re-send after the ack timeout
        self.outbox.mark_puback(event_id)

    def _on_message(self, client: paho.Client, userdata: Any, message: paho.MQTTMessage) -> None:
        if message.topic == self._verdict_topic and self._on_verdict is not None:
            try:
                verdict = Verdict.from_json(bytes(message.payload))
            except ContractError as exc:
                log.warning("%s: ignoring bad verdict: %s", self.node_id, exc)
                return
            if verdict.node_id == self.node_id:
                self._on_verdict(verdict)
            return
        if message.topic != self._ack_topic:
            return
        payload = bytes(message.payload)
        try:
            if self._ack_key is None:
                ids = decode_ack(payload)
            else:
                ids = verify_ack(payload, self._ack_key, self.node_id)
        except AckError as exc:
            self.stats["acks_rejected"] += 1
            log.warning("%s: ignoring an ack the hub did not sign: %s", self.node_id, exc)
            return
        except ContractError as exc:
            self.stats["acks_rejected"] += 1
            log.warning("%s: ignoring bad ack: %s", self.node_id, exc)
            return
        self.stats["acked"] += self.outbox.ack(ids)
        self._loop.wake()

    def _pump(self, now: float) -> None:
        client = self._client
        if client is None or not self._connected:
            return
        records = self.outbox.take(self.max_inflight, now, self.ack_timeout_s)
        for rec in records:
            for evidence_id, data in rec.evidence:
                if len(data) > self.evidence_max_bytes:
                    if rec.attempt == 1:
                        self.stats["evidence_skipped"] += 1
                        self.outbox.note_evidence(
                            rec.id,
                            evidence_id,
                            len(data),
                            f"larger than the MQTT limit ({self.evidence_max_bytes} bytes)",
                        )
                    continue
                try:
                    client.publish(topics.evidence_topic(self.node_id, evidence_id), data, qos=1)
                    self.stats["evidence_sent"] += 1
                except ValueError as exc:
                    log.error("%s: evidence %s not sent: %s", self.node_id, evidence_id, exc)
            info = client.publish(self._event_topic, rec.payload, qos=1)
            if info.rc not in (MQTTErrorCode.MQTT_ERR_SUCCESS, MQTTErrorCode.MQTT_ERR_NO_CONN):
                log.warning("%s: publish of %s returned %s", self.node_id, rec.id, info.rc)
            self._mids[info.mid] = rec.id
            self.stats["published"] += 1
            if rec.attempt > 1:
                self.stats["resent"] += 1

    def _status_payload(self, *, online: bool) -> bytes:
        base: NodeStatus | None = None
        if self._status_fn is not None and online:
            try:
                base = self._status_fn()
            except Exception:
                log.exception("%s: status callable failed", self.node_id)
        if base is None:
            base = NodeStatus(
                node_id=self.node_id, online=online, version=self._version, ts=now_utc()
            )
        status = base.model_copy(
            update={
                "online": online,
                "outbox_depth": self.outbox.depth(),
                "outbox_dropped": self.outbox.dropped,
                "ts": now_utc(),
            }
        )
        return status.to_bytes()

    def _publish_status(self, *, online: bool) -> int | None:
        client = self._client
        if client is None:
            return None
        info = client.publish(
            self._status_topic, self._status_payload(online=online), qos=1, retain=True
        )
        return info.mid

    def _begin_stop(self) -> None:
        self._stopping = True
        if self._client is not None and self._connected:
            self._offline_acked = False
            self._offline_mid = self._publish_status(online=False)
        else:
            self._offline_mid = None

    def _finish_stop(self) -> None:
        client = self._client
        if client is None:
            return
        if self._connected:
            client.disconnect()  # clean DISCONNECT: the broker drops the LWT
        else:
            self._drop_client()
