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


def test_gateway_metrics_count_readings_and_rejects_per_sensor(tmp_path: Path) -> None:
    """The node's own replay of a CSV with a bad byte, a future row and an unknown sensor,
    then ``/metrics`` as Prometheus reads it (rendered in process: no broker needed)."""
    from edge.http import render_metrics
    from edge.node import EdgeNode
    from shaobing.config import load_edge_config
    from tests.integration.test_edge_metrics import parse_prometheus

    csv_path = tmp_path / "readings.csv"
    # paced like the node does it: 0.1 s apart, so the replay lasts under a second
    rows = [f"gas-1,gas,{i},%LEL,2026-11-29T08:00:00.{i}+08:00\n".encode() for i in range(6)]
    rows[2] = b"gas-1,gas,2,%L\xffEL,2026-11-29T08:00:00.2+08:00\n"  # one bad byte
    rows[4] = b"gas-1,gas,4,%LEL,2099-11-29T08:00:00.4+08:00\n"  # stamped in the future
    rows.append(b"gas-9,gas,1,%LEL,2026-11-29T08:00:00.6+08:00\n")  # not in the registry
    rows.append(b"hr-1,heart_rate,-5,bpm,2026-11-29T08:00:00.7+08:00\n")  # impossible value
    csv_path.write_bytes(b"".join(rows))
    cfg = load_edge_config(
        write_yaml(
            tmp_path / "gw.yaml",
            {
                "node_id": "gw-metrics-01",
                "http": None,
                "outbox": {"path": str(tmp_path / "outbox.sqlite")},
                "evidence": {"dir": str(tmp_path / "evidence")},
                "state_path": str(tmp_path / "state.json"),
                "sensors": [
                    {"id": "gas-1", "kind": "gas", "interval_s": 5},
                    {"id": "hr-1", "kind": "heart_rate", "interval_s": 5},
                ],
            },
        )
    )
    node = EdgeNode(cfg)
    try:
        node._replay(csv_path)  # the replay thread's body, run here to its end
        scrape = parse_prometheus(render_metrics(node))
    finally:
        node.outbox.close()
    assert scrape.value("shaobing_sensor_readings_total", sensor="gas-1") == 4
    assert scrape.value("shaobing_sensor_readings_total", sensor="hr-1") == 0
    assert scrape.value("shaobing_sensor_rejects_total", sensor="hr-1", reason="out_of_range") == 1
    assert (
        scrape.value(
            "shaobing_sensor_rejects_total", sensor="unregistered", reason="unknown_device"
        )
        == 1
    )
    assert (
        scrape.value("shaobing_sensor_input_rejects_total", input="replay", reason="bad_row") == 1
    )
    assert scrape.value("shaobing_sensor_input_rejects_total", input="replay", reason="future") == 1
