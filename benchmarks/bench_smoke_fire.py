"""Smoke/fire pipeline on the shared clips: time to first event, false events, ms per frame.

Frames are sampled at ``--fps`` (the node's ``detect_fps``, 5 by default) by media time, as
the edge node feeds the pipeline; only the pipeline's ``update`` is timed (decoding is not).

Usage::

    .venv/bin/python benchmarks/bench_smoke_fire.py [--seconds 15] [--fps 5] [--json] [CLIP ...]

With ``--json`` stdout carries one JSON object per clip and a final summary object.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pipelines.base import CameraContext, Observation  # noqa: E402
from pipelines.smoke_fire import Options, build  # noqa: E402
from shaobing.paths import assets_dir  # noqa: E402

# clip → second from which flame or smoke is visible; None for clips without fire
CLIPS: dict[str, float | None] = {
    "fire_bonfire_outdoor.mp4": 0.0,
    "fire_smoke_small_flame_night.mp4": 0.5,
    "fire_indoor_room.mp4": 0.0,
    "pedestrians_opencv_vtest.avi": None,
    "cars_parking_area_intel.mp4": None,
    "people_indoor_intel_one_by_one.mp4": None,
    "pool_swimming_overwater.mp4": None,
    "swimming_underwater.mp4": None,
    "drowning_underwater.mp4": None,
}


def run_clip(
    path: Path, onset: float | None, seconds: float, fps: float, options: Options
) -> dict[str, Any]:
    """Feed one clip through a fresh pipeline; return its figures."""
    ctx = CameraContext(
        camera_id="bench", zones={}, default_severity={"fire": "emergency", "smoke": "urgent"}
    )
    pipeline = build(options, ctx)
    cap = cv2.VideoCapture(str(path))
    src_fps = cap.get(cv2.CAP_PROP_FPS) or 25.0
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    times: list[float] = []
    cpu: list[float] = []
    events: list[dict[str, Any]] = []
    i, next_t = 0, 0.0
    size = (0, 0)
    while True:
        t = i / src_fps
        if t > seconds:
            break
        if t + 1e-9 < next_t:
            if not cap.grab():
                break
            i += 1
            continue
        ok, frame = cap.read()
        if not ok:
            break
        size = (frame.shape[1], frame.shape[0])
        obs = Observation("bench", i, t, t0 + timedelta(seconds=t), None, frame, size)
        i += 1
        next_t += 1.0 / fps
        start, cpu_start = time.perf_counter(), time.process_time()
        found = pipeline.update(obs)
        times.append((time.perf_counter() - start) * 1000.0)
        cpu.append((time.process_time() - cpu_start) * 1000.0)
        for f in found:
            events.append(
                {
                    "t": round(t, 2),
                    "type": f.type,
                    "state": f.state,
                    "detector": f.attributes.get("detector"),
                }
            )
    cap.release()
    active = [e for e in events if e["state"] == "active"]
    first = active[0]["t"] if active and onset is not None else None
    false_events = len(active) if onset is None else 0
    arr = np.array(times) if times else np.zeros(1)
    return {
        "clip": path.name,
        "positive": onset is not None,
        "size": list(size),
        "frames": len(times),
        "first_event_s": first,
        "delay_s": round(first - onset, 2) if first is not None and onset is not None else None,
        "first_type": active[0]["type"] if active and onset is not None else None,
        "false_events": false_events,
        "events": events,
        "ms_per_frame": round(float(arr.mean()), 2),
        "ms_p95": round(float(np.percentile(arr, 95)), 2),
        "cpu_ms_per_frame": round(float(np.mean(cpu)) if cpu else 0.0, 2),
    }


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; prints a table, or JSON lines with ``--json``."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "clips", nargs="*", help="clip file names under assets/video (default: the known set)"
    )
    ap.add_argument(
        "--seconds", type=float, default=15.0, help="media seconds per clip (default 15)"
    )
    ap.add_argument("--fps", type=float, default=5.0, help="sampling rate (the node's detect_fps)")
    ap.add_argument("--json", action="store_true", help="JSON lines on stdout")
    args = ap.parse_args(argv)
    video = assets_dir() / "video"
    names = args.clips or list(CLIPS)
    options = Options()
    rows = []
    for name in names:
        path = video / name
        if not path.exists():
            print(f"skip {name}: not found in {video}", file=sys.stderr)
            continue
        row = run_clip(path, CLIPS.get(name), args.seconds, args.fps, options)
        rows.append(row)
        if args.json:
            print(json.dumps(row, ensure_ascii=False), flush=True)
    all_ms = [r["ms_per_frame"] for r in rows]
    all_cpu = [r["cpu_ms_per_frame"] for r in rows]
    pos = [r for r in rows if r["positive"]]
    summary = {
        "summary": True,
        "fps": args.fps,
        "seconds": args.seconds,
        "work_width": options.work_width,
        "positives_detected": sum(1 for r in pos if r["first_event_s"] is not None),
        "positives": len(pos),
        "max_delay_s": max((r["delay_s"] for r in pos if r["delay_s"] is not None), default=None),
        "false_events": sum(r["false_events"] for r in rows),
        "ms_per_frame_mean": round(float(np.mean(all_ms)), 2) if all_ms else None,
        "cpu_ms_per_frame_mean": round(float(np.mean(all_cpu)), 2) if all_cpu else None,
        "cpu_share_per_camera": (
            round(float(np.mean(all_cpu)) * args.fps / 1000.0, 4) if all_cpu else None
        ),
    }
    if args.json:
        print(json.dumps(summary), flush=True)
        return 0
    print(
        f"{'clip':<38} {'size':>9} {'frames':>6} {'first event':>11} {'delay':>6} {'false':>5} {'ms/frame':>8} {'p95':>6}"
    )
    for r in rows:
        first = (
            f"{r['first_event_s']:.1f}s {r['first_type']}"
            if r["first_event_s"] is not None
            else ("-" if not r["positive"] else "MISSED")
        )
        delay = f"{r['delay_s']:.1f}" if r["delay_s"] is not None else "-"
        size = f"{r['size'][0]}x{r['size'][1]}"
        print(
            f"{r['clip']:<38} {size:>9} {r['frames']:>6} {first:>11} {delay:>6} {r['false_events']:>5} {r['ms_per_frame']:>8.1f} {r['ms_p95']:>6.1f} {r['cpu_ms_per_frame']:>6.1f}"
        )
    print(
        f"positives detected {summary['positives_detected']}/{summary['positives']}, max delay {summary['max_delay_s']} s, "
        f"false events {summary['false_events']}, mean {summary['ms_per_frame_mean']} ms/frame wall, "
        f"{summary['cpu_ms_per_frame_mean']} ms/frame CPU = {summary['cpu_share_per_camera']} of a core "
        f"per camera at {args.fps:g} fps"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
