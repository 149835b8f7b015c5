"""One message never stops ingest; acks and ids cannot be forged (real Mosquitto, real stores).

- The year-9999 event that once stalled every node: dead-lettered and acknowledged, and
  150 of 150 valid events are acknowledged after it, with two hub workers sharing the
  subscription, and again after both workers restart.
- An event the database itself refuses (a NUL character, which PostgreSQL text cannot
  hold) is split out of its batch: the rest of the batch commits.
- Forged acks (unsigned, or signed with another node's key) delete nothing: every event
  reaches the hub once it is back.
- Two nodes using the same event id: both events are stored.
"""

# ruff: noqa: F811  (the mosquitto fixture is imported and used as a parameter)

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import datetime
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
from shaobing.contract import Event, ack_key_for, encode_ack, sign_ack
from shaobing_tools.loadgen import synthetic_event
from tests.support.mosquitto import Mosquitto, mosquitto  # noqa: F401

pytestmark = pytest.mark.timeout(120)

POISON_TIME = "9999-12-31T23:59:59-14:00"


def _client(mosquitto: Mosquitto, name: str) -> paho.Client:
    c = paho.Client(
        CallbackAPIVersion.VERSION2, client_id=name, protocol=MQTTProtocolVersion.MQTTv311
    )
    c.connect("127.0.0.1", mosquitto.port)
    c.loop_start()
    return c


def _workers(
    mosquitto: Mosquitto, store_url: str, tmp_path: Path, n: int, secret: str | None = None
) -> list[Ingest]:
    out = []
    for i in range(n):
        cfg = HubConfig(
            hub_id=f"hub-{i}",
            broker=BrokerConfig(url=mosquitto.url),
            base_dir=str(tmp_path),
            ingest=IngestConfig(
                shared_group="hub" if n > 1 else None, batch_size=50, ack_secret=secret
            ),
        )
        store = Store(store_url)
        ingest = Ingest(cfg, store)
        ingest.start()
        assert ingest.wait_ready(15), f"worker {i} did not subscribe"
        out.append(ingest)
    return out


def _stop(workers: list[Ingest]) -> None:
    for w in workers:
        w.stop()
        w.store.close()  # type: ignore[union-attr]


