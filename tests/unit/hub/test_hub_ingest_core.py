"""The ingest core without a broker: messages in, stored events, acks and dead letters out."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.exc import DataError, OperationalError

from hub.evidence import EvidenceStore
from hub.ingest_core import IngestCore, Message
from shaobing import topics
from shaobing.config import IngestConfig
from shaobing.contract import AckError, Event, NodeStatus, ack_key_for, decode_ack, verify_ack
from tests.conftest import HubKit


def core_for(kit: HubKit, tmp: Path, secret: str | None = None, **opts: Any) -> IngestCore:
    return IngestCore(
        IngestConfig(**opts), kit.store, EvidenceStore(tmp / "evidence"), ack_secret=secret
    )


def msg(topic: str, payload: bytes) -> Message:
    return Message(topic, payload, datetime.now(UTC))


def event_msg(ev: Event) -> Message:
    return msg(topics.event_topic(ev.source.node_id), ev.to_bytes())


def acked(outcome_acks: list[tuple[str, bytes]]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for topic, payload in outcome_acks:
        node = topics.parse_node(topic) or ""
        assert topic == topics.ack_topic(node)
        out.setdefault(node, []).extend(decode_ack(payload))
    return out


def dead_letters(kit: HubKit) -> list[tuple[str, str]]:
    from sqlalchemy import select

    from hub import schema

    d = schema.dead_letters
    with kit.store.engine.connect() as conn:
        return [(r.topic, r.reason) for r in conn.execute(select(d.c.topic, d.c.reason)).all()]


def test_new_events_commit_and_are_acked_duplicates_acked_again(
    sqlite_hubkit: HubKit, tmp_path: Path
) -> None:
    kit = sqlite_hubkit
    core = core_for(kit, tmp_path)
    a, b = kit.event(node_id="n1"), kit.event(node_id="n2")
    out = core.process([event_msg(a), event_msg(b), event_msg(a)])  # a twice in one batch
    assert [e.id for e in out.committed] == [a.id, b.id]
    assert acked(out.acks) == {"n1": [a.id, a.id], "n2": [b.id]}
    assert kit.store.count_events() == 2 and out.dead_letters == []
    # a redelivery: acknowledged again, stored once, not handed on for incidents
    again = core.process([event_msg(b)])
    assert again.committed == [] and acked(again.acks) == {"n2": [b.id]}
    assert kit.store.count_events() == 2
    assert core.counters["committed"] == 2 and core.counters["duplicates"] == 2


def test_bad_json_is_a_dead_letter_and_not_acked(sqlite_hubkit: HubKit, tmp_path: Path) -> None:
    kit = sqlite_hubkit
    core = core_for(kit, tmp_path)
    out = core.process([msg(topics.event_topic("n1"), b'{"id": "e1", ')])
    assert out.committed == [] and out.acks == []
    [(topic, reason)] = dead_letters(kit)
    assert topic == topics.event_topic("n1") and reason.startswith("malformed JSON:")


def test_a_poison_message_with_a_readable_id_is_dead_lettered_and_acked(
    sqlite_hubkit: HubKit, tmp_path: Path
) -> None:
    kit = sqlite_hubkit
    core = core_for(kit, tmp_path)
    good = kit.event(node_id="n1")
    body = json.loads(good.to_bytes())
    body["id"], body["occurred_at"] = "poison-1", 1767225600  # a Unix number, not RFC 3339
    out = core.process([msg(topics.event_topic("n1"), json.dumps(body).encode()), event_msg(good)])
    assert [e.id for e in out.committed] == [good.id]
    assert acked(out.acks) == {"n1": ["poison-1", good.id]}  # the sender stops re-sending it
    [(_, reason)] = dead_letters(kit)
    assert reason.startswith("invalid:") and "occurred_at" in reason
    # another node's id is never acknowledged on this node's topic
    body["source"]["node_id"] = "n2"
    out = core.process([msg(topics.event_topic("n1"), json.dumps(body).encode())])
    assert out.acks == []


def test_oversized_and_foreign_messages_are_dead_letters(
    sqlite_hubkit: HubKit, tmp_path: Path
) -> None:
    kit = sqlite_hubkit
    core = core_for(kit, tmp_path, max_payload_bytes=4096)
    ev = kit.event(node_id="n1", attributes={"pad": "x" * 4000})
    spoofed = kit.event(node_id="n2")
    out = core.process(
        [
            event_msg(ev),
            msg(topics.event_topic("n1"), spoofed.to_bytes()),  # n2's event on n1's topic
            msg("shaobing/v1/n1/bogus", b"{}"),
        ]
    )
    assert out.committed == [] and out.acks == []
    reasons = sorted(r for _, r in dead_letters(kit))
    assert reasons[0] == "node mismatch: topic node 'n1', found source.node_id 'n2'"
    assert reasons[1].startswith("oversized: expected at most 4096 bytes, found ")
    assert reasons[2] == "unexpected topic"
    assert kit.store.count_events() == 0


def test_acks_are_signed_per_node_when_a_secret_is_set(
    sqlite_hubkit: HubKit, tmp_path: Path
) -> None:
    kit = sqlite_hubkit
    core = core_for(kit, tmp_path, secret="hub-secret")
    a, b = kit.event(node_id="n1"), kit.event(node_id="n2")
    out = core.process([event_msg(a), event_msg(b)])
    payloads = dict(out.acks)
    n1 = payloads[topics.ack_topic("n1")]
    assert verify_ack(n1, ack_key_for("hub-secret", "n1"), "n1") == [a.id]
    with pytest.raises(AckError):  # n2's key proves nothing about n1's acks
        verify_ack(n1, ack_key_for("hub-secret", "n2"), "n1")
    with pytest.raises(AckError):
        verify_ack(n1, ack_key_for("another-secret", "n1"), "n1")
    assert verify_ack(payloads[topics.ack_topic("n2")], ack_key_for("hub-secret", "n2"), "n2") == [
        b.id
    ]


class RefusingStore:
    """The real store, refusing one event id as a database refuses a value it cannot hold,
    or failing as a whole (read-only database)."""

    def __init__(self, kit: HubKit, refuse_id: str = "", broken: bool = False) -> None:
        self._store = kit.store
        self.refuse_id = refuse_id
        self.broken = broken

    def insert_events(self, items: Any) -> list[tuple[str, str]]:
        if self.broken:
            raise OperationalError("INSERT", {}, Exception("attempt to write a readonly database"))
        if any(ev.id == self.refuse_id for ev, _ in items):
            raise DataError("INSERT", {}, Exception("invalid byte sequence: 0x00"))
        return self._store.insert_events(items)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)


def test_an_event_the_database_refuses_is_isolated_and_the_rest_commit(
    sqlite_hubkit: HubKit, tmp_path: Path
) -> None:
    kit = sqlite_hubkit
    events = [kit.event(node_id="n1") for _ in range(9)]
    core = IngestCore(
        IngestConfig(), RefusingStore(kit, events[4].id), EvidenceStore(tmp_path / "ev")
    )
    out = core.process([event_msg(e) for e in events])
    assert [e.id for e in out.committed] == [e.id for i, e in enumerate(events) if i != 4]
    assert acked(out.acks) == {"n1": [e.id for e in events]}  # the poison one too
    [(_, reason)] = dead_letters(kit)
    assert reason.startswith("unstorable: ") and "0x00" in reason
    assert core.counters["poison_isolated"] == 1 and core.counters["duplicates"] == 0


def test_a_failing_store_raises_and_nothing_is_acked(sqlite_hubkit: HubKit, tmp_path: Path) -> None:
    kit = sqlite_hubkit
    core = IngestCore(IngestConfig(), RefusingStore(kit, broken=True), EvidenceStore(tmp_path))
    with pytest.raises(OperationalError):
        core.process([event_msg(kit.event(node_id="n1"))])
    assert dead_letters(kit) == [] and kit.store.count_events() == 0


def test_a_will_after_an_online_status_raises_one_device_fault(
    sqlite_hubkit: HubKit, tmp_path: Path
) -> None:
    kit = sqlite_hubkit
    core = core_for(kit, tmp_path)
    t = datetime.now(UTC).replace(microsecond=0)
    will = NodeStatus(node_id="n1", online=False, ts=t - timedelta(minutes=5))  # made at connect
    online = NodeStatus(node_id="n1", online=True, ts=t)
    topic = topics.status_topic("n1")
    assert core.process([msg(topic, online.to_bytes())]).committed == []
    out = core.process([msg(topic, will.to_bytes())])
    [fault] = out.committed
    assert fault.type == "device_fault" and fault.incident_key == "n1/offline"
    assert out.acks == []  # statuses are not acknowledged end to end
    # a clean stop (a fresh offline status) raises nothing
    core.process([msg(topic, online.to_bytes())])
    clean = NodeStatus(node_id="n1", online=False, ts=t + timedelta(seconds=1))
    assert core.process([msg(topic, clean.to_bytes())]).committed == []
