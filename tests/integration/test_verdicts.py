"""False alarms that teach: a person's verdict reaches the node that raised the alarm.

A real Mosquitto, a real ``hub serve`` and a real ``edge run`` node: the node's camera
event becomes an order; the grid worker marks it a false alarm with a reason; the hub
publishes a ``Verdict`` on ``shaobing/v1/{node}/verdict``; the node counts it per camera
and zone in ``/metrics``, its status and ``/api/v1/verdicts``, and keeps it across a
restart. The hub's stats show the false-alarm rate per camera, pipeline and reason.
"""

# ruff: noqa: F811  (the mosquitto fixture is imported and used as a parameter)

from __future__ import annotations

import json
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from hub.store import Store
from hub.users import create_user
from shaobing import topics
from shaobing.contract import Event, Verdict, new_event_id
from shaobing.paths import configs_dir
from tests.support.mosquitto import Mosquitto, free_port, mosquitto  # noqa: F401
from tests.support.processes import Proc, http_json, start_hub, wait_for, write_yaml

pytestmark = pytest.mark.timeout(180)

NODE = "edge-verdict-01"


def _call(base: str, path: str, token: str, body: dict[str, Any] | None = None) -> Any:
    req = urllib.request.Request(
        base + path,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
    )
    with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310 - loopback
        return json.loads(resp.read())


def _node(tmp: Path, broker_url: str, port: int) -> Proc:
    cfg = write_yaml(
        tmp / "edge.yaml",
        {
            "kind": "edge",
            "node_id": NODE,
            "grid_id": "beibei-tianfu-03",
            "broker": {"url": broker_url},
            "http": f"127.0.0.1:{port}",
            "outbox": {"path": str(tmp / "outbox.sqlite")},
            "evidence": {"dir": str(tmp / "edge-evidence")},
            "state_path": str(tmp / "state.json"),
            "status_interval_s": 1,
        },
    )
    return Proc(["edge", "run", "-c", str(cfg)], tmp / "edge.log")


def test_a_false_alarm_verdict_reaches_the_node_and_the_stats(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    hub_port, edge_port = free_port(), free_port()
    hub = start_hub(
        tmp_path,
        mosquitto.url,
        hub_port,
        extra={"registry": str(configs_dir() / "demo" / "registry.yaml")},
    )
    base = f"http://127.0.0.1:{hub_port}"
    store = Store(f"sqlite:///{tmp_path / 'hub.sqlite'}")
    token = create_user(store, "w-tianfu-03", "grid_worker", "beibei-tianfu-03")
    cc = create_user(store, "cc-tianfu", "command_centre", "beibei-tianfu")
    store.close()
    node = _node(tmp_path, mosquitto.url, edge_port)
    edge = f"http://127.0.0.1:{edge_port}"
    seen: list[Verdict] = []
    sub = paho.Client(CallbackAPIVersion.VERSION2, client_id="verdict-watcher")
    sub.on_message = lambda _c, _u, m: seen.append(Verdict.from_json(m.payload))
    sub.connect("127.0.0.1", mosquitto.port)
    sub.subscribe(topics.verdict_topic(NODE), qos=1)
    sub.loop_start()
    try:
        wait_for(lambda: http_json(edge + "/healthz")["mqtt_connected"], 60, "edge node")
        # the node's camera raised an intrusion alarm (published as the node would)
        now = datetime.now(UTC)
        ev = Event.model_validate(
            {
                "id": new_event_id(),
                "type": "water_danger_intrusion",
                "severity": "urgent",
                "incident_key": "cam1/zone_intrusion/t1",
                "occurred_at": now,
                "detected_at": now,
                "source": {
                    "node_id": NODE,
                    "kind": "camera",
                    "device_id": "cam1",
                    "pipeline": "zone_intrusion",
                },
                "location": {"grid_id": "beibei-tianfu-03", "zone": "riverside_path"},
                "confidence": 0.8,
                "summary": "有人进入危险水域",
            }
        )
        sub.publish(topics.event_topic(NODE), ev.to_bytes(), qos=1).wait_for_publish(5)
        orders = wait_for(
            lambda: _call(base, "/api/v1/work-orders?state=reported", token)["items"],
            30,
            "the order",
        )
        bad = urllib.request.Request(
            base + f"/api/v1/work-orders/{orders[0]['id']}/transitions",
            data=json.dumps({"action": "false_alarm", "reason": "不存在的原因"}).encode(),
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
        )
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(bad, timeout=10)  # noqa: S310 - loopback
        assert refused.value.code == 422
        done = _call(
            base,
            f"/api/v1/work-orders/{orders[0]['id']}/transitions",
            token,
            {"action": "false_alarm", "reason": "水面反光", "note": "是水面反光，不是人"},
        )
        assert done["state"] == "false_alarm"
        wait_for(lambda: seen, 20, "the verdict on the node's topic")
        v = seen[0]
        assert (v.node_id, v.device_id, v.zone, v.reason) == (
            NODE,
            "cam1",
            "riverside_path",
            "水面反光",
        )
        assert "cam1/zone_intrusion/t1" in v.incident_keys
        metric = 'shaobing_false_alarm_verdicts_total{device="cam1",zone="riverside_path",reason="水面反光"} 1'

        def counted() -> bool:
            with urllib.request.urlopen(edge + "/metrics", timeout=5) as r:  # noqa: S310
                return metric in r.read().decode()

        wait_for(counted, 20, "the verdict counted in the node's metrics")
        book = http_json(edge + "/api/v1/verdicts")["items"]
        assert book[0]["false_alarms"] == 1 and book[0]["reasons"] == {"水面反光": 1}
        stats = _call(base, "/api/v1/stats", cc)["false_alarms"]
        week = stats["7d"]
        assert week["total"] == 1 and week["by_reason"] == {"水面反光": 1}
        cam = next(r for r in week["by_camera"] if r["key"] == f"{NODE}/cam1")
        assert cam["rate"] == 1.0
        assert any(r["key"] == "zone_intrusion" for r in week["by_pipeline"])
        assert stats["30d"]["total"] == 1
        # the record survives a node restart
        node.stop()
        node = _node(tmp_path, mosquitto.url, edge_port)
        wait_for(lambda: http_json(edge + "/healthz")["mqtt_connected"], 60, "edge node again")
        assert http_json(edge + "/api/v1/verdicts")["items"][0]["false_alarms"] == 1
    finally:
        sub.loop_stop()
        sub.disconnect()
        node.stop()
        hub.stop()
