"""Sensor rules: scripted timelines with exact expected findings, and noise properties."""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipelines.base import Finding
from pipelines.sensor_rules import SensorRules, SensorRulesConfigError, threshold_issues
from shaobing.config import SensorConfig
from shaobing.contract import SensorReading

T0 = datetime(2026, 11, 29, 8, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def reading(
    device: str,
    kind: str,
    value: float | None,
    unit: str | None,
    t: float,
    battery: float | None = None,
) -> SensorReading:
    return SensorReading(
        device=device, kind=kind, value=value, unit=unit, ts=at(t), battery=battery
    )


def feed(
    rules: SensorRules,
    device: str,
    kind: str,
    unit: str | None,
    timeline: Sequence[tuple[float, float | None]],
) -> list[tuple[float, Finding]]:
    """Feed (t, value) readings received at their own time; return (t, finding) pairs."""
    out: list[tuple[float, Finding]] = []
    for t, value in timeline:
        for f in rules.update(reading(device, kind, value, unit, t), at(t)):
            out.append((t, f))
    return out


def brief(found: list[tuple[float, Finding]]) -> list[tuple[float, str, str, str, str]]:
    return [(t, f.type, f.state, f.severity, f.incident_key) for t, f in found]


# --------------------------------------------------------------------------- heart rate


def wristband() -> SensorConfig:
    return SensorConfig(
        id="hr-1", kind="heart_rate", interval_s=1, resident_id="R0012", address="5栋1单元302"
    )


def test_heart_rate_40_for_12_s_gives_one_alarm_after_10_s_then_one_cleared() -> None:
    rules = SensorRules([wristband()])
    timeline = [(0, 80), (1, 80)] + [(t, 40) for t in range(2, 14)] + [(14, 80)]
    found = feed(rules, "hr-1", "heart_rate", "bpm", timeline)
    key = "sensor/hr-1/low/20261129T080002Z"
    assert brief(found) == [
        (12, "health_alarm", "active", "emergency", key),
        (14, "health_alarm", "cleared", "emergency", key),
    ]
    active = found[0][1]
    assert active.occurred_at == at(2)
    assert active.kind == "sensor" and active.device_id == "hr-1"
    assert active.summary.startswith("独居老人手环报警：心率40次/分")
    assert active.attributes == {
        "rule": "low",
        "value": 40.0,
        "unit": "bpm",
        "threshold": 45.0,
        "hold_s": 10.0,
        "sensor_kind": "heart_rate",
        "resident_id": "R0012",
    }
    assert active.address == "5栋1单元302"
    assert active.snapshot is False
    cleared = found[1][1]
    assert cleared.attributes["peak"] == 40.0 and cleared.attributes["duration_s"] == 12.0


def test_heart_rate_dip_shorter_than_hold_raises_nothing() -> None:
    rules = SensorRules([wristband()])
    timeline = [(0, 80)] + [(t, 40) for t in range(1, 10)] + [(10, 80), (11, 40), (12, 80)]
    assert feed(rules, "hr-1", "heart_rate", "bpm", timeline) == []


def test_heart_rate_high_strictly_above_150() -> None:
    rules = SensorRules([wristband()])
    assert feed(rules, "hr-1", "heart_rate", "bpm", [(t, 150) for t in range(0, 20)]) == []
    found = feed(rules, "hr-1", "heart_rate", "bpm", [(t, 160) for t in range(20, 31)] + [(31, 90)])
    assert [(t, f.state, f.attributes["rule"]) for t, f in found] == [
        (30, "active", "high"),
        (31, "cleared", "high"),
    ]
    assert "高于150次/分" in found[0][1].summary


def test_no_pulse_alarms_then_a_low_rate_updates_the_same_incident() -> None:
    rules = SensorRules([wristband()])
    timeline: list[tuple[float, float | None]] = [(0, 75)] + [(t, None) for t in range(1, 12)]
    timeline += [(t, 38) for t in range(12, 23)] + [(23, 75)]
    found = feed(rules, "hr-1", "heart_rate", "bpm", timeline)
    key = "sensor/hr-1/no_pulse/20261129T080001Z"
    assert [(t, f.state, f.attributes["rule"], f.incident_key) for t, f in found] == [
        (11, "active", "no_pulse", key),
        (22, "update", "low", key),
        (23, "cleared", "no_pulse", key),
    ]
    assert "未检测到脉搏" in found[0][1].summary
    assert found[2][1].attributes["peak"] == 38.0


def test_null_value_is_a_bad_reading_for_other_kinds() -> None:
    rules = SensorRules([SensorConfig(id="g1", kind="gas", interval_s=10)])
    assert feed(rules, "g1", "gas", "%LEL", [(0, None)]) == []
    assert rules.rejected == {"null": 1}


# --------------------------------------------------------------------------- gas, smoke, temperature, water


def test_gas_5_25_25_5_gives_one_emergency_then_cleared() -> None:
    rules = SensorRules([SensorConfig(id="gas-1", kind="gas", interval_s=10, address="3栋201厨房")])
    found = feed(rules, "gas-1", "gas", "%LEL", [(0, 5), (10, 25), (20, 25), (30, 5)])
    key = "sensor/gas-1/high/20261129T080010Z"
    assert brief(found) == [
        (10, "gas_leak", "active", "emergency", key),
        (30, "gas_leak", "cleared", "emergency", key),
    ]
    assert found[0][1].attributes["threshold"] == 20.0
    assert (
        found[0][1].summary
        == "燃气泄漏报警：可燃气体浓度25%LEL（报警值20%LEL），3栋201厨房（燃气探测器gas-1）"
    )


def test_gas_hysteresis_band_keeps_the_alarm_and_a_second_excursion_is_a_new_incident() -> None:
    rules = SensorRules([SensorConfig(id="gas-1", kind="gas", interval_s=10)])
    found = feed(
        rules,
        "gas-1",
        "gas",
        "%LEL",
        [(0, 19), (10, 21), (20, 17), (30, 21), (40, 16), (50, 14), (60, 19.9), (70, 20)],
    )
    assert [(t, f.state) for t, f in found] == [(10, "active"), (50, "cleared"), (70, "active")]
    assert found[0][1].incident_key == found[1][1].incident_key != found[2][1].incident_key


def test_smoke_detector_alarm_then_clear_with_linked_camera() -> None:
    sensor = SensorConfig(id="smk-1", kind="smoke", interval_s=30, zone="mall_b1", camera="cam2")
    rules = SensorRules([sensor], grid_id="g-01", address="地下商场")
    found = feed(rules, "smk-1", "smoke", "state", [(0, 0), (30, 1), (60, 1), (90, 0)])
    assert [(t, f.type, f.state, f.severity) for t, f in found] == [
        (30, "smoke", "active", "urgent"),
        (90, "smoke", "cleared", "urgent"),
    ]
    active = found[0][1]
    assert active.zone == "mall_b1" and active.grid_id == "g-01" and active.address == "地下商场"
    assert active.snapshot is True and active.attributes["camera"] == "cam2"
    assert found[1][1].snapshot is False


def test_smoke_obscuration_meter_uses_its_own_default_and_an_override() -> None:
    rules = SensorRules(
        [
            SensorConfig(id="s1", kind="smoke"),
            SensorConfig(id="s2", kind="smoke", thresholds={"high": 2.0}),
        ]
    )
    assert feed(rules, "s1", "smoke", "%/m", [(0, 1.5), (30, 3.0)]) == []
    assert [f.state for _, f in feed(rules, "s1", "smoke", "%/m", [(60, 4.5)])] == ["active"]
    assert [f.state for _, f in feed(rules, "s2", "smoke", "%/m", [(0, 1.5), (30, 2.5)])] == [
        "active"
    ]


def test_temperature_fixed_threshold_is_a_fire_candidate() -> None:
    rules = SensorRules([SensorConfig(id="t1", kind="temperature", interval_s=30)])
    found = feed(rules, "t1", "temperature", "°C", [(0, 25), (600, 72), (630, 66), (660, 60)])
    assert [(t, f.type, f.state, f.severity, f.attributes["rule"]) for t, f in found] == [
        (600, "fire", "active", "emergency", "high"),
        (660, "fire", "cleared", "emergency", "high"),
    ]
    assert found[0][1].confidence == pytest.approx(0.6)
    assert found[0][1].summary.startswith("疑似火情：温度72°C")


def test_temperature_rate_of_rise_alarms_before_the_fixed_threshold() -> None:
    rules = SensorRules([SensorConfig(id="t1", kind="temperature", interval_s=10)])
    timeline = [(float(t), 25.0) for t in range(0, 120, 10)] + [
        (float(t), 25.0 + (t - 120) / 6.0) for t in range(130, 400, 10)
    ]
    found = feed(rules, "t1", "temperature", "°C", timeline)
    states = [(f.state, f.attributes["rule"]) for _, f in found]
    assert states == [("active", "rate"), ("update", "high")]
    assert found[0][0] < found[1][0]
    assert found[0][1].attributes["rate_per_min"] >= 8.0


def test_fahrenheit_is_converted() -> None:
    rules = SensorRules(
        [SensorConfig(id="t1", kind="temperature", interval_s=30, thresholds={"rate_high": 0})]
    )
    found = feed(rules, "t1", "temperature", "°F", [(0, 77), (30, 170)])
    assert [(f.state, round(f.attributes["value"], 1), f.attributes["unit"]) for _, f in found] == [
        ("active", 76.7, "°C")
    ]


def test_water_level_rising_with_noise_gives_one_alarm_and_one_clear() -> None:
    rng = random.Random(7)
    rules = SensorRules([SensorConfig(id="w1", kind="water_level", interval_s=10)])
    timeline: list[tuple[float, float]] = []
    for i in range(
        0, 361
    ):  # one hour, every 10 s: up 0.05→0.30 m over 20 min, 20 min high, down over 20 min
        t = i * 10.0
        minute = t / 60
        base = 0.05 + 0.0125 * min(minute, 20) - 0.0125 * max(0.0, minute - 40)
        timeline.append((t, base + rng.uniform(-0.012, 0.012)))
    found = feed(rules, "w1", "water_level", "m", timeline)
    assert [(f.type, f.state, f.severity, f.attributes["rule"]) for _, f in found] == [
        ("flood", "active", "urgent", "high"),
        ("flood", "cleared", "urgent", "high"),
    ]
    assert found[0][1].incident_key == found[1][1].incident_key
    # the base crosses 0.15 m at minute 8 and falls below 0.12 m at minute 54.4
    assert 8 * 60 - 60 <= found[0][0] <= 8 * 60 + 120
    assert 54.4 * 60 - 120 <= found[1][0] <= 54.4 * 60 + 120


def test_water_level_in_cm_and_a_rapid_rise_warns_early() -> None:
    rules = SensorRules([SensorConfig(id="w1", kind="water_level", interval_s=10)])
    timeline = [(float(t), 2.0) for t in range(0, 300, 10)] + [
        (float(t), 2.0 + (t - 300) / 60 * 6.0) for t in range(310, 600, 10)
    ]
    timeline += [(float(t), 1.0) for t in range(600, 700, 10)]
    found = feed(rules, "w1", "water_level", "cm", timeline)
    assert [(f.state, f.attributes["rule"]) for _, f in found] == [
        ("active", "rate"),
        ("update", "high"),
        ("cleared", "rate"),
    ]
    assert found[1][1].attributes["unit"] == "m"


# --------------------------------------------------------------------------- offline, battery


def test_silent_sensor_goes_offline_then_clears_when_it_reports_again() -> None:
    rules = SensorRules([SensorConfig(id="gas-1", kind="gas", interval_s=10, address="厨房")])
    assert rules.tick(at(0)) == []
    assert feed(rules, "gas-1", "gas", "%LEL", [(0, 3), (10, 3), (20, 3), (30, 3)]) == []
    assert rules.tick(at(59)) == []
    fault = rules.tick(at(60))
    assert [(f.type, f.state, f.severity) for f in fault] == [("device_fault", "active", "normal")]
    assert fault[0].incident_key == "sensor/gas-1/offline/20261129T080100Z"
    assert fault[0].attributes["rule"] == "offline" and fault[0].device_id == "gas-1"
    assert [s.state for s in rules.sensor_statuses()] == ["stale"]
    assert rules.tick(at(120)) == []
    back = feed(rules, "gas-1", "gas", "%LEL", [(130, 3)])
    assert [(f.type, f.state, f.incident_key) for _, f in back] == [
        ("device_fault", "cleared", fault[0].incident_key)
    ]
    assert [s.state for s in rules.sensor_statuses()] == ["ok"]
    assert rules.tick(at(150)) == []


def test_a_sensor_that_never_reports_goes_offline_from_the_first_tick() -> None:
    rules = SensorRules(
        [SensorConfig(id="h1", kind="humidity", interval_s=60, thresholds={"stale_factor": 2})]
    )
    assert rules.tick(at(0)) == []
    assert rules.tick(at(119)) == []
    assert [f.type for f in rules.tick(at(120))] == ["device_fault"]


def test_bad_readings_do_not_keep_a_sensor_alive() -> None:
    rules = SensorRules([SensorConfig(id="gas-1", kind="gas", interval_s=10)])
    rules.tick(at(0))
    for t in range(0, 40, 5):
        rules.update(reading("gas-1", "gas", math.nan, "%LEL", t), at(t))
    assert [f.type for f in rules.tick(at(30))] == ["device_fault"]
    assert rules.rejected == {"nan": 8}


def test_low_battery_is_reported_once_and_cleared_after_a_new_battery() -> None:
    rules = SensorRules([SensorConfig(id="smk-1", kind="smoke", interval_s=30)])
    found = []
    for t, bat in [(0, 50), (30, 19), (60, 18), (90, 25), (120, 12), (150, 100)]:
        found += rules.update(reading("smk-1", "smoke", 0, "state", t, battery=bat), at(t))
    assert [(f.type, f.state, f.severity, f.attributes["battery"]) for f in found] == [
        ("device_fault", "active", "normal", 19),
        ("device_fault", "cleared", "normal", 100),
    ]
    assert found[0].incident_key == found[1].incident_key == "sensor/smk-1/battery/20261129T080030Z"


# --------------------------------------------------------------------------- bad readings


def test_bad_readings_are_counted_per_reason_and_never_alarm() -> None:
    rules = SensorRules(
        [
            SensorConfig(id="gas-1", kind="gas", interval_s=10),
            SensorConfig(id="hr-1", kind="heart_rate", interval_s=1),
        ]
    )
    now = at(1000)
    bad = [
        SensorReading(device="gas-1", kind="gas", value=math.nan, unit="%LEL", ts=now),
        SensorReading(device="gas-1", kind="gas", value=math.inf, unit="%LEL", ts=now),
        SensorReading(device="gas-1", kind="gas", value=-math.inf, unit="%LEL", ts=now),
        SensorReading(device="gas-1", kind="gas", value=80, unit="ppm", ts=now),
        SensorReading(device="gas-1", kind="heart_rate", value=80, unit="%LEL", ts=now),
        SensorReading(device="gas-x", kind="gas", value=80, unit="%LEL", ts=now),
        SensorReading(device="hr-1", kind="heart_rate", value=-30, unit="bpm", ts=now),
        SensorReading(
            device="hr-1", kind="heart_rate", value=30, unit="bpm", ts=now + timedelta(minutes=6)
        ),
        SensorReading(
            device="hr-1", kind="heart_rate", value=30, unit="bpm", ts=now - timedelta(hours=2)
        ),
        SensorReading(device="gas-1", kind="gas", value=1e9, unit="%LEL", ts=now),
    ]
    for r in bad:
        assert rules.update(r, now) == []
    assert rules.rejected == {
        "nan": 1,
        "inf": 2,
        "unit": 1,
        "kind": 1,
        "unknown_device": 1,
        "out_of_range": 2,
        "future": 1,
        "past": 1,
    }
    assert rules.accepted == 0
    # a timestamp 4 min ahead is clock skew, not a bad reading
    assert (
        rules.update(
            SensorReading(
                device="gas-1", kind="gas", value=3, unit="%LEL", ts=now + timedelta(minutes=4)
            ),
            now,
        )
        == []
    )
    assert rules.accepted == 1


def test_repeated_and_out_of_order_readings_are_rejected_and_do_not_clear_an_alarm() -> None:
    rules = SensorRules([SensorConfig(id="gas-1", kind="gas", interval_s=10)])
    assert [f.state for _, f in feed(rules, "gas-1", "gas", "%LEL", [(10, 30)])] == ["active"]
    assert feed(rules, "gas-1", "gas", "%LEL", [(10, 30), (5, 2), (10, 2)]) == []
    assert rules.update(reading("gas-1", "gas", math.nan, "%LEL", 20), at(20)) == []
    assert rules.rejected == {"duplicate": 2, "out_of_order": 1, "nan": 1}
    assert [s.state for s in rules.sensor_statuses()] == ["alarm"]


# --------------------------------------------------------------------------- config


def test_threshold_overrides_apply_per_sensor() -> None:
    rules = SensorRules(
        [
            SensorConfig(
                id="g1", kind="gas", interval_s=10, thresholds={"high": 10, "clear_hysteresis": 2}
            ),
            SensorConfig(id="g2", kind="gas", interval_s=10, thresholds={"hold_s": 15}),
        ]
    )
    assert [
        f.state for _, f in feed(rules, "g1", "gas", "%LEL", [(0, 11), (10, 9), (20, 7.9)])
    ] == ["active", "cleared"]
    assert [
        (t, f.state) for t, f in feed(rules, "g2", "gas", "%LEL", [(0, 25), (10, 25), (20, 25)])
    ] == [(20, "active")]


def test_unknown_threshold_key_names_the_sensor_and_key() -> None:
    sensors = [
        SensorConfig(id="g1", kind="gas"),
        SensorConfig(id="w1", kind="water_level", thresholds={"hihg": 0.3}),
    ]
    with pytest.raises(SensorRulesConfigError) as err:
        SensorRules(sensors)
    assert str(err.value).startswith("sensors[1].thresholds.hihg: expected one of ")
    assert "found 'hihg'" in str(err.value)
    assert err.value.issues[0].loc == ("sensors", 1, "thresholds", "hihg")


@pytest.mark.parametrize(
    ("kind", "thresholds", "message"),
    [
        ("gas", {"low": 5}, "sensors[0].thresholds.low: expected one of"),
        (
            "gas",
            {"stale_factor": 0.5},
            "sensors[0].thresholds.stale_factor: expected a number in [1, 1000], found 0.5",
        ),
        ("gas", {"high": math.nan}, "sensors[0].thresholds.high: expected a number"),
        (
            "heart_rate",
            {"low": 160},
            "sensors[0].thresholds.low: expected low below high (150), found 160",
        ),
        (
            "humidity",
            {"high": 90},
            "sensors[0].thresholds.high: expected one of battery_low, stale_factor",
        ),
    ],
)
def test_bad_thresholds_are_named(kind: str, thresholds: dict[str, float], message: str) -> None:
    issues = threshold_issues([SensorConfig(id="s", kind=kind, thresholds=thresholds)])  # type: ignore[arg-type]
    assert len(issues) == 1 and str(issues[0]).startswith(message), str(issues[0])


def test_state_survives_a_restart_with_the_same_incident_key() -> None:
    sensors = [SensorConfig(id="gas-1", kind="gas", interval_s=10)]
    rules = SensorRules(sensors)
    active = feed(rules, "gas-1", "gas", "%LEL", [(0, 40)])[0][1]
    rules.tick(at(0))
    rules.tick(at(40))
    restarted = SensorRules(sensors)
    restarted.load_state(rules.state())
    found = feed(restarted, "gas-1", "gas", "%LEL", [(100, 3)])
    assert [(f.type, f.state, f.incident_key) for _, f in found] == [
        ("device_fault", "cleared", "sensor/gas-1/offline/20261129T080040Z"),
        ("gas_leak", "cleared", active.incident_key),
    ]


# --------------------------------------------------------------------------- properties


@st.composite
def hovering_gas(draw: st.DrawFn) -> list[tuple[str, float]]:
    """Segments below (clearly normal), hovering at the 20 %LEL threshold, or above it."""
    segments = draw(
        st.lists(
            st.tuples(st.sampled_from(["low", "hover", "high"]), st.integers(1, 8)),
            min_size=1,
            max_size=12,
        )
    )
    noise = st.floats(-4.9, 4.9, allow_nan=False)
    out: list[tuple[str, float]] = []
    for level, n in segments:
        for _ in range(n):
            base = {"low": 10.0, "hover": 20.0, "high": 26.0}[level]
            amplitude = draw(noise)
            value = base + (amplitude * 0.8 if level != "hover" else amplitude)
            out.append((level, value))
    return out


@settings(max_examples=150, deadline=None)
@given(hovering_gas())
def test_noise_around_the_threshold_gives_one_alarm_per_real_excursion(
    samples: list[tuple[str, float]],
) -> None:
    rules = SensorRules([SensorConfig(id="g", kind="gas", interval_s=10)])
    found = feed(rules, "g", "gas", "%LEL", [(i * 10.0, v) for i, (_, v) in enumerate(samples)])
    # a real excursion: a run of readings not below 15 %LEL (threshold − hysteresis); it
    # alarms once when any of its readings reaches 20 and clears at the next low reading
    expected_active = expected_cleared = 0
    run_alarmed = False
    for _, value in samples:
        if value < 15.0:
            expected_cleared += run_alarmed
            run_alarmed = False
        elif value >= 20.0 and not run_alarmed:
            expected_active += 1
            run_alarmed = True
    states = [f.state for _, f in found]
    assert states.count("active") == expected_active
    assert states.count("cleared") == expected_cleared


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.tuples(st.floats(0.5, 8.0), st.one_of(st.none(), st.floats(0, 250, allow_nan=False))),
        min_size=1,
        max_size=120,
    )
)
def test_heart_rate_incidents_always_open_once_and_close_once(
    steps: list[tuple[float, float | None]],
) -> None:
    rules = SensorRules([SensorConfig(id="hr", kind="heart_rate", interval_s=5)])
    t = 0.0
    timeline = []
    for dt, value in steps:
        t += dt
        timeline.append((t, value))
    open_key: str | None = None
    seen_keys: set[str] = set()
    for _, f in feed(rules, "hr", "heart_rate", "bpm", timeline):
        assert f.type == "health_alarm" and f.severity == "emergency"
        if f.state == "active":
            assert open_key is None and f.incident_key not in seen_keys
            open_key = f.incident_key
            seen_keys.add(open_key)
        else:
            assert f.incident_key == open_key
            if f.state == "cleared":
                open_key = None


