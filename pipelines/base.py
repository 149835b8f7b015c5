"""Value types shared by all pipelines: tracks in, findings out.

A *finding* is what a pipeline concludes; the edge node turns it into a wire
``Event`` (id, source, evidence) — pipelines never build wire events themselves.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal, Protocol

from shaobing.contract import Severity as Severity
from shaobing.contract import State as State
from shaobing.severity import as_severity

Box = tuple[float, float, float, float]
"""x1, y1, x2, y2 in source-frame pixels."""


@dataclass(frozen=True)
class Detection:
    """One detector output box."""

    xyxy: Box
    confidence: float
    class_id: int
    class_name: str


@dataclass(frozen=True)
class Track:
    """A tracked object at one instant.

    Attributes:
        track_id: tracker id (not stable across restarts; pipelines that need a
            persistent identity build their own, e.g. a parked vehicle id).
        xyxy: box in source-frame pixels.
        class_name: detector class name (``person``, ``car`` …).
        confidence: detection confidence of the latest match.
        age_s: seconds since the track was born.
        velocity: (vx, vy) in px/s, smoothed.
        lost_s: seconds since last matched by a detection (0 when matched in this frame).
        appearance: optional small descriptor (e.g. an HSV histogram), normalised.
    """

    track_id: int
    xyxy: Box
    class_name: str
    confidence: float
    age_s: float = 0.0
    velocity: tuple[float, float] = (0.0, 0.0)
    lost_s: float = 0.0
    appearance: tuple[float, ...] | None = None

    @property
    def center(self) -> tuple[float, float]:
        """Box centre."""
        x1, y1, x2, y2 = self.xyxy
        return ((x1 + x2) / 2.0, (y1 + y2) / 2.0)

    @property
    def bottom_center(self) -> tuple[float, float]:
        """Middle of the box's bottom edge (where a person stands)."""
        x1, _, x2, y2 = self.xyxy
        return ((x1 + x2) / 2.0, y2)

    @property
    def speed(self) -> float:
        """Speed in px/s."""
        vx, vy = self.velocity
        return float((vx * vx + vy * vy) ** 0.5)


@dataclass(frozen=True)
class Observation:
    """What a camera pipeline sees at one instant.

    Attributes:
        camera_id: the camera.
        frame_index: index of the frame in the source.
        t: media time in seconds from the start of the source.
        at: aware datetime of this frame (start time + media time, or wall clock live).
        tracks: tracks when the detector ran on this frame, else None.
        frame: the BGR image (numpy array, H×W×3) when the pipeline asked for frames, else None.
        frame_size: (width, height) of the source frame.
    """

    camera_id: str
    frame_index: int
    t: float
    at: datetime
    tracks: list[Track] | None
    frame: Any = None
    frame_size: tuple[int, int] = (0, 0)

    def at_offset(self, seconds: float) -> datetime:
        """``at`` shifted by ``seconds`` (negative for earlier)."""
        return self.at + timedelta(seconds=seconds)


@dataclass(frozen=True)
class Finding:
    """A pipeline's conclusion; the node wraps it into a wire Event.

    Attributes:
        type: taxonomy code.
        severity: normal, urgent or emergency.
        state: active, update or cleared.
        incident_key: stable for one real situation on one node (the node prefixes nothing:
            pipelines include the camera id themselves, e.g. ``cam3/fire_lane/v0192``).
        occurred_at: when it happened (media time).
        confidence: calibrated belief, 0..1.
        summary: one Chinese line a worker reads.
        attributes: pipeline-specific details (JSON-serialisable).
        zone, floor, column, address: location details.
        boxes: boxes to draw on the evidence snapshot.
        snapshot: whether the node should attach a snapshot (and clip) of this instant.
        related: ids of other events this one confirms.
        device_id: overrides the source device (sensor id) when not the camera.
        kind: overrides the source kind (camera by default for camera pipelines).
    """

    type: str
    severity: Severity
    state: State
    incident_key: str
    occurred_at: datetime
    confidence: float
    summary: str
    attributes: dict[str, Any] = field(default_factory=dict)
    zone: str | None = None
    floor: int | None = None
    column: int | None = None
    address: str | None = None
    grid_id: str | None = None
    lat: float | None = None
    lon: float | None = None
    boxes: tuple[Box, ...] = ()
    snapshot: bool = True
    related: tuple[str, ...] = ()
    device_id: str | None = None
    kind: Literal["camera", "sensor", "report", "citizen", "system"] | None = None
    evidence_images: tuple[tuple[str, bytes], ...] = ()
    """Extra images the pipeline rendered itself: (content_type, bytes), e.g. a trajectory composite."""


class CameraPipeline(Protocol):
    """A scenario run per camera.

    ``needs_every_frame``: the node feeds every decoded frame (with pixels) instead of
    only the ``detect_fps`` samples. ``needs_frames``: pixels are attached to observations.
    ``needs_detections``: the node runs the detector for this camera.

    Optional: ``resume(at, t, gap_s)`` is called before the first observation after a gap
    (the camera was blind for ``gap_s`` seconds: a lost stream, a node restart). What was
    not seen during a gap is not gone: a pipeline restarts its clear windows at ``at``.
    Pipelines without it are not told.
    """

    name: str
    needs_every_frame: bool
    needs_frames: bool
    needs_detections: bool

    def update(self, obs: Observation) -> list[Finding]:
        """Consume one observation; return findings (often none)."""
        ...

    def flush(self, at: datetime) -> list[Finding]:
        """End of stream: close what is open (e.g. ``cleared`` findings)."""
        ...


@dataclass(frozen=True)
class CameraContext:
    """What a pipeline knows about its camera (from config)."""

    camera_id: str
    zones: dict[str, list[tuple[float, float]]]
    timezone: str = "Asia/Shanghai"
    address: str | None = None
    grid_id: str | None = None
    default_severity: dict[str, str] = field(default_factory=dict)
    """Taxonomy code → the type's default severity (pipelines never go below it)."""
    options: dict[str, Any] = field(default_factory=dict)
    """Other node-level settings a pipeline may use (e.g. linked sensors)."""

    def severity_of(self, code: str, fallback: Severity) -> Severity:
        """The default severity of taxonomy type ``code`` (``fallback`` when not given)."""
        return as_severity(self.default_severity.get(code, fallback))
