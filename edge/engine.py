"""Per-camera perception: sample → gate → detect → track → pipelines → findings.

The same engine runs live (``edge run``, paced sources) and offline (``detect``, as fast as
possible): only the source's pacing differs, so offline results predict live behaviour.

Per frame: a small grey copy feeds the camera health check and the motion gate; a
bounded ring keeps small frames for evidence clips. At each ``detect_fps`` sample the
detector runs only if the gate admits it (motion, its hangover, or the periodic
keep-alive); on a still sample the tracker *coasts* (objects stay where they were) and
the detection pipelines still get their observation. Pipelines that need every frame
get every frame regardless.

Detection is synchronous through ``detect`` (offline), or asynchronous through
``submit`` (live, the shared batching detector): the camera keeps at most one frame in
the detector and never waits for it; a sample that comes while one is in flight is
skipped and counted, so a slow detector lowers each camera's detection rate instead of
building a backlog.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable, Collection, Mapping
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np

from edge.detector.runtime import Detections
from edge.evidence import ClipBuffer, FinishedClip
from edge.health import CameraHealth, HealthOptions
from edge.motion import MotionDetector, MotionGate, downscale_grey
from edge.sampling import Sampler, SamplingOptions, Undo, detect_fps
from edge.sources.video import Frame
from edge.tracker import Tracker
from pipelines.base import CameraContext, CameraPipeline, Finding, Observation, Track
from pipelines.registry import build_pipeline
from shaobing.config import CameraConfig, EdgeConfig
from shaobing.taxonomy import Taxonomy

log = logging.getLogger(__name__)

DetectFn = Callable[[str, np.ndarray], Detections]
"""(camera_id, BGR image) → detections; the node's shared (batched) detector."""

SubmitFn = Callable[[str, np.ndarray], "Future[Detections] | None"]
"""(camera_id, BGR image) → a future of detections, or None when the detector refused it."""

HEALTH_PIPELINE = "camera_health"


@dataclass(frozen=True)
class EngineOptions:
    """Per-camera engine settings.

    Attributes:
        motion_gate: run the detector only on motion (plus keep-alives).
        keepalive_s: a detector sample at least this often even without motion.
        hangover_s: keep detecting this long after motion stopped.
        motion_width: width of the grey frame used by the gate and the health check.
        health: check for black, frozen, covered and blurred video.
        health_options: thresholds of the health check.
        clips: keep a ring of small frames and cut clips around findings.
        clip_pre_s: seconds of clip before a finding.
        clip_post_s: seconds of clip after it.
        clip_fps: frames per second in clips.
        clip_width: clip frame width in pixels.
        classes: detector classes this camera keeps (None: the union of its pipelines' ``classes``).
        zone_band: while a tracked object stands within this fraction of the frame width of a
            zone's edge, every frame is a detector sample (entries and exits are decided
            there; elsewhere ``detect_fps`` is enough). 0 turns it off.
        max_detect_fps: ceiling of this camera's detector samples per second, extra samples
            included (zone edges): an object parked at an edge must not make every frame a
            detection. None: twice the camera's ``detect_fps``.
        gap_s: a jump of media time longer than this between two frames (a stream that was
            lost and came back, a restart) is a gap: the pipelines are told, and restart
            their clear windows from the first frame after it instead of clearing what they
            could not see.
    """

    motion_gate: bool = True
    keepalive_s: float = 3.0
    hangover_s: float = 1.0
    motion_width: int = 160
    health: bool = True
    health_options: HealthOptions = field(default_factory=HealthOptions)
    clips: bool = True
    clip_pre_s: float = 3.0
    clip_post_s: float = 3.0
    clip_fps: float = 5.0
    clip_width: int = 320
    classes: tuple[str, ...] | None = None
    zone_band: float = 0.02
    max_detect_fps: float | None = None
    gap_s: float = 2.0


