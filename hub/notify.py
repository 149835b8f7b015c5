"""Notifications: work-order notices to people, never blocking ingest.

Notices are rows of the ``notifications`` table, written in the same transaction as the
change that causes them (an outbox). A ``NotificationWorker`` thread claims due rows (safe
with several hub workers: a claim is a conditional update) and delivers them through a
``Notifier``: MQTT ``shaobing/v1/hub/dispatch/{assignee}`` with a ``DispatchNotice``, or a
webhook signed with HMAC-SHA256. Failures are retried with exponential backoff.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import threading
import time
import urllib.request
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy import Connection, and_, or_, select

from hub import schema
from hub.store import dumps
from shaobing import topics
from shaobing.config import HubConfig, WebhookConfig
from shaobing.contract import DispatchNotice, Verdict
from shaobing.mqtt import Session

if TYPE_CHECKING:
    from hub.store import Store

__all__ = ["Notifier", "MqttNotifier", "WebhookNotifier", "NotificationWorker", "enqueue", "sign"]

log = logging.getLogger(__name__)


class Notifier(Protocol):
    """Delivers one notice; raises on failure (the worker retries)."""

    def send(self, target: str, payload: bytes) -> None:
        """Deliver ``payload`` to ``target``."""
        ...


def sign(secret: bytes, timestamp: str, body: bytes) -> str:
    """``sha256=<hex>`` of HMAC-SHA256(secret, ``{timestamp}.`` + body)."""
    return (
        "sha256=" + hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    )


class WebhookNotifier:
    """POSTs JSON to a URL with ``X-Shaobing-Timestamp`` and ``X-Shaobing-Signature`` headers."""

    def __init__(self, config: WebhookConfig) -> None:
        self.config = config
        secret = os.environ.get(config.secret_env)
        if not secret:
            log.warning(
                "notify: webhook %s has no secret in $%s; it will not be sent",
                config.url,
                config.secret_env,
            )
        self.secret = secret.encode() if secret else None

    def send(self, target: str, payload: bytes) -> None:
        """POST the payload; raises on a non-2xx answer or a network error."""
        if self.secret is None:
            raise RuntimeError(f"webhook secret ${self.config.secret_env} is not set")
        ts = str(int(time.time()))
        req = urllib.request.Request(
            self.config.url,
            data=payload,
            method="POST",
            headers={
                "Content-Type": "application/json",
                "X-Shaobing-Timestamp": ts,
                "X-Shaobing-Signature": sign(self.secret, ts, payload),
            },
        )
        with urllib.request.urlopen(req, timeout=self.config.timeout_s) as resp:  # noqa: S310 - configured URL
            if not 200 <= resp.status < 300:
                raise RuntimeError(f"webhook answered HTTP {resp.status}")


class MqttNotifier:
    """Publishes dispatch notices (QoS 1) on the hub's own MQTT connection."""

    def __init__(self, config: HubConfig) -> None:
        self.session = Session(
            config.broker,
            f"{config.hub_id}-notify-{os.getpid()}",
            name="hub notify",
            source=config.config_file,
            base_dir=config.base_dir,
            persistent=False,
        )
        self.session.start()

    def send(self, target: str, payload: bytes) -> None:
        """Publish to the assignee's dispatch topic and wait for the broker's PUBACK."""
        self.publish(topics.dispatch_topic(target), payload)

    def publish(self, topic: str, payload: bytes) -> None:
        """Publish (QoS 1) and wait for the broker's PUBACK."""
        client = self.session.client
        if client is None or not self.session.connected:
            raise RuntimeError("not connected to the broker")
        info = client.publish(topic, payload, qos=1)
        info.wait_for_publish(timeout=5)
        if not info.is_published():
            raise RuntimeError("no PUBACK within 5 s")

    def close(self) -> None:
        """Disconnect."""
        self.session.stop()


