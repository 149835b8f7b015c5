"""``shaobing demo``: events at the API within 15 s of the URL; stops cleanly, no orphans."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from tests.support.mosquitto import free_port
from tests.support.processes import ROOT, http_json, wait_for


def _children_of(pid: int) -> set[int]:
    out = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == pid:
            out.add(int(entry.name))
    return out


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        state = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_demo_shows_events_then_stops_on_ctrl_c(tmp_path: Path) -> None:
    port = free_port()
    log = (tmp_path / "demo.log").open("wb")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "shaobing.cli",
            "demo",
            "--http",
            f"127.0.0.1:{port}",
            "--workdir",
            str(tmp_path / "work"),
        ],
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        wait_for(
            lambda: "Dashboard:" in (tmp_path / "demo.log").read_text(errors="replace"),
            90,
            "the dashboard URL",
        )
        assert f"Dashboard: {base}/" in (tmp_path / "demo.log").read_text()
        t0 = time.monotonic()
        items = wait_for(
            lambda: http_json(base + "/api/v1/events")["items"], 25, "events at the hub"
        )
        assert time.monotonic() - t0 < 20  # 15 s target, some slack for a loaded CI machine
        assert items[0]["type"] == "water_danger_intrusion"
        with urllib.request.urlopen(base + "/", timeout=5) as resp:  # noqa: S310
            page = resp.read().decode()
        assert "<title>哨兵" in page
        children = _children_of(proc.pid)
        assert len(children) >= 3  # broker, hub, edge
        proc.send_signal(signal.SIGINT)
        assert proc.wait(60) == 0
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(_alive(c) for c in children):
            time.sleep(0.2)
        assert not [c for c in children if _alive(c)], "orphan processes left behind"
    finally:
        if proc.poll() is None:
            proc.kill()
        log.close()


def test_demo_duration_ends_by_itself(tmp_path: Path) -> None:
    port = free_port()
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "shaobing.cli",
            "demo",
            "--duration",
            "5",
            "--http",
            f"127.0.0.1:{port}",
            "--workdir",
            str(tmp_path),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert res.returncode == 0, res.stderr[-2000:]
    assert "stopped cleanly" in res.stderr