@dataclass
class CameraCounters:
    """Per-camera counters for status and metrics."""

    frames_seen: int = 0
    frames_detected: int = 0
    frames_seen_moving: int = 0  # frames while the gate saw motion (or its hangover)
    frames_detected_moving: int = 0  # detections of samples taken while there was motion
    frames_gated: int = 0  # detector samples skipped because nothing moved
    frames_boosted: int = 0  # extra samples taken because an object stood at a zone edge
    boost_capped: int = 0  # extra samples refused by the camera's max_detect_fps
    gaps: int = 0  # times the source was blind (media-time gaps told to the pipelines)
    detect_busy: int = (
        0  # samples skipped while this camera's previous frame was still in the detector
    )
    detect_dropped: int = 0  # samples the shared detector refused (its queue was full)
    findings: int = 0
    pipeline_errors: int = 0
    detect_walls: deque[float] = field(default_factory=lambda: deque(maxlen=256))

    def detect_fps(self, window_s: float = 5.0) -> float:
        """Detector results per second over the last ``window_s`` wall seconds."""
        now = time.monotonic()
        w = [x for x in self.detect_walls if x > now - window_s]
        if len(w) < 2:
            return 0.0
        return (len(w) - 1) / max(1e-6, w[-1] - w[0])


@dataclass(frozen=True)
class Emitted:
    """A finding with the frame it was made on (for the snapshot) and its pipeline.

    ``clip`` is the tag of the evidence clip being recorded for it (see
    ``CameraEngine.finished_clips``), or None.
    """

    finding: Finding
    pipeline: str
    image: np.ndarray | None
    media_t: float
    clip: int | None = None


@dataclass
class _Pending:
    future: Future[Detections]
    frame: Frame
    at: datetime
    moving: bool = True
    undo: Undo | None = None


def camera_context(config: EdgeConfig, camera: CameraConfig, taxonomy: Taxonomy) -> CameraContext:
    """What the pipelines of ``camera`` know about it."""
    return CameraContext(
        camera_id=camera.id,
        zones=_zones(camera),
        timezone=config.timezone,
        address=camera.address or config.address,
        grid_id=camera.grid_id or config.grid_id,
        default_severity={code: t.severity for code, t in taxonomy.types.items()},
    )


def _zones(camera: CameraConfig) -> dict[str, list[tuple[float, float]]]:
    return {k: [(float(p[0]), float(p[1])) for p in v] for k, v in camera.zones.items()}


