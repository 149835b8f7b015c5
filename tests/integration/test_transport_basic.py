"""Edge → hub transport on a real mosquitto: events, evidence, status, duplicates, dead letters."""

# ruff: noqa: F811  (the mosquitto fixture is imported and used as a parameter)

from __future__ import annotations

import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from edge.outbox import Outbox
from edge.publisher import Publisher
from edge.sensors.inputs import MqttSensorSubscriber
from hub.ingest import Ingest
from hub.notify import MqttNotifier
from hub.store import Store
from shaobing import topics
from shaobing.config import BrokerConfig, HubConfig, IngestConfig
from shaobing.contract import Event, new_event_id, now_utc
from tests.support.mosquitto import Mosquitto, free_port, mosquitto  # noqa: F401
from tests.support.transport import ROOT, start_loadgen

pytestmark = pytest.mark.timeout(90)


def wait_for(cond: Callable[[], bool], timeout: float = 15.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def make_event(
    node: str, seq: int, evidence: dict[str, bytes] | None = None, severity: str = "urgent"
) -> Event:
    t = now_utc()
    return Event(
        id=new_event_id(),
        type="fire_lane_blocked",
        severity=severity,
        incident_key=f"{node}/cam1/v{seq}",
        occurred_at=t,
        detected_at=t,
        source={"node_id": node, "kind": "camera", "device_id": "cam1", "pipeline": "fire_lane"},
        location={"grid_id": "g-001", "address": "天府路 3 号"},
        confidence=0.8,
        summary="消防通道被占用",
        attributes={"seq": seq},
        evidence=[
            {
                "id": k,
                "kind": "image",
                "content_type": "image/jpeg",
                "sha256": hashlib.sha256(v).hexdigest(),
                "bytes": len(v),
            }
            for k, v in (evidence or {}).items()
        ],
    )


@pytest.fixture
def hub(tmp_path: Path, mosquitto: Mosquitto) -> Iterator[tuple[Ingest, Store, list[Event]]]:
    store = Store(f"sqlite:///{tmp_path / 'hub.sqlite'}")
    store.migrate()
    committed: list[Event] = []
    config = HubConfig(
        broker=BrokerConfig(url=mosquitto.url),
        base_dir=str(tmp_path),
        ingest=IngestConfig(batch_ms=10),
    )
    ingest = Ingest(config, store, on_committed=committed.extend)
    ingest.start()
    assert ingest.wait_ready(10)
    yield ingest, store, committed
    ingest.stop()
    store.close()


def test_events_and_evidence_arrive_once_and_are_acked(
    tmp_path: Path, mosquitto: Mosquitto, hub
) -> None:
    ingest, store, committed = hub
    outbox = Outbox(tmp_path / "edge" / "outbox.sqlite")
    pub = Publisher(
        "n1", BrokerConfig(url=mosquitto.url), outbox, ack_timeout_s=3.0, evidence_max_bytes=20_000
    )
    small, large = os.urandom(3000), os.urandom(50_000)
    events = [make_event("n1", i) for i in range(20)]
    with_small = make_event("n1", 100, {"snap-a": small})
    with_large = make_event("n1", 101, {"clip-b": large})
    outbox.put_many([(e, None) for e in events])
    outbox.put(with_small, {"snap-a": small})
    outbox.put(with_large, {"clip-b": large})
    pub.start()
    try:
        wait_for(lambda: outbox.depth() == 0, what="all events acked")
        assert store.count_events() == 22
        assert sorted(e.id for e in committed) == sorted(
            [e.id for e in events] + [with_small.id, with_large.id]
        )
        rec = store.get_evidence("n1", "snap-a")
        assert rec is not None and rec["sha256"] == hashlib.sha256(small).hexdigest()
        assert Path(rec["path"]).read_bytes() == small
        assert Path(rec["path"]).name == rec["sha256"]  # named by content, not by the wire
        assert store.get_evidence("n1", "clip-b") is None  # too large for MQTT: noted on the node
        notes = outbox.evidence_notes()
        assert [(n["event_id"], n["evidence_id"]) for n in notes] == [(with_large.id, "clip-b")]
        assert pub.connected and pub.stats["resent"] == 0
        assert ingest.counters["committed"] == 22 and ingest.counters["dead_lettered"] == 0
        wait_for(
            lambda: any(n["node_id"] == "n1" and n["online"] for n in store.list_nodes()),
            what="online status",
        )
    finally:
        pub.stop()
        outbox.close()
    wait_for(
        lambda: any(n["node_id"] == "n1" and not n["online"] for n in store.list_nodes()),
        what="offline status",
    )


def test_duplicates_are_acked_again_and_bad_messages_dead_lettered(
    mosquitto: Mosquitto, hub
) -> None:
    ingest, store, _ = hub
    acks: list[list[str]] = []
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id="raw-n2")
    client.on_message = lambda c, u, m: acks.append(json.loads(m.payload))
    client.connect("127.0.0.1", mosquitto.port)
    client.loop_start()
    try:
        client.subscribe(topics.ack_topic("n2"), qos=1)
        time.sleep(0.3)
        ev = make_event("n2", 1)
        for _ in range(3):
            client.publish(topics.event_topic("n2"), ev.to_bytes(), qos=1).wait_for_publish(5)
            time.sleep(0.1)
        other = make_event("n3", 2)  # source.node_id differs from the topic's node
        client.publish(topics.event_topic("n2"), other.to_bytes(), qos=1)
        newer = json.loads(ev.to_bytes())
        newer.update(schema="shaobing.event/9", id="future-1")
        client.publish(topics.event_topic("n2"), json.dumps(newer).encode(), qos=1)
        client.publish(topics.event_topic("n2"), b"\xff\xfe not json", qos=1)
        client.publish(topics.event_topic("n2"), b"x" * (70 * 1024), qos=1)
        wait_for(lambda: store.count_dead_letters() == 4, what="4 dead letters")
        wait_for(lambda: sum(a.count(ev.id) for a in acks) == 3, what="each copy acked")
        assert store.count_events() == 1
        assert ingest.counters["duplicates"] == 2
        reasons = " | ".join(d["reason"] for d in store.list_dead_letters())
        for word in ("node mismatch", "unknown schema", "malformed JSON", "oversized"):
            assert word in reasons
        wait_for(lambda: any("future-1" in a for a in acks), what="poison message acked")
        assert not any(other.id in a for a in acks)
    finally:
        client.loop_stop()
        client.disconnect()


