"""What the node spends per frame besides the detector, with and without the many-camera
thread policy, side by side in one run.

``python benchmarks/bench_edge_frame_cost.py [--streams 48] [--seconds 12] [--rounds 3] [--json]``

N real-time 640×360 10 fps streams (the ``bench edge`` clips) are decoded and run through
the camera engine (motion gate, health check, sampler, tracker, zone pipeline) with a
detector that answers at once with nothing, so only the per-frame work is left. Two set-ups
alternate round by round, so a shared machine's load falls on both alike:

- ``libraries' threads, health every frame``: FFmpeg and OpenCV choose their own thread
  pools, the health check looks at every frame (the node before the policy);
- ``one thread per camera, health 4/s``: what the node does with more cameras than cores
  (``edge.pipeline_runner.camera_threads``, ``HealthOptions.check_every_s``).

Each row also runs decoding alone. Figures are process CPU in per cent of one core
(medians over the rounds) and the frames per second handled.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import threading
import time
from concurrent.futures import Future
from dataclasses import replace
from typing import Any

import cv2
import psutil

from edge.detector.runtime import COCO80, Detections
from shaobing_tools import bench_edge as be

SETUPS = {
    "libraries' threads, health every frame": (None, 0.0),
    "one thread per camera, health 4/s": (1, 0.25),
}


def _run(
    streams: int, seconds: float, threads: int | None, health_s: float, engine: bool
) -> dict[str, float]:
    from datetime import UTC, datetime

    from edge.engine import CameraEngine
    from edge.sources.video import FrameReader, VideoSource
    from shaobing.taxonomy import default_taxonomy

    cv2.setNumThreads(threads if threads else DEFAULT_CV_THREADS)
    clips = be.prepare_clips()
    zone = [[80, 120], [560, 120], [600, 340], [40, 340]]
    cfg = be._edge_config(zone, 5.0, streams, [str(c) for c in clips])
    empty = Detections.empty(tuple(COCO80))

    def submit(_c: str, _img: Any) -> Future[Detections]:
        fut: Future[Detections] = Future()
        fut.set_result(empty)
        return fut

    stop = threading.Event()
    counts = [0] * streams
    workers = []
    for i, cam in enumerate(cfg.cameras):
        eng = CameraEngine(
            cfg, cam, None, default_taxonomy(), datetime.now(UTC), 0.35, submit=submit
        )
        if eng.health is not None:
            eng.health.options = replace(eng.health.options, check_every_s=health_s)
        src = VideoSource(cam.url, loop=True, realtime=True, decode_threads=threads)
        reader = FrameReader(src, stop, maxsize=4, drop=True)

        def work(i: int = i, eng: Any = eng, reader: Any = reader) -> None:
            for frame in reader:
                counts[i] += 1
                if engine:
                    eng.process(frame)
                    eng.finished_clips()

        workers.append(threading.Thread(target=work, daemon=True))
    for t in workers:
        t.start()
    stop.wait(3.0)
    proc = psutil.Process()
    proc.cpu_percent(None)
    n0, t0 = sum(counts), time.monotonic()
    stop.wait(seconds)
    cpu = proc.cpu_percent(None)
    fps = (sum(counts) - n0) / (time.monotonic() - t0)
    stop.set()
    for t in workers:
        t.join(timeout=5)
    return {"cpu_percent": cpu, "frames_per_s": fps}


DEFAULT_CV_THREADS = cv2.getNumThreads()


def main(argv: list[str] | None = None) -> int:
    """Run the rounds and print the table (``--json``: one object)."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--streams", type=int, default=48)
    ap.add_argument("--seconds", type=float, default=12.0)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    got: dict[str, dict[str, list[float]]] = {
        name: {"decode": [], "frame": [], "fps": []} for name in SETUPS
    }
    for r in range(args.rounds):
        for name, (threads, health_s) in SETUPS.items():
            print(f"round {r + 1}/{args.rounds}: {name} …", file=sys.stderr, flush=True)
            dec = _run(args.streams, args.seconds, threads, health_s, engine=False)
            full = _run(args.streams, args.seconds, threads, health_s, engine=True)
            got[name]["decode"].append(dec["cpu_percent"])
            got[name]["frame"].append(full["cpu_percent"])
            got[name]["fps"].append(full["frames_per_s"])
    rows = [
        {
            "setup": name,
            "streams": args.streams,
            "decode_cpu_percent": round(statistics.median(v["decode"]), 1),
            "decode_and_frame_work_cpu_percent": round(statistics.median(v["frame"]), 1),
            "frames_per_s": round(statistics.median(v["fps"]), 1),
            "rounds": args.rounds,
        }
        for name, v in got.items()
    ]
    base, new = (
        rows[0]["decode_and_frame_work_cpu_percent"],
        rows[1]["decode_and_frame_work_cpu_percent"],
    )
    out = {"bench": "edge_frame_cost", "cpu_count": psutil.cpu_count(), "rows": rows,
           "ratio_cpu_policy_vs_before": round(new / base, 3) if base else None}  # fmt: skip
    if args.json:
        print(json.dumps(out, ensure_ascii=False))
        return 0
    print(f"{'setup':<42} {'decode %':>9} {'decode+frame %':>15} {'frames/s':>9}")
    for r_ in rows:
        print(
            f"{r_['setup']:<42} {r_['decode_cpu_percent']:>9} "
            f"{r_['decode_and_frame_work_cpu_percent']:>15} {r_['frames_per_s']:>9}"
        )
    print(f"CPU with the policy / before: {out['ratio_cpu_policy_vs_before']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
