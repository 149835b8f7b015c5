"""Water safety (防溺水): danger-zone intrusion and drowning, for riverside and pool cameras.

Two findings:

* ``water_danger_intrusion`` (urgent): a person enters the bank zone or the water zone
  within the ``hours`` window (local time of the camera's time zone) — one event per person
  per visit (a visit ends when the person has been gone for ``revisit_s``).
* ``drowning`` (emergency), any time of day, by one of two rules:

  - ``disappeared``: a person who was in the water (seen there for ``confirm_s``) drops out
    of view away from the frame's edge (where they may have left the picture) and nobody
    resurfaces near that spot within ``disappear_s``. A new track that appears within
    reach of the spot (``reach_per_s`` body sizes per second under water, at most
    ``reach_max``) is the same person coming up: a diving swimmer resolves the alarm before
    it is raised. Strong motion where the person was (splashing, while the detector misses
    them) defers the alarm, up to ``3 × disappear_s`` after the last detection; a person
    whom the detector had already lost for a while and found again gets that much longer
    (at most ``disappear_s / 2``).
  - ``struggling``: a person in the water stays nearly in one place (box centre within
    ``still_radius`` body sizes, size within ``still_scale``) with strong motion inside the
    box (changed pixels between detector samples, well above the water's own ripple and
    any camera motion) and disturbed water around it (splashes, waves: ``splash_min``) for
    ``still_s``, while being seen in most samples (``min_coverage``) of that time.
    Swimmers travel (or shrink/grow as they swim away/towards the camera) and fail the
    stillness test; people standing still on the bank are not in the water.

Identity is the pipeline's own: a person keeps their id when the tracker loses them and a
new track appears where they were, so tracker id switches neither re-raise intrusions nor
look like disappearances.

Detector note: a COCO person detector sees people under water and in splashes with low
confidence (0.1–0.4). The node must let such detections through for cameras running this
pipeline (detector/tracker threshold at or below ``min_confidence``); the pipeline ignores
weaker ones itself.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field, replace
from datetime import datetime, time
from typing import Any, Literal
from zoneinfo import ZoneInfo

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

from pipelines.base import Box, CameraContext, Finding, Observation, Severity, Track
from pipelines.geometry import point_in_polygon
from pipelines.situation import Situation

INTRUSION = "water_danger_intrusion"
DROWNING = "drowning"

Polygon = list[tuple[float, float]]


def _parse_hhmm(value: str) -> time:
    try:
        hh, mm = value.strip().split(":")
        return time(int(hh) % 24 if int(hh) == 24 else int(hh), int(mm))
    except (ValueError, AttributeError):
        raise ValueError(f'expected a time like "18:00", found {value!r}') from None


class Options(BaseModel):
    """``water_safety`` options under ``cameras[].pipelines``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    water_zone: str = Field(description="zone name (cameras[].zones) of the water surface")
    bank_zone: str | None = Field(
        default=None, description="zone name of the dangerous bank strip (optional)"
    )
    hours: Literal["all"] | list[list[str]] = Field(
        default="all",
        description='when intrusions are reported: "all" or local-time windows like [["18:00", "06:00"]] (drowning: always)',
    )
    disappear_s: float = Field(
        default=10.0,
        ge=1.0,
        le=600.0,
        description="a person gone under for this long without resurfacing → drowning",
    )
    still_s: float = Field(
        default=15.0,
        ge=1.0,
        le=600.0,
        description="struggling in one place for this long → drowning",
    )
    min_confidence: float = Field(
        default=0.2,
        ge=0.0,
        le=1.0,
        description="ignore weaker person tracks (the node's detector must go at least this low on this camera)",
    )
    classes: list[str] = Field(
        default_factory=lambda: ["person"],
        min_length=1,
        description="detector classes counted as people",
    )
    confirm_s: float = Field(
        default=1.0,
        ge=0.0,
        le=60.0,
        description="seen in the water this long before a disappearance counts",
    )
    confirm_sightings: int = Field(
        default=3,
        ge=1,
        le=100,
        description="and at least this many detector sightings in the water",
    )
    enter_samples: int = Field(
        default=2, ge=1, le=100, description="sightings inside a zone before an intrusion counts"
    )
    revisit_s: float = Field(
        default=30.0, ge=1.0, le=3600.0, description="a person gone this long has ended the visit"
    )
    reach_per_s: float = Field(
        default=1.0,
        ge=0.0,
        le=20.0,
        description="how far (body sizes per second, plus one) a person may resurface from where they went under",
    )
    reach_max: float = Field(
        default=6.0,
        ge=1.0,
        le=50.0,
        description="the farthest (body sizes) a new track may be from where a person went under to be them",
    )
    edge_margin: float = Field(
        default=0.3,
        ge=0.0,
        le=5.0,
        description="last seen within this many body sizes of the frame edge → may have left the view there",
    )
    still_radius: float = Field(
        default=0.4,
        gt=0.0,
        le=5.0,
        description="most box centres within this many body sizes of their median → in one place",
    )
    still_scale: float = Field(
        default=1.4,
        ge=1.0,
        le=10.0,
        description="body size may change at most by this factor over still_s",
    )
    min_coverage: float = Field(
        default=0.6,
        ge=0.0,
        le=1.0,
        description="share of detector samples over still_s in which the person must be seen",
    )
    motion_delta: int = Field(
        default=18,
        ge=1,
        le=255,
        description="grey-level change that marks a pixel as moving between samples",
    )
    motion_step_s: float = Field(
        default=0.2,
        gt=0.0,
        le=2.0,
        description="motion is measured between frames this far apart, whatever the sampling rate",
    )
    motion_min: float = Field(
        default=0.12,
        ge=0.0,
        le=1.0,
        description="share of moving pixels in the box that counts as strong motion",
    )
    motion_ratio: float = Field(
        default=1.5,
        ge=1.0,
        le=100.0,
        description="and at least this multiple of the water's own motion outside people",
    )
    splash_min: float = Field(
        default=0.03,
        ge=0.0,
        le=1.0,
        description="share of moving pixels in the water around the person for their motion to count as a struggle",
    )
    active_fraction: float = Field(
        default=0.5,
        ge=0.0,
        le=1.0,
        description="share of sightings over still_s with strong motion",
    )
    work_width: int = Field(
        default=320,
        ge=64,
        le=1920,
        description="frames are downscaled to this width for motion analysis",
    )

    @field_validator("hours")
    @classmethod
    def _hours(cls, value: Literal["all"] | list[list[str]]) -> Literal["all"] | list[list[str]]:
        if value == "all":
            return value
        for window in value:
            if len(window) != 2:
                raise ValueError(
                    f'expected windows of two times like ["18:00", "06:00"], found {window!r}'
                )
            for v in window:
                _parse_hhmm(v)
        return value


