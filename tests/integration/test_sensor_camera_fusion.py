"""Camera + sensor fusion end to end: a camera fire and a linked smoke detector in the same
place become one incident at the hub with both sources (real broker, hub and edge node)."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path

import paho.mqtt.client as mqtt

from shaobing import topics
from shaobing.paths import assets_dir
from tests.support.mosquitto import Mosquitto, free_port
from tests.support.processes import Proc, http_json, start_hub, wait_for, write_yaml

VIDEO = assets_dir() / "video" / "fire_indoor_room.mp4"


def test_camera_fire_and_smoke_sensor_make_one_incident(tmp_path: Path) -> None:
    with Mosquitto(workdir=tmp_path / "broker") as broker:
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        hub = start_hub(tmp_path, broker.url, port)
        cfg = write_yaml(
            tmp_path / "mall.yaml",
            {
                "node_id": "mall-01",
                "grid_id": "beibei-tianfu-01",
                "address": "代家沟社区 地下商场负一层",
                "broker": {"url": broker.url},
                "http": None,
                "outbox": {"path": str(tmp_path / "outbox.sqlite"), "ack_timeout_s": 3},
                "evidence": {"dir": str(tmp_path / "evidence")},
                "cameras": [
                    {
                        "id": "cam1",
                        "url": str(VIDEO),
                        "realtime": True,
                        "pipelines": {"smoke_fire": {}},
                    }
                ],
                "sensors": [
                    {"id": "smoke-b1", "kind": "smoke", "interval_s": 30, "camera": "cam1"}
                ],
            },
        )
        node = Proc(["edge", "run", "-c", str(cfg)], tmp_path / "mall.log")
        try:
            camera_events = wait_for(
                lambda: [
                    e
                    for e in http_json(base + "/api/v1/events?node_id=mall-01")["items"]
                    if e["source"]["kind"] == "camera"
                ],
                60,
                "the camera's fire event",
            )
            assert camera_events[-1]["type"] in ("fire", "smoke")
            client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="smoke-sim")
            client.connect("127.0.0.1", broker.port)
            client.loop_start()
            reading = {
                "device": "smoke-b1",
                "kind": "smoke",
                "value": 1,
                "unit": "state",
                "ts": datetime.now(UTC).isoformat(),
            }
            client.publish(
                topics.sensor_topic("mall-01", "smoke-b1"), json.dumps(reading), qos=1
            ).wait_for_publish(5)
            client.loop_stop()
            client.disconnect()
            sensor_events = wait_for(
                lambda: [
                    e
                    for e in http_json(base + "/api/v1/events?node_id=mall-01")["items"]
                    if e["source"]["kind"] == "sensor"
                ],
                30,
                "the smoke detector's event",
            )
            sensor_event = sensor_events[0]
            camera_ids = {e["id"] for e in camera_events}
            assert set(sensor_event["related"]) & camera_ids, sensor_event
            assert sensor_event["severity"] == "emergency"  # fire confirmed by two sources
            time.sleep(2)  # let the incident engine catch up

            def fire_incidents() -> list[dict]:
                return [
                    i
                    for i in http_json(base + "/api/v1/incidents")["items"]
                    if i["type"] in ("fire", "smoke")
                ]

            incidents = wait_for(
                lambda: (
                    (inc := fire_incidents()) and all(i["event_count"] >= 2 for i in inc) and inc
                ),
                30,
                "merged incident",
            )
            assert len(incidents) == 1, incidents
            kinds = {s.get("kind") for s in incidents[0]["sources"]}
            assert {"camera", "sensor"} <= kinds, incidents[0]["sources"]
        finally:
            node.stop()
            hub.stop()
