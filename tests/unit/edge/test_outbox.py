"""The durable outbox: commit before send, ack deletes, re-send, replay, byte bound."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from edge.outbox import Outbox
from shaobing.contract import Event, new_event_id, now_utc

ROOT = Path(__file__).resolve().parents[3]


def make_event(
    seq: int, severity: str = "normal", evidence: dict[str, bytes] | None = None, pad: int = 0
) -> Event:
    t = now_utc()
    entries = [
        {
            "id": eid,
            "kind": "image",
            "content_type": "image/jpeg",
            "sha256": hashlib.sha256(b).hexdigest(),
            "bytes": len(b),
        }
        for eid, b in (evidence or {}).items()
    ]
    return Event(
        id=new_event_id(),
        type="other",
        severity=severity,
        incident_key=f"test/{seq}",
        occurred_at=t,
        detected_at=t,
        source={"node_id": "n1", "kind": "system", "device_id": "d1", "pipeline": "test"},
        location={"grid_id": "g1"},
        confidence=0.5,
        summary="测试事件",
        attributes={"seq": seq, "pad": "x" * pad},
        evidence=entries,
    )


def test_put_take_ack_lifecycle(tmp_path: Path) -> None:
    ob = Outbox(tmp_path / "o.sqlite")
    events = [make_event(i) for i in range(5)]
    for ev in events:
        ob.put(ev)
    assert ob.depth() == 5
    recs = ob.take(window=3, now=0.0)
    assert [r.id for r in recs] == [e.id for e in events[:3]]
    assert recs[0].payload == events[0].to_bytes()
    assert ob.take(window=3, now=0.1) == []  # window full, nothing due
    assert ob.ack([events[0].id, events[1].id, "unknown-id"]) == 2
    assert ob.depth() == 3
    recs = ob.take(window=3, now=0.2)
    assert [r.id for r in recs] == [e.id for e in events[3:5]]
    ob.close()


def test_resend_after_ack_timeout_and_after_lost_connection(tmp_path: Path) -> None:
    ob = Outbox(tmp_path / "o.sqlite", ack_timeout_s=10.0)
    a, b = make_event(1), make_event(2)
    ob.put(a)
    ob.put(b)
    assert [r.id for r in ob.take(window=10, now=100.0)] == [a.id, b.id]
    ob.mark_puback(a.id)
    assert ob.take(window=10, now=105.0) == []
    # the link drops: b never got its PUBACK and is due at once, a waits for the timeout
    assert ob.release_unconfirmed() == 1
    again = ob.take(window=10, now=106.0)
    assert [r.id for r in again] == [b.id] and again[0].attempt == 2
    assert [r.id for r in ob.take(window=10, now=110.5)] == [a.id]
    ob.close()


def test_ordered_replay_after_restart(tmp_path: Path) -> None:
    path = tmp_path / "o.sqlite"
    ob = Outbox(path)
    events = [make_event(i) for i in range(20)]
    ob.put_many([(e, None) for e in events])
    ob.take(window=20, now=0.0)
    ob.ack([e.id for e in events[:5]])
    ob.close()
    ob2 = Outbox(path)
    assert ob2.depth() == 15
    assert [r.id for r in ob2.take(window=100, now=0.0)] == [e.id for e in events[5:]]
    ob2.close()


def test_put_is_durable_when_the_process_is_killed(tmp_path: Path) -> None:
    path = tmp_path / "o.sqlite"
    code = f"""
import os, sys
sys.path.insert(0, {str(ROOT)!r})
from edge.outbox import Outbox
from shaobing_tools.loadgen import synthetic_event
ob = Outbox({str(path)!r})
for i in range(50):
    ob.put(synthetic_event("n1", i))
