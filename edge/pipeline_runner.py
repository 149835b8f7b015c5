"""Offline runner: one camera's engine over one video file, unpaced (``shaobing detect``)."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from edge.assembly import DetectorHooks, assemble_camera
from edge.detector.protocol import Detector
from edge.engine import Emitted
from edge.events import EventFactory
from edge.evidence import EvidenceStore, render_snapshot
from edge.extra_models import ExtraModels
from edge.sources.video import VideoSource
from shaobing.config import CameraConfig, EdgeConfig
from shaobing.contract import Event, Evidence
from shaobing.taxonomy import default_taxonomy, load_taxonomy

log = logging.getLogger(__name__)


def detector_workers(cfg: EdgeConfig, cameras: int | None = None) -> tuple[int, int | None]:
    """(workers, intra-op threads per inference) for the node's detector.

    On a CPU, inferences side by side (one thread each) do more per second than one
    inference on every core, as soon as two cameras can keep two inferences busy; a
    single camera (or ``detect``) keeps one inference on all cores for the lowest latency.
    """
    d = cfg.detector
    n = cameras if cameras is not None else len([c for c in cfg.cameras if c.enabled])
    cores = os.cpu_count() or 1
    if d.workers is not None:
        workers = d.workers
    elif d.provider == "cpu" and cores >= 2 and n >= 2:
        workers = 2
    else:
        workers = 1
    threads = d.threads
    if threads is None and workers > 1 and d.provider == "cpu":
        threads = max(1, cores // workers)
    return workers, threads


def camera_threads(cameras: int, cores: int | None = None) -> int | None:
    """Threads each camera may use for its own work (decoding, OpenCV) on a node with
    ``cameras`` cameras: one when there are more cameras than cores, else None (the
    libraries' own choice, one per core, for the lowest latency of a few cameras).

    With more cameras than cores every core is already busy with a camera of its own; a
    thread pool per decoder and per OpenCV call then only adds switching. Measured on
    48 streams at 640×360, 10 fps on 2 cores, with the health check's four looks a second:
    decoding and the per-frame work fell from 117 % to 85 % of a core
    (``benchmarks/bench_edge_frame_cost.py``).
    """
    cores = cores or os.cpu_count() or 1
    return 1 if cameras > cores else None


def apply_camera_threads(cameras: int) -> int | None:
    """``camera_threads`` for this node, with OpenCV's own pool set to match (process-wide)."""
    threads = camera_threads(cameras)
    if threads is not None:
        import cv2

        cv2.setNumThreads(threads)
    return threads


def build_detector(cfg: EdgeConfig, cameras: int | None = None) -> Any:
    """The node's ONNX detector from config (resolved through the model manifest).

    ``cameras``: how many cameras share it (default: the enabled cameras of the config).
    """
    from edge.detector.choice import build_detector_for
    from shaobing.models import resolve_model

    path = resolve_model(cfg.detector.model, Path(cfg.base_dir))
    workers, threads = detector_workers(cfg, cameras)
    return build_detector_for(
        path,
        cfg.detector.runtime,
        input_size=cfg.detector.input_size,
        confidence=cfg.detector.confidence,
        iou=cfg.detector.iou,
        threads=threads,
        provider=cfg.detector.provider,
        parallel=workers,
        rectangular=cfg.detector.rectangular,
    )


def emitted_to_event(
    em: Emitted,
    camera: CameraConfig,
    factory: EventFactory,
    evidence_store: EvidenceStore | None,
) -> tuple[Event, dict[str, bytes]]:
    """Build the wire event and its evidence bytes for one finding."""
    evidence: list[Evidence] = []
    blobs: dict[str, bytes] = {}
    if evidence_store is not None:
        images: list[tuple[str, bytes]] = list(em.finding.evidence_images)
        if em.finding.snapshot and em.image is not None:
            images.insert(
                0, ("image/jpeg", render_snapshot(em.image, em.finding.boxes, camera.zones))
            )
        for content_type, data in images:
            ev, _ = evidence_store.save(
                data, content_type, "image" if content_type.startswith("image/") else "clip"
            )
            evidence.append(ev)
            blobs[ev.id] = data
    event = factory.build(em.finding, camera=camera, pipeline=em.pipeline, evidence=evidence)
    return event, blobs


class OfflineRunner:
    """Run one camera config over a video file as fast as possible."""

    def __init__(
        self,
        cfg: EdgeConfig,
        camera: CameraConfig,
        video: str,
        start: datetime,
        evidence_dir: Path | None,
    ) -> None:
        self.cfg = cfg
        self.camera = camera
        self.video = video
        self.start = start
        taxonomy = load_taxonomy(cfg.resolve(cfg.taxonomy)) if cfg.taxonomy else default_taxonomy()
        parts = assemble_camera(cfg, camera, taxonomy, offline=True, extra_models=ExtraModels(cfg))
        needs_detector = parts.needs_detections
        self.detector: Detector | None = None
        hooks = DetectorHooks()
        if needs_detector:
            det: Detector = build_detector(cfg, cameras=1)
            low = parts.detect_confidence
            hooks = DetectorHooks(detect=lambda _cam, image: det.infer([image], confidence=low)[0])
            self.detector = det
        self.engine = parts.build(start, hooks)
        self.factory = EventFactory(cfg, model_name=cfg.detector.model if needs_detector else None)
        self.evidence = EvidenceStore(evidence_dir) if evidence_dir else None
        self.source = VideoSource(video, loop=False, realtime=False)

    def run(self, progress: bool = False) -> Iterator[Event]:
        """Yield events in media-time order."""
        import cv2

        cap = cv2.VideoCapture(self.video)
        total = int(cap.get(7) or 0)
        cap.release()
        last_t = 0.0
        for frame in self.source.frames():
            last_t = frame.t
            for em in self.engine.process(frame):
                event, _ = emitted_to_event(em, self.camera, self.factory, self.evidence)
                yield event
            if progress and total and frame.index % 50 == 0:
                sys.stderr.write(
                    f"\rdetect: frame {frame.index}/{total} ({frame.index * 100 // total}%)"
                )
                sys.stderr.flush()
        if progress and total:
            sys.stderr.write(f"\rdetect: frame {total}/{total} (100%)\n")
        for em in self.engine.flush(last_t):
            event, _ = emitted_to_event(em, self.camera, self.factory, self.evidence)
            yield event

    def stats(self) -> dict[str, int]:
        """Frames read, detected and skipped."""
        c = self.engine.counters
        return {
            "frames": c.frames_seen,
            "frames_detected": c.frames_detected,
            "frames_corrupt": self.source.stats.frames_corrupt,
            "pipeline_errors": c.pipeline_errors,
        }
