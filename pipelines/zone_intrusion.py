"""Zone intrusion: an object of a watched class enters a polygon → one event per track.

Inertia: a track must be inside for ``enter_frames`` consecutive detector samples before
it counts as entered, and outside for ``leave_frames`` before it counts as gone, so a
box jittering on the border does not flap.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from pipelines.base import CameraContext, Finding, Observation, Severity
from pipelines.geometry import point_in_polygon
from pipelines.situation import Situation


class Options(BaseModel):
    """``zone_intrusion`` options under ``cameras[].pipelines``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    zone: str = Field(description="zone name from cameras[].zones")
    classes: list[str] = Field(
        default_factory=lambda: ["person"], description="detector classes watched"
    )
    type: str = Field(
        default="water_danger_intrusion", description="event type raised (taxonomy code)"
    )
    severity: Severity | None = Field(
        default=None, description="severity; default: the type's default"
    )
    enter_frames: int = Field(
        default=2, ge=1, le=100, description="samples inside before 'entered'"
    )
    leave_frames: int = Field(default=3, ge=1, le=100, description="samples outside before 'left'")
    min_confidence: float = Field(default=0.0, ge=0.0, le=1.0, description="ignore weaker tracks")
    summary: str | None = Field(
        default=None, description="summary text; default built from the zone"
    )


@dataclass
class _TrackState:
    inside_run: int = 0
    outside_run: int = 0
    entered: bool = False
    entered_at: datetime | None = None
    reported: bool = False


@dataclass
class ZoneIntrusion:
    """One event (state ``active``) per track entering the zone."""

    options: Options
    context: CameraContext
    severity: Severity = "urgent"
    name: str = "zone_intrusion"
    needs_every_frame: bool = False
    needs_frames: bool = False
    needs_detections: bool = True
    _tracks: dict[int, _TrackState] = field(default_factory=dict)

    def update(self, obs: Observation) -> list[Finding]:
        """Count inertia per track and report each entry once."""
        if obs.tracks is None:
            return []
        polygon = self.context.zones[self.options.zone]
        findings: list[Finding] = []
        seen: set[int] = set()
        for track in obs.tracks:
            if (
                track.class_name not in self.options.classes
                or track.confidence < self.options.min_confidence
            ):
                continue
            if track.lost_s > 0:
                continue
            seen.add(track.track_id)
            st = self._tracks.setdefault(track.track_id, _TrackState())
            inside = point_in_polygon(track.bottom_center, polygon)
            if inside:
                st.inside_run += 1
                st.outside_run = 0
                if not st.entered and st.inside_run >= self.options.enter_frames:
                    st.entered = True
                    st.entered_at = obs.at
                    if not st.reported:
                        st.reported = True
                        findings.append(
                            self._finding(
                                track.track_id, track.class_name, track.xyxy, track.confidence, obs
                            )
                        )
            else:
                st.outside_run += 1
                st.inside_run = 0
                if st.entered and st.outside_run >= self.options.leave_frames:
                    st.entered = False
        # forget tracks gone for a while (bounded memory)
        for tid in [t for t in self._tracks if t not in seen]:
            st = self._tracks[tid]
            st.outside_run += 1
            if st.outside_run > 50:
                del self._tracks[tid]
        return findings

    def _finding(
        self,
        track_id: int,
        cls: str,
        box: tuple[float, float, float, float],
        conf: float,
        obs: Observation,
    ) -> Finding:
        zone = self.options.zone
        summary = self.options.summary or f"{cls_name_zh(cls)}进入{zone}区域"
        key = f"{obs.camera_id}/zone_intrusion/{zone}/t{track_id}/{obs.at:%Y%m%dT%H%M%S}"
        situation = Situation(self.options.type, self.options.severity or self.severity, key)
        return situation.report(
            "active",
            occurred_at=obs.at,
            confidence=round(float(conf), 3),
            summary=summary,
            attributes={
                "track_id": track_id,
                "class": cls,
                "box": [round(v, 1) for v in box],
                "zone": zone,
                "media_time_s": round(obs.t, 3),
            },
            zone=zone,
            boxes=(box,),
        )

    def flush(self, at: datetime) -> list[Finding]:
        """Nothing stays open: intrusions are single events."""
        return []


_ZH = {
    "person": "人员",
    "car": "车辆",
    "truck": "货车",
    "bus": "客车",
    "motorcycle": "摩托车",
    "bicycle": "自行车",
}


def cls_name_zh(cls: str) -> str:
    """Chinese word for a detector class (falls back to the class name)."""
    return _ZH.get(cls, cls)


def build(options: Options, context: CameraContext) -> ZoneIntrusion:
    """Factory used by the registry."""
    default = context.severity_of(options.type, "urgent")
    return ZoneIntrusion(options=options, context=context, severity=options.severity or default)
