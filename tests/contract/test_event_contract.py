"""Wire contract shaobing.event/1: valid events round-trip; each invalid case names its field."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
from pydantic import ValidationError

from shaobing.contract import (
    MAX_EVENT_BYTES,
    SCHEMA,
    ContractError,
    Event,
    NodeStatus,
    SensorReading,
    decode_ack,
    encode_ack,
    new_event_id,
)

CST = timezone(timedelta(hours=8))


def valid_payload(**overrides: object) -> dict[str, object]:
    base: dict[str, object] = {
        "schema": SCHEMA,
        "id": new_event_id(),
        "type": "falling_object",
        "severity": "urgent",
        "state": "active",
        "incident_key": "cam3/falling_object/20260601T081502",
        "occurred_at": "2026-06-01T08:15:02.300+08:00",
        "detected_at": "2026-06-01T08:15:03.100+08:00",
        "source": {
            "node_id": "riverside-01",
            "kind": "camera",
            "device_id": "cam3",
            "pipeline": "falling_object",
            "model": None,
        },
        "location": {
            "grid_id": "beibei-tianfu-03",
            "address": "兴隆村3栋",
            "floor": 12,
            "column": 4,
        },
        "confidence": 0.87,
        "summary": "3栋 12层 第4列窗口 高空抛物",
        "attributes": {"acceleration_mps2": 9.3, "floor_range": [11, 13]},
        "evidence": [
            {
                "id": "e1",
                "kind": "image",
                "content_type": "image/jpeg",
                "sha256": "a" * 64,
                "bytes": 48213,
            },
        ],
    }
    base.update(overrides)
    return base


def test_valid_event_round_trips_with_chinese_summary() -> None:
    payload = json.dumps(valid_payload(), ensure_ascii=False).encode("utf-8")
    event = Event.from_json(payload)
    assert event.summary == "3栋 12层 第4列窗口 高空抛物"
    assert event.location.floor == 12
    again = Event.from_json(event.to_bytes())
    assert again == event
    assert json.loads(event.to_json())["schema"] == SCHEMA


def test_event_is_frozen() -> None:
    event = Event.model_validate(valid_payload())
    with pytest.raises(ValidationError):
        event.severity = "normal"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"type": "alien_invasion"}, "type"),
        ({"severity": "catastrophic"}, "severity"),
        ({"state": "maybe"}, "state"),
        ({"schema": "shaobing.event/2"}, "schema"),
        ({"confidence": 1.5}, "confidence"),
        ({"occurred_at": "2026-06-01T08:15:02"}, "occurred_at"),
        ({"location": {"zone": "bank"}}, "location"),
        ({"location": {"lat": 29.8}}, "location"),
        (
            {"source": {"node_id": "n", "kind": "drone", "device_id": "d", "pipeline": "p"}},
            "source.kind",
        ),
        (
            {"source": {"node_id": "a/b", "kind": "camera", "device_id": "d", "pipeline": "p"}},
            "source.node_id",
        ),
        (
            {
                "evidence": [
                    {
                        "id": "e",
                        "kind": "image",
                        "content_type": "image/jpeg",
                        "sha256": "xyz",
                        "bytes": 1,
                    }
                ]
            },
            "evidence.0.sha256",
        ),
        ({"unexpected": 1}, "unexpected"),
        ({"summary": ""}, "summary"),
        ({"related": ["not an id!"]}, "related"),
    ],
)
def test_invalid_events_are_rejected_naming_the_field(
    overrides: dict[str, object], field: str
) -> None:
    payload = json.dumps(valid_payload(**overrides)).encode()
    with pytest.raises(ContractError) as err:
        Event.from_json(payload)
    assert field in str(err.value)


def test_missing_fields_are_named() -> None:
    payload = valid_payload()
    del payload["incident_key"]
    with pytest.raises(ContractError, match="incident_key"):
        Event.from_json(json.dumps(payload))


def test_payload_over_64_kib_is_rejected() -> None:
    big = valid_payload(attributes={"blob": "x" * (MAX_EVENT_BYTES + 10)})
    with pytest.raises(ContractError, match="bytes"):
        Event.from_json(json.dumps(big))
    with pytest.raises(ValueError):
        Event.model_validate(big)


def test_uuid7_ids_are_unique_and_time_ordered() -> None:
    ids = [new_event_id() for _ in range(2000)]
    assert len(set(ids)) == len(ids)
    assert all(i[14] == "7" for i in ids)  # version nibble
    assert ids[0][:8] <= ids[-1][:8]


def test_ack_round_trip_and_rejects_garbage() -> None:
    assert decode_ack(encode_ack(["a", "b"])) == ["a", "b"]
    for bad in (b"{", b'{"ids": 1}', b"[1, 2]"):
        with pytest.raises(ContractError):
            decode_ack(bad)


def test_node_status_and_sensor_reading() -> None:
    status = NodeStatus(node_id="n1", online=False, ts=datetime.now(UTC))
    assert NodeStatus.from_json(status.to_bytes()).online is False
    reading = SensorReading.from_json(
        b'{"device": "hr-01", "kind": "heart_rate", "value": null, "unit": "bpm", "ts": "2026-06-01T08:00:00+08:00"}'
    )
    assert reading.value is None and reading.ts.utcoffset() == timedelta(hours=8)
    with pytest.raises(ContractError, match="ts"):
        SensorReading.from_json(
            b'{"device": "hr-01", "kind": "heart_rate", "value": 1, "ts": "yesterday"}'
        )
