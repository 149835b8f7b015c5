"""A sensor gateway (edge node with sensors, no cameras): wristband readings over MQTT →
one red health_alarm at the hub, carrying the resident's id only."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import paho.mqtt.client as mqtt

from shaobing import topics
from tests.support.mosquitto import Mosquitto, free_port
from tests.support.processes import Proc, http_json, start_hub, wait_for, write_yaml


def test_wristband_low_heart_rate_becomes_one_emergency_at_the_hub(tmp_path: Path) -> None:
    with Mosquitto(workdir=tmp_path / "broker") as broker:
        port = free_port()
        hub = start_hub(tmp_path, broker.url, port)
        cfg = write_yaml(
            tmp_path / "gw.yaml",
            {
                "node_id": "gw-test-01",
                "grid_id": "beibei-tianfu-01",
                "broker": {"url": broker.url},
                "http": None,
                "outbox": {"path": str(tmp_path / "outbox.sqlite"), "ack_timeout_s": 3},
                "evidence": {"dir": str(tmp_path / "evidence")},
                "sensors": [
                    {
                        "id": "hr-zhang",
                        "kind": "heart_rate",
                        "interval_s": 5,
                        "resident_id": "r-0042",
                    }
                ],
            },
        )
        node = Proc(["edge", "run", "-c", str(cfg)], tmp_path / "gw.log")
        try:
            wait_for(lambda: "running" in node.output(), 30, "the gateway to start")
            time.sleep(1.5)  # let it subscribe
            client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="wristband-sim")
            client.connect("127.0.0.1", broker.port)
            client.loop_start()
            start = datetime.now(UTC) - timedelta(seconds=30)
            values = [
                78,
                80,
                38,
                39,
                38,
                37,
                38,
                39,
                38,
                40,
                38,
                38,
                39,
            ]  # 2 s apart: 20 s below 45 bpm
            for i, v in enumerate(values):
                reading = {
                    "device": "hr-zhang",
                    "kind": "heart_rate",
                    "value": v,
                    "unit": "bpm",
                    "ts": (start + timedelta(seconds=2 * i)).isoformat(),
                }
                client.publish(
                    topics.sensor_topic("gw-test-01", "hr-zhang"), json.dumps(reading), qos=1
                ).wait_for_publish(5)
            client.publish(
                topics.sensor_topic("gw-test-01", "hr-zhang"), b"{not json", qos=1
            ).wait_for_publish(5)
            client.loop_stop()
            client.disconnect()
            items = wait_for(
                lambda: http_json(f"http://127.0.0.1:{port}/api/v1/events?type=health_alarm")[
                    "items"
                ],
                30,
                "the health alarm",
            )
            time.sleep(2)
            items = http_json(f"http://127.0.0.1:{port}/api/v1/events?type=health_alarm")["items"]
            assert len(items) == 1, items
            ev = items[0]
            assert ev["severity"] == "emergency" and ev["state"] == "active"
            assert ev["source"] == {
                "node_id": "gw-test-01",
                "kind": "sensor",
                "device_id": "hr-zhang",
                "pipeline": "sensor_rules",
                "model": None,
            }
            assert ev["attributes"].get("resident_id") == "r-0042"
            assert "张" not in json.dumps(ev, ensure_ascii=False)  # no personal names on the wire
        finally:
            assert node.stop() == 0, node.output()[-2000:]
            hub.stop()
