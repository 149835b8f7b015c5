"""Fusion: a camera smoke/fire finding and a linked sensor's alarm confirm each other."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Literal

import pytest

from pipelines.base import Finding, Severity, State
from pipelines.fusion import Fusion
from shaobing.config import SensorConfig
from shaobing.contract import Event, Location, Source, new_event_id

T0 = datetime(2026, 11, 29, 8, 0, tzinfo=UTC)

SENSORS = [
    SensorConfig(id="smk-b1", kind="smoke", camera="cam2", zone="mall_b1"),
    SensorConfig(id="tmp-b1", kind="temperature", camera="cam2"),
    SensorConfig(id="gas-k", kind="gas", zone="kitchen"),
    SensorConfig(id="smk-far", kind="smoke"),
    SensorConfig(id="hr-1", kind="heart_rate", camera="cam2"),
]


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def event(
    kind: Literal["camera", "sensor"],
    device: str,
    type_: str,
    severity: Severity,
    t: float,
    zone: str | None = None,
    state: State = "active",
) -> Event:
    return Event(
        id=new_event_id(),
        type=type_,
        severity=severity,
        state=state,
        incident_key=f"n1/{device}/{type_}/{t}",
        occurred_at=at(t),
        detected_at=at(t),
        source=Source(
            node_id="n1",
            kind=kind,
            device_id=device,
            pipeline="sensor_rules" if kind == "sensor" else "smoke_fire",
        ),
        location=Location(grid_id="g1", zone=zone),
        confidence=0.9,
        summary="测试",
    )


def camera_finding(
    type_: str,
    t: float,
    zone: str | None = None,
    severity: Severity | None = None,
    state: State = "active",
) -> Finding:
    return Finding(
        type=type_,
        severity=severity or ("emergency" if type_ == "fire" else "urgent"),
        state=state,
        incident_key=f"cam2/{type_}/{t}",
        occurred_at=at(t),
        confidence=0.7,
        summary="摄像头检测到烟雾",
        zone=zone,
    )


def sensor_finding(
    device: str, type_: str, severity: Severity, t: float, zone: str | None = None
) -> Finding:
    return Finding(
        type=type_,
        severity=severity,
        state="active",
        incident_key=f"sensor/{device}/high/{t}",
        occurred_at=at(t),
        confidence=0.9,
        summary="传感器报警",
        zone=zone,
        device_id=device,
        kind="sensor",
    )


def test_sensor_smoke_then_camera_smoke_within_window_links_and_keeps_at_least_urgent() -> None:
    fusion = Fusion(SENSORS)
    sensor_event = event("sensor", "smk-b1", "smoke", "urgent", 0, zone="mall_b1")
    fusion.note_event(sensor_event)
    finding = camera_finding("smoke", 60, zone="mall_b1", severity="normal")
    related, severity = fusion.link(finding, "cam2", finding.occurred_at)
    assert related == (sensor_event.id,)
    assert severity == "urgent"


@pytest.mark.parametrize(
    ("sensor", "sensor_type", "sensor_zone", "camera_type", "expected"),
    [
        ("smk-b1", "smoke", "mall_b1", "fire", "emergency"),  # flames on camera + smoke detector
        (
            "tmp-b1",
            "fire",
            None,
            "smoke",
            "emergency",
        ),  # heat sensor + camera smoke: fire confirmed
        ("tmp-b1", "fire", None, "fire", "emergency"),
        ("gas-k", "gas_leak", "kitchen", "smoke", "emergency"),  # gas leak + smoke: ignition risk
    ],
)
def test_two_sources_raise_severity(
    sensor: str, sensor_type: str, sensor_zone: str | None, camera_type: str, expected: str
) -> None:
    fusion = Fusion(SENSORS)
    sensor_event = event(
        "sensor",
        sensor,
        sensor_type,
        "emergency" if sensor_type != "smoke" else "urgent",
        0,
        zone=sensor_zone,
    )
    fusion.note_event(sensor_event)
    finding = camera_finding(camera_type, 100, zone=sensor_zone or "mall_b1", severity="urgent")
    related, severity = fusion.link(finding, "cam2", finding.occurred_at)
    assert (related, severity) == ((sensor_event.id,), expected)


def test_outside_the_window_there_is_no_link() -> None:
    fusion = Fusion(SENSORS, window_s=120)
    fusion.note_event(event("sensor", "smk-b1", "smoke", "urgent", 0, zone="mall_b1"))
    finding = camera_finding("fire", 121, zone="mall_b1", severity="urgent")
    assert fusion.link(finding, "cam2", finding.occurred_at) == ((), "urgent")
    early = camera_finding("fire", -121, zone="mall_b1", severity="urgent")
    assert fusion.link(early, "cam2", early.occurred_at) == ((), "urgent")
    edge = camera_finding("fire", 120, zone="mall_b1", severity="urgent")
    assert fusion.link(edge, "cam2", edge.occurred_at)[1] == "emergency"


def test_unlinked_zone_or_camera_gives_no_link() -> None:
    fusion = Fusion(SENSORS)
    fusion.note_event(event("sensor", "smk-b1", "smoke", "urgent", 0, zone="mall_b1"))
    fusion.note_event(event("sensor", "gas-k", "gas_leak", "emergency", 0, zone="kitchen"))
    fusion.note_event(event("sensor", "smk-far", "smoke", "urgent", 0))
    other_zone = camera_finding("smoke", 30, zone="parking", severity="urgent")
    assert fusion.link(other_zone, "cam2", other_zone.occurred_at) == ((), "urgent")
    other_camera = camera_finding("smoke", 30, zone="mall_b1", severity="urgent")
    assert fusion.link(other_camera, "cam9", other_camera.occurred_at) == ((), "urgent")


def test_camera_first_then_sensor_names_the_camera_event() -> None:
    fusion = Fusion(SENSORS)
    camera_event = event("camera", "cam2", "fire", "emergency", 0, zone="mall_b1")
    fusion.note_event(camera_event)
    smoke = sensor_finding("smk-b1", "smoke", "urgent", 45, zone="mall_b1")
    assert fusion.link(smoke, None, smoke.occurred_at) == ((camera_event.id,), "emergency")
    # the node applies it with dataclasses.replace before building the sensor event
    related, severity = fusion.link(smoke, None, smoke.occurred_at)
    linked = replace(smoke, related=related, severity=severity)
    assert linked.related == (camera_event.id,) and linked.severity == "emergency"


def test_camera_smoke_first_then_smoke_sensor_is_urgent() -> None:
    fusion = Fusion(SENSORS)
    camera_event = event("camera", "cam2", "smoke", "urgent", 0, zone="mall_b1")
    fusion.note_event(camera_event)
    smoke = sensor_finding("smk-b1", "smoke", "urgent", 90, zone="mall_b1")
    assert fusion.link(smoke, None, smoke.occurred_at) == ((camera_event.id,), "urgent")


def test_alone_each_source_keeps_its_own_severity() -> None:
    fusion = Fusion(SENSORS)
    cam = camera_finding("smoke", 0, zone="mall_b1", severity="urgent")
    assert fusion.link(cam, "cam2", cam.occurred_at) == ((), "urgent")
    sensor = sensor_finding("tmp-b1", "fire", "emergency", 0)
    assert fusion.link(sensor, None, sensor.occurred_at) == ((), "emergency")


def test_only_fire_family_events_are_remembered_and_cleared_findings_never_link() -> None:
    fusion = Fusion(SENSORS)
    fusion.note_event(event("sensor", "hr-1", "health_alarm", "emergency", 0))
    fusion.note_event(event("camera", "cam2", "fire_lane_blocked", "normal", 0, zone="mall_b1"))
    fusion.note_event(event("sensor", "unknown-sensor", "smoke", "urgent", 0, zone="mall_b1"))
    fusion.note_event(
        event("sensor", "smk-b1", "smoke", "urgent", 0, zone="mall_b1", state="cleared")
    )
    cam = camera_finding("fire", 10, zone="mall_b1", severity="emergency")
    assert fusion.link(cam, "cam2", cam.occurred_at) == ((), "emergency")
    fusion.note_event(
        sensor_event := event("sensor", "smk-b1", "smoke", "urgent", 5, zone="mall_b1")
    )
    cleared = camera_finding("smoke", 10, zone="mall_b1", state="cleared")
    assert fusion.link(cleared, "cam2", cleared.occurred_at) == ((), "urgent")
    lane = camera_finding("fire_lane_blocked", 10, zone="mall_b1", severity="normal")
    assert fusion.link(lane, "cam2", lane.occurred_at) == ((), "normal")
    assert fusion.link(camera_finding("smoke", 10, zone="mall_b1"), "cam2", at(10))[0] == (
        sensor_event.id,
    )


def test_several_sensors_are_all_related_newest_first_and_memory_is_bounded() -> None:
    fusion = Fusion(SENSORS, max_events=50)
    older = event("sensor", "smk-b1", "smoke", "urgent", 0, zone="mall_b1")
    newer = event("sensor", "tmp-b1", "fire", "emergency", 20)
    fusion.note_event(older)
    fusion.note_event(newer)
    cam = camera_finding("smoke", 30, zone="mall_b1")
    assert fusion.link(cam, "cam2", cam.occurred_at) == ((newer.id, older.id), "emergency")
    for i in range(200):
        fusion.note_event(event("sensor", "smk-b1", "smoke", "urgent", 1000 + i, zone="mall_b1"))
    assert len(fusion._seen) <= 50
    related, _ = fusion.link(camera_finding("smoke", 1200, zone="mall_b1"), "cam2", at(1200))
    assert 0 < len(related) <= 16


def test_window_must_be_positive() -> None:
    with pytest.raises(ValueError, match="window_s: expected a positive number"):
        Fusion(SENSORS, window_s=0)
