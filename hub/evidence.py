"""Evidence bytes received over MQTT, stored on disk by content.

Files live under ``{root}/objects/{sha[:2]}/{sha}``: names never come from the wire.
Evidence usually arrives before the event that references it (the edge sends it
first); until that event is committed, the evidence is *pending*: a small JSON note
under ``{root}/pending/`` (named by a hash of node and evidence id) remembers it, so a
hub restart in between loses nothing. When the event is known the sha256 and size are
checked against its ``Evidence`` entry and the file is recorded in the store.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol

from hub.objects import DiskObjects, ObjectStore
from shaobing.contract import Event

__all__ = ["EvidenceStore", "EvidenceRecorder", "StoredEvidence", "EvidenceMismatch"]

log = logging.getLogger(__name__)


class EvidenceRecorder(Protocol):
    """The part of the hub's store that evidence needs."""

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


class EvidenceMismatch(ValueError):
    """Evidence bytes that do not match the event's Evidence entry."""


@dataclass(frozen=True)
class StoredEvidence:
    """Evidence written to disk."""

    node_id: str
    evidence_id: str
    sha256: str
    size: int
    path: str
    received_at: datetime


class EvidenceStore:
    """Content-addressed evidence files plus the pending/expected bookkeeping.

    Args:
        root: folder for the files (created).
        max_bytes: larger evidence is refused (the caller dead-letters it).
        remember: how many committed events' evidence entries are kept in memory, for
            evidence that arrives after its event.
    """

    def __init__(
        self,
        root: str | Path,
        max_bytes: int = 50 * 2**20,
        remember: int = 100_000,
        objects: ObjectStore | None = None,
    ) -> None:
        self.root = Path(root)
        self.backend: ObjectStore = objects or DiskObjects(self.root)
        self.objects = self.root / "objects"
        self.pending_dir = self.root / "pending"
        self.pending_dir.mkdir(parents=True, exist_ok=True)
        self.max_bytes = max_bytes
        self._expected: OrderedDict[tuple[str, str], tuple[str, int]] = OrderedDict()
        self._remember = remember
        self._lock = threading.Lock()
        self.counters = {"stored": 0, "recorded": 0, "pending": 0, "mismatch": 0}

    def _pending_path(self, node_id: str, evidence_id: str) -> Path:
        key = hashlib.sha256(f"{node_id}\0{evidence_id}".encode()).hexdigest()
        return self.pending_dir / f"{key}.json"

    def write(
        self, node_id: str, evidence_id: str, data: bytes, received_at: datetime
    ) -> StoredEvidence:
        """Write the bytes (atomically, by sha256); raises ValueError when too large."""
        if len(data) > self.max_bytes:
            raise ValueError(
                f"evidence: expected at most {self.max_bytes} bytes, found {len(data)}"
            )
        sha = hashlib.sha256(data).hexdigest()
        location = self.backend.put(sha, data)
        self.counters["stored"] += 1
        return StoredEvidence(node_id, evidence_id, sha, len(data), location, received_at)

    def receive(self, item: StoredEvidence, recorder: EvidenceRecorder) -> str:
        """Bytes arrived: record them when the event is known, else keep them pending.

        Returns:
            ``recorded`` or ``pending``.

        Raises:
            EvidenceMismatch: the event is known and names another sha256 or size.
        """
        with self._lock:
            expected = self._expected.get((item.node_id, item.evidence_id))
        if expected is None:
            note = {
                "node_id": item.node_id,
                "evidence_id": item.evidence_id,
                "sha256": item.sha256,
                "size": item.size,
                "path": item.path,
                "received_at": item.received_at.isoformat(),
            }
            p = self._pending_path(item.node_id, item.evidence_id)
            tmp = p.with_suffix(".tmp")
            tmp.write_text(json.dumps(note))
            os.replace(tmp, p)
            self.counters["pending"] += 1
            return "pending"
        self._check(item, expected)
        recorder.record_evidence(
            item.node_id, item.evidence_id, item.sha256, item.size, item.path, item.received_at
        )
        self.counters["recorded"] += 1
        return "recorded"

    def _check(self, item: StoredEvidence, expected: tuple[str, int]) -> None:
        sha, size = expected
        if item.sha256 != sha or item.size != size:
            self.counters["mismatch"] += 1
            raise EvidenceMismatch(
                f"evidence {item.evidence_id}: expected sha256 {sha} and {size} bytes (from the event), "
                f"found sha256 {item.sha256} and {item.size} bytes"
            )

    def events_committed(
        self, events: list[Event], recorder: EvidenceRecorder
    ) -> list[tuple[str, str]]:
        """Events with evidence were committed: record their pending evidence.

        Returns:
            ``(node_id, reason)`` for each pending evidence that did not match.
        """
        problems: list[tuple[str, str]] = []
        for ev in events:
            node = ev.source.node_id
            for entry in ev.evidence:
                with self._lock:
                    self._expected[(node, entry.id)] = (entry.sha256, entry.bytes)
                    self._expected.move_to_end((node, entry.id))
                    while len(self._expected) > self._remember:
                        self._expected.popitem(last=False)
                p = self._pending_path(node, entry.id)
                if not p.exists():
                    continue
                try:
                    note = json.loads(p.read_text())
                    item = StoredEvidence(
                        node,
                        entry.id,
                        note["sha256"],
                        int(note["size"]),
                        note["path"],
                        datetime.fromisoformat(note["received_at"]),
                    )
                    self._check(item, (entry.sha256, entry.bytes))
                except EvidenceMismatch as exc:
                    problems.append((node, str(exc)))
                    p.unlink(missing_ok=True)
                    continue
                except (ValueError, KeyError, OSError) as exc:
                    log.warning("pending evidence note %s unreadable: %s", p.name, exc)
                    p.unlink(missing_ok=True)
                    continue
                recorder.record_evidence(
                    item.node_id,
                    item.evidence_id,
                    item.sha256,
                    item.size,
                    item.path,
                    item.received_at,
                )
                self.counters["recorded"] += 1
                p.unlink(missing_ok=True)
        return problems
