"""Fire lane blocked (消防通道违停): a vehicle standing in the fire-lane zone for ``dwell_s``.

The pipeline thinks in *parked vehicles*, not tracker ids. A parked vehicle is a place in
the image (the running mean of the boxes seen there) plus, when the node supplies one, a
colour histogram. Every detector sample, each vehicle box inside the zone is matched to the
vehicle whose place it overlaps (IoU ≥ ``still_iou``; between ``still_iou`` and
``sure_iou`` the histograms must agree too). So:

* a still car whose box jitters keeps matching its place: the dwell is not reset;
* a car hidden by a passing bus, missed by the detector at night, or given a new tracker id
  is found again at its place when it is seen next: the dwell goes on and it never alerts
  twice — unless it stays unseen for ``leave_s``;
* a car driving through moves away from every place it creates, so no place lives long
  enough to alert; a car that stops for less than ``dwell_s`` and drives on never alerts;
* a place matched at a much higher IoU (``sure_iou``) wins over colour: headlights and the
  day → night change alter the histogram, not the place;
* one vehicle reported twice by the detector (a van as ``car`` and ``truck``) is one box;
  a reported vehicle half hidden by a person in front (a smaller box inside its place) is
  still that vehicle, and a second place nested in a reported one never alerts itself.

``Track.appearance`` (a normalised colour histogram) is optional: without it places alone
decide. With it, a vehicle already cleared must also match in colour to be taken for the
same one, so that a different car taking the same spot later is reported.

One ``fire_lane_blocked`` finding (state ``active``) per vehicle once its dwell reaches
``dwell_s``; ``cleared`` (same ``incident_key``, total dwell) when it has not been seen at
its place for ``leave_s``. A cleared vehicle is remembered for ``remember_s``: seen at the
same place again (the detector lost it for long at night, say) it is the same vehicle and
raises nothing new.

Restarts: the node calls ``state_dict()`` (JSON-serialisable) before it stops and
``load_state(state)`` after it rebuilt the pipeline; vehicle ids and places survive, and
the ``leave_s`` clock restarts at the first observation after loading, so the downtime
itself never clears (nor re-alerts) a parked vehicle.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from pipelines.base import Box, CameraContext, Finding, Observation, Severity, State, Track
from pipelines.geometry import iou, point_in_polygon
from pipelines.situation import Situation
from pipelines.zone_intrusion import cls_name_zh

TYPE = "fire_lane_blocked"
STATE_VERSION = 1


class Options(BaseModel):
    """``fire_lane`` options under ``cameras[].pipelines``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    zone: str = Field(description="fire-lane zone name from cameras[].zones")
    dwell_s: float = Field(
        default=180.0,
        ge=1.0,
        le=86400.0,
        description="seconds a vehicle must stand in the zone before the alert",
    )
    classes: list[str] = Field(
        default_factory=lambda: ["car", "truck", "bus", "motorcycle"],
        min_length=1,
        description="detector classes counted as vehicles",
    )
    min_confidence: float = Field(default=0.0, ge=0.0, le=1.0, description="ignore weaker tracks")
    still_iou: float = Field(
        default=0.5,
        gt=0.0,
        lt=1.0,
        description="a box overlapping a vehicle's place at least this much (IoU) is that vehicle, standing still",
    )
    sure_iou: float = Field(
        default=0.75,
        gt=0.0,
        le=1.0,
        description="above this overlap the place alone identifies the vehicle (colour may change: night, headlights)",
    )
    min_appearance: float = Field(
        default=0.6,
        ge=0.0,
        le=1.0,
        description="histogram intersection needed between still_iou and sure_iou when both sides have an appearance",
    )
    leave_s: float = Field(
        default=120.0,
        ge=1.0,
        le=86400.0,
        description="a vehicle not seen at its place for this long has left (bridges occlusions and night misses)",
    )
    start_grace_s: float = Field(
        default=3.0,
        ge=0.5,
        le=600.0,
        description="a place seen for less than this is forgotten after this long unseen (a car driving past)",
    )
    remember_s: float = Field(
        default=900.0,
        ge=0.0,
        le=7 * 86400.0,
        description="how long a cleared vehicle is remembered, so that seeing it again raises nothing new",
    )
    max_vehicles: int = Field(
        default=256, ge=8, le=10000, description="bound on places tracked at once"
    )


