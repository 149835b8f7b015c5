"""hub/incidents.py: one situation → one incident and one work order, across sources."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from hub import schema
from hub.incidents import IncidentWorker
from hub.users import SYSTEM


def counts(kit) -> tuple[int, int]:  # type: ignore[no-untyped-def]
    with kit.store.engine.connect() as c:
        return (
            c.execute(select(func.count()).select_from(schema.incidents)).scalar_one(),
            c.execute(select(func.count()).select_from(schema.work_orders)).scalar_one(),
        )


def test_fire_across_camera_sensor_voice_and_citizen_is_one_incident(hubkit) -> None:  # type: ignore[no-untyped-def]
    k = hubkit
    sensor = k.event(
        "smoke",
        severity="urgent",
        kind="sensor",
        node_id="gw-1",
        device_id="smoke-3",
        pipeline="smoke_sensor",
        lat=29.8552,
        lon=106.4352,
        incident_key="smoke-3/alarm",
    )
    camera = k.event(
        "fire",
        severity="emergency",
        kind="camera",
        node_id="cam-node",
        device_id="cam7",
        pipeline="smoke_fire",
        lat=29.8553,
        lon=106.4354,
        related=[sensor.id],
        at=k.clock.now() + timedelta(seconds=20),
    )
    voice = k.event(
        "fire",
        severity="emergency",
        kind="report",
        node_id="hub",
        device_id="hotline",
        pipeline="voice",
        address="代家沟社区 3栋 着火了",
        at=k.clock.now() + timedelta(seconds=60),
    )
    citizen = k.event(
        "gas_leak",
        severity="emergency",
        kind="citizen",
        node_id="hub",
        device_id="13800000000",
        pipeline="open311",
        grid_id="beibei-tianfu-01",
        at=k.clock.now() + timedelta(seconds=90),
    )
    k.feed(sensor)
    k.feed(camera, voice)
    k.feed(citizen)
    # duplicates and redeliveries change nothing
    k.feed(sensor, camera)
    k.hand(voice, citizen)
    assert counts(k) == (1, 1)
    inc = k.incidents()[0]
    assert inc["event_count"] == 4
    assert inc["severity"] == "emergency" and inc["family"] == "fire"
    assert {s["kind"] for s in inc["sources"]} == {"sensor", "camera", "report", "citizen"}
    assert inc["pinned"] is True
    detail = k.core.incidents.get(inc["id"], SYSTEM)
    assert len(detail["event_ids"]) == 4
    assert any(t["kind"] == "opened" for t in detail["timeline"])
    wo = k.orders()[0]
    assert (
        wo["severity"] == "emergency"
        and wo["state"] == "dispatched"
        and wo["level"] in ("town", "district")
    )


def test_same_incident_key_updates_and_clear_join(hubkit) -> None:  # type: ignore[no-untyped-def]
    k = hubkit
    evs = [
        k.event(
            incident_key="cam3/fire_lane/v0192",
            state=s,
            at=k.clock.now() + timedelta(minutes=i * 50),
        )
        for i, s in enumerate(["active", "update", "update", "cleared"])
    ]
    for e in evs:
        k.feed(e)
    assert counts(k) == (1, 1)
    assert k.incidents()[0]["event_count"] == 4


def test_different_places_types_and_times_stay_apart(hubkit) -> None:  # type: ignore[no-untyped-def]
    k = hubkit
    base = k.clock.now()
    k.feed(k.event("sanitation", lat=29.8550, lon=106.4350, kind="report"))
    k.feed(k.event("sanitation", lat=29.8590, lon=106.4390, kind="report"))  # ~570 m away
    k.feed(k.event("noise", lat=29.8550, lon=106.4350, kind="report"))  # other family
    k.feed(
        k.event(
            "sanitation", lat=29.8550, lon=106.4350, kind="report", at=base + timedelta(hours=3)
        )
    )  # later
    k.feed(k.event("sanitation", grid_id="beibei-tianfu-02", kind="report"))  # other grid
    assert counts(k) == (5, 5)


def test_falling_objects_on_far_floors_stay_apart(hubkit) -> None:  # type: ignore[no-untyped-def]
    k = hubkit
    k.feed(k.event("falling_object", severity="urgent", floor=12, zone="facade-3"))
    k.feed(
        k.event("falling_object", severity="urgent", floor=13, zone="facade-3", node_id="node-b")
    )
    k.feed(k.event("falling_object", severity="urgent", floor=3, zone="facade-3", node_id="node-c"))
    assert counts(k) == (2, 2)


def test_unplaced_event_is_stored_and_goes_to_screening(hubkit) -> None:  # type: ignore[no-untyped-def]
    k = hubkit
    e = k.event(
        "road_facility", node_id="unknown-node", address="某条没登记的路 井盖丢了", kind="citizen"
    )
    assert k.feed(e) == [e.id]
    inc = k.incidents()[0]
    assert inc["placed"] is False
    wo = k.orders()[0]
    assert wo["screening"] is True and wo["assignee_id"] == "cc-beibei-tianfu".replace(
        "cc-beibei-tianfu", "cc-tianfu"
    )
    assert wo["state"] == "reported"
    # the command centre places it while screening
    cc = SYSTEM
    k.core.orders.transition(wo["id"], "track", cc)
    out = k.core.orders.transition(wo["id"], "screen", cc, data={"grid_id": "beibei-tianfu-02"})
    assert out["grid_id"] == "beibei-tianfu-02" and out["screening"] is False


def test_severity_is_never_below_the_type_default_and_raises_the_order(hubkit) -> None:  # type: ignore[no-untyped-def]
    k = hubkit
    k.feed(k.event("smoke", severity="normal", lat=29.8552, lon=106.4352))
    inc = k.incidents()[0]
    assert inc["severity"] == "urgent"  # smoke defaults to urgent
    assert k.orders()[0]["severity"] == "urgent" and not inc["pinned"]
    k.feed(k.event("fire", severity="emergency", lat=29.8552, lon=106.4353, node_id="node-b"))
    assert counts(k) == (1, 1)
    inc, wo = k.incidents()[0], k.orders()[0]
    assert inc["type"] == "fire" and inc["severity"] == "emergency" and inc["pinned"]
    assert wo["severity"] == "emergency" and wo["state"] == "dispatched"
    with k.store.engine.connect() as c:
        targets = {
            r[0]
            for r in c.execute(
                select(schema.notifications.c.target).where(
                    schema.notifications.c.channel == "mqtt"
                )
            )
        }
    assert {"w-tianfu-01", "c-daiyun", "h-tianfu-safety", "cc-tianfu"} <= targets


def test_interrupted_processing_is_recovered(hubkit) -> None:  # type: ignore[no-untyped-def]
    k = hubkit
    e = k.event()
    k.store.insert_events(
        [(e, k.clock.now())]
    )  # committed, but the process died before on_committed
    k.clock.advance(seconds=30)
    restarted = IncidentWorker(k.core.incidents)  # the database says what is pending
    assert restarted.run_once() == 1
    assert restarted.run_once() == 0
    assert k.core.incidents.process_pending() == 0  # the scheduler's sweep finds nothing left
    assert counts(k) == (1, 1)


def test_handed_events_are_processed_as_handed_without_reading_them_back(hubkit) -> None:  # type: ignore[no-untyped-def]
    k = hubkit
    e = k.event()
    k.store.insert_events([(e, k.clock.now())])
    # a handed event is processed from what was handed: the stored copy is never parsed
    with k.store.write() as conn:
        conn.execute(
            schema.events.update().where(schema.events.c.id == e.id).values(payload="not json")
        )
    assert k.hand(e) == 1
    assert counts(k) == (1, 1)
    assert k.incidents()[0]["event_count"] == 1


def test_a_failed_turn_leaves_the_rest_to_the_database(hubkit) -> None:  # type: ignore[no-untyped-def]
    k = hubkit
    first, second = k.event(), k.event()
    k.store.insert_events([(first, k.clock.now()), (second, k.clock.now())])
    worker = k.incident_worker
    real = k.core.incidents.process_pending
    calls: list[int] = []

    def broken(*events: object) -> list[str]:
        calls.append(1)
        raise OSError("database went away")

    k.core.incidents.process = broken  # type: ignore[method-assign]
    with pytest.raises(OSError):
        worker.on_committed([first, second])
        worker.run_once()
    del k.core.incidents.process  # the real method again
    assert calls and counts(k) == (0, 0)
    assert worker.run_once() == 2  # the next turn reads the pending ones from the database
    assert real() == 0
    e = schema.events
    with k.store.engine.connect() as conn:
        pending = conn.execute(
            select(func.count()).select_from(e).where(e.c.incident_id.is_(None))
        ).scalar_one()
    assert pending == 0 and counts(k)[0] >= 1


def test_hotspot_after_repeats(hubkit) -> None:  # type: ignore[no-untyped-def]
    k = hubkit
    for _day in range(4):
        k.clock.set(k.clock.now() + timedelta(days=1))
        k.feed(k.event("sanitation", grid_id="beibei-tianfu-02", kind="citizen"))
    spots = k.core.incidents.list_hotspots(SYSTEM)
    assert len(spots) == 1
    assert (
        spots[0]["type"] == "sanitation"
        and spots[0]["count"] == 4
        and spots[0]["trend"] == "rising"
    )
    assert spots[0]["grid_id"] == "beibei-tianfu-02"
    assert json.loads(json.dumps(spots))  # serialisable


def test_suppressed_source_opens_no_order_but_emergencies_pass(hubkit) -> None:  # type: ignore[no-untyped-def]
    k = hubkit
    k.core.orders.set_suppression("node-a/cam1/fire_lane", 2, SYSTEM, "测试")
    k.feed(k.event("fire_lane_blocked"))
    assert counts(k) == (1, 0)
    assert k.incidents()[0]["suppressed"] is True
    k.feed(
        k.event("drowning", severity="emergency", grid_id="beibei-tianfu-03", pipeline="fire_lane")
    )
    assert counts(k) == (2, 1)


def test_routing_rules_are_configuration(sqlite_hubkit, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from shaobing.config import ConfigError
    from tests.conftest import HubKit

    url = sqlite_hubkit.store.url
    kit = HubKit(
        url,
        tmp_path,
        routing={"rules": [{"type": "sanitation", "board": "safety_law", "level": "community"}]},
    )
    kit.feed(kit.event("sanitation", grid_id="beibei-tianfu-02", kind="citizen"))
    wo = kit.orders()[0]
    assert (wo["board"], wo["level"]) == ("safety_law", "community")
    kit.close()
    with pytest.raises(ConfigError, match=r"routing.rules.0.type"):
        HubKit(url, tmp_path, routing={"rules": [{"type": "sanitatoin", "level": "town"}]})


def test_a_backlog_processes_emergencies_first(hubkit) -> None:  # type: ignore[no-untyped-def]
    k = hubkit
    ordinary = [
        k.event("sanitation", grid_id="beibei-tianfu-02", address=f"代家沟社区 {n}栋")
        for n in range(30)
    ]
    red = k.event("drowning", severity="emergency", grid_id="beibei-tianfu-03")
    k.store.insert_events([(e, k.clock.now()) for e in [*ordinary, red]])  # the red one last
    k.clock.advance(seconds=30)
    assert k.core.incidents.process_pending(limit=5) == 5
    assert [i["type"] for i in k.incidents()].count("drowning") == 1
