"""The rules of each sensor kind: event type, severity, units, default thresholds."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from pipelines.base import Severity
from shaobing.config import SensorConfig

Classification = Literal["abnormal", "clear", "band", "none"]

REJECT_REASONS: tuple[str, ...] = (
    "unknown_device",
    "kind",
    "nan",
    "inf",
    "unit",
    "out_of_range",
    "null",
    "future",
    "past",
    "duplicate",
    "out_of_order",
)
"""Reasons a reading is rejected (keys of :attr:`SensorRules.rejected`)."""


@dataclass(frozen=True)
class Unit:
    canonical: str
    scale: float = 1.0
    offset: float = 0.0

    def convert(self, value: float) -> float:
        return value * self.scale + self.offset


@dataclass(frozen=True)
class KindRule:
    """Default rule parameters of one sensor kind (see the package docstring)."""

    event_type: str | None
    severity: Severity
    units: Mapping[str, Unit]
    value_range: tuple[float, float]
    params: Mapping[str, float]
    keys: frozenset[str]
    high_strict: bool = False
    no_pulse: bool = False
    confidence: float = 0.9
    unit_params: Mapping[str, Mapping[str, float]] = field(default_factory=dict)


COMMON_KEYS = frozenset({"stale_factor", "battery_low"})
VALUE_KEYS = COMMON_KEYS | {"high", "hold_s", "clear_hysteresis", "clear_hold_s"}
RATE_KEYS = VALUE_KEYS | {"rate_high", "rate_window_s"}
COMMON_DEFAULTS: dict[str, float] = {"stale_factor": 3.0, "battery_low": 20.0}

STATE_UNIT = Unit("state")
KIND_RULES: dict[str, KindRule] = {
    "smoke": KindRule(
        event_type="smoke",
        severity="urgent",
        units={
            "": STATE_UNIT,
            "state": STATE_UNIT,
            "alarm": STATE_UNIT,
            "bool": STATE_UNIT,
            "%/m": Unit("%/m"),
            "%obs/m": Unit("%/m"),
        },
        value_range=(0.0, 100.0),
        params={"high": 1.0, "hold_s": 0.0, "clear_hysteresis": 0.5, "clear_hold_s": 0.0},
        # obscuration meters report %/m: 4 %/m is mid-range of common detector sensitivities
        unit_params={"%/m": {"high": 4.0, "clear_hysteresis": 1.0}},
        keys=VALUE_KEYS,
    ),
    "gas": KindRule(
        event_type="gas_leak",
        severity="emergency",
        units={"": Unit("%LEL"), "%lel": Unit("%LEL"), "lel%": Unit("%LEL"), "%": Unit("%LEL")},
        value_range=(-5.0, 1000.0),
        params={
            "high": 20.0,
            "hold_s": 0.0,
            "clear_hysteresis": 5.0,
            "clear_hold_s": 0.0,
            "rate_high": 0.0,
            "rate_window_s": 60.0,
        },
        keys=RATE_KEYS,
    ),
    "co": KindRule(
        event_type="gas_leak",
        severity="emergency",
        units={"": Unit("ppm"), "ppm": Unit("ppm")},
        value_range=(-10.0, 100000.0),
        params={
            "high": 50.0,
            "hold_s": 60.0,
            "clear_hysteresis": 10.0,
            "clear_hold_s": 0.0,
            "rate_high": 0.0,
            "rate_window_s": 60.0,
        },
        keys=RATE_KEYS,
    ),
    "water_level": KindRule(
        event_type="flood",
        severity="urgent",
        units={"": Unit("m"), "m": Unit("m"), "cm": Unit("m", 0.01), "mm": Unit("m", 0.001)},
        value_range=(-100.0, 1000.0),
        params={
            "high": 0.15,
            "hold_s": 30.0,
            "clear_hysteresis": 0.03,
            "clear_hold_s": 30.0,
            "rate_high": 0.03,
            "rate_window_s": 120.0,
        },
        keys=RATE_KEYS,
    ),
    "temperature": KindRule(
        event_type="fire",
        severity="emergency",
        units={
            "": Unit("°C"),
            "°c": Unit("°C"),
            "℃": Unit("°C"),
            "c": Unit("°C"),
            "degc": Unit("°C"),
            "celsius": Unit("°C"),
            "°f": Unit("°C", 5.0 / 9.0, -32.0 * 5.0 / 9.0),
            "f": Unit("°C", 5.0 / 9.0, -32.0 * 5.0 / 9.0),
        },
        value_range=(-80.0, 2000.0),
        params={
            "high": 70.0,
            "hold_s": 0.0,
            "clear_hysteresis": 5.0,
            "clear_hold_s": 0.0,
            "rate_high": 8.0,
            "rate_window_s": 120.0,
        },
        keys=RATE_KEYS,
        confidence=0.6,
    ),
    "heart_rate": KindRule(
        event_type="health_alarm",
        severity="emergency",
        units={
            "": Unit("bpm"),
            "bpm": Unit("bpm"),
            "/min": Unit("bpm"),
            "次/分": Unit("bpm"),
            "beats/min": Unit("bpm"),
        },
        value_range=(0.0, 300.0),
        params={
            "low": 45.0,
            "high": 150.0,
            "hold_s": 10.0,
            "clear_hysteresis": 5.0,
            "clear_hold_s": 0.0,
        },
        keys=VALUE_KEYS | {"low"},
        high_strict=True,
        no_pulse=True,
    ),
    "humidity": KindRule(
        event_type=None,
        severity="normal",
        units={"": Unit("%"), "%": Unit("%"), "%rh": Unit("%")},
        value_range=(-5.0, 105.0),
        params={},
        keys=COMMON_KEYS,
    ),
    "door": KindRule(
        event_type=None,
        severity="normal",
        units={"": STATE_UNIT, "state": STATE_UNIT, "bool": STATE_UNIT},
        value_range=(0.0, 1.0),
        params={},
        keys=COMMON_KEYS,
    ),
}

KEY_LIMITS: dict[str, tuple[float, float]] = {
    "hold_s": (0.0, 3600.0),
    "clear_hold_s": (0.0, 3600.0),
    "clear_hysteresis": (0.0, 1e6),
    "stale_factor": (1.0, 1000.0),
    "battery_low": (0.0, 100.0),
    "rate_high": (0.0, 1e6),
    "rate_window_s": (10.0, 86400.0),
    "low": (-1e6, 1e6),
    "high": (-1e6, 1e6),
}
RATE_CLEAR_RATIO = 0.5
BATTERY_CLEAR_MARGIN = 10.0
RULE_ORDER = ("no_pulse", "low", "high", "rate")
HISTORY_MAX = 1024
HISTORY_STEPS = 120


def resolve(sensor: SensorConfig, canonical_unit: str | None) -> dict[str, float]:
    rule = KIND_RULES[sensor.kind]
    params = {**COMMON_DEFAULTS, **rule.params}
    if canonical_unit is not None:
        params.update(rule.unit_params.get(canonical_unit, {}))
    params.update(sensor.thresholds)
    return params