class CameraEngine:
    """Run one camera's pipelines over its frames.

    The node and ``detect`` build engines whole through ``edge.assembly`` (pipelines with
    their extra models, options and detector hooks resolved first); nothing is set on an
    engine after it is made.

    Args:
        config: node config.
        camera: this camera's config.
        detect: shared detector function (synchronous).
        taxonomy: for default severities.
        start: aware datetime of media time 0 (offline: --start; live: now at start).
        detector_confidence: the node's detection confidence (tracks start above it).
        options: gate, health and clip settings.
        submit: asynchronous detector (preferred over ``detect`` when set).
        pipelines: the camera's pipelines, built by the assembly (None: built here from
            the camera's config, without extra models).
    """

    def __init__(
        self,
        config: EdgeConfig,
        camera: CameraConfig,
        detect: DetectFn | None,
        taxonomy: Taxonomy,
        start: datetime,
        detector_confidence: float = 0.35,
        options: EngineOptions | None = None,
        submit: SubmitFn | None = None,
        *,
        pipelines: Mapping[str, CameraPipeline] | None = None,
    ) -> None:
        self.config = config
        self.camera = camera
        self.detect = detect
        self.submit = submit
        self.start = start
        self.options = options or EngineOptions()
        self.counters = CameraCounters()
        if pipelines is None:
            context = camera_context(config, camera, taxonomy)
            pipelines = {
                name: build_pipeline(name, opts, context) for name, opts in camera.pipelines.items()
            }
        self.pipelines: dict[str, CameraPipeline] = dict(pipelines)
        self.needs_detections = any(p.needs_detections for p in self.pipelines.values())
        # a pipeline that wants every frame *and* tracks must see them in order: detect synchronously
        self._must_sync = any(
            p.needs_detections and p.needs_every_frame for p in self.pipelines.values()
        )
        self.classes = (
            self.options.classes if self.options.classes is not None else self._pipeline_classes()
        )
        self.tracker = Tracker(
            high_threshold=detector_confidence,
            low_threshold=max(0.05, detector_confidence * 0.4),
            zones=_zones(camera),
        )
        sampling = SamplingOptions.from_config(getattr(camera, "sampling", None))
        self.sampler = Sampler(sampling, config.detector.input_size)
        self.detect_fps = detect_fps(
            camera.detect_fps,
            "detect_fps" in camera.model_fields_set,
            [n for n, p in self.pipelines.items() if p.needs_detections],
            sampling,
        )
        self.period = 1.0 / self.detect_fps
        self._next_sample_t = 0.0
        o = self.options
        self.gate: MotionGate | None = (
            MotionGate(o.keepalive_s, o.hangover_s, MotionDetector(width=o.motion_width))
            if o.motion_gate
            else None
        )
        self.health: CameraHealth | None = (
            CameraHealth(camera.id, o.health_options) if o.health else None
        )
        self.clips: ClipBuffer | None = (
            ClipBuffer(o.clip_pre_s, o.clip_post_s, o.clip_fps, o.clip_width) if o.clips else None
        )
        self._finished_clips: deque[FinishedClip] = deque(maxlen=16)
        self._pending: _Pending | None = None
        self.last_tracks: list[Track] = []
        self._zone_polys = [
            np.asarray(p, dtype=np.float32).reshape(-1, 1, 2) for p in camera.zones.values()
        ]
        self._boost = False
        max_fps = self.options.max_detect_fps or 2.0 * self.detect_fps
        # detector samples in the last second (media time), for the max_detect_fps cap
        self._max_samples_per_s = max(1, int(max(max_fps, self.detect_fps) + 1e-6))
        self._recent_samples: deque[float] = deque(maxlen=self._max_samples_per_s + 1)
        self._last_frame_t: float | None = None
        self._resume_from: datetime | None = None  # set by load_state: a restart is a gap
        self.camera_width = 0
        self.last_image: np.ndarray | None = None

    def _pipeline_classes(self) -> tuple[str, ...] | None:
        union: set[str] = set()
        for p in self.pipelines.values():
            if not p.needs_detections:
                continue
            classes = getattr(getattr(p, "options", None), "classes", None)
            if not classes:
                return None  # a pipeline that takes every class
            union.update(str(c) for c in classes)
        return tuple(sorted(union)) or None

    @property
    def health_state(self) -> str | None:
        """The open camera-health condition (black, frozen, covered, blurred) or None."""
        return self.health.state if self.health is not None else None

    def adopt(self, old: CameraEngine) -> None:
        """Take over a running engine of the same camera (new zones or options, not a restart).

        The counters, motion gate, health, clip buffer, the pending detection and each
        pipeline's state carry over; nothing is treated as a gap. The detector hooks are
        this engine's own (the assembly gives a changed camera the same ones).
        """
        self.counters = old.counters
        self.gate, self.health, self.clips = old.gate, old.health, old.clips
        self._finished_clips = old._finished_clips
        self._pending = old._pending
        self._next_sample_t = old._next_sample_t
        self._last_frame_t = old._last_frame_t
        self.last_image = old.last_image
        self.camera_width = old.camera_width
        for name, saved in old.state().items():
            p = self.pipelines.get(name)
            if p is not None and hasattr(p, "load_state"):
                p.load_state(saved)

    def process(self, frame: Frame) -> list[Emitted]:
        """Feed one decoded frame; returns what the pipelines (and the health check) found."""
        self.counters.frames_seen += 1
        self.camera_width = frame.image.shape[1]
        self.last_image = frame.image  # the setup page's snapshot (a reference, no copy)
        at = self.start + timedelta(seconds=frame.t)
        out: list[Emitted] = []
        self._note_gap(frame, at)
        grey = None
        if self.gate is not None or self.health is not None:
            grey = downscale_grey(frame.image, self.options.motion_width)
        if self.health is not None and grey is not None:
            for f in self.health.update(grey, frame.t, at):
                out.append(
                    Emitted(f, HEALTH_PIPELINE, frame.image if f.snapshot else None, frame.t)
                )
        if self.gate is not None:
            self.gate.observe(frame.image, frame.t, grey)
        moving = self.gate is None or self.gate.in_motion(frame.t)
        self.counters.frames_seen_moving += moving
        if self._pending is not None and self._pending.future.done():
            out.extend(self._complete(self._pending))
            self._pending = None

        sample = frame.t + 1e-9 >= self._next_sample_t
        if sample:
            # keep a steady grid of sample times even when frames arrive irregularly
            self._next_sample_t = max(
                self._next_sample_t + self.period, frame.t + self.period * 0.5
            )
        elif self._boost and self.needs_detections:
            recent = self._recent_samples
            while recent and recent[0] <= frame.t - 1.0 + 1e-9:
                recent.popleft()
            if len(recent) < self._max_samples_per_s:
                sample = True
                self.counters.frames_boosted += 1
            else:
                self.counters.boost_capped += 1
        if sample:
            self._recent_samples.append(frame.t)
        tracks: list[Track] | None = None
        deferred = False
        if (
            sample
            and self.needs_detections
            and (self.detect is not None or self.submit is not None)
        ):
            if self.gate is not None and (
                not self.gate.should_detect(frame.t)
                or (not moving and self.sampler.skip_keepalive(frame.t, self.last_tracks, True))
            ):
                self.counters.frames_gated += 1
                if self._pending is None:
                    tracks = self.tracker.coast(frame.t)
                else:
                    deferred = True
            elif self.submit is not None and not self._must_sync:
                deferred = True
                if self._pending is not None:
                    self.counters.detect_busy += 1
                else:
                    image, undo = self._detector_input(frame.image, moving)
                    fut = self.submit(self.camera.id, image)
                    if fut is None:
                        self.counters.detect_dropped += 1
                    else:
                        self._pending = _Pending(fut, frame, at, moving, undo)
            elif self.detect is not None:
                image, undo = self._detector_input(frame.image, moving)
                dets = self.detect(self.camera.id, image)
                tracks = self._track(undo(dets) if undo else dets, frame.t, moving)
            elif self.submit is not None:
                image, undo = self._detector_input(frame.image, moving)
                fut = self.submit(self.camera.id, image)
                if fut is None:
                    self.counters.detect_dropped += 1
                else:
                    dets = fut.result(timeout=60.0)
                    tracks = self._track(undo(dets) if undo else dets, frame.t, moving)
        out.extend(
            self._observe(
                frame,
                at,
                tracks,
                # a detection pipeline whose sample is in the detector gets it when it answers
                lambda p: (
                    (sample or p.needs_every_frame)
                    and not (p.needs_detections and sample and deferred)
                ),
            )
        )
        if self.clips is not None:
            for em in out:
                if em.finding.snapshot and em.image is not None and em.pipeline != HEALTH_PIPELINE:
                    tag = self.clips.request(em.media_t)
                    if tag is not None:
                        out[out.index(em)] = Emitted(
                            em.finding, em.pipeline, em.image, em.media_t, tag
                        )
            self._finished_clips.extend(self.clips.push(frame.t, frame.image))
        return out

    def _note_gap(self, frame: Frame, at: datetime) -> None:
        """Tell the pipelines (and the health check) when the source was blind before ``frame``.

        A gap is a stream that came back (``frame.gap_s``), a jump of media time longer than
        ``gap_s``, or the first frame after a restart that loaded saved state. What the
        pipelines could not see during it is not gone: they restart their clear windows here.
        """
        gap = frame.gap_s
        if self._last_frame_t is not None:
            gap = max(gap, frame.t - self._last_frame_t)
        self._last_frame_t = frame.t
        if self._resume_from is not None:
            gap = max(gap, (at - self._resume_from).total_seconds(), self.options.gap_s)
            self._resume_from = None
        if gap < self.options.gap_s:
            return
        self.counters.gaps += 1
        log.info("camera %s: blind for %.1fs before media time %.1fs", self.camera.id, gap, frame.t)
        if self.health is not None:
            self.health.resume()
        for name, pipeline in self.pipelines.items():
            resume = getattr(pipeline, "resume", None)
            if resume is None:
                continue
            try:
                resume(at, frame.t, gap)
            except Exception:  # a pipeline bug must not stop the camera; count and log it
                self.counters.pipeline_errors += 1
                log.exception("camera %s: pipeline %s failed to resume", self.camera.id, name)

    def _detector_input(self, image: np.ndarray, moving: bool) -> tuple[np.ndarray, Undo | None]:
        """The frame, or only its moving part when ``sampling.crop`` allows (motion samples)."""
        if not moving or self.gate is None:
            return image, None
        return self.sampler.detector_input(image, self.gate.motion_box(), self.last_tracks)

    def _track(self, dets: Detections, t: float, moving: bool = True) -> list[Track]:
        self.sampler.note_detection(t)
        if self.classes:
            from edge.detector.runtime import filter_classes

            dets = filter_classes(dets, self.classes)
        self.counters.frames_detected += 1
        self.counters.frames_detected_moving += moving
        self.counters.detect_walls.append(time.monotonic())
        tracks = self.tracker.update(dets, t)
        self.last_tracks = tracks
        self._boost = self._at_zone_edge(tracks, dets)
        return tracks

    def _at_zone_edge(self, tracks: list[Track], dets: Detections) -> bool:
        """Whether a tracked object's foot point is within the zone band of a zone edge."""
        band = self.options.zone_band
        if band <= 0 or not self._zone_polys or not tracks:
            return False
        import cv2

        width = self.camera_width or 1
        limit = band * width
        for tr in tracks:
            if self.classes and tr.class_name not in self.classes:
                continue
            foot = tr.bottom_center
            for poly in self._zone_polys:
                if abs(cv2.pointPolygonTest(poly, (float(foot[0]), float(foot[1])), True)) < limit:
                    return True
        return False

    def _complete(self, pending: _Pending) -> list[Emitted]:
        """Hand an answered detection to the tracker and the detection pipelines."""
        try:
            dets = pending.future.result(timeout=0)
        except Exception:  # the detector failed on this frame: counted, the camera goes on
            self.counters.detect_dropped += 1
            log.warning(
                "camera %s: detection failed on frame %d", self.camera.id, pending.frame.index
            )
            return []
        if pending.undo is not None:
            dets = pending.undo(dets)
        tracks = self._track(dets, pending.frame.t, pending.moving)
        return self._observe(pending.frame, pending.at, tracks, lambda p: p.needs_detections)

    def _observe(
        self,
        frame: Frame,
        at: datetime,
        tracks: list[Track] | None,
        wants: Callable[[CameraPipeline], bool],
    ) -> list[Emitted]:
        """Give ``frame`` (and ``tracks``, to the pipelines that use detections) to every
        pipeline that ``wants`` it: the one loop through which pipelines see frames."""
        h, w = frame.image.shape[:2]
        out: list[Emitted] = []
        for name, pipeline in self.pipelines.items():
            if not wants(pipeline):
                continue
            obs = Observation(
                camera_id=self.camera.id,
                frame_index=frame.index,
                t=frame.t,
                at=at,
                tracks=tracks if pipeline.needs_detections else None,
                frame=frame.image if pipeline.needs_frames else None,
                frame_size=(w, h),
            )
            out.extend(self._run_pipeline(name, pipeline, obs, frame))
        return out

    def _run_pipeline(
        self, name: str, pipeline: CameraPipeline, obs: Observation, frame: Frame
    ) -> list[Emitted]:
        try:
            findings = pipeline.update(obs)
        except Exception:  # a pipeline bug must not stop the camera; count and log it
            self.counters.pipeline_errors += 1
            log.exception(
                "camera %s: pipeline %s failed on frame %d", self.camera.id, name, frame.index
            )
            return []
        self.counters.findings += len(findings)
        return [Emitted(f, name, frame.image, frame.t) for f in findings]

    def finished_clips(self) -> list[FinishedClip]:
        """Clips whose post-event time has passed since the last call (tags match ``Emitted.clip``)."""
        out = list(self._finished_clips)
        self._finished_clips.clear()
        return out

    def flush(self, media_t: float) -> list[Emitted]:
        """End of stream: wait for a detection in flight, then let pipelines close what is open."""
        out: list[Emitted] = []
        if self._pending is not None:
            try:
                self._pending.future.result(timeout=30.0)
            except Exception:
                pass
            out.extend(self._complete(self._pending))
            self._pending = None
        at = self.start + timedelta(seconds=media_t)
        for name, pipeline in self.pipelines.items():
            try:
                for f in pipeline.flush(at):
                    out.append(Emitted(f, name, None, media_t))
            except Exception:
                self.counters.pipeline_errors += 1
                log.exception("camera %s: pipeline %s failed at flush", self.camera.id, name)
        if self.clips is not None:
            self._finished_clips.extend(self.clips.flush())
        return out

    def state(self) -> dict[str, Any]:
        """Persistable pipeline state (pipelines that support it)."""
        return {n: p.state_dict() for n, p in self.pipelines.items() if hasattr(p, "state_dict")}

    def load_state(self, state: dict[str, Any], saved_at: datetime | None = None) -> None:
        """Restore pipeline state saved by ``state()``.

        The downtime is a gap: at the first frame the pipelines are told they were blind
        since ``saved_at`` (or for at least ``gap_s``), so nothing is cleared for being
        unseen while the node was down.
        """
        for n, s in state.items():
            p = self.pipelines.get(n)
            if p is not None and hasattr(p, "load_state"):
                p.load_state(s)
        self._resume_from = saved_at or self.start


def classes_filter(classes: Collection[str] | None) -> tuple[str, ...] | None:
    """Normalise a class list option (empty → None: keep every class)."""
    return tuple(classes) if classes else None