def _histogram_intersection(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    """Similarity of two normalised histograms, 0..1 (1: identical)."""
    if len(a) != len(b) or not a:
        return 0.0
    sa = sum(a) or 1.0
    sb = sum(b) or 1.0
    return float(sum(min(x / sa, y / sb) for x, y in zip(a, b, strict=True)))


@dataclass
class _Vehicle:
    """One place where a vehicle stands (or stood)."""

    number: int
    class_name: str
    box: list[float]  # running mean of the boxes matched to this place
    origin: list[float]  # the place where the dwell started
    first_seen: datetime  # start of the dwell
    last_seen: datetime | None  # None: not seen since the state was loaded
    matches: int = 1
    confidence_sum: float = 0.0
    appearance: list[float] | None = None
    track_id: int | None = None
    alerted: bool = False
    cleared_at: datetime | None = None
    shadow: bool = False  # a part of an already reported vehicle: never reported itself
    unseen_since_load: datetime | None = None
    situation: Situation | None = None  # once reported (rebuilt from the fields on load)

    def dwell_s(self) -> float:
        """Seconds from the first to the last sighting at this place."""
        end = self.last_seen or self.first_seen
        return max(0.0, (end - self.first_seen).total_seconds())

    def absorb(self, track: Track, at: datetime) -> None:
        """Add one sighting: refine the place, the colour and the clock."""
        self.matches += 1
        weight = 1.0 / min(self.matches, 20)  # running mean, then a slow average
        self.box = [
            (1 - weight) * b + weight * float(n) for b, n in zip(self.box, track.xyxy, strict=True)
        ]
        if track.appearance is not None:
            if self.appearance is None or len(self.appearance) != len(track.appearance):
                self.appearance = [float(v) for v in track.appearance]
            else:
                self.appearance = [
                    0.9 * a + 0.1 * float(v)
                    for a, v in zip(self.appearance, track.appearance, strict=True)
                ]
        self.confidence_sum += float(track.confidence)
        self.track_id = track.track_id
        self.last_seen = at
        self.unseen_since_load = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form."""
        return {
            "number": self.number,
            "class_name": self.class_name,
            "box": [round(v, 2) for v in self.box],
            "origin": [round(v, 2) for v in self.origin],
            "first_seen": self.first_seen.isoformat(),
            "last_seen": self.last_seen.isoformat() if self.last_seen else None,
            "matches": self.matches,
            "confidence_sum": round(self.confidence_sum, 4),
            "appearance": [round(v, 6) for v in self.appearance] if self.appearance else None,
            "alerted": self.alerted,
            "shadow": self.shadow,
            "cleared_at": self.cleared_at.isoformat() if self.cleared_at else None,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> _Vehicle:
        """Inverse of ``to_dict``."""
        last = data.get("last_seen")
        cleared = data.get("cleared_at")
        appearance = data.get("appearance")
        return cls(
            number=int(data["number"]),
            class_name=str(data["class_name"]),
            box=[float(v) for v in data["box"]],
            origin=[float(v) for v in data.get("origin", data["box"])],
            first_seen=datetime.fromisoformat(data["first_seen"]),
            last_seen=datetime.fromisoformat(last) if last else None,
            matches=int(data.get("matches", 1)),
            confidence_sum=float(data.get("confidence_sum", 0.0)),
            appearance=[float(v) for v in appearance] if appearance else None,
            alerted=bool(data.get("alerted", False)),
            shadow=bool(data.get("shadow", False)),
            cleared_at=datetime.fromisoformat(cleared) if cleared else None,
        )


@dataclass
class FireLane:
    """Parked-vehicle bookkeeping for one camera's fire lane."""

    options: Options
    context: CameraContext
    severity: Severity = "normal"
    name: str = "fire_lane"
    needs_every_frame: bool = False
    needs_frames: bool = False
    needs_detections: bool = True
    _vehicles: list[_Vehicle] = field(default_factory=list)
    _next_number: int = 1
    _loaded: bool = False

    # ------------------------------------------------------------------ per sample

    def update(self, obs: Observation) -> list[Finding]:
        """Match this sample's vehicles to their places; alert and clear."""
        if obs.tracks is None:
            return []
        polygon = self.context.zones[self.options.zone]
        findings: list[Finding] = []
        if self._loaded:
            # the leave_s clock restarts at the first observation after a restart
            for v in self._vehicles:
                v.unseen_since_load = obs.at
            self._loaded = False
        # places unseen for too long go first, so that a late sighting starts afresh
        findings.extend(self._expire(obs.at))
        candidates = [
            t
            for t in obs.tracks
            if t.class_name in self.options.classes
            and t.lost_s <= 0.0  # a lost track's box is a prediction, not a sighting
            and t.confidence >= self.options.min_confidence
            and (point_in_polygon(t.bottom_center, polygon) or point_in_polygon(t.center, polygon))
        ]
        candidates = _without_duplicates(candidates)
        taken: set[int] = set()  # id() of the vehicles already matched in this sample
        # biggest boxes first: a bus passing in front of a car claims its own place first
        for track in sorted(candidates, key=_area, reverse=True):
            vehicle = self._match(track, taken)
            partial = False
            if vehicle is None:
                vehicle = self._partial_match(track, taken)
                partial = vehicle is not None
            if vehicle is None:
                vehicle = self._new_vehicle(track, obs.at)
            elif partial:
                # a parked vehicle half hidden (a person standing in front): its smaller box
                # lies inside the place; it is still there, but the place keeps its shape
                vehicle.last_seen = obs.at
                vehicle.unseen_since_load = None
            else:
                # a vehicle already cleared and seen at its place again (a long miss at
                # night, say) is the same vehicle: followed again, silently
                vehicle.absorb(track, obs.at)
                if (
                    not vehicle.alerted
                    and iou(vehicle.box, vehicle.origin) < self.options.still_iou
                ):
                    # the place crept away from where the dwell started: a car inching
                    # forward in a queue is moving, not parked — start its dwell again
                    vehicle.origin = list(vehicle.box)
                    vehicle.first_seen = obs.at
            taken.add(id(vehicle))
            if not vehicle.alerted and vehicle.dwell_s() >= self.options.dwell_s:
                vehicle.alerted = True
                # the same vehicle seen as a part while half hidden (or whole again): one
                # place nests in the other of an already reported one → no second alert
                vehicle.shadow = any(
                    other is not vehicle
                    and other.alerted
                    and not other.shadow
                    and other.cleared_at is None
                    and _nested(other.box, vehicle.box)
                    for other in self._vehicles
                )
                if not vehicle.shadow:
                    findings.append(self._active(vehicle, track, obs))
        return findings

    def resume(self, at: datetime, t: float, gap_s: float) -> None:
        """The camera was blind for ``gap_s`` before ``at`` (a lost stream, a restart).

        A vehicle nobody could see has not left: every place's ``leave_s`` clock restarts at
        ``at``, as after a restart; a vehicle still there is matched again under its id, one
        really gone is cleared ``leave_s`` after the first frame back.
        """
        for v in self._vehicles:
            v.unseen_since_load = at

    def _match(self, track: Track, taken: set[int]) -> _Vehicle | None:
        best: tuple[tuple[int, int, float, float], _Vehicle] | None = None
        for v in self._vehicles:
            if id(v) in taken:
                continue
            overlap = iou(track.xyxy, v.box)
            if overlap < self.options.still_iou:
                continue
            # colour decides between still_iou and sure_iou; for a vehicle already cleared
            # (seen again after a long gap) it must agree at any overlap: a different car
            # may have taken the same spot
            if (
                (overlap < self.options.sure_iou or v.cleared_at is not None)
                and track.appearance is not None
                and v.appearance is not None
            ):
                if (
                    _histogram_intersection(track.appearance, tuple(v.appearance))
                    < self.options.min_appearance
                ):
                    continue
            # prefer: an alerted vehicle, the same tracker id, the longest dwell, the best overlap
            key = (int(v.alerted), int(v.track_id == track.track_id), v.dwell_s(), overlap)
            if best is None or key > best[0]:
                best = (key, v)
        return best[1] if best else None

    def _partial_match(self, track: Track, taken: set[int]) -> _Vehicle | None:
        """A reported, uncleared vehicle whose place contains most of ``track``'s box."""
        best: tuple[float, _Vehicle] | None = None
        area = _area(track)
        if area <= 0:
            return None
        for v in self._vehicles:
            # only a vehicle already reported: a place that is merely standing might be a
            # slow bus that a car behind it would otherwise be folded into
            if id(v) in taken or not v.alerted or v.cleared_at is not None or v.shadow:
                continue
            inside = _intersection(track.xyxy, v.box) / area
            if inside >= 0.85 and (best is None or v.dwell_s() > best[0]):
                best = (v.dwell_s(), v)
        return best[1] if best else None

    def _new_vehicle(self, track: Track, at: datetime) -> _Vehicle:
        vehicle = _Vehicle(
            number=0,
            class_name=track.class_name,
            box=[float(v) for v in track.xyxy],
            origin=[float(v) for v in track.xyxy],
            first_seen=at,
            last_seen=at,
            confidence_sum=float(track.confidence),
            appearance=[float(v) for v in track.appearance]
            if track.appearance is not None
            else None,
            track_id=track.track_id,
        )
        self._vehicles.append(vehicle)
        if len(self._vehicles) > self.options.max_vehicles:
            # drop the place that matters least: never alerted, then least recently seen
            victim = min(
                self._vehicles[:-1],
                key=lambda v: (v.alerted and v.cleared_at is None, v.last_seen or v.first_seen),
            )
            self._vehicles.remove(victim)
        return vehicle

    def _expire(self, now: datetime) -> list[Finding]:
        findings: list[Finding] = []
        keep: list[_Vehicle] = []
        for v in self._vehicles:
            seen = v.unseen_since_load or v.last_seen or v.first_seen
            unseen_s = (now - seen).total_seconds()
            if v.cleared_at is not None:
                # remembered while seen and for remember_s after: never a second alert
                if (now - max(v.cleared_at, seen)).total_seconds() <= self.options.remember_s:
                    keep.append(v)
                continue
            if v.shadow:
                if unseen_s < self.options.leave_s:
                    keep.append(v)
                continue
            if v.alerted:
                if unseen_s >= self.options.leave_s:
                    v.cleared_at = now
                    findings.append(self._cleared(v, now, "left"))
                    if self.options.remember_s > 0:
                        keep.append(v)
                else:
                    keep.append(v)
                continue
            # not alerted yet: a short-lived place (a car driving past) is forgotten quickly;
            # a car that has stood a while keeps its dwell through occlusions up to leave_s
            grace = min(self.options.leave_s, max(self.options.start_grace_s, v.dwell_s()))
            if unseen_s < grace:
                keep.append(v)
        self._vehicles = keep
        return findings

    # ------------------------------------------------------------------ findings

    def _key(self, v: _Vehicle) -> str:
        if v.number == 0:
            v.number = self._next_number
            self._next_number += 1
        return f"{self.context.camera_id}/fire_lane/v{v.number:04d}"

    def _active(self, v: _Vehicle, track: Track, obs: Observation) -> Finding:
        v.situation = Situation(TYPE, self.severity, self._key(v))
        dwell = v.dwell_s()
        zone = self.options.zone
        box: Box = (
            float(track.xyxy[0]),
            float(track.xyxy[1]),
            float(track.xyxy[2]),
            float(track.xyxy[3]),
        )
        minutes = dwell / 60.0
        when = f"{minutes:.0f}分钟" if minutes >= 1 else f"{dwell:.0f}秒"
        return v.situation.report(
            "active",
            occurred_at=obs.at,
            confidence=round(min(1.0, v.confidence_sum / max(1, v.matches)), 3),
            summary=f"消防通道（{zone}）{cls_name_zh(v.class_name)}违停已{when}",
            attributes={
                "vehicle_id": f"v{v.number:04d}",
                "class": v.class_name,
                "dwell_s": round(dwell, 1),
                "since": v.first_seen.isoformat(),
                "box": [round(c, 1) for c in box],
                "track_id": track.track_id,
                "zone": zone,
                "media_time_s": round(obs.t, 3),
            },
            zone=zone,
            address=self.context.address,
            grid_id=self.context.grid_id,
            boxes=(box,),
            snapshot=True,
        )

    def _cleared(self, v: _Vehicle, at: datetime, reason: str) -> Finding:
        assert v.situation is not None  # only a reported vehicle is cleared
        zone = self.options.zone
        dwell = v.dwell_s()
        box: Box = (v.box[0], v.box[1], v.box[2], v.box[3])
        return v.situation.report(
            "cleared",
            occurred_at=at,
            confidence=round(min(1.0, v.confidence_sum / max(1, v.matches)), 3),
            summary=(
                f"消防通道（{zone}）{cls_name_zh(v.class_name)}已驶离，共停留{dwell / 60.0:.1f}分钟"
                if reason == "left"
                else f"消防通道（{zone}）{cls_name_zh(v.class_name)}违停监测结束，已停留{dwell / 60.0:.1f}分钟"
            ),
            attributes={
                "vehicle_id": f"v{v.number:04d}",
                "class": v.class_name,
                "dwell_s": round(dwell, 1),
                "since": v.first_seen.isoformat(),
                "last_seen": (v.last_seen or v.first_seen).isoformat(),
                "box": [round(c, 1) for c in box],
                "zone": zone,
                "reason": reason,
            },
            zone=zone,
            address=self.context.address,
            grid_id=self.context.grid_id,
            boxes=(box,),
            snapshot=True,
        )

    def flush(self, at: datetime) -> list[Finding]:
        """End of stream: clear every vehicle still reported as parked.

        A node that restarts should save ``state_dict()`` and not call ``flush``: the
        vehicles are still there.
        """
        out: list[Finding] = []
        for v in self._vehicles:
            if v.alerted and not v.shadow and v.cleared_at is None:
                v.cleared_at = at
                out.append(self._cleared(v, at, "stream_end"))
        return out

    # ------------------------------------------------------------------ persistence

    def state_dict(self) -> dict[str, Any]:
        """Parked vehicles and the id counter, JSON-serialisable (for restarts)."""
        return {
            "version": STATE_VERSION,
            "camera_id": self.context.camera_id,
            "zone": self.options.zone,
            "next_number": self._next_number,
            "vehicles": [v.to_dict() for v in self._vehicles if v.number > 0 or v.dwell_s() > 0],
        }

    def load_state(self, state: dict[str, Any]) -> None:
        """Restore what ``state_dict()`` saved; a state of another version or zone is ignored."""
        if (
            not state
            or state.get("version") != STATE_VERSION
            or state.get("zone") != self.options.zone
        ):
            return
        self._vehicles = [_Vehicle.from_dict(v) for v in state.get("vehicles", [])][
            : self.options.max_vehicles
        ]
        self._next_number = max(
            int(state.get("next_number", 1)), 1 + max((v.number for v in self._vehicles), default=0)
        )
        for v in self._vehicles:
            if v.alerted and not v.shadow:
                state_now: State = "cleared" if v.cleared_at is not None else "active"
                v.situation = Situation(TYPE, self.severity, self._key(v), state_now)
        self._loaded = True


def _without_duplicates(tracks: list[Track], overlap: float = 0.7) -> list[Track]:
    """One box per vehicle: the detector may report a van as both ``car`` and ``truck``."""
    kept: list[Track] = []
    for t in sorted(tracks, key=lambda t: t.confidence, reverse=True):
        if all(iou(t.xyxy, k.xyxy) < overlap for k in kept):
            kept.append(t)
    return kept


def _intersection(a: Box | list[float], b: Box | list[float]) -> float:
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    return max(0.0, w) * max(0.0, h)


def _nested(a: Box | list[float], b: Box | list[float], share: float = 0.85) -> bool:
    """Whether the smaller of two boxes lies (mostly) inside the other."""
    smaller = min((a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1]))
    return smaller > 0 and _intersection(a, b) / smaller >= share


def _area(track: Track) -> float:
    x1, y1, x2, y2 = track.xyxy
    return max(0.0, x2 - x1) * max(0.0, y2 - y1)


def build(options: Options, context: CameraContext) -> FireLane:
    """Factory used by the registry."""
    if options.zone not in context.zones:
        raise KeyError(
            f"fire_lane: expected zone {options.zone!r} among the camera's zones {sorted(context.zones)}, found none"
        )
    return FireLane(
        options=options,
        context=context,
        severity=context.severity_of(TYPE, "normal"),
    )
