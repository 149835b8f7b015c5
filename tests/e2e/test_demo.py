"""``shaobing demo``: events at the API within 15 s of the URL; stops cleanly, no orphans."""

from __future__ import annotations

import json
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
        out = (tmp_path / "demo.log").read_text(errors="replace")
        accounts = _accounts(out)
        assert {"command_centre", "board_handler", "grid_worker"} <= {r for r, _, _ in accounts}
        assert out.index("login: ") < out.index("events at the hub"), "accounts come first"
        _closed_loop(base, accounts)
        # the demo's spoken report reached the node (on loopback: no token needed there)
        wait_for(
            lambda: [
                e
                for e in http_json(base + "/api/v1/events?limit=200")["items"]
                if e["source"]["kind"] == "report"
            ],
            90,
            "the demo's voice report at the hub",
        )
        assert "not accepted" not in (tmp_path / "demo.log").read_text(errors="replace")
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


def _accounts(out: str) -> list[tuple[str, str, str]]:
    """The ``login: ROLE NAME PASSWORD`` lines the demo printed."""
    rows = []
    for line in out.splitlines():
        if line.startswith("login: "):
            role, name, password = line[len("login: ") :].split()
            rows.append((role, name, password))
    return rows


def _call(base: str, path: str, token: str | None = None, body: dict | None = None) -> dict:  # type: ignore[type-arg]
    data = json.dumps(body).encode() if body is not None else None
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    req = urllib.request.Request(base + path, data=data, headers=headers)
    with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310 - loopback
        return json.loads(resp.read())  # type: ignore[no-any-return]


def _closed_loop(base: str, accounts: list[tuple[str, str, str]]) -> None:
    """With the printed accounts alone, one demo work order goes from reported to closed."""
    tokens = {}
    for role, name, password in accounts:
        res = _call(base, "/api/v1/login", body={"name": name, "password": password})
        assert res["user"]["role"] == role and res["token"]
        tokens[name] = res["token"]
    cc = next(n for r, n, _ in accounts if r == "command_centre")
    worker = "w-tianfu-03"  # the grid worker on duty for the demo camera's grid
    orders = wait_for(
        lambda: [
            o
            for o in _call(base, "/api/v1/work-orders?state=reported", tokens[worker])["items"]
            if o["grid_id"] == "beibei-tianfu-03"
        ],
        30,
        "a reported order in the demo grid",
    )
    wo = orders[0]["id"]

    def act(who: str, action: str, **extra: object) -> dict:  # type: ignore[type-arg]
        return _call(
            base, f"/api/v1/work-orders/{wo}/transitions", tokens[who], {"action": action, **extra}
        )

    order = act(worker, "track", note="现场确认")
    if order["state"] == "tracked":
        order = act(cc, "screen")
    if order["state"] == "screened":
        order = act(cc, "dispatch")
    assert order["state"] == "dispatched", order
    handler = order["assignee_id"] if order["assignee_id"] in tokens else None
    handler = handler or next(n for r, n, _ in accounts if r == "board_handler")
    order = act(handler, "accept")
    order = act(handler, "handle", note="已劝离并设置警示")
    assert order["state"] == "handled", order
    order = act(cc, "verify", note="核查通过")
    order = act(cc, "rate", rating=5)
    if order["state"] != "closed":
        order = act(cc, "close")
    assert order["state"] == "closed", order


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
