"""What people said of this node's alarms: false-alarm verdicts per camera and zone.

The hub sends a ``Verdict`` on ``shaobing/v1/{node}/verdict`` when a person marks an alarm
false. The node keeps a bounded record per camera (or sensor) and zone: how many, for which
reasons, the last ones, so the installer sees which zone needs redrawing (``/metrics``,
the node status and ``/api/v1/verdicts``). The record survives restarts in the node's
pipeline state file.
"""

from __future__ import annotations

import threading
from collections import deque
from typing import Any

from shaobing.contract import Verdict

__all__ = ["VerdictBook"]

_LAST = 20  # verdicts kept per camera and zone, newest last
_MAX_KEYS = 1000  # cameras × zones remembered


class VerdictBook:
    """Counts of false-alarm verdicts by (device, zone) and reason; thread-safe, bounded."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._book: dict[tuple[str, str], dict[str, Any]] = {}
        self.received = 0

    def record(self, verdict: Verdict) -> None:
        """Add one verdict (duplicates of one work order and device count once)."""
        key = (verdict.device_id, verdict.zone or "")
        with self._lock:
            entry = self._book.get(key)
            if entry is None:
                if len(self._book) >= _MAX_KEYS:
                    self._book.pop(next(iter(self._book)))
                entry = self._book[key] = {"reasons": {}, "last": deque(maxlen=_LAST), "seen": []}
            ident = verdict.work_order_id or verdict.incident_id
            if ident in entry["seen"]:
                return
            entry["seen"] = [*entry["seen"], ident][-200:]
            entry["reasons"][verdict.reason] = entry["reasons"].get(verdict.reason, 0) + 1
            entry["last"].append(
                {
                    "incident_id": verdict.incident_id,
                    "pipeline": verdict.pipeline,
                    "reason": verdict.reason,
                    "note": verdict.note,
                    "by": verdict.actor,
                    "at": verdict.ts.isoformat(),
                    "incident_keys": list(verdict.incident_keys[:10]),
                }
            )
            self.received += 1

    def counts(self) -> list[tuple[str, str, str, int]]:
        """(device, zone, reason, count) rows, for metrics."""
        with self._lock:
            return [
                (dev, zone, reason, n)
                for (dev, zone), e in self._book.items()
                for reason, n in sorted(e["reasons"].items())
            ]

    def per_device(self) -> dict[str, int]:
        """False alarms per camera or sensor (all zones)."""
        out: dict[str, int] = {}
        for dev, _zone, _reason, n in self.counts():
            out[dev] = out.get(dev, 0) + n
        return out

    def snapshot(self) -> list[dict[str, Any]]:
        """The whole record, worst first (``/api/v1/verdicts``)."""
        with self._lock:
            rows = [
                {
                    "device_id": dev,
                    "zone": zone or None,
                    "false_alarms": sum(e["reasons"].values()),
                    "reasons": dict(e["reasons"]),
                    "last": list(e["last"]),
                }
                for (dev, zone), e in self._book.items()
            ]
        return sorted(rows, key=lambda r: -int(r["false_alarms"]))

    def state(self) -> list[dict[str, Any]]:
        """JSON-ready state for the node's state file."""
        with self._lock:
            return [
                {
                    "device_id": dev,
                    "zone": zone,
                    "reasons": dict(e["reasons"]),
                    "last": list(e["last"]),
                    "seen": list(e["seen"]),
                }
                for (dev, zone), e in self._book.items()
            ]

    def load_state(self, saved: Any) -> None:
        """Restore from ``state()`` (unreadable entries are skipped)."""
        if not isinstance(saved, list):
            return
        with self._lock:
            for item in saved[:_MAX_KEYS]:
                try:
                    key = (str(item["device_id"]), str(item.get("zone") or ""))
                    self._book[key] = {
                        "reasons": {str(k): int(v) for k, v in dict(item["reasons"]).items()},
                        "last": deque(list(item.get("last") or [])[-_LAST:], maxlen=_LAST),
                        "seen": [str(x) for x in item.get("seen") or []][-200:],
                    }
                except (KeyError, TypeError, ValueError):
                    continue
