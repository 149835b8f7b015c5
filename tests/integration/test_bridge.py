"""Town broker → bridge → district broker → hub: every event arrives once, also across a
restart of the town broker (the bridge and the edge outboxes recover)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from tests.support.mosquitto import Mosquitto, free_port
from tests.support.processes import ROOT, http_json, start_hub, wait_for


def bridge_lines(district_port: int) -> str:
    return "\n".join(
        [
            "connection district",
            f"address 127.0.0.1:{district_port}",
            "remote_clientid bridge-town-test",
            "cleansession false",
            "bridge_protocol_version mqttv311",
            "restart_timeout 1 5",
            "topic shaobing/v1/+/event out 1",
            "topic shaobing/v1/+/evidence/+ out 1",
            "topic shaobing/v1/+/status out 1",
            "topic shaobing/v1/+/ack in 1",
            "topic shaobing/v1/hub/dispatch/+ in 1",
        ]
    )


def loadgen(
    broker_url: str, outbox: Path, nodes: int, rate: float, count: int, timeout: float
) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "shaobing.cli",
            "loadgen",
            "--broker",
            broker_url,
            "--nodes",
            str(nodes),
            "--rate",
            str(rate),
            "--count",
            str(count),
            "--outbox",
            str(outbox),
            "--timeout",
            str(timeout),
            "--json",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_events_cross_the_bridge_exactly_once_through_a_town_broker_restart(tmp_path: Path) -> None:
    with Mosquitto(workdir=tmp_path / "district") as district:
        town = Mosquitto(workdir=tmp_path / "town", extra=bridge_lines(district.port)).start()
        try:
            port = free_port()
            hub = start_hub(tmp_path, district.url, port)
            try:
                count = 600
                gen = loadgen(
                    town.url, tmp_path / "outboxes", nodes=25, rate=60, count=count, timeout=120
                )
                # restart the town broker (and so the bridge) while events are flowing
                time.sleep(3)
                town.restart(kill=True, down_s=2)
                out, err = gen.communicate(timeout=180)
                assert gen.returncode == 0, err[-3000:]
                result = json.loads(out.strip().splitlines()[-1])
                assert (
                    result["sent"] == count and result["acked"] == count and result["pending"] == 0
                )
                total = wait_for(
                    lambda: (
                        (n := http_json(f"http://127.0.0.1:{port}/api/v1/stats")["events_total"])
                        >= count
                        and n
                    ),
                    30,
                    "all events at the hub",
                )
                assert total == count  # no loss, no duplicate rows
            finally:
                hub.stop()
        finally:
            town.stop()


def test_status_of_bridged_nodes_reaches_the_hub(tmp_path: Path) -> None:
    with Mosquitto(workdir=tmp_path / "district") as district:
        town = Mosquitto(workdir=tmp_path / "town", extra=bridge_lines(district.port)).start()
        try:
            port = free_port()
            hub = start_hub(tmp_path, district.url, port)
            try:
                gen = loadgen(
                    town.url, tmp_path / "outboxes", nodes=3, rate=30, count=30, timeout=60
                )
                out, err = gen.communicate(timeout=120)
                assert gen.returncode == 0, err[-2000:]
                nodes = wait_for(
                    lambda: (
                        len(http_json(f"http://127.0.0.1:{port}/api/v1/nodes")["items"]) >= 3
                        and http_json(f"http://127.0.0.1:{port}/api/v1/nodes")["items"]
                    ),
                    20,
                    "node status via the bridge",
                )
                assert len(nodes) == 3
            finally:
                hub.stop()
        finally:
            town.stop()
