"""Camera → edge node → real mosquitto → hub → REST API, all real processes on loopback."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from shaobing.paths import assets_dir
from tests.support.mosquitto import Mosquitto, free_port
from tests.support.processes import Proc, http_json, start_hub, wait_for, write_yaml

VIDEO = assets_dir() / "video" / "pedestrians_opencv_vtest.avi"


@pytest.fixture()
def short_clip(tmp_path: Path) -> Path:
    """The first 25 s of the pedestrians clip (keeps the test short)."""
    if shutil.which("ffmpeg") is None:
        pytest.skip("ffmpeg is installed by scripts/test; not on this machine")
    out = tmp_path / "clip.avi"
    subprocess.run(
        [
            "ffmpeg",
            "-loglevel",
            "error",
            "-y",
            "-i",
            str(VIDEO),
            "-t",
            "25",
            "-c",
            "copy",
            str(out),
        ],
        check=True,
        timeout=60,
    )
    return out


def test_intrusion_events_reach_the_hub_api(tmp_path: Path, short_clip: Path) -> None:
    with Mosquitto(workdir=tmp_path / "broker") as broker:
        port = free_port()
        hub = start_hub(tmp_path, broker.url, port)
        try:
            edge_cfg = write_yaml(
                tmp_path / "edge.yaml",
                {
                    "node_id": "skeleton-01",
                    "grid_id": "beibei-tianfu-03",
                    "broker": {"url": broker.url},
                    "http": None,
                    "detector": {"threads": 1},
                    "outbox": {"path": str(tmp_path / "outbox.sqlite"), "ack_timeout_s": 3},
                    "evidence": {"dir": str(tmp_path / "evidence")},
                    "cameras": [
                        {
                            "id": "cam1",
                            "url": str(short_clip),
                            "realtime": False,
                            "detect_fps": 5,
                            "zones": {
                                "path": [[200, 170], [480, 190], [480, 300], [330, 270], [200, 200]]
                            },
                            "pipelines": {
                                "zone_intrusion": {
                                    "zone": "path",
                                    "classes": ["person"],
                                    "type": "water_danger_intrusion",
                                }
                            },
                        }
                    ],
                },
            )
            edge = Proc(
                ["edge", "run", "-c", str(edge_cfg), "--duration", "150"], tmp_path / "edge.log"
            )
            # the node exits by itself once the clip has ended and the hub acknowledged everything
            edge.proc.wait(timeout=180)
            assert edge.proc.returncode == 0, edge.output()[-3000:]
            page = http_json(f"http://127.0.0.1:{port}/api/v1/events?limit=500")
            items = page["items"]
            assert len(items) >= 2, edge.output()[-2000:]
            assert {e["type"] for e in items} == {"water_danger_intrusion"}
            assert all(
                e["source"]["node_id"] == "skeleton-01" and e["source"]["kind"] == "camera"
                for e in items
            )
            assert all(e["location"]["zone"] == "path" and e["evidence"] for e in items)
            stats = http_json(f"http://127.0.0.1:{port}/api/v1/stats")
            assert stats["events_total"] == len(items)
            # newest first, and the cursor pages through the same set
            first = http_json(f"http://127.0.0.1:{port}/api/v1/events?limit=1")
            assert first["items"][0]["id"] == items[0]["id"] and first["next"] is not None
            second = http_json(
                f"http://127.0.0.1:{port}/api/v1/events?limit=1&cursor={first['next']}"
            )
            assert second["items"][0]["id"] == items[1]["id"]
            nodes = wait_for(
                lambda: http_json(f"http://127.0.0.1:{port}/api/v1/nodes")["items"],
                10,
                "node status",
            )
            assert nodes[0]["node_id"] == "skeleton-01"
        finally:
            assert hub.stop() == 0, hub.output()[-2000:]