def test_rate_of_rise_works_for_a_fast_reporting_sensor() -> None:
    thresholds = {"rate_window_s": 300.0, "high": 1.0}
    rules = SensorRules(
        [SensorConfig(id="w1", kind="water_level", interval_s=0.1, thresholds=thresholds)]
    )
    timeline = [(t / 10, 0.02) for t in range(0, 3000)]  # 10 Hz for five minutes, then +0.06 m/min
    timeline += [(t / 10, 0.02 + (t / 10 - 300) * 0.001) for t in range(3000, 6000)]
    found = feed(rules, "w1", "water_level", "m", timeline)
    assert [(f.state, f.attributes["rule"]) for _, f in found] == [("active", "rate")]
    assert 400 < found[0][0] < 500


def test_water_level_rate_rule_honours_the_configured_hold() -> None:
    # a surge on a ponding gauge: the level jumps 5 cm in 20 s and settles at 0.09 m,
    # far below the configured 0.2 m. The slope over the window exceeds the rate threshold
    # for less than the configured 60 s hold: no flood (the rate rule used to fire at once)
    sensor = SensorConfig(
        id="w1", kind="water_level", interval_s=10, thresholds={"high": 0.2, "hold_s": 60}
    )
    timeline = [(float(t), 0.04) for t in range(0, 200, 10)]
    timeline += [(200.0, 0.06), (210.0, 0.09)]
    timeline += [(float(t), 0.09) for t in range(220, 600, 10)]
    rules = SensorRules([sensor])
    slopes = []
    found = []
    for t, value in timeline:
        found += rules.update(reading("w1", "water_level", value, "m", t), at(t))
        slopes.append(rules._slope(rules._sensors["w1"], {"rate_window_s": 120.0}))
    assert max(s or 0.0 for s in slopes) >= 0.03  # the rate condition did occur …
    assert found == []  # … but not for hold_s

    # the same rise kept up (a real flood, 2 cm/min for 4 min): the rate alarm after its hold
    rising = [(float(t), 0.04) for t in range(0, 200, 10)]
    rising += [(float(t), 0.04 + (t - 190) / 60 * 0.02) for t in range(200, 440, 10)]
    rules = SensorRules(
        [sensor.model_copy(update={"thresholds": {"high": 0.2, "hold_s": 60, "rate_high": 0.015}})]
    )
    found_rise = feed(rules, "w1", "water_level", "m", rising)
    assert [(f.state, f.attributes["rule"]) for _, f in found_rise][:1] == [("active", "rate")]
    t_alarm = found_rise[0][0]
    first_abnormal = 200 + 60  # the slope is judged once readings span half the window
    assert t_alarm >= first_abnormal, t_alarm
