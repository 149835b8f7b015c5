"""hub/notify.py: MQTT dispatch notices and signed webhooks, retried, from the notification outbox."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from hub.notify import MqttNotifier, NotificationWorker, WebhookNotifier, list_notifications, sign
from shaobing.config import BrokerConfig, HubConfig
from shaobing.contract import DispatchNotice
from shaobing.mqtt import ProtocolChoice
from tests.conftest import HubKit
from tests.support.mosquitto import Mosquitto, free_port


class Hook(BaseHTTPRequestHandler):
    calls: list[tuple[dict[str, str], bytes]] = []
    fail_first = 1

    def do_POST(self) -> None:  # noqa: N802 - http.server API
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Hook.calls.append((dict(self.headers), body))
        status = 500 if len(Hook.calls) <= Hook.fail_first else 204
        self.send_response(status)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def test_signed_webhook_is_retried_until_delivered(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHAOBING_TEST_HOOK", "s3cret")
    port = free_port()
    server = ThreadingHTTPServer(("127.0.0.1", port), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    Hook.calls = []
    try:
        kit = HubKit(
            f"sqlite:///{tmp_path / 'h.sqlite'}",
            tmp_path,
            notify={
                "mqtt": False,
                "retry_base_s": 5,
                "webhooks": [
                    {"url": f"http://127.0.0.1:{port}/hook", "secret_env": "SHAOBING_TEST_HOOK"}
                ],
            },
        )
        t0 = time.monotonic()
        kit.feed(kit.event("drowning", severity="emergency", grid_id="beibei-tianfu-03"))
        assert time.monotonic() - t0 < 5  # ingest only queues; nothing is sent in its path
        assert Hook.calls == []
        worker = NotificationWorker(
            kit.store, kit.config, {"webhook:0": WebhookNotifier(kit.config.notify.webhooks[0])}
        )
        assert worker.deliver_due() == 1
        rows = list_notifications(kit.store)
        assert (
            rows[0]["status"] == "pending"
            and rows[0]["attempts"] == 1
            and "500" in rows[0]["last_error"]
        )
        assert worker.deliver_due() == 0  # backoff: not due yet
        kit.clock.advance(seconds=6)
        assert worker.deliver_due() == 1
        assert list_notifications(kit.store)[0]["status"] == "sent"
        headers, body = Hook.calls[-1]
        assert headers["X-Shaobing-Signature"] == sign(
            b"s3cret", headers["X-Shaobing-Timestamp"], body
        )
        data = json.loads(body)
        assert data["reason"] == "emergency" and data["notice"]["severity"] == "emergency"
        assert {"w-tianfu-03", "c-xinglong", "cc-tianfu"} <= set(data["recipients"])
        kit.close()
    finally:
        server.shutdown()


def test_mqtt_dispatch_reaches_every_responsible_person(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    kit = HubKit(
        f"sqlite:///{tmp_path / 'h.sqlite'}",
        tmp_path,
        broker={"url": mosquitto.url, "protocol": "3.1.1"},
    )
    got: dict[str, DispatchNotice] = {}
    sub = paho.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id="phone")
    ready = threading.Event()
    sub.on_connect = lambda c, u, f, rc, p: c.subscribe("shaobing/v1/hub/dispatch/+", qos=1)
    sub.on_subscribe = lambda *a: ready.set()
    sub.on_message = lambda c, u, m: got.__setitem__(
        m.topic.rsplit("/", 1)[1], DispatchNotice.model_validate_json(m.payload)
    )
    sub.connect("127.0.0.1", mosquitto.port)
    sub.loop_start()
    assert ready.wait(10)
    worker = NotificationWorker(kit.store, kit.config)
    # its own MQTT session connects in the background: a notice sent before then is
    # retried after the backoff, later than this test waits (on a loaded machine)
    own = worker._own_mqtt
    assert own is not None
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not own.session.connected:
        time.sleep(0.05)
    assert own.session.connected
    try:
        kit.feed(kit.event("fire", severity="emergency", grid_id="beibei-tianfu-01"))
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and any(
            r["status"] != "sent" for r in list_notifications(kit.store)
        ):
            worker.deliver_due()
            time.sleep(0.1)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and len(got) < 5:
            time.sleep(0.05)
        wo = kit.orders()[0]
        assert {
            "w-tianfu-01",
            "c-daiyun",
            "h-tianfu-safety",
            "beibei-emergency",
            "cc-tianfu",
        } <= set(got)
        n = got["w-tianfu-01"]
        assert (
            n.work_order_id == wo["id"]
            and n.severity == "emergency"
            and n.board == "safety_law"
            and n.due_at is not None
        )
    finally:
        worker.stop()
        sub.loop_stop()
        kit.close()


@pytest.mark.parametrize(
    ("protocol", "expected"),
    [("auto", MQTTProtocolVersion.MQTTv5), ("3.1.1", MQTTProtocolVersion.MQTTv311)],
)
def test_notifier_speaks_the_protocol_the_edge_speaks(
    tmp_path: Path, mosquitto: Mosquitto, protocol: str, expected: MQTTProtocolVersion
) -> None:
    """``protocol: auto`` is MQTT 5 first on the hub's notifier as on the edge."""
    config = HubConfig(broker=BrokerConfig(url=mosquitto.url, protocol=protocol))  # type: ignore[arg-type]
    notifier = MqttNotifier(config)
    try:
        assert notifier.session.wait_connected(10)
        assert notifier.session.protocols.current == expected
        assert ProtocolChoice(config.broker).current == expected  # the edge's choice
        notifier.send("w-1", b"{}")  # waits for the PUBACK
    finally:
        notifier.close()
