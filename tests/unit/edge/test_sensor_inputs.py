"""Sensor inputs: MQTT subscriber on a real mosquitto, CSV replay, HTTP router."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import paho.mqtt.client as paho
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from paho.mqtt.enums import CallbackAPIVersion

from edge.sensors.inputs import (
    MqttSensorSubscriber,
    SensorMessageHandler,
    build_sensor_router,
    read_sensor_csv,
    replay_csv,
)
from pipelines.sensor_rules import SensorRules
from shaobing.config import BrokerConfig, load_edge_config
from shaobing.contract import SensorReading
from shaobing.paths import configs_dir
from shaobing.topics import sensor_topic
from tests.support.mosquitto import Mosquitto
from tests.support.mosquitto import mosquitto as mosquitto  # noqa: F401 - the shared fixture

NODE = "gw-test"
DEVICES = {"gas-1", "hr-1"}
T0 = datetime(2026, 11, 29, 8, 0, tzinfo=UTC)


@pytest.fixture
def broker(request: pytest.FixtureRequest) -> Mosquitto:
    """The shared mosquitto fixture (a real broker on a free loopback port)."""
    found: Mosquitto = request.getfixturevalue("mosquitto")
    return found


class Collector:
    """Thread-safe list of (reading, received_at)."""

    def __init__(self) -> None:
        self.items: list[tuple[SensorReading, datetime]] = []
        self._lock = threading.Lock()

    def __call__(self, reading: SensorReading, received_at: datetime) -> None:
        with self._lock:
            self.items.append((reading, received_at))

    def readings(self) -> list[SensorReading]:
        with self._lock:
            return [r for r, _ in self.items]


def wait_for(condition: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


def reading_json(
    device: str = "gas-1",
    kind: str = "gas",
    value: float | None = 25.0,
    ts: datetime | None = None,
    **extra: object,
) -> bytes:
    payload: dict[str, object] = {
        "device": device,
        "kind": kind,
        "value": value,
        "unit": "%LEL",
        "ts": (ts or datetime.now(UTC)).isoformat(),
    }
    payload.update(extra)
    return json.dumps(payload).encode()


def publisher(broker: Mosquitto) -> paho.Client:
    client = paho.Client(
        callback_api_version=CallbackAPIVersion.VERSION2, client_id=f"pub-{time.monotonic_ns()}"
    )
    client.connect("127.0.0.1", broker.port)
    client.loop_start()
    return client


# --------------------------------------------------------------------------- MQTT


def test_mqtt_subscriber_delivers_good_readings_and_counts_bad_ones(broker: Mosquitto) -> None:
    got = Collector()
    sub = MqttSensorSubscriber(NODE, BrokerConfig(url=broker.url), DEVICES, got)
    sub.start()
    try:
        assert sub.wait_subscribed(5.0), broker.log_text()
        pub = publisher(broker)
        messages = [
            (sensor_topic(NODE, "gas-1"), reading_json(value=5.0)),
            (sensor_topic(NODE, "gas-1"), b"{not json"),
            (sensor_topic(NODE, "gas-1"), reading_json(value="abc")),  # type: ignore[arg-type]
            (sensor_topic(NODE, "gas-1"), reading_json(ts=None, extra_field=1)),
            (sensor_topic(NODE, "gas-9"), reading_json(device="gas-9")),
            (sensor_topic(NODE, "gas-1"), reading_json(device="hr-1", kind="heart_rate")),
            (sensor_topic(NODE, "gas-1"), b"x" * 20000),
            (
                sensor_topic(NODE, "hr-1"),
                reading_json(device="hr-1", kind="heart_rate", value=None),
            ),
            (sensor_topic(NODE, "gas-1"), reading_json(value=25.0, battery=80)),
        ]
        for topic, payload in messages:
            pub.publish(topic, payload, qos=1).wait_for_publish(5)
        assert wait_for(lambda: sub.counters["received"] == len(messages)), dict(sub.counters)
        pub.loop_stop()
        pub.disconnect()
    finally:
        sub.stop()
    assert [(r.device, r.value, r.battery) for r in got.readings()] == [
        ("gas-1", 5.0, None),
        ("hr-1", None, None),
        ("gas-1", 25.0, 80.0),
    ]
    counts = {k: v for k, v in sub.counters.items() if k != "connects"}
    assert counts == {
        "received": 9,
        "accepted": 3,
        "malformed": 3,
        "unknown_device": 1,
        "topic_mismatch": 1,
        "too_large": 1,
    }
    for reading, received_at in got.items:
        assert (
            received_at.tzinfo is not None and abs((received_at - reading.ts).total_seconds()) < 5
        )


def test_mqtt_subscriber_survives_a_callback_error_and_a_broker_restart(broker: Mosquitto) -> None:
    got = Collector()

    def on_reading(reading: SensorReading, received_at: datetime) -> None:
        if reading.value == 13:
            raise RuntimeError("callback failure")
        got(reading, received_at)

    sub = MqttSensorSubscriber(
        NODE, BrokerConfig(url=broker.url, keepalive_s=5), DEVICES, on_reading
    )
    sub.start()
    try:
        assert sub.wait_subscribed(5.0)
        pub = publisher(broker)
        pub.publish(sensor_topic(NODE, "gas-1"), reading_json(value=13.0), qos=1).wait_for_publish(
            5
        )
        pub.publish(sensor_topic(NODE, "gas-1"), reading_json(value=1.0), qos=1).wait_for_publish(5)
        assert wait_for(lambda: len(got.readings()) == 1)
        assert sub.counters["callback_errors"] == 1
        pub.loop_stop()
        pub.disconnect()
        broker.restart()
        assert wait_for(lambda: sub.counters["connects"] >= 2 and sub.subscribed, timeout=10.0), (
            broker.log_text()
        )
        pub = publisher(broker)
        pub.publish(sensor_topic(NODE, "gas-1"), reading_json(value=2.0), qos=1).wait_for_publish(5)
        assert wait_for(lambda: len(got.readings()) == 2)
        pub.loop_stop()
        pub.disconnect()
    finally:
        sub.stop()
    assert [r.value for r in got.readings()] == [1.0, 2.0]


def test_mqtt_readings_drive_the_rules_end_to_end(broker: Mosquitto) -> None:
    cfg = load_edge_config(configs_dir() / "demo" / "sensor-gateway.yaml")
    rules = SensorRules(cfg.sensors)
    findings = []
    lock = threading.Lock()

    def on_reading(reading: SensorReading, received_at: datetime) -> None:
        with lock:
            findings.extend(rules.update(reading, received_at))

    sub = MqttSensorSubscriber(
        cfg.node_id, BrokerConfig(url=broker.url), rules.sensor_ids, on_reading
    )
    sub.start()
    try:
        assert sub.wait_subscribed(5.0)
        pub = publisher(broker)
        now = datetime.now(UTC)
        for i, value in enumerate([4.0, 26.0, 3.0]):
            payload = reading_json(
                device="gas-djg-3-201", value=value, ts=now + timedelta(seconds=i)
            )
            pub.publish(
                sensor_topic(cfg.node_id, "gas-djg-3-201"), payload, qos=1
            ).wait_for_publish(5)
        assert wait_for(lambda: len(findings) == 2)
        pub.loop_stop()
        pub.disconnect()
    finally:
        sub.stop()
    assert [(f.type, f.state, f.severity, f.device_id) for f in findings] == [
        ("gas_leak", "active", "emergency", "gas-djg-3-201"),
        ("gas_leak", "cleared", "emergency", "gas-djg-3-201"),
    ]


def test_message_handler_refuses_other_topics() -> None:
    got = Collector()
    handler = SensorMessageHandler(NODE, DEVICES, got)
    assert handler.handle("shaobing/v1/other/sensor/gas-1", reading_json()) is None
    assert handler.handle(f"shaobing/v1/{NODE}/sensor/gas-1/extra", reading_json()) is None
    assert handler.handle(f"shaobing/v1/{NODE}/sensor/gas-1", b"\xff\xfe") is None
    assert handler.counters == {"received": 3, "bad_topic": 2, "malformed": 1}
    assert got.readings() == []


# --------------------------------------------------------------------------- CSV


def test_csv_rows_with_header_comments_and_bad_rows(tmp_path: Path) -> None:
    path = tmp_path / "s.csv"
    path.write_text(
        "# comment\n"
        "ts,device,kind,value,unit,battery\n"
        "2026-11-29T08:00:00+08:00,gas-1,gas,3.5,%LEL,\n"
        "\n"
        "2026-11-29T08:00:05+08:00,hr-1,heart_rate,,bpm,55\n"
        "2026-11-29T08:00:06+08:00,hr-1,heart_rate,null,bpm,\n"
        "2026-11-29T08:00:07,gas-1,gas,3.5,%LEL,\n"
        "2026-11-29T08:00:08+08:00,gas-1,gas,abc,%LEL,\n"
        "2026-11-29T08:00:09+08:00,gas-1\n",
        encoding="utf-8",
    )
    rows = list(read_sensor_csv(path))
    assert [(r.line, r.reading is not None) for r in rows] == [
        (3, True),
        (5, True),
        (6, True),
        (7, False),
        (8, False),
        (9, False),
    ]
    assert (
        rows[1].reading is not None
        and rows[1].reading.value is None
        and rows[1].reading.battery == 55
    )
    assert rows[3].error is not None and rows[3].error.startswith("ts:")
    assert rows[4].error is not None and rows[4].error.startswith("value:")
    assert rows[5].error == "expected columns ts,device,kind,value,unit,battery, found 2 cells"


def test_csv_replay_as_fast_as_possible_uses_the_reading_time(tmp_path: Path) -> None:
    path = tmp_path / "s.csv"
    path.write_text(
        "gas-1,gas,3,%LEL,2026-11-29T08:00:00+00:00\ngas-1,gas,x,%LEL,2026-11-29T08:00:10+00:00\ngas-1,gas,25,%LEL,2026-11-29T08:00:20+00:00,90\n"
    )
    got = Collector()
    stats = replay_csv(path, got)
    assert (stats.delivered, stats.bad_rows) == (2, 1)
    assert stats.errors[0].startswith("2: value:")
    assert [(r.value, r.battery, at == r.ts) for r, at in got.items] == [
        (3.0, None, True),
        (25.0, 90.0, True),
    ]


def test_csv_replay_in_real_time_paces_and_rebases(tmp_path: Path) -> None:
    path = tmp_path / "s.csv"
    path.write_text(
        "".join(f"gas-1,gas,{i},%LEL,2020-01-01T08:00:{i:02d}+08:00\n" for i in range(0, 21, 5))
    )
    got = Collector()
    started = time.monotonic()
    start_clock = datetime.now(UTC)
    stats = replay_csv(path, got, realtime=True, speed=40.0)
    elapsed = time.monotonic() - started
    assert stats.delivered == 5
    assert 0.45 <= elapsed < 3.0  # 20 s of readings at 40× ≈ 0.5 s
    first, last = got.items[0][0].ts, got.items[-1][0].ts
    assert abs((first - start_clock).total_seconds()) < 1.0
    assert (last - first).total_seconds() == pytest.approx(0.5)
    for reading, received_at in got.items:
        assert abs((received_at - reading.ts).total_seconds()) < 1.0


def test_csv_replay_stops_when_asked_and_counts_callback_errors(tmp_path: Path) -> None:
    path = tmp_path / "s.csv"
    path.write_text(
        "".join(f"gas-1,gas,{i},%LEL,2026-11-29T08:00:{i:02d}+08:00\n" for i in range(10))
    )
    stop = threading.Event()

    def on_reading(reading: SensorReading, received_at: datetime) -> None:
        if reading.value == 2:
            raise ValueError("boom")
        if reading.value == 4:
            stop.set()

    stats = replay_csv(path, on_reading, stop=stop)
    assert (stats.delivered, stats.callback_errors) == (4, 1)


def test_demo_replay_raises_the_expected_events() -> None:
    cfg = load_edge_config(configs_dir() / "demo" / "sensor-gateway.yaml")
    assert cfg.cameras == [] and len(cfg.sensors) == 5
    rules = SensorRules(cfg.sensors, grid_id=cfg.grid_id, address=cfg.address)
    findings = []
    stats = replay_csv(
        configs_dir() / "demo" / "sensors.csv", lambda r, at: findings.extend(rules.update(r, at))
    )
    assert (stats.bad_rows, stats.callback_errors) == (0, 0)
    assert rules.rejected == {}
    # the underpass water rises 3 cm per 30 s: the rate rule fires once the rise has held
    # for the configured 60 s (at 0.127 m), not on its first steep reading (0.079 m)
    assert [(f.type, f.state) for f in findings] == [
        ("gas_leak", "active"),
        ("gas_leak", "cleared"),
        ("smoke", "active"),
        ("flood", "active"),
        ("smoke", "cleared"),
        ("health_alarm", "active"),
        ("health_alarm", "cleared"),
        ("flood", "update"),
        ("device_fault", "active"),
    ]
    assert all(f.grid_id for f in findings)
    flood = next(f for f in findings if f.type == "flood")
    assert flood.attributes["rule"] == "rate" and flood.attributes["value"] == 0.127


# --------------------------------------------------------------------------- HTTP


def make_client(known: set[str] | None = DEVICES) -> tuple[TestClient, Collector]:
    got = Collector()
    app = FastAPI()
    app.include_router(build_sensor_router(got, known_devices=known, max_items=5))
    return TestClient(app), got


def one(**over: object) -> dict[str, object]:
    item: dict[str, object] = {
        "device": "gas-1",
        "kind": "gas",
        "value": 5.0,
        "unit": "%LEL",
        "ts": "2026-11-29T08:00:00+08:00",
    }
    item.update(over)
    return item


def test_http_accepts_one_reading_or_a_list() -> None:
    client, got = make_client()
    r = client.post("/api/v1/sensors/readings", json=one())
    assert (r.status_code, r.json()) == (202, {"accepted": 1})
    r = client.post(
        "/api/v1/sensors/readings",
        json=[one(value=6), one(device="hr-1", kind="heart_rate", value=None, unit="bpm")],
    )
    assert (r.status_code, r.json()) == (202, {"accepted": 2})
    assert [(r.device, r.value) for r in got.readings()] == [
        ("gas-1", 5.0),
        ("gas-1", 6.0),
        ("hr-1", None),
    ]
    assert all(at.tzinfo is not None for _, at in got.items)


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        (one(value="abc"), ["body", "value"]),
        ({k: v for k, v in one().items() if k != "ts"}, ["body", "ts"]),
        (one(ts="2026-11-29T08:00:00"), ["body", "ts"]),
        (one(battery=150), ["body", "battery"]),
        (one(extra=1), ["body", "extra"]),
        ([one(), one(value="abc")], ["body", 1, "value"]),
        (one(device="gas-9"), ["body", "device"]),
        ([one(), one(device="gas-9")], ["body", 1, "device"]),
        ([one()] * 6, ["body"]),
        ("text", ["body"]),
    ],
)
def test_http_rejects_bad_input_naming_the_field_and_delivers_nothing(
    body: object, loc: list[object]
) -> None:
    client, got = make_client()
    r = client.post("/api/v1/sensors/readings", json=body)
    assert r.status_code == 422, r.text
    assert r.json()["detail"][0]["loc"] == loc
    assert got.readings() == []


def test_http_invalid_json_is_422() -> None:
    client, _ = make_client()
    r = client.post(
        "/api/v1/sensors/readings", content=b"{oops", headers={"content-type": "application/json"}
    )
    assert r.status_code == 422


def test_http_without_registry_accepts_any_device_and_documents_the_body() -> None:
    client, got = make_client(known=None)
    assert client.post("/api/v1/sensors/readings", json=one(device="any")).status_code == 202
    schema = client.get("/openapi.json").json()
    body = schema["paths"]["/api/v1/sensors/readings"]["post"]["requestBody"]["content"][
        "application/json"
    ]["schema"]
    assert "anyOf" in body


# --------------------------------------------------------------------------- bad bytes, bad dates


def _rows(n: int, start: int = 0) -> list[bytes]:
    return [
        f"gas-1,gas,{i},%LEL,2026-11-29T08:00:{i:02d}+08:00\n".encode() for i in range(start, n)
    ]


@pytest.mark.parametrize(
    ("bad", "error"),
    [
        (
            b"gas-1,gas,5,%LEL\xff\xfe,2026-11-29T08:00:05+08:00\n",
            "expected UTF-8 text, found byte 0xff",
        ),
        (
            b"gas-1,g\xe9s,5,%LEL,2026-11-29T08:00:05+08:00\n",
            "expected UTF-8 text, found byte 0xe9",
        ),
        (b"gas-1,gas,5,%LEL,2026-11-29T08:00:05+08:00\x00\n", "expected text, found a NUL byte"),
        (b"\x80\x81\x82\n", "expected UTF-8 text, found byte 0x80 at column 1"),
    ],
)
def test_csv_bad_bytes_cost_their_own_line_only(tmp_path: Path, bad: bytes, error: str) -> None:
    path = tmp_path / "s.csv"
    lines = _rows(10)
    lines[5] = bad
    path.write_bytes(b"\xef\xbb\xbfdevice,kind,value,unit,ts,battery\n" + b"".join(lines))
    rows = list(read_sensor_csv(path))
    assert [r.line for r in rows] == list(range(2, 12))
    assert [r.line for r in rows if r.reading is None] == [7]
    assert rows[5].error is not None and rows[5].error.startswith(error), rows[5].error
    got = Collector()
    stats = replay_csv(path, got)
    assert (stats.delivered, stats.bad_rows) == (9, 1)
    assert [r.value for r in got.readings()] == [0, 1, 2, 3, 4, 6, 7, 8, 9]


def test_csv_future_row_is_dropped_not_waited_for(tmp_path: Path) -> None:
    # paced replay: a row stamped a year ahead (a typo in the year) used to hold back
    # every row after it; it is logged and dropped, the others keep their pace
    path = tmp_path / "s.csv"
    lines = _rows(6)
    lines[2] = b"gas-1,gas,99,%LEL,2027-11-29T08:00:02+08:00\n"
    path.write_bytes(b"".join(lines))
    now = datetime(2026, 11, 29, 0, 30, tzinfo=UTC)  # 08:30 in +08:00, after the recording
    got = Collector()
    started = time.monotonic()
    stats = replay_csv(path, got, realtime=True, speed=10.0, rebase=True, clock=lambda: now)
    assert time.monotonic() - started < 2.0  # 5 s of readings at 10× ≈ 0.5 s
    assert (stats.delivered, stats.future_rows, stats.bad_rows) == (5, 1, 0)
    assert [r.value for r in got.readings()] == [0, 1, 3, 4, 5]
    assert stats.errors == ["3: stamped in the future (2027-11-29T08:00:02+08:00)"]


def test_mqtt_bad_bytes_are_counted_per_sensor() -> None:
    got = Collector()
    handler = SensorMessageHandler(NODE, DEVICES, got, clock=lambda: T0)
    good = reading_json("gas-1", "gas", 3.0, T0)
    assert handler.handle(sensor_topic(NODE, "gas-1"), good) is not None
    assert handler.handle(sensor_topic(NODE, "gas-1"), good[:20] + b"\xff\xfe" + good[20:]) is None
    assert (
        handler.handle(sensor_topic(NODE, "made-up-9"), good.replace(b"gas-1", b"made-up-9"))
        is None
    )
    assert handler.handle(sensor_topic(NODE, "gas-1"), good) is not None
    assert handler.counters["malformed"] == 1 and handler.counters["accepted"] == 2
    assert dict(handler.rejected_by_sensor) == {
        ("gas-1", "malformed"): 1,
        ("unregistered", "unknown_device"): 1,
    }