print("PUT", flush=True)
os.kill(os.getpid(), 9)
"""
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60
    )
    assert "PUT" in proc.stdout, proc.stderr
    assert proc.returncode == -9
    ob = Outbox(path)
    assert ob.depth() == 50
    ob.close()


def test_bound_evicts_oldest_normal_never_emergency_and_counts(tmp_path: Path) -> None:
    path = tmp_path / "o.sqlite"
    size = len(make_event(0, pad=900).to_bytes())
    ob = Outbox(path, max_bytes=size * 10 + 100)
    emergencies = [make_event(i, "emergency", pad=900) for i in range(3)]
    normals = [make_event(i, "normal", pad=900) for i in range(7)]
    ob.put(emergencies[0])
    for ev in normals:
        ob.put(ev)
    ob.put(emergencies[1])
    ob.put(emergencies[2])
    assert ob.depth() == 10 and ob.dropped == 0
    urgent = make_event(99, "urgent", pad=900)
    ob.put(urgent)  # evicts the oldest normal
    ids = ob.ids()
    assert normals[0].id not in ids and urgent.id in ids
    assert all(e.id in ids for e in emergencies)
    assert ob.dropped == 1
    ob.close()
    assert Outbox(path).dropped == 1  # the count is persisted


def test_full_of_emergencies_drops_new_normal_but_keeps_new_emergency(tmp_path: Path) -> None:
    size = len(make_event(0, pad=900).to_bytes())
    ob = Outbox(tmp_path / "o.sqlite", max_bytes=size * 3 + 100)
    for i in range(3):
        ob.put(make_event(i, "emergency", pad=900))
    ob.put(make_event(10, "normal", pad=900))
    assert ob.depth() == 3 and ob.dropped == 1
    extra = make_event(11, "emergency", pad=900)
    ob.put(extra)
    assert extra.id in ob.ids() and ob.depth() == 4 and ob.dropped == 1
    ob.close()


def test_a_new_event_evicts_only_lower_or_equal_severities(tmp_path: Path) -> None:
    size = len(make_event(0, pad=900).to_bytes())
    ob = Outbox(tmp_path / "o.sqlite", max_bytes=size * 3 + 100)
    urgents = [make_event(i, "urgent", pad=900) for i in range(3)]
    for ev in urgents:
        ob.put(ev)
    ob.put(make_event(10, "normal", pad=900))  # a normal event never evicts an urgent one
    assert ob.ids() == [e.id for e in urgents] and ob.dropped == 1
    newer = make_event(11, "urgent", pad=900)
    ob.put(newer)  # an urgent one evicts the oldest urgent
    assert ob.ids() == [e.id for e in urgents[1:]] + [newer.id] and ob.dropped == 2
    top = make_event(12, "emergency", pad=900)
    ob.put(top)  # so does an emergency
    assert ob.ids() == [e.id for e in urgents[2:]] + [newer.id, top.id] and ob.dropped == 3
    ob.close()


def test_evidence_is_stored_with_the_event_and_checked(tmp_path: Path) -> None:
    ob = Outbox(tmp_path / "o.sqlite")
    blob = os.urandom(5000)
    ev = make_event(1, evidence={"snap-1": blob})
    ob.put(ev, {"snap-1": blob})
    assert ob.stored_bytes >= 5000
    rec = ob.take(window=5, now=0.0)[0]
    assert rec.evidence == [("snap-1", blob)]
    with pytest.raises(ValueError, match="evidence"):
        ob.put(make_event(2), {"other": b"x"})
    ob.ack([ev.id])
    assert ob.stored_bytes == 0
    ob.close()


def test_put_is_idempotent_and_thread_safe(tmp_path: Path) -> None:
    ob = Outbox(tmp_path / "o.sqlite", ack_timeout_s=1.0)
    ev = make_event(0)
    ob.put(ev)
    ob.put(ev)
    assert ob.depth() == 1
    calls: list[int] = []
    ob.add_listener(lambda: calls.append(1))

    def worker(k: int) -> None:
        for i in range(25):
            ob.put(make_event(k * 100 + i))

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert ob.depth() == 101
    assert len(calls) == 100
    ob.close()
    with pytest.raises(RuntimeError, match="closed"):
        ob.take(window=1)