def enqueue(
    store: Store,
    conn: Connection,
    config: HubConfig,
    order: Any,
    people: Sequence[str],
    reason: str,
) -> int:
    """Queue a notice of a work order for each person (MQTT) and each matching webhook.

    Args:
        store: the store (clock).
        conn: the open transaction that changes the order.
        config: notify settings.
        order: the work-order row/mapping (id, incident_id, type, severity, summary, level, board, due).
        people: person ids to notify.
        reason: why (dispatch, emergency, escalate, reassign, reopen …).
    Returns:
        rows queued.
    """
    now = store.now()
    due = (
        order["accept_due_at"] if order.get("state") == "dispatched" else order.get("handle_due_at")
    )
    notice = DispatchNotice(
        work_order_id=order["id"],
        incident_id=order["incident_id"],
        type=order["type"],
        severity=order["severity"],
        summary=order["summary"][:500],
        level=order["level"],
        board=order["board"],
        due_at=due.replace(tzinfo=due.tzinfo or now.tzinfo) if due else None,
        ts=now,
    )
    body = notice.model_dump_json()
    rows: list[dict[str, Any]] = []
    base = {
        "work_order_id": order["id"],
        "incident_id": order["incident_id"],
        "status": "pending",
        "attempts": 0,
        "next_at": now,
        "created_at": now,
    }
    if config.notify.mqtt:
        for person in dict.fromkeys(people):
            rows.append({**base, "channel": "mqtt", "target": person, "payload": body})
    for i, hook in enumerate(config.notify.webhooks):
        if order["severity"] in hook.severities:
            payload = dumps(
                {
                    "reason": reason,
                    "recipients": list(dict.fromkeys(people)),
                    "notice": json.loads(body),
                }
            )
            rows.append({**base, "channel": f"webhook:{i}", "target": hook.url, "payload": payload})
    if rows:
        conn.execute(schema.notifications.insert(), rows)
    return len(rows)


def enqueue_verdicts(
    store: Store,
    conn: Connection,
    config: HubConfig,
    order: Any,
    actor: str,
    reason: str,
    note: str,
) -> int:
    """Queue the verdict on a false alarm for each node whose camera or sensor raised it.

    One ``Verdict`` per node and device of the incident's events, on
    ``shaobing/v1/{node}/verdict`` (channel ``verdict``, delivered like dispatch notices).
    """
    if not config.notify.mqtt:
        return 0
    e = schema.events
    rows = conn.execute(
        select(
            e.c.node_id, e.c.device_id, e.c.pipeline, e.c.incident_key, e.c.source_kind, e.c.payload
        )
        .where(e.c.incident_id == order["incident_id"])
        .order_by(e.c.seq)
        .limit(500)
    ).all()
    groups: dict[tuple[str, str, str], dict[str, Any]] = {}
    for r in rows:
        if r.source_kind not in ("camera", "sensor") or r.node_id == "hub":
            continue
        g = groups.setdefault((r.node_id, r.device_id, r.pipeline), {"keys": [], "zone": None})
        if r.incident_key not in g["keys"]:
            g["keys"].append(r.incident_key)
        if g["zone"] is None:
            g["zone"] = (json.loads(r.payload).get("location") or {}).get("zone")
    now = store.now()
    out = []
    for (node, device, pipeline), g in groups.items():
        verdict = Verdict(
            incident_id=order["incident_id"],
            work_order_id=order["id"],
            node_id=node,
            device_id=device[:128],
            pipeline=pipeline[:64],
            zone=g["zone"],
            incident_keys=g["keys"][:200],
            reason=reason,
            note=note[:1000],
            actor=actor[:64],
            ts=now,
        )
        out.append(
            {
                "work_order_id": order["id"],
                "incident_id": order["incident_id"],
                "status": "pending",
                "attempts": 0,
                "next_at": now,
                "created_at": now,
                "channel": "verdict",
                "target": node,
                "payload": verdict.to_bytes().decode("utf-8"),
            }
        )
    if out:
        conn.execute(schema.notifications.insert(), out)
    return len(out)


class VerdictNotifier:
    """Publishes verdicts to the node's verdict topic over the notifier's MQTT connection."""

    def __init__(self, mqtt: MqttNotifier) -> None:
        self.mqtt = mqtt

    def send(self, target: str, payload: bytes) -> None:
        """Publish to ``shaobing/v1/{target}/verdict`` and wait for the PUBACK."""
        self.mqtt.publish(topics.verdict_topic(target), payload)