def _wait(predicate, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def _poison(node: str, i: int) -> bytes:
    data = json.loads(synthetic_event(node, 10_000 + i).to_bytes())
    data["occurred_at"] = POISON_TIME
    data["detected_at"] = POISON_TIME
    return json.dumps(data).encode()


@pytest.fixture
def store_url(tmp_path: Path) -> Iterator[str]:
    url = f"sqlite:///{tmp_path / 'hub.sqlite'}"
    s = Store(url)
    s.migrate()
    s.close()
    yield url


def test_poison_message_stops_nothing_with_two_workers_and_across_a_restart(
    tmp_path: Path, mosquitto: Mosquitto, store_url: str
) -> None:
    workers = _workers(mosquitto, store_url, tmp_path, 2)
    outbox = Outbox(tmp_path / "node.sqlite")
    pub = Publisher("n1", BrokerConfig(url=mosquitto.url), outbox, ack_timeout_s=5.0)
    pub.start()
    attacker = _client(mosquitto, "attacker")
    store = Store(store_url)
    try:
        # the poison, twice (once per worker, whichever gets it), before the valid traffic
        for i in range(2):
            attacker.publish(topics.event_topic("n1"), _poison("n1", i), qos=1).wait_for_publish(5)
        for i in range(150):
            outbox.put(synthetic_event("n1", i))
        _wait(lambda: outbox.depth() == 0, 40, "150 valid events acknowledged after the poison")
        assert store.count_events() == 150
        reasons = [d["reason"] for d in store.list_dead_letters(10)]
        assert len(reasons) == 2 and all("occurred_at" in r for r in reasons), reasons
        assert all(w.counters["commit_errors"] == 0 for w in workers)

        # both workers restart (the broker would redeliver anything unacknowledged)
        _stop(workers)
        workers = _workers(mosquitto, store_url, tmp_path, 2)
        attacker.publish(topics.event_topic("n1"), _poison("n1", 2), qos=1).wait_for_publish(5)
        for i in range(150, 300):
            outbox.put(synthetic_event("n1", i))
        _wait(lambda: outbox.depth() == 0, 40, "150 more events acknowledged after the restart")
        assert store.count_events() == 300
        assert store.count_dead_letters() == 3
    finally:
        attacker.loop_stop()
        attacker.disconnect()
        pub.stop()
        outbox.close()
        _stop(workers)
        store.close()


@pytest.mark.postgres
def test_an_event_the_database_refuses_is_split_out_and_the_batch_commits(
    tmp_path: Path, mosquitto: Mosquitto, postgres_url: str
) -> None:
    s = Store(postgres_url)
    s.migrate()
    s.delete_all()
    s.close()
    workers = _workers(mosquitto, postgres_url, tmp_path, 1)
    sender = _client(mosquitto, "sender")
    store = Store(postgres_url)
    try:
        payloads = []
        for i in range(40):
            data = json.loads(synthetic_event("pg1", i).to_bytes())
            if i == 17:
                data["summary"] = (
                    "楼道冒烟\u0000"  # valid JSON and contract; PostgreSQL text cannot hold NUL
                )
            payloads.append(json.dumps(data).encode())
        for p in payloads:
            sender.publish(topics.event_topic("pg1"), p, qos=1)
        _wait(lambda: store.count_events() == 39, 30, "the 39 storable events")
        _wait(lambda: store.count_dead_letters() == 1, 10, "the unstorable one dead-lettered")
        (dead,) = store.list_dead_letters(5)
        assert dead["reason"].startswith("unstorable:"), dead
        assert workers[0].counters["poison_isolated"] == 1
        assert workers[0].counters["commit_errors"] == 0
    finally:
        sender.loop_stop()
        sender.disconnect()
        _stop(workers)
        store.close()


def test_forged_acks_delete_nothing(tmp_path: Path, mosquitto: Mosquitto, store_url: str) -> None:
    secret = "district-ack-secret"
    key = ack_key_for(secret, "n2")
    outbox = Outbox(tmp_path / "node.sqlite")
    pub = Publisher("n2", BrokerConfig(url=mosquitto.url), outbox, ack_timeout_s=2.0, ack_key=key)
    pub.start()
    forger = _client(mosquitto, "forger")
    # a stand-in for the hub being down: the events stay with the broker unacknowledged
    ids = []
    for i in range(200):
        ev = synthetic_event("n2", i)
        ids.append(ev.id)
        outbox.put(ev)
    time.sleep(1.0)
    wrong_key = ack_key_for(secret, "another-node")
    for chunk in range(0, 200, 50):
        part = ids[chunk : chunk + 50]
        forger.publish(topics.ack_topic("n2"), encode_ack(part), qos=1).wait_for_publish(5)
        forger.publish(
            topics.ack_topic("n2"), sign_ack(part, wrong_key, "n2"), qos=1
        ).wait_for_publish(5)
        forger.publish(
            topics.ack_topic("n2"), sign_ack(part, "not-the-key", "n2"), qos=1
        ).wait_for_publish(5)
    _wait(lambda: pub.stats["acks_rejected"] >= 12, 10, "the forged acks to be seen")
    assert outbox.depth() == 200, "a forged ack deleted outbox rows"
    workers = _workers(mosquitto, store_url, tmp_path, 1, secret=secret)
    store = Store(store_url)
    try:
        _wait(lambda: outbox.depth() == 0, 40, "the hub's signed acks")
        assert store.count_events() == 200
    finally:
        forger.loop_stop()
        forger.disconnect()
        pub.stop()
        outbox.close()
        _stop(workers)
        store.close()


def test_two_nodes_with_the_same_event_id_are_both_stored(
    tmp_path: Path, mosquitto: Mosquitto, store_url: str
) -> None:
    workers = _workers(mosquitto, store_url, tmp_path, 1)
    outboxes = {n: Outbox(tmp_path / f"{n}.sqlite") for n in ("victim", "copycat")}
    pubs = [
        Publisher(n, BrokerConfig(url=mosquitto.url), ob, ack_timeout_s=3.0)
        for n, ob in outboxes.items()
    ]
    for p in pubs:
        p.start()
    store = Store(store_url)
    try:
        shared_id = "0193a000-0000-7000-8000-000000000001"
        copy = synthetic_event("copycat", 1).model_copy(update={"id": shared_id})
        outboxes["copycat"].put(Event.model_validate(copy.model_dump(by_alias=True)))
        _wait(lambda: outboxes["copycat"].depth() == 0, 20, "the copycat's event")
        original = synthetic_event("victim", 2).model_dump(by_alias=True)
        original.update(id=shared_id, severity="emergency", type="drowning")
        outboxes["victim"].put(Event.model_validate(original))
        _wait(lambda: outboxes["victim"].depth() == 0, 20, "the victim's event acknowledged")
        found = store.get_events(shared_id)
        assert sorted(f["source"]["node_id"] for f in found) == ["copycat", "victim"]
        victim = store.get_event(shared_id, "victim")
        assert victim is not None and victim["type"] == "drowning"
        assert datetime.fromisoformat(victim["occurred_at"]).year >= 2000
    finally:
        for p in pubs:
            p.stop()
        for ob in outboxes.values():
            ob.close()
        _stop(workers)
        store.close()
