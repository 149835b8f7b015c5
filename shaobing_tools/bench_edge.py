"""``shaobing bench edge``: N replayed camera streams through the full engine vs. the naive loop.

Ours: every stream is a file replayed in real time (640×360, 10 fps, looping) and decoded
on its own reader thread; each camera's engine runs the motion gate, the health check,
the clip ring, the shared batching ONNX detector (asynchronously, one frame in flight per
camera), the tracker and a zone-intrusion pipeline. Measured over ``--seconds`` after a
short warm-up: frames decoded/processed/dropped, detections per stream, the detector's
utilisation and latency, the process's CPU and RSS, and whether the streams are
sustained (no backlog: nearly no dropped frames, processing keeps up with decoding, and
every stream with motion is detected at ≥ 2 fps).

Baselines, same model and machine: (a) the loop a user would write — read every frame,
letterbox, onnxruntime batch 1, NMS, the same tracker — measured as fast as it runs on
one stream; the number of real-time 10 fps streams it sustains is its frame rate / 10.
(b) Ultralytics ``YOLO(...).track()`` when ``ultralytics`` is importable (skipped otherwise).

Recall: person entries into a zone of the pedestrians video (zone-intrusion pipeline),
ours (gated, sampled) vs. the naive loop (every frame). The detector is deterministic, so
it runs once per frame and both sides read the same detections; ours only sees the frames
its gate and sampler let through.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from shaobing.paths import assets_dir

log = logging.getLogger(__name__)

WIDTH, HEIGHT, FPS = 640, 360, 10
RECALL_VIDEO = "pedestrians_opencv_vtest.avi"
# a walkway across the middle of the pedestrians scene (source pixels of the 480×360 video)
RECALL_ZONE = [[200, 170], [480, 190], [480, 300], [330, 270], [200, 200]]


def _say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def prepare_clips(max_s: float = 30.0, names: Sequence[str] | None = None) -> list[Path]:
    """The asset videos transcoded to 640×360 at 10 fps (cached in the user cache).

    Args:
        max_s: seconds kept of each video.
        names: only the videos whose file name starts with one of these (default: all).
    """
    cache = (
        Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "shaobing" / "bench-edge"
    )
    cache.mkdir(parents=True, exist_ok=True)
    out = []
    for src in sorted((assets_dir() / "video").glob("*")):
        if src.suffix.lower() not in (".mp4", ".avi", ".mkv", ".mov"):
            continue
        if names is not None and not any(src.name.startswith(n) for n in names):
            continue
        suffix = "" if max_s == 30.0 else f"_{max_s:g}s"
        dst = cache / f"{src.stem}_{WIDTH}x{HEIGHT}_{FPS}fps{suffix}.mp4"
        if not dst.exists() or dst.stat().st_size == 0:
            tmp = dst.with_suffix(".tmp.mp4")
            cmd = [
                "ffmpeg", "-y", "-loglevel", "error", "-i", str(src), "-t", str(max_s),
                "-vf", f"fps={FPS},scale={WIDTH}:{HEIGHT}:force_original_aspect_ratio=decrease,"
                f"pad={WIDTH}:{HEIGHT}:(ow-iw)/2:(oh-ih)/2",
                "-an", "-c:v", "libx264", "-preset", "veryfast", "-g", "20", "-pix_fmt", "yuv420p", str(tmp),
            ]  # fmt: skip
            subprocess.run(cmd, check=True, timeout=300)
            tmp.replace(dst)
        out.append(dst)
    if not out:
        raise OSError(f"bench edge: expected videos in {assets_dir() / 'video'}, found none")
    return out


def _edge_config(
    zone: Sequence[Sequence[float]],
    detect_fps: float | None = 5.0,
    n: int = 1,
    urls: list[str] | None = None,
    sampling: dict[str, Any] | None = None,
) -> Any:
    from shaobing.config import EdgeConfig

    cams = [
        {
            "id": f"cam{i + 1:02d}",
            "url": (urls or ["bench"])[i % len(urls or ["bench"])],
            **({"detect_fps": detect_fps} if detect_fps is not None else {}),
            **({"sampling": sampling} if sampling else {}),
            "zones": {"walkway": zone},
            "pipelines": {
                "zone_intrusion": {
                    "zone": "walkway",
                    "classes": ["person"],
                    "type": "water_danger_intrusion",
                }
            },
        }
        for i in range(n)
    ]
    return EdgeConfig.model_validate({"node_id": "bench", "http": None, "cameras": cams})


def _model_path() -> Path:
    from shaobing.models import resolve_model

    return resolve_model("yolov5n")


# --------------------------------------------------------------------------- ours


@dataclass
class _StreamResult:
    frames_in: int = 0
    processed: int = 0
    dropped: int = 0
    detected: int = 0
    gated: int = 0
    busy: int = 0
    motion_fraction: float = 0.0
    lags: deque[float] = field(default_factory=lambda: deque(maxlen=3000))  # the last 5 min


@dataclass
class _Rig:
    """The engines, readers and the shared detector of one ``run_ours``."""

    cfg: Any
    detector: Any
    batcher: Any
    workers: int
    engines: list[Any]
    readers: list[Any]
    sources: list[Any]
    stop: threading.Event

    def snap(self) -> list[tuple[int, ...]]:
        """Per stream: frames in, seen, dropped, detected, gated, busy, moving, detected moving."""
        return [
            (s.stats.frames_in, e.counters.frames_seen, s.stats.frames_dropped, e.counters.frames_detected,
             e.counters.frames_gated, e.counters.detect_busy, e.counters.frames_seen_moving,
             e.counters.frames_detected_moving)
            for s, e in zip(self.sources, self.engines, strict=True)
        ]  # fmt: skip


def _build_rig(
    clips: list[Path],
    streams: int,
    threads: int | None,
    model: Path | None = None,
    runtime: str = "onnxruntime",
) -> _Rig:
    from edge.detector.batching import BatchingDetector
    from edge.detector.runtime import OnnxDetector
    from edge.engine import CameraEngine
    from edge.pipeline_runner import apply_camera_threads, detector_workers
    from edge.sources.video import FrameReader, VideoSource
    from shaobing.taxonomy import default_taxonomy

    zone = [[80, 120], [560, 120], [600, 340], [40, 340]]
    cfg = _edge_config(zone, 5.0, streams, [str(c) for c in clips])
    workers, auto_threads = detector_workers(cfg, streams)
    decode_threads = apply_camera_threads(streams)
    detector = OnnxDetector(
        model or _model_path(), threads=threads or auto_threads, parallel=workers, runtime=runtime
    )
    batcher = BatchingDetector(
        detector,
        batch=1,
        max_wait_ms=0.0,
        queue_size=streams + 4,
        confidence=0.14,
        workers=workers,
    )
    stop = threading.Event()
    taxonomy = default_taxonomy()
    rig = _Rig(cfg, detector, batcher, workers, [], [], [], stop)
    for cam in cfg.cameras:
        eng = CameraEngine(
            cfg,
            cam,
            None,
            taxonomy,
            datetime.now(UTC),
            0.35,
            submit=lambda _c, img: batcher.submit(img),
        )
        src = VideoSource(cam.url, loop=True, realtime=True, decode_threads=decode_threads)
        rig.engines.append(eng)
        rig.sources.append(src)
        rig.readers.append(FrameReader(src, stop, maxsize=4, drop=True))
    return rig


@dataclass
class _Window:
    """What the measured window saw beside the counters."""

    elapsed: float
    cpu_proc: float
    cpu_sys: float
    busy: float
    lat: list[float]
    rss_max: int
    depth_samples: list[int]
    rss_samples: list[tuple[float, float]]  # (seconds into the window, MB)


def _measure(rig: _Rig, seconds: float, measuring: threading.Event) -> _Window:
    """Sample RSS and queue depths once a second over ``seconds``."""
    import psutil

    batcher, proc = rig.batcher, psutil.Process()
    busy0, images0 = batcher.busy_seconds(), batcher.stats.images
    proc.cpu_percent(None)
    psutil.cpu_percent(None)
    measuring.set()
    t0 = time.monotonic()
    rss_max = proc.memory_info().rss
    depth_samples: list[int] = []
    rss_samples: list[tuple[float, float]] = []
    last_report = t0
    while time.monotonic() - t0 < seconds:
        rig.stop.wait(1.0)
        rss = proc.memory_info().rss
        rss_max = max(rss_max, rss)
        rss_samples.append((time.monotonic() - t0, rss / 2**20))
        depth_samples.append(sum(r.depth() for r in rig.readers) + batcher.queue_depth())
        if time.monotonic() - last_report >= 60.0:  # a line a minute on long runs
            last_report = time.monotonic()
            done = sum(e.counters.frames_detected for e in rig.engines)
            _say(
                f"bench edge: {last_report - t0:.0f}/{seconds:.0f}s, RSS {rss / 2**20:.0f} MB, "
                f"{done} detections so far"
            )
    elapsed = time.monotonic() - t0
    cpu_proc, cpu_sys = proc.cpu_percent(None), psutil.cpu_percent(None)
    images = batcher.stats.images - images0
    lat = (
        list(batcher.stats.latencies_ms)[-max(1, min(len(batcher.stats.latencies_ms), images)) :]
        if images
        else []
    )
    busy = batcher.busy_seconds() - busy0
    return _Window(elapsed, cpu_proc, cpu_sys, busy, lat, rss_max, depth_samples, rss_samples)


def _per_stream(
    rig: _Rig,
    before: list[tuple[int, ...]],
    after: list[tuple[int, ...]],
    results: list[Any],
    elapsed: float,
) -> list[dict[str, Any]]:
    per = []
    for i, (b, a) in enumerate(zip(before, after, strict=True)):
        fin, proc_, drop, det, gated, bsy, mot, det_mot = (x - y for x, y in zip(a, b, strict=True))
        lags = results[i].lags
        moving_s = mot / max(1, proc_) * elapsed
        per.append(
            {
                "camera": rig.cfg.cameras[i].id,
                "video": Path(rig.cfg.cameras[i].url).name,
                "fps_in": fin / elapsed,
                "fps_processed": proc_ / elapsed,
                "dropped": drop,
                "fps_detect": det / elapsed,
                "gated": gated,
                "busy_skips": bsy,
                "motion_fraction": mot / max(1, proc_),
                "moving_s": round(moving_s, 1),
                # the target: detections per second *while there is motion* (keep-alives excluded)
                "fps_detect_moving": det_mot / moving_s if moving_s > 0 else 0.0,
                "lag_p95_ms": float(np.percentile(lags, 95) * 1000) if lags else 0.0,
            }
        )
    return per


def _summary(rig: _Rig, streams: int, w: _Window, per: list[dict[str, Any]]) -> dict[str, Any]:
    elapsed, lat, workers = w.elapsed, w.lat, rig.workers
    moving = [p for p in per if p["moving_s"] >= 0.1 * elapsed]
    drop_rate = sum(p["dropped"] for p in per) / max(1, sum(p["fps_in"] * elapsed for p in per))
    keeps_up = all(p["fps_processed"] >= 0.95 * p["fps_in"] for p in per)
    detect_ok = all(p["fps_detect_moving"] >= 2.0 for p in moving)
    depth = w.depth_samples
    backlog_growth = (depth[-1] - depth[0]) if len(depth) >= 2 else 0
    rss_samples = w.rss_samples
    fps_in_total = sum(p["fps_in"] for p in per)
    # capacity estimate: detector images/s at full use over the detections a stream needs
    # (2 fps while moving, one keep-alive every 3 s when still), capped by decoding keeping up
    infer_ms = statistics.median(lat) if lat else None
    demand = statistics.mean(
        2.0 * p["motion_fraction"] + (1 - p["motion_fraction"]) / 3.0 for p in per
    )
    capacity = (workers * 1000.0 / infer_ms) / demand if infer_ms else 0.0
    decode_ok = drop_rate <= 0.02 and keeps_up
    return {
        "streams": streams,
        "seconds": round(elapsed, 1),
        "fps_in_per_stream_median": round(statistics.median(p["fps_in"] for p in per), 2),
        "frames_decoded_per_s": round(fps_in_total, 1),
        "frames_detected_per_s": round(sum(p["fps_detect"] for p in per), 2),
        "fps_detect_per_stream_median": round(statistics.median(p["fps_detect"] for p in per), 2),
        "fps_detect_while_moving_median": round(
            statistics.median(p["fps_detect_moving"] for p in moving) if moving else 0.0, 2
        ),
        "fps_detect_while_moving_min": round(
            min((p["fps_detect_moving"] for p in moving), default=0.0), 2
        ),
        "moving_streams": len(moving),
        "gated_fraction": round(
            sum(p["gated"] for p in per)
            / max(1, sum(p["gated"] + p["fps_detect"] * elapsed + p["busy_skips"] for p in per)),
            3,
        ),
        "dropped_frame_rate": round(drop_rate, 4),
        "lag_p95_ms_median": round(statistics.median(p["lag_p95_ms"] for p in per), 1),
        "queue_depth_growth": backlog_growth,
        "detector_workers": workers,
        "detector_input": "rectangular" if rig.detector.stride else "square",
        "detector_utilisation": round(w.busy / (elapsed * workers), 3),
        "inference_ms_per_image_median": round(statistics.median(lat), 1) if lat else None,
        "cpu_percent_process": round(w.cpu_proc, 1),
        "cpu_percent_system": round(w.cpu_sys, 1),
        "rss_mb_max": round(w.rss_max / 2**20, 1),
        "rss_mb_start": round(rss_samples[0][1], 1) if rss_samples else None,
        "rss_mb_end": round(rss_samples[-1][1], 1) if rss_samples else None,
        "rss_growth_mb_per_min": rss_trend(rss_samples),
        "sustained": bool(decode_ok and detect_ok and backlog_growth <= streams),
        "decode_keeps_up": bool(decode_ok),
        "detect_demand_per_stream": round(demand, 3),
        # what the detector could serve; decoding was only measured up to ``streams``
        "streams_capacity_estimate": round(capacity if decode_ok else 0.0, 1),
        "per_stream": per,
    }


def run_ours(
    clips: list[Path],
    streams: int,
    seconds: float,
    warmup_s: float = 4.0,
    threads: int | None = None,
    model: Path | None = None,
    runtime: str = "onnxruntime",
) -> dict[str, Any]:
    """N real-time streams through the full engine; returns the figures of the measured window."""
    rig = _build_rig(clips, streams, threads, model, runtime)
    measuring = threading.Event()
    results = [_StreamResult() for _ in range(streams)]
    events = [0] * streams

    def worker(i: int) -> None:
        eng, r = rig.engines[i], results[i]
        for frame in rig.readers[i]:
            ems = eng.process(frame)
            events[i] += len(ems)
            if measuring.is_set():
                r.lags.append(time.time() - frame.wall)
            eng.finished_clips()

    threads_ = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(streams)]
    for t in threads_:
        t.start()
    rig.stop.wait(warmup_s)
    before = rig.snap()
    window = _measure(rig, seconds, measuring)
    after = rig.snap()
    measuring.clear()
    rig.stop.set()
    for t in threads_:
        t.join(timeout=10)
    rig.batcher.close()
    per = _per_stream(rig, before, after, results, window.elapsed)
    return _summary(rig, streams, window, per)


def rss_trend(samples: list[tuple[float, float]]) -> float | None:
    """Least-squares RSS slope in MB per minute, leaving out the first fifth (caches filling)."""
    if len(samples) < 10:
        return None
    tail = samples[len(samples) // 5 :]
    t = np.array([s[0] for s in tail]) / 60.0
    mb = np.array([s[1] for s in tail])
    if float(t.max() - t.min()) <= 0:
        return None
    slope = float(np.polyfit(t, mb, 1)[0])
    return round(slope, 2)


# --------------------------------------------------------------------------- naive


class NaiveLoop:
    """What a user would write: every frame → letterbox → onnxruntime (defaults, batch 1) → NMS → tracker."""

    def __init__(self, model: Path, confidence: float = 0.14, iou: float = 0.45) -> None:
        import onnxruntime as ort

        from edge.tracker import Tracker

        self.session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
        self.input = self.session.get_inputs()[0].name
        self.confidence = confidence
        self.iou = iou
        self.tracker = Tracker(high_threshold=0.35, low_threshold=0.14)

    def detect(self, image: np.ndarray) -> Any:
        """One frame's detections (source pixels)."""
        import cv2

        from edge.detector.runtime import COCO80, Detections, decode

        h, w = image.shape[:2]
        s = min(640 / w, 640 / h)
        nw, nh = int(round(w * s)), int(round(h * s))
        canvas = np.full((640, 640, 3), 114, np.uint8)
        px, py = (640 - nw) // 2, (640 - nh) // 2
        canvas[py : py + nh, px : px + nw] = cv2.resize(image, (nw, nh))
        x = canvas[:, :, ::-1].transpose(2, 0, 1)[None].astype(np.float32) / 255.0
        raw = self.session.run(None, {self.input: x})[0]
        boxes, score, cls = decode(raw, "auto", 80, self.confidence, self.iou)[0]
        boxes = boxes.copy()
        boxes[:, [0, 2]] = ((boxes[:, [0, 2]] - px) / s).clip(0, w)
        boxes[:, [1, 3]] = ((boxes[:, [1, 3]] - py) / s).clip(0, h)
        return Detections(boxes, score, cls, tuple(COCO80))