@dataclass
class _Person:
    """One person the pipeline follows (its own identity, not a tracker id)."""

    number: int
    track_id: int
    box: Box
    first_seen: float
    last_seen: float
    zone: Literal["water", "bank"] | None = None
    zone_run: int = 0
    water_since: float | None = None
    water_sightings: int = 0
    visit_reported: bool = False
    drowning_reported: bool = False
    near_exit: bool = False
    motion_seen: float | None = None
    longest_miss: float = 0.0
    drowning_rule: str | None = None
    seen_box: Box | None = None  # where the detector saw them last (box may follow motion since)
    drowning: Situation | None = None
    history: deque[tuple[float, float, float, float, float | None, float, float | None]] = field(
        default_factory=lambda: deque(maxlen=16384)
    )
    """Per sighting in the water: time, cx, cy, size, moving share in the box (None: unknown),
    in the water zone outside people, and in the water just around the box (None: unknown)."""

    @property
    def size(self) -> float:
        x1, y1, x2, y2 = self.box
        return max(1.0, math.sqrt(max(0.0, x2 - x1) * max(0.0, y2 - y1)))

    @property
    def center(self) -> tuple[float, float]:
        x1, y1, x2, y2 = self.box
        return ((x1 + x2) / 2.0, (y1 + y2) / 2.0)


