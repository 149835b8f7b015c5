"""MQTT ingest: edge events → validated, committed in small batches, then acknowledged.

The hub keeps a persistent broker session (stable client id, clean start off, long
session expiry) and subscribes to ``shaobing/v1/+/event`` (or ``$share/{group}/…`` when
several hub workers share the load), to evidence and to retained node status. paho runs
with ``manual_ack``: the network thread only queues what arrives; a worker thread hands
each batch to the ``IngestCore`` (hub/ingest_core.py: validation, one transaction, dead
letters) and only then sends the MQTT PUBACKs and the end-to-end acks the core made (the
committed ids, duplicates included) on each sender's ``shaobing/v1/{node}/ack``. The
connection itself (protocol, TLS, credentials, reconnect) is a ``shaobing.mqtt.Session``.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from hub.evidence import EvidenceStore
from hub.ingest_core import IngestCore, IngestStore, Message
from hub.objects import object_store
from shaobing import topics
from shaobing.config import HubConfig
from shaobing.contract import ContractError, Event
from shaobing.mqtt import Session, parse_broker_url

if TYPE_CHECKING:
    from hub.store import Store

__all__ = ["Ingest", "IngestStore"]

log = logging.getLogger(__name__)

_SESSION_EXPIRY_S = 7 * 24 * 3600
# In a shared group a dead worker's session would keep taking its turn of the messages
# (queued for nobody until it returns); a short expiry hands its share to the others and
# the edge outboxes re-send what it had not acknowledged.
_SHARED_SESSION_EXPIRY_S = 5
_PRUNE_EVERY_S = 600.0


@dataclass(frozen=True)
class _Delivery:
    """A message and what its MQTT acknowledgement needs."""

    message: Message
    mid: int
    qos: int
    generation: int


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
        self.evidence = EvidenceStore(
            config.resolve(config.evidence_dir),
            max_bytes=config.evidence_max_bytes,
            objects=object_store(config.evidence_url, config.resolve(config.evidence_dir)),
        )
        self.core = IngestCore(
            config.ingest, store, self.evidence, config.ingest.ack_secret_value()
        )
        self._event_sub = topics.event_subscription(self._opts.shared_group)
        self._evidence_sub = topics.evidence_subscription(self._opts.shared_group)
        self._status_sub = topics.status_subscription()
        self._queue: queue.Queue[_Delivery] = queue.Queue(
            maxsize=max(1000, 4 * self._opts.batch_size)
        )
        self.session = Session(
            config.broker,
            config.ingest.client_id or config.broker.client_id or f"shaobing-hub-{config.hub_id}",
            name="hub ingest",
            source=config.config_file,
            base_dir=config.base_dir,
            persistent=True,
            session_expiry_s=(
                _SHARED_SESSION_EXPIRY_S if self._opts.shared_group else _SESSION_EXPIRY_S
            ),
            receive_maximum=min(65535, max(100, 4 * self._opts.batch_size)),
            manual_ack=True,
            setup=self._setup,
            on_connected=self._on_connected,
            on_disconnected=self._on_disconnected,
        )
        self._generation = 0
        self._sub_mid: int | None = None
        self._ready = threading.Event()
        self._stop = threading.Event()
        self._worker: threading.Thread | None = None
        self._transport_counters = {"acks_sent": 0, "commit_errors": 0}
        self.last_commit_ms = 0.0
        # health: the worker loop's last turn, the last good commit, a failing streak
        self.heartbeat = time.monotonic()
        self.last_commit_at = time.monotonic()
        self.commit_failing_since: float | None = None
        self.last_commit_error = ""

    # ----------------------------------------------------------------- lifecycle

    def start(self) -> None:
        """Connect (in the background) and start the commit worker."""
        if self._worker is not None:
            return
        self._stop.clear()
        self._worker = threading.Thread(target=self._work, name="hub-ingest-worker", daemon=True)
        self._worker.start()
        self.session.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Commit what is queued, disconnect and stop the threads."""
        deadline = time.monotonic() + timeout
        self._stop.set()
        if self._worker is not None:
            self._worker.join(max(0.1, deadline - time.monotonic()))
        self.session.stop(max(0.1, deadline - time.monotonic()))
        self._worker = None
        self._ready.clear()

    @property
    def ready(self) -> bool:
        """True once the event subscription is acknowledged (SUBACK) on the live connection."""
        return self._ready.is_set()

    def wait_ready(self, timeout: float) -> bool:
        """Block until ``ready`` (or the timeout); returns ``ready``."""
        return self._ready.wait(timeout)

    @property
    def counters(self) -> dict[str, int]:
        """What ingest has seen and done (the core's counts and the transport's)."""
        core = self.core.counters
        return {
            **{k: core[k] for k in ("received", "committed", "duplicates", "dead_lettered")},
            **{k: core[k] for k in ("status", "evidence")},
            "acks_sent": self._transport_counters["acks_sent"],
            "batches": core["batches"],
            "commit_errors": self._transport_counters["commit_errors"],
            "connects": self.session.connects,
            **{k: core[k] for k in ("offline_faults", "poison_isolated", "dead_letters_pruned")},
        }

    def metrics(self) -> dict[str, float]:
        """Counters for /metrics and /api/v1/stats."""
        return {
            **self.counters,
            "queue": self._queue.qsize(),
            "ready": int(self.ready),
            "last_commit_ms": self.last_commit_ms,
        }

    # ----------------------------------------------------------------- MQTT side

    def _setup(self, client: paho.Client) -> None:
        client.max_inflight_messages_set(max(20, 2 * self._opts.batch_size))
        client.on_subscribe = self._on_subscribe
        client.on_message = self._on_message

    def _on_connected(self, client: paho.Client, session_present: bool) -> None:
        self._generation += 1
        self._ready.clear()
        qos1 = 1
        result, mid = client.subscribe(
            [(self._event_sub, qos1), (self._evidence_sub, qos1), (self._status_sub, qos1)]
        )
        self._sub_mid = mid
        log.info(
            "hub ingest: connected to %s (session present: %s)",
            self.config.broker.url,
            session_present,
        )

    def _on_disconnected(self, client: paho.Client) -> None:
        self._ready.clear()
        self._generation += 1  # pending acks of the old connection are void; the broker redelivers

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

    def _on_message(self, client: paho.Client, userdata: Any, message: paho.MQTTMessage) -> None:
        msg = _Delivery(
            Message(message.topic, bytes(message.payload), datetime.now(UTC)),
            message.mid,
            message.qos,
            self._generation,
        )
        while not self._stop.is_set():
            try:
                # a full queue slows the broker down (backpressure)
                self._queue.put(msg, timeout=0.5)
                return
            except queue.Full:
                continue

    # ----------------------------------------------------------------- worker

    def _work(self) -> None:
        batch: list[_Delivery] = []
        next_prune = time.monotonic() + 5.0
        while True:
            self.heartbeat = time.monotonic()
            if self.heartbeat >= next_prune and not batch:
                next_prune = self.heartbeat + _PRUNE_EVERY_S
                self.core.prune_dead_letters()
            if not batch:
                batch = self._next_batch()
                if not batch:
                    if self._stop.is_set():
                        return
                    continue
            try:
                self._process(batch)
                batch = []
                self.commit_failing_since = None
                self.last_commit_error = ""
            except Exception as exc:
                # the store itself failed (a poison message is isolated by the core): keep
                # the batch, report unhealthy, retry
                self._transport_counters["commit_errors"] += 1
                if self.commit_failing_since is None:
                    self.commit_failing_since = time.monotonic()
                orig = getattr(exc, "orig", None) or exc
                self.last_commit_error = f"{type(orig).__name__}: {str(orig)[:300]}"
                log.exception("hub ingest: commit of %d messages failed; retrying", len(batch))
                if self._stop.wait(1.0):
                    return

    def _next_batch(self) -> list[_Delivery]:
        """Up to ``batch_size`` queued messages, waiting at most ``batch_ms`` after the first."""
        try:
            batch = [self._queue.get(timeout=0.2)]
        except queue.Empty:
            return []
        deadline = time.monotonic() + self._opts.batch_ms / 1000.0
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
        return batch

    def _process(self, batch: list[_Delivery]) -> None:
        t0 = time.perf_counter()
        outcome = self.core.process([d.message for d in batch])
        self.last_commit_ms = (time.perf_counter() - t0) * 1000.0
        self.last_commit_at = time.monotonic()
        # committed: now acknowledge, MQTT first, then end to end
        client = self.session.client
        if client is not None:
            generation = self._generation
            for d in batch:
                if d.qos > 0 and d.generation == generation:
                    client.ack(d.mid, d.qos)
            for topic, payload in outcome.acks:
                client.publish(topic, payload, qos=1)
                self._transport_counters["acks_sent"] += 1
        if outcome.committed and self.on_committed is not None:
            try:
                self.on_committed(outcome.committed)
            except Exception:
                log.exception("hub ingest: on_committed failed")


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

    address = parse_broker_url(broker_url)
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
    client.connect(address.host, address.port)
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
