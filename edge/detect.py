"""``shaobing detect``: the live engine, offline — one video, as fast as possible, events as JSON lines."""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from shaobing.config import ConfigError, EdgeConfig, load_edge_config
from shaobing.paths import configs_dir

log = logging.getLogger(__name__)


def _parse_start(value: str | None, video: Path) -> datetime:
    if value is None:
        return datetime.fromtimestamp(video.stat().st_mtime, tz=UTC)
    try:
        dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"--start: expected an ISO 8601 time like 2026-06-01T08:00:00+08:00, found {value!r}"
        ) from None
    if dt.tzinfo is None:
        from zoneinfo import ZoneInfo

        dt = dt.replace(tzinfo=ZoneInfo("Asia/Shanghai"))
    return dt


def detect_command(args: argparse.Namespace) -> int:
    """Run the configured pipelines of one camera over a video file; print events."""
    from edge.pipeline_runner import OfflineRunner

    video = Path(args.video)
    if not video.exists():
        print(f"shaobing detect: expected a video file, found nothing at {video}", file=sys.stderr)
        return 2
    config_path = Path(args.config) if args.config else configs_dir() / "demo" / "edge.yaml"
    try:
        from pipelines.registry import options_models

        cfg: EdgeConfig = load_edge_config(config_path, options_models())
    except ConfigError as exc:
        for issue in exc.issues:
            print(str(issue), file=sys.stderr)
        return 2
    if not cfg.cameras:
        print(
            f"shaobing detect: {config_path}: expected at least one camera under cameras, found none",
            file=sys.stderr,
        )
        return 2
    try:
        camera = cfg.camera(args.camera) if args.camera else cfg.cameras[0]
    except KeyError as exc:
        print(f"shaobing detect: --camera: {exc.args[0]}", file=sys.stderr)
        return 2
    try:
        start = _parse_start(args.start, video)
    except ValueError as exc:
        print(f"shaobing detect: {exc}", file=sys.stderr)
        return 2

    evidence_dir = None if args.no_evidence else Path(tempfile.mkdtemp(prefix="shaobing-detect-"))
    runner = OfflineRunner(cfg, camera, str(video), start, evidence_dir)
    t0 = time.monotonic()
    count = 0
    try:
        for event in runner.run(progress=sys.stderr.isatty() or not args.json):
            count += 1
            if args.json:
                sys.stdout.write(event.to_json() + "\n")
                sys.stdout.flush()
            else:
                print(
                    f"{event.occurred_at.isoformat()}  {event.type:<24} {event.severity:<9} {event.summary}"
                )
    except (OSError, ValueError) as exc:
        print(f"shaobing detect: {exc}", file=sys.stderr)
        return 1
    stats = runner.stats()
    elapsed = time.monotonic() - t0
    print(
        f"shaobing detect: {stats['frames']} frames ({stats['frames_detected']} detected, "
        f"{stats['frames_corrupt']} corrupt skipped) in {elapsed:.1f}s, {count} events"
        + (f"; evidence in {evidence_dir}" if evidence_dir and count else ""),
        file=sys.stderr,
    )
    return 0