class NotificationWorker:
    """Delivers queued notices in a background thread (bounded batches, backoff on failure).

    Args:
        store: the store.
        config: hub config (notify settings).
        notifiers: channel → notifier (``mqtt``, ``webhook:N``); built from the config when None.
        holder: this worker's name for claims.
    """

    def __init__(
        self,
        store: Store,
        config: HubConfig,
        notifiers: dict[str, Notifier] | None = None,
        holder: str = "hub",
    ) -> None:
        self.store = store
        self.config = config
        self.holder = holder
        self._own_mqtt: MqttNotifier | None = None
        if notifiers is None:
            notifiers = {
                f"webhook:{i}": WebhookNotifier(h) for i, h in enumerate(config.notify.webhooks)
            }
            if config.notify.mqtt:
                try:
                    self._own_mqtt = MqttNotifier(config)
                    notifiers["mqtt"] = self._own_mqtt
                    notifiers["verdict"] = VerdictNotifier(self._own_mqtt)
                except (ValueError, OSError) as exc:
                    log.warning("notify: MQTT dispatch unavailable: %s", exc)
        self.notifiers = notifiers
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.sent = 0
        self.failed = 0

    def start(self, interval_s: float = 0.5) -> None:
        """Run ``deliver_due`` every ``interval_s`` until ``stop``."""
        self._thread = threading.Thread(
            target=self._loop, args=(interval_s,), name="hub-notify", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread and close the MQTT connection."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        if self._own_mqtt is not None:
            self._own_mqtt.close()

    def _loop(self, interval_s: float) -> None:
        while not self._stop.is_set():
            try:
                if self.deliver_due() == 0:
                    self._stop.wait(interval_s)
            except Exception:
                log.exception("notify: delivery round failed")
                self._stop.wait(2.0)

    def deliver_due(self, limit: int = 50) -> int:
        """Claim and deliver due notices; returns how many were attempted."""
        t = schema.notifications
        now = self.store.now()
        with self.store.write(lock="notify") as conn:
            rows = conn.execute(
                self.store.for_update(
                    select(t)
                    .where(
                        t.c.status == "pending",
                        t.c.next_at <= now,
                        or_(t.c.claimed_until.is_(None), t.c.claimed_until < now),
                    )
                    .order_by(t.c.seq)
                    .limit(limit)
                )
            ).all()
            if rows:
                conn.execute(
                    t.update()
                    .where(and_(t.c.seq.in_([r.seq for r in rows])))
                    .values(claimed_until=now + timedelta(seconds=60))
                )
        for r in rows:
            self._deliver(r)
        return len(rows)

    def _deliver(self, row: Any) -> None:
        t = schema.notifications
        notifier = self.notifiers.get(row.channel)
        error: str | None = None
        if notifier is None:
            error = f"no notifier for channel {row.channel!r}"
        else:
            try:
                notifier.send(row.target, row.payload.encode("utf-8"))
            except Exception as exc:  # any delivery failure is retried
                error = f"{type(exc).__name__}: {exc}"[:1000]
        now = self.store.now()
        attempts = row.attempts + 1
        with self.store.write() as conn:
            if error is None:
                conn.execute(
                    t.update()
                    .where(t.c.seq == row.seq)
                    .values(
                        status="sent",
                        attempts=attempts,
                        sent_at=now,
                        claimed_until=None,
                        last_error=None,
                    )
                )
                self.sent += 1
                return
            final = attempts >= self.config.notify.max_attempts
            delay = self.config.notify.retry_base_s * (2 ** (attempts - 1))
            conn.execute(
                t.update()
                .where(t.c.seq == row.seq)
                .values(
                    status="failed" if final else "pending",
                    attempts=attempts,
                    next_at=now + timedelta(seconds=min(delay, 3600)),
                    claimed_until=None,
                    last_error=error,
                )
            )
            if final:
                self.failed += 1
                self.store.audit(
                    conn,
                    "system",
                    "notify.failed",
                    f"work_order:{row.work_order_id}",
                    {"channel": row.channel, "target": row.target, "error": error},
                )
        log.info(
            "notify: %s → %s failed (attempt %d): %s", row.channel, row.target, attempts, error
        )


def list_notifications(
    store: Store, work_order_id: str | None = None, limit: int = 100
) -> list[dict[str, Any]]:
    """Queued and sent notices, newest first."""
    t = schema.notifications
    q = select(t).order_by(t.c.seq.desc()).limit(limit)
    if work_order_id:
        q = q.where(t.c.work_order_id == work_order_id)
    from hub.store import iso

    with store.engine.connect() as conn:
        rows = conn.execute(q).all()
    return [
        {
            "seq": r.seq,
            "work_order_id": r.work_order_id,
            "channel": r.channel,
            "target": r.target,
            "status": r.status,
            "attempts": r.attempts,
            "last_error": r.last_error,
            "created_at": iso(r.created_at),
            "sent_at": iso(r.sent_at),
        }
        for r in rows
    ]


NotifierFactory = Callable[[HubConfig], dict[str, Notifier]]
