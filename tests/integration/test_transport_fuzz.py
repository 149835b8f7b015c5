"""Fuzz the hub's event topic: ≥ 10,000 malformed, random and oversized payloads.

Ingest must not stop, every bad payload must become exactly one dead letter, and a
real node's valid events sent at the same time must all arrive and be acknowledged.
"""

# ruff: noqa: F811  (the mosquitto fixture is imported and used as a parameter)

from __future__ import annotations

import json
import random
import time
from pathlib import Path

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from edge.outbox import Outbox
from edge.publisher import Publisher
from hub.ingest import Ingest
from hub.store import Store
from shaobing import topics
from shaobing.config import BrokerConfig, HubConfig, IngestConfig
from shaobing_tools.loadgen import synthetic_event
from tests.support.mosquitto import Mosquitto, mosquitto  # noqa: F401

pytestmark = pytest.mark.timeout(150)

N_BAD = 10_000
REQUIRED = [
    "id",
    "type",
    "severity",
    "incident_key",
    "occurred_at",
    "detected_at",
    "source",
    "location",
    "confidence",
    "summary",
]


def bad_payloads(n: int, seed: int = 20261129) -> list[tuple[str, bytes]]:
    """(topic node, payload) pairs, none of which is a valid event for that node."""
    rng = random.Random(seed)
    out: list[tuple[str, bytes]] = []
    for i in range(n):
        good = json.loads(synthetic_event("fz", i).to_bytes())
        kind = i % 12
        node = "fz"
        if kind == 0:
            payload = rng.randbytes(rng.randint(0, 600))
        elif kind == 1:
            raw = json.dumps(good).encode()
            payload = raw[: rng.randint(0, len(raw) - 1)]
        elif kind == 2:
            del good[rng.choice(REQUIRED)]
            payload = json.dumps(good).encode()
        elif kind == 3:
            good[rng.choice(REQUIRED)] = rng.choice([None, [], {}, ""])
            payload = json.dumps(good).encode()
        elif kind == 4:
            good["unexpected_" + str(rng.randint(0, 99))] = 1
            payload = json.dumps(good).encode()
        elif kind == 5:
            good["schema"] = rng.choice(
                ["shaobing.event/2", "shaobing.event/0", None, "", "x" * 80]
            )
            payload = json.dumps(good).encode()
        elif kind == 6:
            node = "other-node"  # the event names node fz: mismatch
            payload = json.dumps(good).encode()
        elif kind == 7:
            payload = json.dumps(rng.choice([None, 1, "event", [good], [], 3.5, True])).encode()
        elif kind == 8:
            good["confidence"] = rng.choice([1.5, -0.1, "high"])
            good["type"] = rng.choice(["not_a_type", good["type"]])
            payload = json.dumps(good).encode()
        elif kind == 9:
            payload = (
                (b"[" * rng.randint(1000, 200_000)) if rng.random() < 0.5 else (b'{"a":' * 5000)
            )
        elif kind == 10:
            payload = b"\xff\xfe" + json.dumps(good).encode()[2:]
        elif i % 24 == 11:
            good["attributes"] = {"blob": "x" * rng.randint(65 * 1024, 80 * 1024)}
            payload = json.dumps(good).encode()  # oversized
        else:
            payload = bytes(
                rng.choice(b'{}[]",:0123456789aeflnrstu ') for _ in range(rng.randint(1, 300))
            )
        out.append((node, payload))
    return out


def test_the_fuzz_corpus_holds_no_valid_event() -> None:
    from shaobing.contract import ContractError, Event

    valid = 0
    for node, payload in bad_payloads(N_BAD):
        try:
            ev = Event.from_json(payload)
        except (ContractError, ValueError, RecursionError):
            continue
        valid += ev.source.node_id == node
    assert valid == 0


def test_ten_thousand_bad_payloads_are_dead_lettered_and_valid_traffic_flows(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    store = Store(f"sqlite:///{tmp_path / 'hub.sqlite'}")
    store.migrate()
    config = HubConfig(
        broker=BrokerConfig(url=mosquitto.url),
        base_dir=str(tmp_path),
        ingest=IngestConfig(batch_size=500),
    )
    ingest = Ingest(config, store)
    ingest.start()
    assert ingest.wait_ready(10)
    outbox = Outbox(tmp_path / "node.sqlite")
    pub = Publisher("good", BrokerConfig(url=mosquitto.url), outbox, ack_timeout_s=10.0)
    pub.start()
    fuzzer = paho.Client(
        CallbackAPIVersion.VERSION2, client_id="fuzzer", protocol=MQTTProtocolVersion.MQTTv311
    )
    fuzzer.max_inflight_messages_set(1000)
    fuzzer.connect("127.0.0.1", mosquitto.port)
    fuzzer.loop_start()
    payloads = bad_payloads(N_BAD)
    try:
        infos = []
        for i, (node, payload) in enumerate(payloads):
            infos.append(fuzzer.publish(topics.event_topic(node), payload, qos=1 if i % 3 else 0))
            if i % 50 == 0:  # valid events in between
                outbox.put(synthetic_event("good", i // 50))
        for info in infos:
            info.wait_for_publish(30)
        n_good = (N_BAD + 49) // 50
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and (
            store.count_dead_letters() < N_BAD or outbox.depth()
        ):
            time.sleep(0.2)
        assert outbox.depth() == 0, "valid events must all be acknowledged"
        assert store.count_events() == n_good
        assert store.count_dead_letters() == N_BAD
        assert ingest.counters["received"] >= N_BAD + n_good
        assert ingest.ready and ingest.counters["commit_errors"] == 0
        reasons = {d["reason"].split(":")[0] for d in store.list_dead_letters(500)}
        assert {"malformed JSON", "invalid", "oversized"} <= reasons, reasons
    finally:
        fuzzer.loop_stop()
        fuzzer.disconnect()
        pub.stop()
        outbox.close()
        ingest.stop()
        store.close()
