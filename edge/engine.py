"""Per-camera perception: sample → detect → track → pipelines → findings.

The same engine runs live (``edge run``, paced sources) and offline (``detect``, as fast as
possible): only the source's pacing differs, so offline results predict live behaviour.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np

from edge.detector.runtime import Detections
from edge.sources.video import Frame
from edge.tracker import Tracker
from pipelines.base import CameraContext, CameraPipeline, Finding, Observation
from pipelines.registry import build_pipeline
from shaobing.config import CameraConfig, EdgeConfig
from shaobing.taxonomy import Taxonomy

log = logging.getLogger(__name__)

DetectFn = Callable[[str, np.ndarray], Detections]
"""(camera_id, BGR image) → detections; the node's shared (batched) detector."""


@dataclass
class CameraCounters:
    """Per-camera counters for status and metrics."""

    frames_seen: int = 0
    frames_detected: int = 0
    findings: int = 0
    pipeline_errors: int = 0
    detect_walls: list[float] = field(default_factory=list)


@dataclass(frozen=True)
class Emitted:
    """A finding with the frame it was made on (for the snapshot) and its pipeline."""

    finding: Finding
    pipeline: str
    image: np.ndarray | None
    media_t: float


class CameraEngine:
    """Run one camera's pipelines over its frames.

    Args:
        config: node config.
        camera: this camera's config.
        detect: shared detector function.
        taxonomy: for default severities.
        start: aware datetime of media time 0 (offline: --start; live: now at start).
    """

    def __init__(
        self,
        config: EdgeConfig,
        camera: CameraConfig,
        detect: DetectFn | None,
        taxonomy: Taxonomy,
        start: datetime,
        detector_confidence: float = 0.35,
    ) -> None:
        self.config = config
        self.camera = camera
        self.detect = detect
        self.start = start
        self.counters = CameraCounters()
        context = CameraContext(
            camera_id=camera.id,
            zones={k: [tuple(p) for p in v] for k, v in camera.zones.items()},  # type: ignore[misc]
            timezone=config.timezone,
            address=camera.address or config.address,
            grid_id=camera.grid_id or config.grid_id,
            default_severity={code: t.severity for code, t in taxonomy.types.items()},
        )
        self.pipelines: dict[str, CameraPipeline] = {
            name: build_pipeline(name, opts, context) for name, opts in camera.pipelines.items()
        }
        self.needs_detections = any(p.needs_detections for p in self.pipelines.values())
        self.tracker = Tracker(high_threshold=detector_confidence, low_threshold=max(0.05, detector_confidence * 0.4))
        self.period = 1.0 / camera.detect_fps
        self._next_sample_t = 0.0

    def process(self, frame: Frame) -> list[Emitted]:
        """Feed one decoded frame; returns what the pipelines found."""
        self.counters.frames_seen += 1
        sample = frame.t + 1e-9 >= self._next_sample_t
        if sample:
            # keep a steady grid of sample times even when frames arrive irregularly
            self._next_sample_t = max(self._next_sample_t + self.period, frame.t + self.period * 0.5)
        tracks = None
        if sample and self.needs_detections and self.detect is not None:
            dets = self.detect(self.camera.id, frame.image)
            self.counters.frames_detected += 1
            tracks = self.tracker.update(dets, frame.t)
        at = self.start + timedelta(seconds=frame.t)
        h, w = frame.image.shape[:2]
        out: list[Emitted] = []
        for name, pipeline in self.pipelines.items():
            if not (sample or pipeline.needs_every_frame):
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
            try:
                findings = pipeline.update(obs)
            except Exception:  # a pipeline bug must not stop the camera; count and log it
                self.counters.pipeline_errors += 1
                log.exception("camera %s: pipeline %s failed on frame %d", self.camera.id, name, frame.index)
                continue
            for f in findings:
                self.counters.findings += 1
                out.append(Emitted(f, name, frame.image, frame.t))
        return out

    def flush(self, media_t: float) -> list[Emitted]:
        """End of stream: let pipelines close what is open."""
        at = self.start + timedelta(seconds=media_t)
        out: list[Emitted] = []
        for name, pipeline in self.pipelines.items():
            try:
                for f in pipeline.flush(at):
                    out.append(Emitted(f, name, None, media_t))
            except Exception:
                self.counters.pipeline_errors += 1
                log.exception("camera %s: pipeline %s failed at flush", self.camera.id, name)
        return out

    def state(self) -> dict[str, Any]:
        """Persistable pipeline state (pipelines that support it)."""
        return {n: p.state_dict() for n, p in self.pipelines.items() if hasattr(p, "state_dict")}  # type: ignore[attr-defined]

    def load_state(self, state: dict[str, Any]) -> None:
        """Restore pipeline state saved by ``state()``."""
        for n, s in state.items():
            p = self.pipelines.get(n)
            if p is not None and hasattr(p, "load_state"):
                p.load_state(s)  # type: ignore[attr-defined]
