"""Camera + sensor fusion: two independent sources of the same fire or smoke confirm each other.

The node keeps one :class:`Fusion` and uses two calls:

1. ``fusion.note_event(event)`` for every event it emits. Active and update events of
   type ``smoke``, ``fire`` or ``gas_leak`` from a registered sensor, and ``smoke`` or
   ``fire`` from a camera, are remembered (event id, sensor or camera, zone, type,
   severity, ``occurred_at``) for ``window_s``; anything else is ignored.
2. ``related, severity = fusion.link(finding, camera_id, at)`` before it builds the
   event of a new finding, then ``dataclasses.replace(finding, related=…, severity=…)``.

   - a **camera** finding (``camera_id`` given) of type smoke/fire looks for remembered
     sensor events of sensors linked to that camera;
   - a **sensor** finding (``finding.kind == "sensor"``, ``finding.device_id`` a
     registered sensor; ``camera_id`` None) of type smoke/fire/gas_leak looks for
     remembered camera events of the camera linked to that sensor — so the order does
     not matter: whichever event comes second names the first in ``related``.

A sensor is linked to a camera finding when ``SensorConfig.camera`` equals the camera
and, where both the sensor and the finding name a zone, the zones are equal; a sensor
without ``camera`` is linked by zone name alone (``SensorConfig.zone`` equal to the
finding's zone). A sensor with neither is never linked. Only events whose
``occurred_at`` lies within ``window_s`` (default 120 s) of ``at`` count, in either
direction.

Severity rule (never lowered; the finding's own severity is the floor):

- any of the two sources says ``fire`` (a camera flame, a heat sensor) and the other
  says smoke or fire → **emergency** (fire confirmed by two sources);
- a gas leak sensor with a camera's smoke or fire → **emergency** (ignition risk);
- camera smoke with sensor smoke → at least **urgent** (smoke confirmed; a fire is not
  yet seen, so it stays a hazard to check within hours unless another cue raises it).

A camera detection alone or a sensor alone keeps its own severity and gets no
``related``. Cleared findings are never linked. Memory is bounded (``max_events``, and
events older than ``window_s`` behind the newest are dropped).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from pipelines.base import Finding, Severity
from shaobing.config import SensorConfig
from shaobing.contract import Event
from shaobing.severity import max_severity

__all__ = ["Fusion", "CAMERA_TYPES", "SENSOR_TYPES", "MAX_RELATED"]

CAMERA_TYPES = frozenset({"smoke", "fire"})
"""Camera event types that fusion links."""
SENSOR_TYPES = frozenset({"smoke", "fire", "gas_leak"})
"""Sensor event types that fusion links."""
MAX_RELATED = 16
"""At most this many related ids per finding (newest first)."""


@dataclass(frozen=True)
class _Seen:
    event_id: str
    source_kind: str
    device_id: str
    zone: str | None
    type: str
    severity: Severity
    at: datetime


def _raised(own_type: str, other_type: str) -> Severity:
    """Severity two agreeing sources deserve (see the module docstring)."""
    types = {own_type, other_type}
    if "fire" in types or "gas_leak" in types:
        return "emergency"
    return "urgent"


class Fusion:
    """Link camera smoke/fire findings with linked sensors' alarms (module docstring)."""

    def __init__(
        self, sensors: Iterable[SensorConfig], window_s: float = 120.0, max_events: int = 256
    ) -> None:
        """Set up fusion for a node.

        Args:
            sensors: the node's sensor registry (``camera`` and ``zone`` give the links).
            window_s: how far apart (seconds, either order) two events may be to confirm each other.
            max_events: bound on remembered events.
        """
        if window_s <= 0:
            raise ValueError(f"window_s: expected a positive number of seconds, found {window_s!r}")
        self.window_s = float(window_s)
        self._sensors = {s.id: s for s in sensors}
        self._seen: deque[_Seen] = deque(maxlen=max_events)
        self.links = 0

    def note_event(self, event: Event) -> None:
        """Remember an emitted event when it can confirm a later one."""
        if event.state == "cleared":
            return
        src = event.source
        if src.kind == "sensor":
            if event.type not in SENSOR_TYPES or src.device_id not in self._sensors:
                return
        elif src.kind == "camera":
            if event.type not in CAMERA_TYPES:
                return
        else:
            return
        seen = _Seen(
            event_id=event.id,
            source_kind=src.kind,
            device_id=src.device_id,
            zone=event.location.zone,
            type=event.type,
            severity=event.severity,
            at=event.occurred_at,
        )
        self._seen.append(seen)
        newest = max(s.at for s in self._seen)
        while self._seen and (newest - self._seen[0].at).total_seconds() > self.window_s:
            self._seen.popleft()

    def link(
        self, finding: Finding, camera_id: str | None, at: datetime
    ) -> tuple[tuple[str, ...], Severity]:
        """Related event ids and the severity for a finding about to become an event.

        Args:
            finding: the new finding (camera or sensor).
            camera_id: the camera that produced it, or None for a sensor finding.
            at: the finding's time (normally ``finding.occurred_at``).

        Returns:
            (ids of the remembered events it confirms, newest first — joined after any
            ids the finding already carries; the severity to use).
        """
        own: Severity = finding.severity
        if finding.state == "cleared":
            return finding.related, own
        matches: list[_Seen] = []
        if camera_id is not None and finding.kind in (None, "camera"):
            if finding.type not in CAMERA_TYPES:
                return finding.related, own
            matches = [
                s
                for s in self._seen
                if s.source_kind == "sensor"
                and self._linked(self._sensors[s.device_id], camera_id, finding.zone)
            ]
        elif finding.kind == "sensor" and finding.device_id in self._sensors:
            if finding.type not in SENSOR_TYPES:
                return finding.related, own
            sensor = self._sensors[finding.device_id]
            matches = [
                s
                for s in self._seen
                if s.source_kind == "camera" and self._linked(sensor, s.device_id, s.zone)
            ]
        matches = [s for s in matches if abs((s.at - at).total_seconds()) <= self.window_s]
        if not matches:
            return finding.related, own
        matches.sort(key=lambda s: s.at, reverse=True)
        severity: Severity = own
        ids: list[str] = list(finding.related)
        for s in matches:
            severity = max_severity(severity, _raised(finding.type, s.type))
            if s.event_id not in ids and len(ids) < MAX_RELATED:
                ids.append(s.event_id)
        self.links += 1
        return tuple(ids), severity

    @staticmethod
    def _linked(sensor: SensorConfig, camera_id: str, zone: str | None) -> bool:
        """Whether a sensor watches what ``camera_id`` saw in ``zone``."""
        if sensor.camera is not None:
            if sensor.camera != camera_id:
                return False
            return sensor.zone is None or zone is None or sensor.zone == zone
        return sensor.zone is not None and sensor.zone == zone