def test_killed_node_goes_offline_by_its_will(tmp_path: Path, mosquitto: Mosquitto, hub) -> None:
    _, store, _ = hub
    lg = start_loadgen(
        mosquitto.url, tmp_path / "outbox", nodes=1, rate=50, count=100_000, timeout=60
    )
    try:
        wait_for(
            lambda: any(n["node_id"] == "lg0000" and n["online"] for n in store.list_nodes()),
            20,
            "node online",
        )
        wait_for(lambda: store.count_events() > 0, 20, "first events")
    finally:
        lg.send_signal(signal.SIGKILL)
        lg.wait()
    wait_for(
        lambda: any(n["node_id"] == "lg0000" and not n["online"] for n in store.list_nodes()),
        15,
        "LWT offline",
    )


def test_shared_subscription_splits_load_between_hub_workers(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    store = Store(f"sqlite:///{tmp_path / 'hub.sqlite'}")
    store.migrate()
    workers = []
    for i in range(2):
        cfg = HubConfig(
            hub_id=f"w{i}",
            broker=BrokerConfig(url=mosquitto.url),
            base_dir=str(tmp_path),
            ingest=IngestConfig(shared_group="hubs"),
        )
        w = Ingest(cfg, store)
        w.start()
        assert w.wait_ready(10)
        workers.append(w)
    outbox = Outbox(tmp_path / "o.sqlite")
    pub = Publisher("n4", BrokerConfig(url=mosquitto.url), outbox, ack_timeout_s=5.0)
    outbox.put_many([(make_event("n4", i, severity="normal"), None) for i in range(400)])
    pub.start()
    try:
        wait_for(lambda: outbox.depth() == 0, 30, "all acked")
        assert store.count_events() == 400
        shares = [w.counters["committed"] for w in workers]
        assert sum(shares) == 400 and min(shares) > 0, shares
    finally:
        pub.stop()
        outbox.close()
        for w in workers:
            w.stop()
        store.close()


def test_mqtt5_falls_back_to_311_on_the_embedded_broker(tmp_path: Path) -> None:
    pytest.importorskip("amqtt")
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    broker = subprocess.Popen(
        [sys.executable, "-m", "shaobing.cli", "broker", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(lambda: _listening(port), 20, "embedded broker")
        url = f"mqtt://127.0.0.1:{port}"
        store = Store(f"sqlite:///{tmp_path / 'hub.sqlite'}")
        store.migrate()
        ingest = Ingest(HubConfig(broker=BrokerConfig(url=url), base_dir=str(tmp_path)), store)
        ingest.start()
        outbox = Outbox(tmp_path / "o.sqlite")
        pub = Publisher("n5", BrokerConfig(url=url), outbox, ack_timeout_s=5.0)
        outbox.put_many([(make_event("n5", i), None) for i in range(30)])
        pub.start()
        # the notifier and the sensor input fall back the same way (one MQTT layer)
        notifier = MqttNotifier(HubConfig(broker=BrokerConfig(url=url), hub_id="fallback"))
        sensors = MqttSensorSubscriber("n5", BrokerConfig(url=url), [], lambda r, at: None)
        sensors.start()
        try:
            assert ingest.wait_ready(20)
            wait_for(lambda: outbox.depth() == 0, 30, "all acked over MQTT 3.1.1")
            assert store.count_events() == 30
            assert notifier.session.wait_connected(20) and sensors.wait_subscribed(20)
            for session in (ingest.session, notifier.session):
                assert session.protocols.current == MQTTProtocolVersion.MQTTv311
            notifier.send("w-1", b"{}")  # a PUBACK over 3.1.1
        finally:
            sensors.stop()
            notifier.close()
            pub.stop()
            ingest.stop()
            outbox.close()
            store.close()
    finally:
        broker.terminate()
        broker.wait(10)


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


def test_put_never_blocks_while_the_broker_is_down(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "o.sqlite")
    pub = Publisher(
        "n6", BrokerConfig(url=f"mqtt://127.0.0.1:{free_port()}"), outbox, backoff_max_s=1.0
    )
    pub.start()
    try:
        done = threading.Event()

        def produce() -> None:
            outbox.put_many([(make_event("n6", i), None) for i in range(200)])
            done.set()

        threading.Thread(target=produce).start()
        assert done.wait(5.0)
        assert outbox.depth() == 200 and not pub.connected
        # The publisher thread tries to connect on its own clock; wait for its first try.
        wait_for(lambda: pub.stats["connect_failures"] >= 1, 5.0, "a failed connection attempt")
        assert outbox.depth() == 200 and not pub.connected
    finally:
        t0 = time.monotonic()
        pub.stop(timeout=2.0)
        assert time.monotonic() - t0 < 3.0
        outbox.close()
