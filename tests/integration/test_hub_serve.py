"""`hub serve` wiring: MQTT ingest → incidents → one work order; scheduler and API in one process."""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

import paho.mqtt.client as paho
import yaml
from paho.mqtt.enums import CallbackAPIVersion

from hub.serve import HubServer
from shaobing.config import load_hub_config
from shaobing.contract import Event, new_event_id
from shaobing.paths import configs_dir
from tests.support.mosquitto import Mosquitto, free_port


def _get(url: str) -> dict:  # type: ignore[type-arg]
    with urllib.request.urlopen(url, timeout=3) as r:  # noqa: S310 - loopback
        return json.loads(r.read())


def _event(
    node: str, device: str, kind: str, type_: str, severity: str, at: datetime, **loc: object
) -> Event:
    return Event.model_validate(
        {
            "id": new_event_id(),
            "type": type_,
            "severity": severity,
            "incident_key": f"{device}/1",
            "occurred_at": at,
            "detected_at": at,
            "source": {"node_id": node, "kind": kind, "device_id": device, "pipeline": "p"},
            "location": loc,
            "confidence": 0.9,
            "summary": "代家沟社区 3栋 起火",
        }
    )


def test_events_over_mqtt_become_one_incident_and_one_order(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    port = free_port()
    cfg_path = tmp_path / "hub.yaml"
    cfg_path.write_text(
        yaml.safe_dump(
            {
                "kind": "hub",
                "db": f"sqlite:///{tmp_path / 'hub.sqlite'}",
                "broker": {"url": mosquitto.url, "protocol": "3.1.1"},
                "http": f"127.0.0.1:{port}",
                "registry": str(configs_dir() / "demo" / "registry.yaml"),
                "evidence_dir": str(tmp_path / "ev"),
                "auth": {"anonymous_read": True},
                "sla": {"tick_s": 0.5},
            }
        )
    )
    server = HubServer(load_hub_config(cfg_path))
    stop = threading.Event()
    th = threading.Thread(target=server.run, args=(stop,), daemon=True)
    th.start()
    base = f"http://127.0.0.1:{port}"
    acks: list[str] = []
    pub = paho.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id="edge-test")
    pub.on_message = lambda c, u, m: acks.extend(json.loads(m.payload))
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if _get(base + "/healthz")["status"] == "ok":
                    break
            except OSError:
                pass
            time.sleep(0.2)
        else:
            raise AssertionError("hub not healthy")
        kinds: list[str] = []

        def listen() -> None:  # the live feed, as the dashboard reads it
            with urllib.request.urlopen(base + "/api/v1/stream", timeout=20) as resp:  # noqa: S310 - loopback
                for raw in resp:
                    line = raw.decode().strip()
                    if line.startswith("event: "):
                        kinds.append(line[7:])
                    if {"event", "incident", "work_order"} <= set(kinds):
                        return

        sse = threading.Thread(target=listen, daemon=True)
        sse.start()
        time.sleep(0.5)
        pub.connect("127.0.0.1", mosquitto.port)
        pub.subscribe("shaobing/v1/+/ack", qos=1)
        pub.loop_start()
        now = datetime.now(UTC)
        evs = [
            _event("gw-1", "smoke-3", "sensor", "smoke", "urgent", now, lat=29.8552, lon=106.4352),
            _event(
                "cam-1",
                "cam7",
                "camera",
                "fire",
                "emergency",
                now + timedelta(seconds=5),
                lat=29.8553,
                lon=106.4353,
            ),
            _event(
                "cam-1",
                "cam7",
                "camera",
                "fire",
                "emergency",
                now + timedelta(seconds=9),
                lat=29.8553,
                lon=106.4353,
            ),
        ]
        for e in [*evs, evs[1]]:  # one duplicate delivery
            pub.publish(
                f"shaobing/v1/{e.source.node_id}/event", e.to_bytes(), qos=1
            ).wait_for_publish(5)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            inc = _get(base + "/api/v1/incidents")["items"]
            if inc and inc[0]["event_count"] == 3 and len(set(acks)) >= 3:
                break
            time.sleep(0.2)
        inc = _get(base + "/api/v1/incidents")["items"]
        wos = _get(base + "/api/v1/work-orders")["items"]
        assert len(inc) == 1 and inc[0]["event_count"] == 3 and inc[0]["severity"] == "emergency"
        assert len(wos) == 1 and wos[0]["state"] == "dispatched"
        assert {e.id for e in evs} <= set(acks)
        sse.join(10)
        assert {"event", "incident", "work_order"} <= set(kinds)
        stats = _get(base + "/api/v1/stats")
        assert (
            stats["events_total"] == 3
            and stats["work_orders_total"] == 1
            and stats["incidents_pinned"] == 1
        )
    finally:
        pub.loop_stop()
        stop.set()
        th.join(20)
