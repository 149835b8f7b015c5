"""Evidence files: named by content, pending until the event is known, checked against it."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path

import pytest

from hub.evidence import EvidenceMismatch, EvidenceStore
from hub.store import Store
from shaobing.contract import Event, new_event_id, now_utc


def event_with(node: str, evidence_id: str, data: bytes) -> Event:
    t = now_utc()
    return Event(
        id=new_event_id(),
        type="other",
        severity="normal",
        incident_key="k",
        occurred_at=t,
        detected_at=t,
        source={"node_id": node, "kind": "camera", "device_id": "cam1", "pipeline": "p"},
        location={"grid_id": "g"},
        confidence=0.5,
        summary="测试",
        evidence=[
            {
                "id": evidence_id,
                "kind": "image",
                "content_type": "image/jpeg",
                "sha256": hashlib.sha256(data).hexdigest(),
                "bytes": len(data),
            }
        ],
    )


@pytest.fixture
def store(tmp_path: Path) -> Store:
    s = Store(f"sqlite:///{tmp_path / 'hub.sqlite'}")
    s.migrate()
    return s


def test_pending_evidence_is_recorded_when_its_event_commits_even_after_a_restart(
    tmp_path: Path, store: Store
) -> None:
    data = b"jpeg bytes" * 100
    ev = event_with("n1", "snap-1", data)
    first = EvidenceStore(tmp_path / "evidence")
    item = first.write("n1", "snap-1", data, datetime.now(UTC))
    assert Path(item.path).name == hashlib.sha256(data).hexdigest()
    assert Path(item.path).is_relative_to(tmp_path / "evidence")
    assert first.receive(item, store) == "pending"
    assert store.get_evidence("n1", "snap-1") is None
    again = EvidenceStore(tmp_path / "evidence")  # a hub restart between evidence and event
    assert again.events_committed([ev], store) == []
    rec = store.get_evidence("n1", "snap-1")
    assert (
        rec is not None
        and rec["sha256"] == hashlib.sha256(data).hexdigest()
        and rec["bytes"] == len(data)
    )


def test_evidence_after_its_event_is_checked_against_it(tmp_path: Path, store: Store) -> None:
    good = b"A" * 64
    ev = event_with("n1", "snap-2", good)
    es = EvidenceStore(tmp_path / "evidence")
    es.events_committed([ev], store)
    with pytest.raises(EvidenceMismatch, match="expected sha256"):
        es.receive(es.write("n1", "snap-2", b"B" * 64, datetime.now(UTC)), store)
    assert store.get_evidence("n1", "snap-2") is None
    assert es.receive(es.write("n1", "snap-2", good, datetime.now(UTC)), store) == "recorded"
    assert store.get_evidence("n1", "snap-2") is not None


def test_pending_evidence_that_does_not_match_is_reported(tmp_path: Path, store: Store) -> None:
    es = EvidenceStore(tmp_path / "evidence")
    es.receive(es.write("n1", "snap-3", b"other bytes", datetime.now(UTC)), store)
    problems = es.events_committed([event_with("n1", "snap-3", b"expected bytes")], store)
    assert len(problems) == 1 and problems[0][0] == "n1"
    assert store.get_evidence("n1", "snap-3") is None


def test_oversized_evidence_is_refused(tmp_path: Path) -> None:
    es = EvidenceStore(tmp_path / "evidence", max_bytes=1024)
    with pytest.raises(ValueError, match="at most 1024 bytes"):
        es.write("n1", "big", b"x" * 2048, datetime.now(UTC))