class _Motion:
    """Changed pixels over a fixed time step (``step_s``), at a small working size.

    The node may sample a camera at varying rates (faster while something is at a zone
    edge, slower when the picture is still), so each frame is compared with the kept frame
    closest to ``step_s`` earlier rather than with the previous sample: the share of moving
    pixels then means the same at any sampling rate.
    """

    def __init__(self, work_width: int, delta: int, step_s: float) -> None:
        self.work_width = work_width
        self.delta = delta
        self.step_s = step_s
        self._kept: deque[tuple[float, np.ndarray]] = deque(maxlen=64)
        self.mask: np.ndarray | None = None
        self.scale = 1.0
        self._zone_mask: np.ndarray | None = None
        self._zone_key: tuple[int, int] | None = None

    def update(self, frame: Any, now: float) -> None:
        """Compute the moving-pixel mask of ``frame`` against a frame ``step_s`` earlier."""
        import cv2

        self.mask = None
        if frame is None or not hasattr(frame, "shape") or len(frame.shape) < 2:
            return
        h, w = frame.shape[:2]
        self.scale = min(1.0, self.work_width / float(w))
        small = cv2.resize(
            frame,
            (max(1, round(w * self.scale)), max(1, round(h * self.scale))),
            interpolation=cv2.INTER_AREA,
        )
        gray = cv2.cvtColor(small, cv2.COLOR_BGR2GRAY) if small.ndim == 3 else small
        gray = cv2.GaussianBlur(gray, (5, 5), 0)
        while self._kept and (
            now - self._kept[0][0] > 4.0 * self.step_s + 2.0 or self._kept[0][1].shape != gray.shape
        ):
            self._kept.popleft()
        reference: np.ndarray | None = None
        best = math.inf
        for t, old in self._kept:
            age = now - t
            if age <= 0.0:
                continue
            # closest to step_s; a frame older than step_s is preferred to a much newer one
            score = abs(age - self.step_s) if age >= self.step_s else 2.0 * (self.step_s - age)
            if score < best:
                best, reference = score, old
        if reference is not None:
            self.mask = cv2.absdiff(gray, reference) > self.delta
        if not self._kept or now - self._kept[-1][0] >= self.step_s / 4.0:
            self._kept.append((now, gray))

    def zone_mask(self, polygon: Polygon) -> np.ndarray | None:
        """The water zone rasterised at the working size (cached)."""
        import cv2

        if self.mask is None:
            return None
        key = self.mask.shape
        if self._zone_mask is None or self._zone_key != key:
            zm = np.zeros(key, np.uint8)
            pts = np.array([[x * self.scale, y * self.scale] for x, y in polygon], np.int32)
            cv2.fillPoly(zm, [pts], 1)
            self._zone_mask = zm.astype(bool)
            self._zone_key = (int(key[0]), int(key[1]))
        return self._zone_mask

    def box_slice(self, box: Box) -> tuple[slice, slice] | None:
        if self.mask is None:
            return None
        h, w = self.mask.shape
        x1 = int(max(0, math.floor(box[0] * self.scale)))
        y1 = int(max(0, math.floor(box[1] * self.scale)))
        x2 = int(min(w, math.ceil(box[2] * self.scale)))
        y2 = int(min(h, math.ceil(box[3] * self.scale)))
        if x2 - x1 < 3 or y2 - y1 < 3:
            return None
        return slice(y1, y2), slice(x1, x2)

    def activity(self, box: Box) -> float | None:
        """Share of moving pixels inside ``box`` (None without a mask or for tiny boxes)."""
        sl = self.box_slice(box)
        if sl is None or self.mask is None:
            return None
        return float(self.mask[sl].mean())

    def ring(self, box: Box, polygon: Polygon, others: list[Box]) -> float | None:
        """Share of moving pixels in the water around ``box`` (half a box on each side),
        other people excluded; None when too little of that band is visible water."""
        zm = self.zone_mask(polygon)
        if zm is None or self.mask is None:
            return None
        x1, y1, x2, y2 = box
        w, h = x2 - x1, y2 - y1
        outer = self.box_slice((x1 - w / 2.0, y1 - h / 2.0, x2 + w / 2.0, y2 + h / 2.0))
        if outer is None:
            return None
        sel = np.zeros(self.mask.shape, bool)
        sel[outer] = True
        sel &= zm
        for b in [box, *others]:
            sl = self.box_slice(b)
            if sl is not None:
                sel[sl] = False
        if int(sel.sum()) < 20:
            return None
        return float(self.mask[sel].mean())

    def background(self, polygon: Polygon, boxes: list[Box]) -> float:
        """Share of moving pixels in the water zone outside every person box (ripples, camera motion)."""
        zm = self.zone_mask(polygon)
        if zm is None or self.mask is None:
            return 0.0
        sel = zm.copy()
        for b in boxes:
            sl = self.box_slice(b)
            if sl is not None:
                sel[sl] = False
        n = int(sel.sum())
        return float(self.mask[sel].mean()) if n > 50 else 0.0


