"""Benchmark the falling-object pipeline on freshly rendered synthetic façades.

Renders clips with ``tests/synth/facade.py`` from seeds the pipeline was not tuned on
(``--seed`` picks the block), runs the pipeline on one thread, and prints:

* recall of falls (an event whose release time lies between 1 s before the true release
  and the landing), floor exact / within ±1, column exact, and the share of events sent
  within 1 s of the object landing or leaving the frame;
* false alarms per hour on distractor-only video (every distractor type, alone and mixed);
* speed: pipeline CPU time on one thread (rendering excluded), as × real time for the
  clip's frame rate.

Fall clips vary resolution (640–1280 wide), frame rate (15–30 fps), façade grid,
perspective, object size and colour, and add random distractors.

Usage::

    .venv/bin/python benchmarks/bench_falling_object.py [--falls 40] [--minutes 10] [--seed 9000] [--json]
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

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from pipelines.base import CameraContext, Finding, Observation  # noqa: E402
from pipelines.falling_object import Options, build  # noqa: E402
from tests.synth.facade import DISTRACTORS, ClipSpec, FacadeClip, make_clip  # noqa: E402

START = datetime(2026, 1, 1, tzinfo=UTC)


def run_clip(
    clip: FacadeClip, extra: dict[str, Any] | None = None
) -> tuple[list[tuple[float, Finding]], float, int]:
    """Run the pipeline over a clip: (emitted-at media time, finding), pipeline CPU seconds, frames.

    Pipeline time is the process CPU time spent inside ``update`` (one thread), so other
    processes sharing the machine do not inflate it. ``extra``: more pipeline options
    (e.g. ``{"faint_candidates": False}`` to measure what a step brings).
    """
    pipeline = build(
        Options.model_validate({**clip.options(), **(extra or {})}),
        CameraContext(camera_id="bench", zones={}),
    )
    out: list[tuple[float, Finding]] = []
    spent = 0.0
    fps = clip.spec.fps
    n = 0
    t = 0.0
    for i, frame in enumerate(clip.frames()):
        t = i / fps
        obs = Observation(
            camera_id="bench",
            frame_index=i,
            t=t,
            at=START + timedelta(seconds=t),
            tracks=None,
            frame=frame,
            frame_size=(frame.shape[1], frame.shape[0]),
        )
        t0 = time.process_time()
        found = pipeline.update(obs)
        spent += time.process_time() - t0
        out.extend((t, f) for f in found)
        n += 1
    out.extend((t, f) for f in pipeline.flush(START + timedelta(seconds=t)))
    return out, spent, n


def fall_spec(seed: int) -> ClipSpec:
    """A fall clip with a random format and random distractors."""
    rng = np.random.default_rng(seed)
    width = int(rng.choice([640, 800, 960, 960, 1280]))
    distractors = tuple(d for d in DISTRACTORS if rng.random() < 0.2)
    return ClipSpec(
        seed=seed,
        width=width,
        height=width * 9 // 16,
        fps=float(rng.choice([15.0, 20.0, 25.0, 25.0, 30.0])),
        duration_s=8.0,
        falls=2,
        distractors=distractors,
        object_scale=float(rng.uniform(0.6, 1.3)),
        corner_jitter_px=float(rng.choice([0.0, 1.5])),
    )


def distractor_spec(seed: int, i: int) -> ClipSpec:
    """A distractor-only clip: one type alone, or all together, at 960×540 25 fps."""
    kinds = [(d,) for d in DISTRACTORS] + [DISTRACTORS]
    return ClipSpec(
        seed=seed,
        width=960,
        height=540,
        fps=25.0,
        duration_s=30.0,
        falls=0,
        distractors=kinds[i % len(kinds)],
    )


def match(clip: FacadeClip, found: list[tuple[float, Finding]]) -> tuple[list[dict[str, Any]], int]:
    """Pair events with true falls; returns per-fall rows and the count of unmatched events.

    A found fall's row holds the index of its event in ``found`` (``event``).

    An event can match a fall when its release time lies between 1 s before the true
    release and the landing; pairs are taken closest release time first.
    """
    pairs = []
    for i, truth in enumerate(clip.truths):
        for j, (_, f) in enumerate(found):
            rel = f.attributes["release_t"]
            if truth.release_t - 1.0 <= rel <= truth.end_t + 0.3:
                pairs.append((abs(rel - truth.release_t), i, j))
    pairs.sort()
    by_truth: dict[int, int] = {}
    used: set[int] = set()
    for _, i, j in pairs:
        if i in by_truth or j in used:
            continue
        by_truth[i] = j
        used.add(j)
    rows = []
    for i, truth in enumerate(clip.truths):
        row: dict[str, Any] = {
            "seed": clip.spec.seed,
            "floor": truth.floor,
            "column": truth.column,
            "floors": clip.floors,
        }
        if i in by_truth:
            emitted, f = found[by_truth[i]]
            row.update(
                found=True,
                event=by_truth[i],
                got_floor=f.floor,
                got_column=f.column,
                floor_range=f.attributes["floor_range"],
                latency_s=round(emitted - truth.end_t, 3),
            )
        else:
            row["found"] = False
        rows.append(row)
    return rows, len(found) - len(by_truth)


def main(argv: list[str] | None = None) -> int:
    """Entry point."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--falls", type=int, default=40, help="number of falls (2 per clip)")
    ap.add_argument("--minutes", type=float, default=10.0, help="minutes of distractor-only video")
    ap.add_argument("--seed", type=int, default=9000, help="first seed of the fresh block")
    ap.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    args = ap.parse_args(argv)
    cv2.setNumThreads(1)

    rows: list[dict[str, Any]] = []
    fall_false = 0
    spent = 0.0
    media = 0.0
    frames = 0
    for k in range((args.falls + 1) // 2):
        clip = make_clip(fall_spec(args.seed + k))
        found, secs, n = run_clip(clip)
        r, extra = match(clip, found)
        rows.extend(r)
        fall_false += extra
        spent += secs
        media += n / clip.spec.fps
        frames += n
        print(
            f"fall clip {k + 1}: {sum(x['found'] for x in r)}/{len(r)} found, {extra} extra",
            file=sys.stderr,
        )

    fa = 0
    fa_media = 0.0
    d_spent = 0.0
    d_frames = 0
    n_clips = max(1, int(round(args.minutes * 60 / 30.0)))
    for i in range(n_clips):
        clip = make_clip(distractor_spec(args.seed + 5000 + i, i))
        found, secs, n = run_clip(clip)
        fa += len(found)
        fa_media += n / clip.spec.fps
        d_spent += secs
        d_frames += n
        for _, f in found:
            print(
                f"false alarm in distractor clip {i} {clip.spec.distractors}: {f.summary}",
                file=sys.stderr,
            )

    hits = [r for r in rows if r["found"]]
    nh = max(1, len(hits))
    result = {
        "falls": len(rows),
        "recall": round(len(hits) / max(1, len(rows)), 3),
        "floor_exact": round(sum(r["got_floor"] == r["floor"] for r in hits) / nh, 3),
        "floor_within_1": round(sum(abs(r["got_floor"] - r["floor"]) <= 1 for r in hits) / nh, 3),
        "floor_in_range": round(
            sum(r["floor_range"][0] <= r["floor"] <= r["floor_range"][1] for r in hits) / nh, 3
        ),
        "column_exact": round(sum(r["got_column"] == r["column"] for r in hits) / nh, 3),
        "sent_within_1s": round(sum(r["latency_s"] <= 1.0 for r in hits) / nh, 3),
        "extra_events_on_fall_clips": fall_false,
        "distractor_hours": round(fa_media / 3600.0, 3),
        "false_alarms": fa,
        "false_alarms_per_hour": round(fa / max(fa_media / 3600.0, 1e-9), 2),
        "speed_x_realtime_falls": round(media / max(spent, 1e-9), 2),
        "speed_x_realtime_960x540_25fps": round((d_frames / 25.0) / max(d_spent, 1e-9), 2),
        "ms_per_frame_960x540": round(1000.0 * d_spent / max(d_frames, 1), 2),
        "seed": args.seed,
    }
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:32s} {value}")
        misses = [r for r in rows if not r["found"]]
        if misses:
            print(f"missed: {misses}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
