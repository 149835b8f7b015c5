"""Detector throughput by input shape and threading, side by side in one run.

``python benchmarks/bench_detector_inputs.py [--seconds 10] [--json]``

Real 640×360 frames of the pedestrians video through the real yolov5n, as the engine
feeds them: a square 640×640 letterbox (the naive way), the rectangular letterbox
(640×384), and two frames stacked in one input (square 640×640 or 576×640), each with
one inference on all cores vs. two single-threaded inferences side by side. Figures are
frames per second (a stacked input serves two frames).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from typing import Any

import cv2
import numpy as np

from edge.detector.runtime import OnnxDetector
from shaobing.models import resolve_model
from shaobing.paths import assets_dir


def _frames(n: int = 8) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(assets_dir() / "video" / "pedestrians_opencv_vtest.avi"))
    out = []
    while len(out) < n:
        ok, img = cap.read()
        if not ok:
            break
        out.append(cv2.resize(img[45:315], (640, 360)))
    cap.release()
    return out


def measure(rectangular: bool, packed: bool, workers: int, seconds: float) -> float:
    """Frames per second of one configuration."""
    cores = os.cpu_count() or 1
    det = OnnxDetector(
        resolve_model("yolov5n"),
        threads=max(1, cores // workers),
        parallel=workers,
        rectangular=rectangular,
    )
    frames = _frames()
    counts = [0] * workers
    det.infer(frames[:1])  # warm-up
    deadline = time.monotonic() + seconds

    def work(k: int) -> None:
        i = k
        while time.monotonic() < deadline:
            if packed:
                det.infer_packed([frames[i % len(frames)], frames[(i + 1) % len(frames)]])
                counts[k] += 2
            else:
                det.infer([frames[i % len(frames)]])
                counts[k] += 1
            i += 1

    threads = [threading.Thread(target=work, args=(k,)) for k in range(workers)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(counts) / (time.monotonic() - t0)


def main() -> int:
    """Measure every configuration and print a table (or JSON)."""
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    cores = os.cpu_count() or 1
    rows: list[dict[str, Any]] = []
    for rect, packed in ((False, False), (True, False), (False, True), (True, True)):
        for workers in sorted({1, min(2, cores)}):
            fps = measure(rect, packed, workers, args.seconds)
            rows.append(
                {
                    "input": ("576×640 pair" if rect else "640×640 pair")
                    if packed
                    else ("640×384" if rect else "640×640"),
                    "workers": workers,
                    "threads_each": max(1, cores // workers),
                    "frames_per_s": round(fps, 1),
                }
            )
            print(f"{rows[-1]}", file=sys.stderr, flush=True)
    base = rows[0]["frames_per_s"]
    for r in rows:
        r["vs_square_one_inference"] = round(r["frames_per_s"] / base, 2)
    if args.json:
        print(json.dumps({"bench": "detector_inputs", "cpu_count": cores, "rows": rows}))
        return 0
    print(f"{'input':>16} {'workers × threads':>18} {'frames/s':>9} {'ratio':>6}")
    for r in rows:
        print(
            f"{r['input']:>16} {str(r['workers']) + ' × ' + str(r['threads_each']):>18} "
            f"{r['frames_per_s']:>9} {r['vs_square_one_inference']:>6}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
