"""``shaobing detect``: stdout carries only events, progress on stderr, exit codes 0/1/2."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime
from pathlib import Path

from shaobing.contract import Event
from shaobing.paths import assets_dir
from tests.support.processes import ROOT, write_yaml

VIDEO = assets_dir() / "video" / "pedestrians_opencv_vtest.avi"


def run(*args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "shaobing.cli", "detect", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def clip_config(tmp_path: Path) -> Path:
    return write_yaml(
        tmp_path / "edge.yaml",
        {
            "node_id": "offline-01",
            "detector": {"threads": 1},
            "cameras": [
                {
                    "id": "cam9",
                    "url": "unused.mp4",
                    "detect_fps": 2,
                    "zones": {"path": [[200, 170], [480, 190], [480, 300], [330, 270], [200, 200]]},
                    "pipelines": {"zone_intrusion": {"zone": "path", "classes": ["person"]}},
                }
            ],
        },
    )


def short_clip(tmp_path: Path, seconds: int = 15) -> Path:
    """The first seconds of the pedestrians clip (ffmpeg is installed by scripts/test)."""
    out = tmp_path / "clip.avi"
    cmd = [
        "ffmpeg",
        "-loglevel",
        "error",
        "-y",
        "-i",
        str(VIDEO),
        "-t",
        str(seconds),
        "-c",
        "copy",
        str(out),
    ]
    subprocess.run(cmd, check=True, timeout=60)
    return out


def test_detect_prints_one_event_per_line_with_media_times(tmp_path: Path) -> None:
    res = run(
        str(short_clip(tmp_path)),
        "-c",
        str(clip_config(tmp_path)),
        "--camera",
        "cam9",
        "--start",
        "2026-06-01T08:00:00+08:00",
        "--json",
        "--no-evidence",
    )
    assert res.returncode == 0, res.stderr
    lines = [line for line in res.stdout.splitlines()]
    assert lines, res.stderr
    events = [Event.from_json(line) for line in lines]  # every stdout line is a valid event
    start = datetime.fromisoformat("2026-06-01T08:00:00+08:00")
    for ev in events:
        assert ev.source.device_id == "cam9" and ev.source.node_id == "offline-01"
        assert 0 <= (ev.occurred_at - start).total_seconds() <= 15.5  # the clip is 15 s
    assert "frames" in res.stderr  # the summary goes to stderr
    assert all(json.loads(line)["schema"] == "shaobing.event/1" for line in lines)


def test_detect_bad_usage_exits_2(tmp_path: Path) -> None:
    assert run(str(tmp_path / "missing.mp4"), "--json").returncode == 2
    res = run(str(VIDEO), "-c", str(clip_config(tmp_path)), "--camera", "nope", "--json")
    assert res.returncode == 2 and "nope" in res.stderr
    bad = write_yaml(tmp_path / "bad.yaml", {"node_id": "x", "detector": {"batch": 0}})
    res = run(str(VIDEO), "-c", str(bad), "--json")
    assert res.returncode == 2 and f"{bad}:" in res.stderr and "detector.batch" in res.stderr
    assert res.stdout == ""


def test_detect_unreadable_video_exits_1(tmp_path: Path) -> None:
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"\x00not a video" * 100)
    res = run(str(junk), "-c", str(clip_config(tmp_path)), "--json")
    assert res.returncode == 1, res.stderr
    assert res.stdout == ""


def test_truncated_video_is_processed_without_a_crash(tmp_path: Path) -> None:
    data = VIDEO.read_bytes()
    cut = tmp_path / "cut.avi"
    cut.write_bytes(data[: len(data) // 10])
    res = run(str(cut), "-c", str(clip_config(tmp_path)), "--json", "--no-evidence")
    assert res.returncode == 0, res.stderr
    for line in res.stdout.splitlines():
        Event.from_json(line)
