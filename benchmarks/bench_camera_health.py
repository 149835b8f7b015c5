"""Camera health on tampering clips made with ffmpeg from the shared videos, and on the real clips.

Every base video plays normally for ``--normal`` seconds (the health check learns the
camera's own normal there, ``learn_s`` = normal − 5 s) and is then tampered with
(tests/support/tamper.py: blur σ 4/8/12/20, fog, spray, grey and dark covers, a turned
camera, a night IR switch that must not fault). Prints, per clip, what was raised and when;
then the detection rate over the tampering clips and the false faults on the ten real clips
(looped to the same length) and on the IR switch.

    PYTHONPATH=. .venv/bin/python benchmarks/bench_camera_health.py [--normal 20 --total 45]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from edge.health import HealthOptions
from shaobing.paths import assets_dir
from tests.support.tamper import BASES, TAMPERS, health_faults, make_clip


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--normal", type=float, default=20.0)
    ap.add_argument("--total", type=float, default=45.0)
    ap.add_argument("--clips", default=str(Path(tempfile.gettempdir()) / "shaobing-tamper"))
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    options = HealthOptions(learn_s=args.normal - 5.0)
    rows = []
    for base in BASES:
        for tamper in TAMPERS:
            clip = make_clip(base, tamper, Path(args.clips), args.normal, args.total)
            faults = health_faults(clip, options)
            early = [f for f in faults if f[0] < args.normal and f[1] == "active"]
            late = [f for f in faults if f[0] >= args.normal and f[1] == "active"]
            hit = [f for f in late if f[2] in tamper.expected]
            rows.append(
                {
                    "clip": f"{Path(base).stem}/{tamper.name}",
                    "expected": list(tamper.expected) or ["none"],
                    "raised": [f"{f[2]}@{f[0] - args.normal:.1f}s" for f in late],
                    "false_before": len(early),
                    "detected": bool(hit) if tamper.expected else None,
                    "false": len(early) + (len(late) if not tamper.expected else 0),
                }
            )
    real = []
    for video in sorted((assets_dir() / "video").glob("*")):
        faults = health_faults(video, options, max_s=args.total, loop=True)
        real.append(
            {"clip": video.name, "faults": [f"{c}@{t:.1f}s" for t, s, c in faults if s == "active"]}
        )
    positives = [r for r in rows if r["detected"] is not None]
    result = {
        "detected": sum(r["detected"] for r in positives),
        "positives": len(positives),
        "detection_rate": round(sum(r["detected"] for r in positives) / len(positives), 3),
        "false_faults_on_tampering_clips": sum(r["false"] for r in rows),
        "false_faults_on_real_clips": sum(len(r["faults"]) for r in real),
        "clips": rows,
        "real": real,
    }
    if args.json:
        print(json.dumps(result, ensure_ascii=False))
        return 0
    for r in rows:
        mark = {True: "detected", False: "MISSED", None: "negative"}[r["detected"]]
        print(
            f"{r['clip']:48s} {mark:9s} expected {','.join(r['expected']):18s} raised {' '.join(r['raised']) or '-'}  false {r['false']}"
        )
    for r in real:
        print(f"REAL {r['clip']:43s} faults {' '.join(r['faults']) or '-'}")
    print(
        f"detected {result['detected']}/{result['positives']} = {result['detection_rate']}; "
        f"false faults: tampering clips {result['false_faults_on_tampering_clips']}, "
        f"real clips {result['false_faults_on_real_clips']}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