def run_naive(clip: Path, seconds: float) -> dict[str, Any]:
    """The naive loop on one stream as fast as it goes; real-time 10 fps streams it sustains."""
    import cv2

    loop = NaiveLoop(_model_path())
    cap = cv2.VideoCapture(str(clip))
    frames = 0
    infer_s = 0.0
    t0 = time.monotonic()
    t = 0.0
    while time.monotonic() - t0 < seconds:
        ok, img = cap.read()
        if not ok:
            cap.release()
            cap = cv2.VideoCapture(str(clip))
            continue
        a = time.perf_counter()
        dets = loop.detect(img)
        infer_s += time.perf_counter() - a
        loop.tracker.update(dets, t)
        t += 1.0 / FPS
        frames += 1
    elapsed = time.monotonic() - t0
    cap.release()
    fps = frames / elapsed
    return {
        "frames_per_s": round(fps, 2),
        "inference_ms_per_image": round(infer_s * 1000 / max(1, frames), 1),
        "realtime_streams_sustained": int(fps // FPS),
        "realtime_streams_exact": round(fps / FPS, 2),
    }


def run_ultralytics(clip: Path, seconds: float) -> dict[str, Any]:
    """``YOLO(...).track()`` over one stream as fast as it goes, when ultralytics is importable."""
    try:
        from ultralytics import YOLO
    except ImportError:
        return {
            "skipped": "ultralytics is not importable here (it lives in the separate training environment)"
        }
    import os

    # a model built from yolov8n.yaml: no download, the compute of the real yolov8n
    # (random weights find nothing: this baseline measures speed only)
    os.environ.setdefault("YOLO_OFFLINE", "1")
    try:
        model = YOLO("yolov8n.yaml", task="detect")
    except Exception as exc:  # an ultralytics without the yaml, or no torch
        return {"skipped": f"ultralytics could not build yolov8n.yaml: {exc}"}
    import cv2

    cap = cv2.VideoCapture(str(clip))
    frames, t0 = 0, time.monotonic()
    try:
        while time.monotonic() - t0 < seconds:
            ok, img = cap.read()
            if not ok:
                break
            model.track(img, persist=True, verbose=False, imgsz=640)
            frames += 1
    except Exception as exc:  # keep the other figures when the baseline fails
        return {"skipped": f"ultralytics track failed: {exc}"}
    fps = frames / max(1e-6, time.monotonic() - t0)
    return {"frames_per_s": round(fps, 2), "realtime_streams_sustained": int(fps // FPS)}


# --------------------------------------------------------------------------- recall


def _read_frames(
    video: Path, count: int | None = None, seconds: float = 0.0
) -> tuple[list[np.ndarray], float]:
    """The first ``count`` frames (or ``seconds`` of them) of ``video`` and its frame rate."""
    import cv2

    cap = cv2.VideoCapture(str(video))
    fps = cap.get(cv2.CAP_PROP_FPS) or 10.0
    if count is None:
        count = int(seconds * fps)
    frames: list[np.ndarray] = []
    while len(frames) < count:
        ok, img = cap.read()
        if not ok:
            break
        frames.append(img)
    cap.release()
    return frames, fps


_START = datetime(2026, 1, 1, tzinfo=UTC)


def naive_zone_entries(
    frames: list[np.ndarray], fps: float, zone: Sequence[Sequence[float]] = RECALL_ZONE
) -> int:
    """Zone entries of the naive loop: every frame through the tracker and the pipeline."""
    from datetime import timedelta

    from pipelines.base import CameraContext, Observation
    from pipelines.registry import build_pipeline

    loop = NaiveLoop(_model_path())
    opts = {"zone": "walkway", "classes": ["person"], "type": "water_danger_intrusion"}
    ctx = CameraContext(camera_id="naive", zones={"walkway": [tuple(p) for p in zone]})  # type: ignore[misc]
    pipe = build_pipeline("zone_intrusion", opts, ctx)
    entries = 0
    for i, img in enumerate(frames):
        t = i / fps
        tracks = loop.tracker.update(loop.detect(img), t)
        obs = Observation(
            "naive", i, t, _START + timedelta(seconds=t), tracks, None, (img.shape[1], img.shape[0])
        )
        entries += len(pipe.update(obs))
    return entries


def ours_zone_entries(
    frames: list[np.ndarray],
    fps: float,
    detect: Any,
    sampling: dict[str, Any] | None = None,
    detect_fps: float | None = 5.0,
    zone: Sequence[Sequence[float]] = RECALL_ZONE,
) -> dict[str, Any]:
    """Zone entries through the engine (gate, sampler, tracker, pipeline) on ``detect``;
    with the detector calls, their seconds and the camera's sampling counters."""
    from edge.engine import CameraEngine
    from edge.sources.video import Frame
    from shaobing.taxonomy import default_taxonomy

    cfg = _edge_config(zone, detect_fps, 1, ["bench"], sampling)
    spent = [0.0]

    def timed(c: str, img: np.ndarray) -> Any:
        t0 = time.perf_counter()
        try:
            return detect(c, img)
        finally:
            spent[0] += time.perf_counter() - t0

    eng = CameraEngine(cfg, cfg.cameras[0], timed, default_taxonomy(), _START, 0.35)
    entries = 0
    for i, img in enumerate(frames):
        entries += sum(
            1 for e in eng.process(Frame(i, i / fps, img, 0.0)) if e.pipeline == "zone_intrusion"
        )
    entries += sum(1 for e in eng.flush(len(frames) / fps) if e.pipeline == "zone_intrusion")
    st = eng.sampler.stats
    return {
        "entries": entries,
        "detector_calls": eng.counters.frames_detected,
        "detector_s": round(spent[0], 2),
        "detect_fps": eng.detect_fps,
        "cropped": st.cropped,
        "crop_pixel_fraction": round(st.crop_pixels / st.full_pixels, 3)
        if st.full_pixels
        else None,
        "keepalives_skipped": st.keepalives_skipped,
    }


def run_recall(
    max_s: float = 40.0,
    partner: Path | None = None,
    model: Path | None = None,
    runtime: str = "onnxruntime",
    naive: int | None = None,
) -> dict[str, Any]:
    """Zone entries in the pedestrians video: ours (gated, 5 fps samples) vs. the naive loop (every frame).

    The naive loop letterboxes every frame into the square input. Ours runs the engine with
    its gate and sampler on its own detector, twice: with each sample alone in a
    rectangular input (an idle detector) and packed with a frame of another camera
    (``partner``, as under load, at 89 % of the scale).

    Args:
        max_s: seconds of the video used.
        partner: the other camera's video for the packed run (default: none, packed skipped).
        model: ours's model (default: yolov5n FP32); the naive loop always runs yolov5n FP32.
        runtime: ours's runtime.
        naive: the naive loop's entries when already counted.
    """
    from edge.detector.runtime import OnnxDetector

    video = assets_dir() / "video" / RECALL_VIDEO
    frames, fps = _read_frames(video, seconds=max_s)
    others = _read_frames(partner, len(frames))[0] if partner is not None else []
    naive_entries = naive_zone_entries(frames, fps) if naive is None else naive
    detector = OnnxDetector(model or _model_path(), confidence=0.14, runtime=runtime)
    index = {id(f): i for i, f in enumerate(frames)}

    def alone(_c: str, img: np.ndarray) -> Any:
        return detector.infer([img])[0]

    def packed(_c: str, img: np.ndarray) -> Any:
        other = others[index[id(img)] % len(others)]
        return detector.infer_packed([img, other])[0]

    mine = ours_zone_entries(frames, fps, alone)
    ours_entries, calls = mine["entries"], mine["detector_calls"]
    packed_entries = ours_zone_entries(frames, fps, packed)["entries"] if others else None

    def within(n: int | None) -> bool:
        return bool(
            n is not None and naive_entries and abs(n - naive_entries) <= 0.1 * naive_entries
        )

    return {
        "video": RECALL_VIDEO,
        "seconds": round(len(frames) / fps, 1),
        "naive_entries": naive_entries,
        "ours_entries": ours_entries,
        "ours_packed_entries": packed_entries,
        "ratio": round(ours_entries / naive_entries, 3) if naive_entries else None,
        "ours_detector_calls": calls,
        "naive_detector_calls": len(frames),
        "ours_input": "rectangular" if detector.stride else "square",
        "within_10_percent": within(ours_entries)
        and (packed_entries is None or within(packed_entries)),
    }


# --------------------------------------------------------------------------- side by side

INDOOR_VIDEO = "people_indoor_intel_one_by_one.mp4"
INDOOR_ZONE = [[200, 200], [560, 200], [560, 432], [200, 432]]
SAMPLING_VARIANTS: list[tuple[str, dict[str, Any] | None, float | None]] = [
    ("none", None, 5.0),
    ("crop", {"crop": True}, 5.0),
    ("skip_still_keepalive", {"skip_still_keepalive": True}, 5.0),
    ("rate_from_pipelines", {"rate_from_pipelines": True}, None),
]


def run_variants(
    clips: list[Path],
    streams: int,
    seconds: float,
    found: dict[str, Path],
    names: list[str],
    naive_entries: int,
    partner: Path,
    first: dict[str, Any] | None = None,
    first_choice: tuple[str, str] = ("onnxruntime", "fp32"),
) -> list[dict[str, Any]]:
    """The streams run and the recall check for each runtime × precision.

    ``first``: the streams run already made with ``first_choice`` (not repeated).
    """
    rows = []
    for rt in names:
        for prec, path in found.items():
            try:
                if (rt, prec) == first_choice and first is not None:
                    ours = first
                else:
                    _say(f"bench edge: {rt} {prec}, {streams} streams for {seconds:.0f}s …")
                    ours = run_ours(clips, streams, seconds, model=path, runtime=rt)
                recall = run_recall(partner=partner, model=path, runtime=rt, naive=naive_entries)
            except Exception as exc:  # this runtime cannot load this model: say so, go on
                from shaobing_tools.bench_variants import _short

                rows.append({"runtime": rt, "precision": prec, "error": _short(exc)})
                continue
            rows.append(
                {
                    "runtime": rt,
                    "precision": prec,
                    "model": path.name,
                    "streams": ours["streams"],
                    "seconds": ours["seconds"],
                    "sustained": ours["sustained"],
                    "fps_detect_while_moving_median": ours["fps_detect_while_moving_median"],
                    "fps_detect_while_moving_min": ours["fps_detect_while_moving_min"],
                    "streams_capacity_estimate": ours["streams_capacity_estimate"],
                    "inference_ms_per_image_median": ours["inference_ms_per_image_median"],
                    "detector_utilisation": ours["detector_utilisation"],
                    "dropped_frame_rate": ours["dropped_frame_rate"],
                    "rss_mb_max": ours["rss_mb_max"],
                    "recall": {
                        k: recall[k]
                        for k in (
                            "naive_entries",
                            "ours_entries",
                            "ours_packed_entries",
                            "ratio",
                            "within_10_percent",
                        )
                    },
                }
            )
    return rows


def run_sampling(pedestrians_s: float = 40.0, indoor_s: float = 70.0) -> dict[str, Any]:
    """Each sampling saving alone on two scenes: entries vs. the naive loop, calls, pixels."""
    from edge.detector.runtime import OnnxDetector

    det = OnnxDetector(_model_path(), confidence=0.14, threads=1)

    def detect(_c: str, img: np.ndarray) -> Any:
        return det.infer([img])[0]

    out: dict[str, Any] = {}
    for scene, video, zone, secs in (
        ("pedestrians", RECALL_VIDEO, RECALL_ZONE, pedestrians_s),
        ("indoor_one_by_one", INDOOR_VIDEO, INDOOR_ZONE, indoor_s),
    ):
        _say(f"bench edge: sampling savings on {video} ({secs:.0f}s) …")
        frames, fps = _read_frames(assets_dir() / "video" / video, seconds=secs)
        naive = naive_zone_entries(frames, fps, zone)
        rows = {}
        for name, sampling, dfps in SAMPLING_VARIANTS:
            r = ours_zone_entries(frames, fps, detect, sampling, dfps, zone)
            r["recall_vs_naive"] = round(r["entries"] / naive, 3) if naive else None
            rows[name] = r
        base = rows["none"]
        for r in rows.values():
            r["detector_calls_vs_none"] = round(
                r["detector_calls"] / max(1, base["detector_calls"]), 3
            )
        out[scene] = {
            "video": video,
            "seconds": round(len(frames) / fps, 1),
            "naive_entries": naive,
            "variants": rows,
        }
    return out


# a lane whose top edge runs 1 px above the foot of the car parked at the kerb of the
# pedestrians video (box ≈ 407,28–453,63): the car stands at a zone edge all along
ZONE_EDGE_ZONE = [[380, 62], [480, 62], [480, 140], [380, 140]]


def run_zone_edge(seconds: float = 10.0, detect_fps: float = 2.0) -> dict[str, Any]:
    """Detector calls per second with a vehicle parked at a zone edge: capped vs. uncapped.

    A tracked object within the zone band of an edge asks for extra detector samples; the
    camera's ``max_detect_fps`` (default twice ``detect_fps``) caps them. The same frames run
    through the engine twice on the real detector, once with the default cap and once with
    the cap lifted to the video's frame rate (the behaviour before the cap).
    """
    import cv2

    from edge.detector.runtime import OnnxDetector
    from edge.engine import CameraEngine, EngineOptions
    from edge.sources.video import Frame
    from shaobing.config import CameraConfig, EdgeConfig
    from shaobing.taxonomy import default_taxonomy

    video = assets_dir() / "video" / RECALL_VIDEO
    cap = cv2.VideoCapture(str(video))
    fps = cap.get(cv2.CAP_PROP_FPS) or 10.0
    frames: list[np.ndarray] = []
    while len(frames) < int(seconds * fps):
        ok, img = cap.read()
        if not ok:
            break
        frames.append(img)
    cap.release()
    detector = OnnxDetector(_model_path(), confidence=0.14)
    start = datetime(2026, 1, 1, tzinfo=UTC)

    def calls(max_detect_fps: float | None) -> tuple[int, int, int]:
        camera = CameraConfig(
            id="kerb",
            url=str(video),
            detect_fps=detect_fps,
            zones={"lane": ZONE_EDGE_ZONE},  # type: ignore[dict-item]
            pipelines={"fire_lane": {"zone": "lane", "dwell_s": 60}},
        )
        cfg = EdgeConfig(node_id="bench", cameras=[camera])
        opts = EngineOptions(clips=False, max_detect_fps=max_detect_fps)
        n = 0

        def detect(_c: str, img: np.ndarray) -> Any:
            nonlocal n
            n += 1
            return detector.infer([img])[0]

        eng = CameraEngine(cfg, camera, detect, default_taxonomy(), start, 0.35, options=opts)
        for i, img in enumerate(frames):
            eng.process(Frame(i, i / fps, img, 0.0))
        return n, eng.counters.frames_boosted, eng.counters.boost_capped

    media_s = len(frames) / fps
    capped, boosted, refused = calls(None)
    uncapped, _, _ = calls(fps)
    return {
        "video": RECALL_VIDEO,
        "seconds": round(media_s, 1),
        "source_fps": round(fps, 2),
        "detect_fps": detect_fps,
        "max_detect_fps": 2.0 * detect_fps,
        "capped_detections_per_s": round(capped / media_s, 2),
        "uncapped_detections_per_s": round(uncapped / media_s, 2),
        "extra_samples": boosted,
        "extra_samples_refused": refused,
    }


# --------------------------------------------------------------------------- command


def _variant_options(args: argparse.Namespace, seconds: float) -> tuple[bool, float, bool]:
    """Whether to run the runtime × precision variants, how long each, and the sampling section.

    ``shaobing bench edge`` has no flags for them: ``SHAOBING_BENCH_VARIANTS=0`` skips the
    variants, ``SHAOBING_BENCH_VARIANT_SECONDS`` sets their length (default: ``--seconds``
    up to 30), ``SHAOBING_BENCH_SAMPLING=1`` adds the sampling section;
    ``benchmarks/bench_edge.py`` takes them as flags.
    """
    env = os.environ
    variants = getattr(args, "variants", None)
    if variants is None:
        variants = env.get("SHAOBING_BENCH_VARIANTS", "1") != "0"
    vs = getattr(args, "variant_seconds", None) or float(
        env.get("SHAOBING_BENCH_VARIANT_SECONDS", min(seconds, 30.0))
    )
    sampling = getattr(args, "sampling", None)
    if sampling is None:
        sampling = env.get("SHAOBING_BENCH_SAMPLING", "0") == "1"
    return bool(variants), float(vs), bool(sampling)


def _ours_choice(args: argparse.Namespace) -> tuple[str, str]:
    """The runtime and precision of the main "ours" run.

    ``SHAOBING_BENCH_OURS=RUNTIME:PRECISION`` (e.g. ``onnxruntime:fp32``) or
    ``benchmarks/bench_edge.py --ours RUNTIME:PRECISION``; by default ``onnxruntime:int8``,
    what a node runs once ``shaobing models quantize yolov5n`` has passed its recall check
    (the run falls back to FP32 where no INT8 copy can be made).
    """
    chosen = getattr(args, "ours", None) or os.environ.get("SHAOBING_BENCH_OURS", "")
    runtime, _, precision = (chosen or "onnxruntime:int8").partition(":")
    runtime, precision = runtime or "onnxruntime", precision or "int8"
    if runtime not in ("onnxruntime", "openvino") or precision not in ("fp32", "int8"):
        raise ValueError(
            f"expected RUNTIME:PRECISION (onnxruntime|openvino:fp32|int8), got {chosen!r}"
        )
    return runtime, precision


def _ours_model(precision: str, explicit: bool = True) -> tuple[Path, str]:
    """yolov5n FP32, or its INT8 copy (as the variants find it), and the precision run.

    Without an explicit choice a missing INT8 copy falls back to FP32 (said on stderr).
    """
    if precision == "fp32":
        return _model_path(), "fp32"
    from shaobing_tools import bench_variants as bv

    path, how = bv.int8_model()
    if path is None:
        if explicit:
            raise OSError(f"no INT8 model: {how}")
        _say(f"bench edge: no INT8 model ({how}); the main run uses FP32")
        return _model_path(), "fp32"
    return path, "int8"


def _side_by_side(
    args: argparse.Namespace,
    clips: list[Path],
    streams: int,
    seconds: float,
    ours: dict[str, Any],
    recall: dict[str, Any],
    partner: Path,
    choice: tuple[str, str] = ("onnxruntime", "fp32"),
) -> dict[str, Any]:
    """The runtime × precision latency table, the variants and the sampling section."""
    from shaobing_tools import bench_variants as bv

    do_variants, variant_s, do_sampling = _variant_options(args, seconds)
    out: dict[str, Any] = {}
    if do_variants:
        found, notes = bv.models()
        names = bv.runtimes()
        _say(f"bench edge: single-thread latency, {names} x {sorted(found)} …")
        out["latency_single_thread"] = bv.latency_table(found, names)
        first = ours if abs(variant_s - seconds) < 1e-6 else None
        out["variants"] = run_variants(
            clips, streams, variant_s, found, names, recall["naive_entries"], partner, first, choice
        )
        out["variant_notes"] = {**notes, "runtimes": names}
    if do_sampling:
        out["sampling"] = run_sampling()
    return out


def bench_edge_command(args: argparse.Namespace) -> int:
    """Run the edge benchmark and print the figures (``--json``: one JSON object on stdout)."""
    logging.basicConfig(level=logging.WARNING)
    streams, seconds = int(args.streams), float(args.seconds)
    if streams < 1 or seconds <= 0:
        print("shaobing bench edge: expected --streams ≥ 1 and --seconds > 0", file=sys.stderr)
        return 2
    _say(f"bench edge: preparing {WIDTH}x{HEIGHT} {FPS} fps clips …")
    try:
        clips = prepare_clips()
    except (OSError, subprocess.SubprocessError) as exc:
        print(f"shaobing bench edge: cannot prepare clips: {exc}", file=sys.stderr)
        return 1
    load = os.getloadavg()[0]
    from edge.memory import limit_malloc_arenas

    limit_malloc_arenas()  # as ``edge run`` does
    try:
        runtime, precision = _ours_choice(args)
        explicit = bool(getattr(args, "ours", None) or os.environ.get("SHAOBING_BENCH_OURS"))
        ours_model, precision = _ours_model(precision, explicit)
        choice = (runtime, precision)
    except (ValueError, OSError) as exc:
        print(f"shaobing bench edge: {exc}", file=sys.stderr)
        return 2
    _say(
        f"bench edge: ours ({runtime} {precision}), {streams} real-time streams for {seconds:.0f}s …"
    )
    ours = run_ours(clips, streams, seconds, model=ours_model, runtime=runtime)
    ours["runtime"], ours["precision"], ours["model"] = runtime, precision, ours_model.name
    naive_clip = next((c for c in clips if c.stem.startswith("pedestrians")), clips[0])
    _say(f"bench edge: naive loop for {min(seconds, 20.0):.0f}s …")
    naive = run_naive(naive_clip, min(seconds, 20.0))
    ultra = (
        {"skipped": "--no-ultralytics"}
        if args.no_ultralytics
        else run_ultralytics(naive_clip, min(seconds, 20.0))
    )
    _say("bench edge: recall check on the pedestrians video …")
    partner = next((c for c in clips if c.stem.startswith("cars_parking")), clips[-1])
    recall = run_recall(partner=partner, model=ours_model, runtime=runtime)
    _say("bench edge: a vehicle parked at a zone edge, extra detections capped vs. not …")
    zone_edge = run_zone_edge()
    # measured when sustained; else the detector-capacity estimate, never above what was decoded
    ours_streams = (
        streams if ours["sustained"] else min(float(streams), ours["streams_capacity_estimate"])
    )
    result = {
        "bench": "edge",
        "cpu_count": os.cpu_count(),
        "load_avg_1m_at_start": round(load, 2),
        "ours": ours,
        "naive": naive,
        "ultralytics": ultra,
        "recall": recall,
        "zone_edge": zone_edge,
        "ours_streams": ours_streams,
        "ratio_streams_vs_naive": round(ours_streams / naive["realtime_streams_exact"], 2)
        if naive["realtime_streams_exact"]
        else None,
    }
    result.update(_side_by_side(args, clips, streams, seconds, ours, recall, partner, choice))
    for row in result.get("variants", []):
        if "error" in row:
            continue
        cap = row["streams"] if row["sustained"] else min(streams, row["streams_capacity_estimate"])
        exact = naive["realtime_streams_exact"]
        row["ratio_streams_vs_naive"] = round(cap / exact, 2) if exact else None
    if args.json:
        print(json.dumps(result, ensure_ascii=False))
        return 0
    _print_table(result, load)
    return 0


def _print_table(result: dict[str, Any], load: float) -> None:
    from shaobing_tools.bench_variants import print_tables

    o, n, recall, zone_edge = (
        result["ours"],
        result["naive"],
        result["recall"],
        result["zone_edge"],
    )
    rows = [
        (
            "streams (640x360 @ 10 fps)",
            f"{o['streams']} ({'sustained' if o['sustained'] else 'NOT sustained'})",
            f"{n['realtime_streams_exact']} sustainable",
        ),
        ("streams, capacity estimate", o["streams_capacity_estimate"], n["realtime_streams_exact"]),
        ("frames decoded / s", o["frames_decoded_per_s"], n["frames_per_s"]),
        ("frames detected / s", o["frames_detected_per_s"], n["frames_per_s"]),
        (
            "detect fps per stream (median, all time)",
            o["fps_detect_per_stream_median"],
            f"{n['frames_per_s']}",
        ),
        (
            "detect fps while moving (median / min)",
            f"{o['fps_detect_while_moving_median']} / {o['fps_detect_while_moving_min']}",
            f"{n['frames_per_s']}",
        ),
        ("inference ms / image", o["inference_ms_per_image_median"], n["inference_ms_per_image"]),
        ("detector utilisation", o["detector_utilisation"], "-"),
        ("dropped frames", o["dropped_frame_rate"], "-"),
        ("lag p95 ms (median stream)", o["lag_p95_ms_median"], "-"),
        ("CPU % process / system", f"{o['cpu_percent_process']} / {o['cpu_percent_system']}", "-"),
        ("RSS MB (max)", o["rss_mb_max"], "-"),
        (
            "RSS MB start → end (trend MB/min)",
            f"{o['rss_mb_start']} → {o['rss_mb_end']} ({o['rss_growth_mb_per_min']})",
            "-",
        ),
        ("zone entries (recall)", recall["ours_entries"], recall["naive_entries"]),
        (
            f"detections/s, car at a zone edge (detect_fps {zone_edge['detect_fps']:g})",
            f"{zone_edge['capped_detections_per_s']} (cap {zone_edge['max_detect_fps']:g})",
            f"{zone_edge['uncapped_detections_per_s']} uncapped",
        ),
    ]
    print(f"shaobing bench edge — {os.cpu_count()} CPUs, load {load:.1f} at start (shared machine)")
    print(f"{'':44} {'ours':>28} {'naive loop':>20}")
    for name, a, b in rows:
        print(f"{name:44} {a!s:>28} {b!s:>20}")
    print(
        f"recall: {recall['ours_entries']} (packed {recall['ours_packed_entries']}) / "
        f"{recall['naive_entries']} zone entries on "
        f"{recall['seconds']}s ({'within' if recall['within_10_percent'] else 'OUTSIDE'} ±10%), "
        f"detector calls {recall['ours_detector_calls']} vs {recall['naive_detector_calls']}"
    )
    print(
        f"ratio streams ours/naive: {result['ratio_streams_vs_naive']}; "
        f"ultralytics: {result['ultralytics']}"
    )
    print_tables(result)
