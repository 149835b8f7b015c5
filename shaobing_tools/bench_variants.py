"""``bench edge`` side by side: each runtime and precision, and each sampling saving alone.

- **Latency**: median milliseconds per 640×360 frame (letterbox, inference, decoding) on one
  thread, for every runtime × precision, measured round-robin in the same minute so that a
  shared machine's load falls on all of them alike.
- the variants and the sampling section themselves run in ``bench_edge``
  (``run_variants``, ``run_sampling``); this module finds the models and prints the tables.

The INT8 model is the deployment's ``yolov5n-int8`` when one resolves, else one quantized
once into the benchmark's cache (``~/.cache/shaobing/bench-edge/models``).
"""

from __future__ import annotations

import logging
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from shaobing.paths import assets_dir

log = logging.getLogger(__name__)


def _say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def runtimes() -> list[str]:
    """onnxruntime, and openvino where the package imports."""
    from edge.detector.choice import openvino_available

    return ["onnxruntime", *(["openvino"] if openvino_available() else [])]


def int8_model() -> tuple[Path | None, str]:
    """The INT8 yolov5n and where it came from (None and the reason when there is none)."""
    from shaobing.models import ModelNotFound, resolve_model

    try:
        path = resolve_model("yolov5n-int8")
        return path, "deployment manifest"
    except ModelNotFound:
        pass
    folder = (
        Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
        / "shaobing"
        / "bench-edge"
        / "models-v3"  # v3: QDQ (runs on OpenVINO too), with the score offset
    )
    target = folder / "yolov5n-int8.onnx"
    if target.is_file():
        return target, "bench cache"
    try:
        from shaobing_tools.quantize import quantize

        _say("bench edge: quantizing yolov5n to INT8 once (bench cache) …")
        quantize("yolov5n", folder, recall_frames=20, make_default=False)
    except Exception as exc:  # the rest of the benchmark stands without INT8
        return None, f"quantization failed: {exc}"
    return target, "quantized by the bench"


def models() -> tuple[dict[str, Path], dict[str, str]]:
    """Precision → model path, and notes on what is missing."""
    from shaobing.models import resolve_model

    found = {"fp32": resolve_model("yolov5n")}
    notes: dict[str, str] = {}
    int8, how = int8_model()
    if int8 is not None:
        found["int8"] = int8
    notes["int8"] = how
    return found, notes


def _frame() -> np.ndarray:
    import cv2

    cap = cv2.VideoCapture(str(assets_dir() / "video" / "cars_parking_area_intel.mp4"))
    cap.set(cv2.CAP_PROP_POS_FRAMES, 60)
    ok, img = cap.read()
    cap.release()
    if not ok:
        img = np.random.default_rng(0).integers(0, 255, (360, 640, 3), dtype=np.uint8)
    return np.ascontiguousarray(cv2.resize(img, (640, 360)))


def latency_table(
    found: dict[str, Path], names: list[str], rounds: int = 5, per_round: int = 6
) -> list[dict[str, Any]]:
    """Single-thread median ms per frame for each runtime × precision, round-robin."""
    from edge.detector.runtime import OnnxDetector

    img = _frame()
    dets: dict[tuple[str, str], Any] = {}
    failed: list[dict[str, Any]] = []
    for rt in names:
        for prec, path in found.items():
            try:
                dets[(rt, prec)] = OnnxDetector(path, threads=1, runtime=rt)
            except Exception as exc:  # this runtime cannot load this model: a row that says so
                failed.append({"runtime": rt, "precision": prec, "error": _short(exc)})
    for d in dets.values():
        d.infer([img])
    times: dict[tuple[str, str], list[float]] = {k: [] for k in dets}
    for _ in range(rounds):
        for key, d in dets.items():
            for _ in range(per_round):
                t0 = time.perf_counter()
                d.infer([img])
                times[key].append((time.perf_counter() - t0) * 1000.0)
    base = statistics.median(times.get(("onnxruntime", "fp32")) or [float("nan")])
    return failed + [
        {
            "runtime": rt,
            "precision": prec,
            "ms_per_image_median": round(statistics.median(ts), 2),
            "ms_per_image_p90": round(float(np.percentile(ts, 90)), 2),
            "speedup_vs_onnxruntime_fp32": round(base / statistics.median(ts), 2),
            "input": "rectangular" if dets[(rt, prec)].stride else "square",
        }
        for (rt, prec), ts in times.items()
    ]


def _short(exc: BaseException) -> str:
    """The first line of an error, at most 200 characters (runtimes write pages)."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:200]


def print_tables(result: dict[str, Any]) -> None:
    """The side-by-side tables of the runtime × precision and sampling sections."""
    lat = result.get("latency_single_thread") or []
    if lat:
        print("\nper-image latency, one thread, 640x360 (median / p90 ms, speed-up vs ORT FP32):")
        for r in lat:
            if "error" in r:
                print(f"  {r['runtime']:<12} {r['precision']:<5} cannot run: {r['error']}")
                continue
            print(
                f"  {r['runtime']:<12} {r['precision']:<5} {r['ms_per_image_median']:>7} / "
                f"{r['ms_per_image_p90']:<7} x{r['speedup_vs_onnxruntime_fp32']}"
            )
    rows = result.get("variants") or []
    if rows:
        print(
            f"\n{'runtime':<12} {'prec':<5} {'streams':>8} {'sustained':>9} {'det/s moving':>13} "
            f"{'capacity':>9} {'ms/img':>7} {'RSS MB':>7} {'entries (packed) / naive':>26}"
        )
        for r in rows:
            if "error" in r:
                print(f"{r['runtime']:<12} {r['precision']:<5} cannot run: {r['error']}")
                continue
            rc = r["recall"]
            print(
                f"{r['runtime']:<12} {r['precision']:<5} {r['streams']:>8} {r['sustained']!s:>9} "
                f"{r['fps_detect_while_moving_median']:>13} {r['streams_capacity_estimate']:>9} "
                f"{r['inference_ms_per_image_median']!s:>7} {r['rss_mb_max']:>7} "
                f"{str(rc['ours_entries']) + ' (' + str(rc['ours_packed_entries']) + ') / ' + str(rc['naive_entries']):>26}"
            )
    for scene, s in (result.get("sampling") or {}).items():
        print(
            f"\nsampling savings alone, {scene} ({s['seconds']}s, naive entries {s['naive_entries']}):"
        )
        for name, r in s["variants"].items():
            print(
                f"  {name:<22} entries {r['entries']:>3}  calls {r['detector_calls']:>4} "
                f"(x{r['detector_calls_vs_none']})  cropped {r['cropped']:>4} "
                f"(pixels x{r['crop_pixel_fraction']})  keep-alives skipped {r['keepalives_skipped']}"
            )