@dataclass
class WaterSafety:
    """Intrusion and drowning rules for one camera."""

    options: Options
    context: CameraContext
    intrusion_severity: Severity = "urgent"
    drowning_severity: Severity = "emergency"
    name: str = "water_safety"
    needs_every_frame: bool = False
    needs_frames: bool = True
    needs_detections: bool = True
    _people: dict[int, _Person] = field(default_factory=dict)
    _by_track: dict[int, int] = field(default_factory=dict)
    _samples: deque[float] = field(default_factory=lambda: deque(maxlen=20000))
    _next_number: int = 1
    _motion: _Motion | None = None
    _windows: list[tuple[time, time]] | None = None
    _recorded: bool = True

    def __post_init__(self) -> None:
        self._motion = _Motion(
            self.options.work_width, self.options.motion_delta, self.options.motion_step_s
        )
        if self.options.hours != "all":
            self._windows = [(_parse_hhmm(a), _parse_hhmm(b)) for a, b in self.options.hours]
        self._tz = ZoneInfo(self.context.timezone)
        self._water: Polygon = [
            (float(x), float(y)) for x, y in self.context.zones[self.options.water_zone]
        ]
        self._bank: Polygon | None = (
            [(float(x), float(y)) for x, y in self.context.zones[self.options.bank_zone]]
            if self.options.bank_zone
            else None
        )

    # ------------------------------------------------------------------ per sample

    def update(self, obs: Observation) -> list[Finding]:
        """Follow people, report intrusions, watch for drowning."""
        if obs.tracks is None:
            return []
        now = obs.at.timestamp()
        motion = self._motion
        assert motion is not None
        motion.update(obs.frame, now)
        # at most ~20 samples a second count towards coverage and the still window, so that
        # bursts of fast sampling do not change what the rules mean
        self._recorded = not self._samples or now - self._samples[-1] >= 0.05
        if self._recorded:
            self._samples.append(now)
        horizon = now - max(self.options.still_s, self.options.disappear_s) - 5.0
        while self._samples and self._samples[0] < horizon:
            self._samples.popleft()

        tracks = [
            t
            for t in obs.tracks
            if t.class_name in self.options.classes
            and t.lost_s <= 0.0
            and t.confidence >= self.options.min_confidence
        ]
        background = (
            motion.background(self._water, [t.xyxy for t in tracks])
            if motion.mask is not None
            else 0.0
        )
        seen = self._associate(tracks, now)
        findings: list[Finding] = []
        width, height = obs.frame_size if obs.frame_size != (0, 0) else _frame_size(obs.frame)
        for person, track in seen:
            others = [t.xyxy for t in tracks if t is not track]
            findings.extend(
                self._sighting(person, track, others, now, obs, motion, background, width, height)
            )
        seen_numbers = {p.number for p, _ in seen}
        for person in list(self._people.values()):
            if person.number in seen_numbers:
                continue
            findings.extend(self._missing(person, now, obs, motion, background, width, height))
        if any(f.type == INTRUSION for f in findings):
            findings = self._with_counts(findings, now)
        return findings

    def _associate(self, tracks: list[Track], now: float) -> list[tuple[_Person, Track]]:
        """Pair tracks with people: same tracker id first, then a new track near a missing person."""
        pairs: list[tuple[_Person, Track]] = []
        unmatched: list[Track] = []
        for t in tracks:
            number = self._by_track.get(t.track_id)
            person = self._people.get(number) if number is not None else None
            if person is not None:
                pairs.append((person, t))
            else:
                unmatched.append(t)
        taken = {p.number for p, _ in pairs}
        options: list[tuple[float, int, _Person, Track]] = []
        for i, t in enumerate(unmatched):
            cx, cy = t.center
            for person in self._people.values():
                if person.number in taken or person.last_seen >= now:
                    continue
                elapsed = now - person.last_seen
                reach = person.size * min(
                    1.0 + self.options.reach_per_s * elapsed, self.options.reach_max
                )
                px, py = person.center
                dist = math.hypot(cx - px, cy - py)
                if dist <= reach:
                    options.append((dist / person.size, i, person, t))
        used_tracks: set[int] = set()
        for _, i, person, t in sorted(options, key=lambda o: o[0]):
            if i in used_tracks or person.number in taken:
                continue
            used_tracks.add(i)
            taken.add(person.number)
            pairs.append((person, t))
        for i, t in enumerate(unmatched):
            if i in used_tracks:
                continue
            person = _Person(
                number=self._next_number,
                track_id=t.track_id,
                box=t.xyxy,
                first_seen=now,
                last_seen=now,
            )
            self._next_number += 1
            self._people[person.number] = person
            pairs.append((person, t))
        for person, t in pairs:
            if person.track_id != t.track_id:
                self._by_track.pop(person.track_id, None)
            person.track_id = t.track_id
            self._by_track[t.track_id] = person.number
        return pairs

    def _sighting(
        self,
        person: _Person,
        track: Track,
        others: list[Box],
        now: float,
        obs: Observation,
        motion: _Motion,
        background: float,
        width: int,
        height: int,
    ) -> list[Finding]:
        out: list[Finding] = []
        was_missing_s = now - person.last_seen
        previous_box = person.box
        person.motion_seen = None
        person.box = track.xyxy
        person.seen_box = track.xyxy
        person.last_seen = now
        foot = track.bottom_center
        zone: Literal["water", "bank"] | None = None
        if point_in_polygon(foot, self._water):
            zone = "water"
        elif self._bank is not None and point_in_polygon(foot, self._bank):
            zone = "bank"
        person.zone = zone
        person.near_exit = self._near_exit(track.xyxy, width, height)
        if zone is None:
            person.zone_run = 0
        else:
            person.zone_run += 1
        if zone == "water":
            if person.water_since is None:
                person.water_since = now
                person.history.clear()
                person.longest_miss = 0.0
            elif person.water_sightings > 0 and was_missing_s < self.options.disappear_s:
                # how long the detector has already lost this swimmer (who came back)
                person.longest_miss = max(person.longest_miss, was_missing_s)
            person.water_sightings += 1
            act = motion.activity(track.xyxy)
            # the person's previous box is excluded too: at low sample rates a walker's
            # own trail would otherwise look like disturbed water around them
            ring = motion.ring(track.xyxy, self._water, [*others, previous_box])
            cx, cy = track.center
            size = max(
                1.0,
                math.sqrt(
                    max(0.0, track.xyxy[2] - track.xyxy[0])
                    * max(0.0, track.xyxy[3] - track.xyxy[1])
                ),
            )
            if self._recorded:
                person.history.append((now, cx, cy, size, act, background, ring))
            horizon = now - self.options.still_s - 5.0
            while person.history and person.history[0][0] < horizon:
                person.history.popleft()
        else:
            person.water_since = None
            person.water_sightings = 0
            person.history.clear()
        if person.drowning_rule == "disappeared" and was_missing_s >= self.options.disappear_s:
            person.drowning_rule = "resurfaced"
            out.append(
                self._drowning(
                    person, now, obs, "disappeared", state="update", extra={"reappeared": True}
                )
            )
        if (
            zone is not None
            and not person.visit_reported
            and person.zone_run >= self.options.enter_samples
            and self._in_hours(obs.at)
        ):
            person.visit_reported = True
            out.append(self._intrusion(person, obs))
        if zone == "water" and not person.drowning_reported and self._struggling(person, now):
            person.drowning_reported = True
            out.append(self._drowning(person, now, obs, "struggling"))
        return out

    def _missing(
        self,
        person: _Person,
        now: float,
        obs: Observation,
        motion: _Motion,
        background: float,
        width: int,
        height: int,
    ) -> list[Finding]:
        gone_s = now - person.last_seen
        watched = (
            not person.drowning_reported
            and person.zone == "water"
            and person.water_since is not None
            and person.last_seen - person.water_since >= self.options.confirm_s
            and person.water_sightings >= self.options.confirm_sightings
        )
        if watched and not person.near_exit and gone_s < 3.0 * self.options.disappear_s:
            # the detector often misses a swimmer in splashes; strong motion where they
            # were (well above the water's ripple) means someone is still there
            if self._follow_motion(person, motion, background):
                person.motion_seen = now
                person.near_exit = self._near_exit(person.box, width, height)
        if watched and not person.near_exit and gone_s >= self.options.disappear_s:
            quiet_s = now - max(person.last_seen, person.motion_seen or 0.0)
            # a swimmer the detector keeps losing for a while gets that much longer (at most
            # half of disappear_s more) before their absence counts
            needed = self.options.disappear_s + min(
                person.longest_miss, self.options.disappear_s / 2.0
            )
            if quiet_s >= needed or gone_s >= 3.0 * self.options.disappear_s:
                person.drowning_reported = True
                return [self._drowning(person, now, obs, "disappeared")]
        if gone_s > max(self.options.revisit_s, self.options.disappear_s * 4.0):
            self._people.pop(person.number, None)
            if self._by_track.get(person.track_id) == person.number:
                self._by_track.pop(person.track_id, None)
        return []

    def _follow_motion(self, person: _Person, motion: _Motion, background: float) -> bool:
        """Look for strong motion around where ``person`` was; move their box onto it."""
        if motion.mask is None:
            return False
        x1, y1, x2, y2 = person.box
        w, h = x2 - x1, y2 - y1
        region = motion.box_slice((x1 - w / 2.0, y1 - h / 2.0, x2 + w / 2.0, y2 + h / 2.0))
        zone = motion.zone_mask(self._water)
        if region is None or zone is None:
            return False
        moving = motion.mask[region] & zone[region]
        ys, xs = np.nonzero(moving)
        if len(xs) < 4:
            return False
        cx = (float(xs.mean()) + region[1].start) / motion.scale
        cy = (float(ys.mean()) + region[0].start) / motion.scale
        box: Box = (cx - w / 2.0, cy - h / 2.0, cx + w / 2.0, cy + h / 2.0)
        act = motion.activity(box)
        if (
            act is None
            or act < self.options.motion_min
            or act < self.options.motion_ratio * background
        ):
            return False
        person.box = box
        return True

    # ------------------------------------------------------------------ rules

    def _near_exit(self, box: Box, width: int, height: int) -> bool:
        """Whether a person last seen in ``box`` may have left the view there (frame edge).

        The water's border is no exit by itself: someone who climbs out onto the bank is
        seen there again, near where they went out of the water, and that resolves it.
        """
        if width <= 0 or height <= 0:
            return False
        x1, y1, x2, y2 = box
        size = max(1.0, math.sqrt(max(0.0, x2 - x1) * max(0.0, y2 - y1)))
        m = max(2.0, self.options.edge_margin * size)
        return x1 <= m or y1 <= m or x2 >= width - m or y2 >= height - m

    def _struggling(self, person: _Person, now: float) -> bool:
        """Nearly in one place with strong motion in the box for ``still_s``, seen most of the time."""
        o = self.options
        if person.water_since is None or now - person.water_since < o.still_s:
            return False
        start = now - o.still_s
        window = [h for h in person.history if h[0] >= start]
        samples = sum(1 for s in self._samples if s >= start)
        if len(window) < 3 or samples == 0 or len(window) / samples < o.min_coverage:
            return False
        known = [self._strong(h[4], h[5], h[6]) for h in window if h[4] is not None]
        if len(known) < 3 or sum(1 for k in known if k) / len(known) < o.active_fraction:
            return False
        xs = sorted(h[1] for h in window)
        ys = sorted(h[2] for h in window)
        mx, my = xs[len(xs) // 2], ys[len(ys) // 2]
        sizes = sorted(h[3] for h in window)
        body = sizes[len(sizes) // 2]
        dists = sorted(math.hypot(h[1] - mx, h[2] - my) for h in window)
        if dists[min(len(dists) - 1, int(0.8 * len(dists)))] > o.still_radius * body:
            return False
        # net travel between the first and the last third: a swimmer drifts steadily
        third = max(1, len(window) // 3)
        ax, ay = _median([h[1] for h in window[:third]]), _median([h[2] for h in window[:third]])
        bx, by = _median([h[1] for h in window[-third:]]), _median([h[2] for h in window[-third:]])
        if math.hypot(bx - ax, by - ay) > o.still_radius * body:
            return False
        half = len(window) // 2
        first = sorted(h[3] for h in window[:half])
        second = sorted(h[3] for h in window[half:])
        a, b = first[len(first) // 2], second[len(second) // 2]
        return max(a, b) / max(1e-6, min(a, b)) <= o.still_scale

    def _strong(self, activity: float | None, background: float, ring: float | None) -> bool:
        """Strong motion: many moving pixels in the box, well above the water's own, and the
        water right around the person disturbed (splashes, waves) — a person fidgeting on
        dry ground moves nothing around them."""
        o = self.options
        if activity is None or activity < o.motion_min or activity < o.motion_ratio * background:
            return False
        return ring is None or ring >= o.splash_min

    def _in_hours(self, at: datetime) -> bool:
        if self._windows is None:
            return True
        local = at.astimezone(self._tz).time()
        for start, end in self._windows:
            if start <= end:
                if start <= local < end:
                    return True
            elif local >= start or local < end:
                return True
        return False

    # ------------------------------------------------------------------ findings

    def _intrusion(self, person: _Person, obs: Observation) -> Finding:
        zone_name = (
            self.options.water_zone if person.zone == "water" else (self.options.bank_zone or "")
        )
        where = "水中" if person.zone == "water" else "岸边危险区"
        since = datetime.fromtimestamp(person.first_seen, tz=obs.at.tzinfo)
        key = f"{obs.camera_id}/water_safety/intrusion/p{person.number:04d}/{since:%Y%m%dT%H%M%S}"
        return Situation(INTRUSION, self.intrusion_severity, key).report(
            "active",
            occurred_at=obs.at,
            confidence=0.7,
            summary=f"有人进入{where}（{zone_name}），注意防溺水",
            attributes={
                "person_id": f"p{person.number:04d}",
                "zone": zone_name,
                "person_zone": person.zone,
                "box": [round(v, 1) for v in person.box],
                "media_time_s": round(obs.t, 3),
            },
            zone=zone_name,
            address=self.context.address,
            grid_id=self.context.grid_id,
            boxes=(person.box,),
            snapshot=True,
        )

    def _with_counts(self, findings: list[Finding], now: float) -> list[Finding]:
        """Add how many people are in the zones now, and whether anyone is in the water."""
        now_people = [p for p in self._people.values() if p.zone is not None and p.last_seen >= now]
        count = len(now_people)
        in_water = any(p.zone == "water" for p in now_people)
        boxes = tuple(p.box for p in now_people)
        out: list[Finding] = []
        for f in findings:
            if f.type != INTRUSION:
                out.append(f)
                continue
            attrs = {**f.attributes, "count": count, "in_water": in_water}
            summary = (
                f.summary
                if count <= 1
                else f"{count}人进入涉水危险区域"
                + ("，有人在水中" if in_water else "")
                + "，注意防溺水"
            )
            out.append(replace(f, summary=summary, attributes=attrs, boxes=boxes or f.boxes))
        return out

    def _drowning(
        self,
        person: _Person,
        now: float,
        obs: Observation,
        rule: Literal["disappeared", "struggling"],
        state: Literal["active", "update"] = "active",
        extra: dict[str, Any] | None = None,
    ) -> Finding:
        since = person.water_since if person.water_since is not None else person.first_seen
        last_box = person.seen_box or person.box
        cx, cy = (last_box[0] + last_box[2]) / 2.0, (last_box[1] + last_box[3]) / 2.0
        in_water_s = (person.last_seen if rule == "disappeared" else now) - since
        since_at = datetime.fromtimestamp(since, tz=obs.at.tzinfo)
        if person.drowning is None:
            key = f"{obs.camera_id}/water_safety/drowning/p{person.number:04d}/{since_at:%Y%m%dT%H%M%S}"
            person.drowning = Situation(DROWNING, self.drowning_severity, key)
        if state == "active":
            person.drowning_reported = True
            person.drowning_rule = rule
        attrs: dict[str, Any] = {
            "rule": rule,
            "person_id": f"p{person.number:04d}",
            "last_position": [round(cx, 1), round(cy, 1)],
            "last_box": [round(v, 1) for v in last_box],
            "time_in_water_s": round(max(0.0, in_water_s), 1),
            "zone": self.options.water_zone,
            "media_time_s": round(obs.t, 3),
        }
        if rule == "disappeared":
            attrs["unseen_s"] = round(now - person.last_seen, 1)
            summary = f"疑似溺水：水中人员消失{now - person.last_seen:.0f}秒未浮出"
        else:
            attrs["still_s"] = self.options.still_s
            summary = f"疑似溺水：水中人员原地剧烈挣扎超过{self.options.still_s:.0f}秒"
        if extra:
            attrs.update(extra)
            if extra.get("reappeared"):
                summary = "疑似溺水人员已重新出现在画面中，请现场核实"
        return person.drowning.report(
            state,
            occurred_at=obs.at,
            confidence=0.6 if rule == "disappeared" else 0.7,
            summary=summary,
            attributes=attrs,
            zone=self.options.water_zone,
            address=self.context.address,
            grid_id=self.context.grid_id,
            boxes=(last_box,),
            snapshot=True,
        )

    def flush(self, at: datetime) -> list[Finding]:
        """Nothing stays open: intrusions and drowning alarms are single events."""
        return []


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[len(ordered) // 2]


def _frame_size(frame: Any) -> tuple[int, int]:
    if frame is not None and hasattr(frame, "shape") and len(frame.shape) >= 2:
        return int(frame.shape[1]), int(frame.shape[0])
    return (0, 0)


def build(options: Options, context: CameraContext) -> WaterSafety:
    """Factory used by the registry."""
    for zone in (options.water_zone, options.bank_zone):
        if zone is not None and zone not in context.zones:
            raise KeyError(
                f"water_safety: expected zone {zone!r} among the camera's zones {sorted(context.zones)}, found none"
            )
    return WaterSafety(
        options=options,
        context=context,
        intrusion_severity=context.severity_of(INTRUSION, "urgent"),
        drowning_severity=context.severity_of(DROWNING, "emergency"),
    )
