"""The installer's ``/setup`` page in a real Chromium against a real ``edge run`` node.

Draw a zone on the camera's picture, save: the node's YAML keeps its comments and validates,
the zone is in effect at once (no restart; the next frames raise intrusions in it), and
the saved YAML drives ``shaobing detect`` to the same events. Writing is refused from
beyond loopback without the node's token; reading shows no credentials.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml

from shaobing.config import load_edge_config
from shaobing.paths import assets_dir
from tests.browser.kit import ARTIFACTS
from tests.support.mosquitto import Mosquitto, free_port
from tests.support.processes import ROOT, Proc, http_json, wait_for

pytestmark = [pytest.mark.browser, pytest.mark.timeout(240)]

VIDEO = assets_dir() / "video" / "pedestrians_opencv_vtest.avi"
CONFIG = """\
# Riverside camera of the test node: the zone is drawn again on /setup.
kind: edge
node_id: setup-test-01
grid_id: beibei-tianfu-03
broker:
  url: {broker}
  password: not-shown-anywhere   # the page must never show this
http: 127.0.0.1:{port}
outbox:
  path: {tmp}/outbox.sqlite
evidence:
  dir: {tmp}/evidence
cameras:
  - id: cam1
    url: {video}   # a clip in a loop, paced like a live camera
    loop: true
    realtime: true
    detect_fps: 5
    zones:
      # a tiny corner nobody walks into: nothing is raised until it is redrawn
      riverside_path: [[0, 0], [12, 0], [12, 12], [0, 12]]
    pipelines:
      zone_intrusion:
        zone: riverside_path
        classes: [person]
        type: water_danger_intrusion
"""


def _events_total(base: str) -> int:
    with urllib.request.urlopen(base + "/metrics", timeout=5) as r:  # noqa: S310 - loopback
        for line in r.read().decode().splitlines():
            if line.startswith("shaobing_events_total"):
                return int(float(line.split()[-1]))
    return 0


def test_a_zone_drawn_on_setup_is_saved_in_effect_and_drives_detect(
    browser: Any, tmp_path: Path
) -> None:
    port = free_port()
    with Mosquitto(workdir=tmp_path / "broker") as broker:
        cfg = tmp_path / "edge.yaml"
        cfg.write_text(
            CONFIG.format(broker=broker.url, port=port, tmp=tmp_path, video=VIDEO),
            encoding="utf-8",
        )
        node = Proc(["edge", "run", "-c", str(cfg)], tmp_path / "edge.log")
        base = f"http://127.0.0.1:{port}"
        try:
            wait_for(lambda: http_json(base + "/healthz"), 60, "edge node")
            wait_for(
                lambda: http_json(base + "/setup/api/cameras")["items"][0]["width"],
                60,
                "a picture from the camera",
            )
            listing = json.dumps(http_json(base + "/setup/api/cameras"))
            assert "not-shown-anywhere" not in listing
            time.sleep(3)
            before = _events_total(base)
            assert before == 0, "nothing walks into the tiny corner zone"

            page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
            page.goto(base + "/setup")
            page.wait_for_selector("#editor:not([hidden])")
            page.wait_for_function("document.getElementById('shot').naturalWidth > 0")
            # redraw riverside_path across the whole walkway: delete, then click 4 corners
            page.locator("#zones li", has_text="riverside_path").locator("button").click()
            page.fill("#zone-name", "riverside_path")
            page.click("#new-zone")
            box = page.locator("#canvas").bounding_box()
            assert box is not None
            for fx, fy in ((0.02, 0.02), (0.98, 0.02), (0.98, 0.98), (0.02, 0.98)):
                page.mouse.click(box["x"] + box["width"] * fx, box["y"] + box["height"] * fy)
            page.click("#finish-zone")
            page.screenshot(path=str(ARTIFACTS / "s-setup-zone-drawn.png"))
            saved_at = time.monotonic()
            page.click("#save")
            page.wait_for_selector("#msg.ok", timeout=10000)
            assert "已生效" in page.locator("#msg").inner_text()
            page.screenshot(path=str(ARTIFACTS / "s-setup-saved.png"))
            page.context.close()

            # in effect without a restart: people in the redrawn zone raise events
            wait_for(lambda: _events_total(base) > before, 15, "intrusions in the new zone")
            print(f"first intrusion {time.monotonic() - saved_at:.1f} s after saving")
            assert node.proc.poll() is None  # never restarted

            text = cfg.read_text(encoding="utf-8")
            assert "# Riverside camera of the test node" in text  # comments kept
            assert "# the page must never show this" in text
            zone = yaml.safe_load(text)["cameras"][0]["zones"]["riverside_path"]
            width = http_json(base + "/setup/api/cameras")["items"][0]["width"]
            assert len(zone) == 4 and max(p[0] for p in zone) > 0.9 * width
            load_edge_config(cfg)  # the saved file validates
        finally:
            node.stop()

        # the saved YAML drives offline detection to intrusions in the new zone
        res = subprocess.run(
            [sys.executable, "-m", "shaobing.cli", "detect", str(VIDEO), "-c", str(cfg), "--json"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=180,
        )
        assert res.returncode == 0, res.stderr[-2000:]
        events = [json.loads(x) for x in res.stdout.splitlines() if x.strip()]
        assert any(e["type"] == "water_danger_intrusion" for e in events)


def test_setup_refuses_writes_from_beyond_loopback_without_a_token(tmp_path: Path) -> None:
    """A save from another host is refused (403) when no http_token is set, 401 with one."""
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from edge.setup import build_setup_router

    class _Node:
        config = load_edge_config(ROOT / "configs" / "demo" / "edge.yaml")
        config_path = tmp_path / "edge.yaml"
        cameras: list[Any] = []

    app = FastAPI()
    app.include_router(build_setup_router(_Node()))  # type: ignore[arg-type]
    client = TestClient(app)  # the test client is not on loopback ("testclient")
    body = {"zones": {"riverside_path": [[0, 0], [10, 0], [10, 10]]}}
    r = client.put("/setup/api/cameras/cam1", json=body)
    assert r.status_code == 403 and "127.0.0.1" in r.json()["detail"]
    _Node.config = _Node.config.model_copy(update={"http_token": "node-token"})
    assert client.put("/setup/api/cameras/cam1", json=body).status_code == 401
    assert client.get("/setup").status_code == 200  # reading needs nothing
