"""Sensor rules: gateway readings → findings (smoke, gas, water level, temperature, heart rate).

Pure and clock-free: every call carries its own times. ``update(reading, received_at)``
judges one reading by the reading's own timestamp (hold times, hysteresis, rate of change);
``tick(now)`` finds sensors that went silent. The edge node turns the returned
:class:`~pipelines.base.Finding` objects into wire events.

Default rules (thresholds are in the canonical unit of the kind; per-sensor overrides
go in ``sensors[].thresholds``):

============  ==========  =========  =====================================  ======  =====  ==========
kind          event type  severity   alarm when                             hold_s  hyst.  clear_hold
============  ==========  =========  =====================================  ======  =====  ==========
smoke         smoke       urgent     state ≥ 1 (detector alarm), or         0       0.5    0
                                     obscuration ≥ 4 %/m (unit ``%/m``)             (1.0)
gas           gas_leak    emergency  ≥ 20 %LEL                              0       5      0
co            gas_leak    emergency  ≥ 50 ppm                               60      10     0
water_level   flood       urgent     ≥ 0.15 m, or rising ≥ 0.03 m/min       30      0.03   30
                                     (slope over 120 s)
temperature   fire        emergency  ≥ 70 °C, or rising ≥ 8 °C/min          0       5      0
                                     (slope over 120 s)
heart_rate    health_     emergency  < 45 bpm, > 150 bpm, or no pulse       10      5      0
              alarm                  (value null)
humidity      —           —          no value rule (offline and battery only)
door          —           —          no value rule (offline and battery only)
============  ==========  =========  =====================================  ======  =====  ==========

Why these numbers: a gas detector's first alarm level is commonly 20–25 %LEL and a leak
endangers life, so it alarms on the first reading. 0.15 m is the road ponding depth at
which urban waterlogging (内涝) begins in GB 51222; waves and splashes are absorbed by a
30 s hold. 70 °C and 8 °C/min are fixed-temperature and rate-of-rise heat-detector
levels; a temperature alone is a *fire candidate* (confidence 0.6) that
:mod:`pipelines.fusion` confirms with a camera. Heart rate below 45 or above 150 bpm for
10 s (brady-/tachycardia alarm levels of wearable monitors), or no pulse at all, raises a
red emergency for the resident.

Mechanics shared by all rules:

- **hold**: the condition must be seen continuously for ``hold_s`` seconds of reading
  time (first to latest abnormal reading), for every rule, the rate rule included. A device that reports less often than its
  hold time therefore needs two consecutive abnormal readings.
- **hysteresis**: an alarm above ``high`` clears only below ``high - clear_hysteresis``
  (below ``low``: only at ``low + clear_hysteresis`` or more), and only after
  ``clear_hold_s`` of such readings; a rate alarm clears below half its rate.
  Readings in between keep the current state, so noise around a threshold gives one
  alarm per real excursion.
- **one incident per sensor and event type**: the first rule that fires opens it
  (``active``, incident key ``sensor/{device}/{rule}/{UTC start}``); another rule of the
  same sensor that fires while it is open sends one ``update`` with the same key (e.g. a
  low heart rate that becomes no pulse); ``cleared`` (same key) when no rule holds. A
  reading abnormal for another rule of the sensor is no recovery (no pulse → 38 bpm
  keeps the alarm open). The key carries the start time rather than a counter, so it is
  unique across restarts; :meth:`SensorRules.state` / :meth:`SensorRules.load_state`
  keep open incidents (and their keys) across a restart.
- **rate**: least-squares slope over the last ``rate_window_s`` seconds, judged once at
  least three readings span half the window (so one noisy reading cannot fire it).
- **silence breaks runs**: a gap over ``stale_factor`` × ``interval_s`` between two
  readings restarts every hold.
- **offline**: no accepted reading for ``stale_factor`` × ``interval_s`` (default 3×) →
  ``device_fault`` (normal) active; cleared by the next accepted reading.
- **low battery**: ``battery`` below ``battery_low`` (default 20 %) → one
  ``device_fault`` active per episode; cleared at ``battery_low`` + 10 % (new battery,
  charged wearable).
- **bad readings** (unknown device, kind mismatch, NaN, ±inf, a unit that is not the
  kind's, a value outside the physical range such as a negative heart rate, null for a
  kind other than heart rate, a timestamp more than ``max_future_s`` ahead of or
  ``max_age_s`` behind its receive time, a repeated or out-of-order timestamp) are
  rejected and counted per reason in :attr:`SensorRules.rejected`; they never raise an
  alarm and do not count as the device being alive.

Units (case-insensitive; a missing unit means the canonical one): gas ``%LEL``; co
``ppm``; water level ``m`` (``cm``, ``mm`` converted); temperature ``°C`` (``℃``,
``degC``; ``°F`` converted); heart rate ``bpm`` (``/min``, ``次/分``); smoke ``state``
(0/1) or ``%/m`` obscuration; humidity ``%``/``%RH``; door ``state``. Any other unit is a
bad reading.

Threshold keys (``sensors[].thresholds``): ``high``, ``low`` (heart rate), ``hold_s``,
``clear_hysteresis``, ``clear_hold_s``, ``rate_high`` (units per minute; 0 turns the rate
rule off), ``rate_window_s``, ``stale_factor``, ``battery_low``. An unknown key or an
impossible value is an error naming ``sensors[i].thresholds.key``
(:func:`threshold_issues`).

Finding attributes: ``rule``, ``value``, ``unit``, ``threshold``, ``hold_s``,
``sensor_kind``; ``rate_per_min`` for rate rules; ``resident_id`` for wearables (never a
name or phone); ``camera`` when the sensor has a linked camera (the node may attach that
camera's snapshot: ``Finding.snapshot`` is true then); on ``cleared`` also ``peak`` and
``duration_s``.
"""

from __future__ import annotations

import math
from collections import Counter, deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from pipelines.base import Finding, Severity
from shaobing.config import SensorConfig
from shaobing.contract import SensorReading, SensorStatus
from shaobing.taxonomy import default_taxonomy, max_severity

__all__ = [
    "SensorRules",
    "SensorRulesConfigError",
    "ThresholdIssue",
    "threshold_issues",
    "KIND_RULES",
    "REJECT_REASONS",
]

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

# Chinese user-facing words of this module.
_KIND_NAMES: dict[str, str] = {
    "smoke": "烟感",
    "gas": "燃气探测器",
    "co": "一氧化碳探测器",
    "water_level": "水位计",
    "temperature": "温度传感器",
    "heart_rate": "手环",
    "humidity": "湿度传感器",
    "door": "门磁",
}
_TITLES: dict[str, str] = {
    "smoke": "烟感报警",
    "gas": "燃气泄漏报警",
    "co": "一氧化碳超标报警",
    "water_level": "积水内涝报警",
    "temperature": "疑似火情",
    "heart_rate": "独居老人手环报警",
}
_QUANTITY: dict[str, str] = {
    "smoke": "烟雾浓度",
    "gas": "可燃气体浓度",
    "co": "一氧化碳浓度",
    "water_level": "水位",
    "temperature": "温度",
}
_UNIT_TEXT: dict[str, str] = {
    "state": "",
    "%/m": "%/m",
    "%LEL": "%LEL",
    "ppm": "ppm",
    "m": "米",
    "°C": "°C",
    "bpm": "次/分",
    "%": "%",
}


@dataclass(frozen=True)
class _Unit:
    canonical: str
    scale: float = 1.0
    offset: float = 0.0

    def convert(self, value: float) -> float:
        return value * self.scale + self.offset


@dataclass(frozen=True)
class KindRule:
    """Default rule parameters of one sensor kind (see the module docstring)."""

    event_type: str | None
    severity: Severity
    units: Mapping[str, _Unit]
    value_range: tuple[float, float]
    params: Mapping[str, float]
    keys: frozenset[str]
    high_strict: bool = False
    no_pulse: bool = False
    confidence: float = 0.9
    unit_params: Mapping[str, Mapping[str, float]] = field(default_factory=dict)


_COMMON_KEYS = frozenset({"stale_factor", "battery_low"})
_VALUE_KEYS = _COMMON_KEYS | {"high", "hold_s", "clear_hysteresis", "clear_hold_s"}
_RATE_KEYS = _VALUE_KEYS | {"rate_high", "rate_window_s"}
_COMMON_DEFAULTS: dict[str, float] = {"stale_factor": 3.0, "battery_low": 20.0}

_STATE = _Unit("state")
KIND_RULES: dict[str, KindRule] = {
    "smoke": KindRule(
        event_type="smoke",
        severity="urgent",
        units={
            "": _STATE,
            "state": _STATE,
            "alarm": _STATE,
            "bool": _STATE,
            "%/m": _Unit("%/m"),
            "%obs/m": _Unit("%/m"),
        },
        value_range=(0.0, 100.0),
        params={"high": 1.0, "hold_s": 0.0, "clear_hysteresis": 0.5, "clear_hold_s": 0.0},
        # obscuration meters report %/m: 4 %/m is mid-range of common detector sensitivities
        unit_params={"%/m": {"high": 4.0, "clear_hysteresis": 1.0}},
        keys=_VALUE_KEYS,
    ),
    "gas": KindRule(
        event_type="gas_leak",
        severity="emergency",
        units={"": _Unit("%LEL"), "%lel": _Unit("%LEL"), "lel%": _Unit("%LEL"), "%": _Unit("%LEL")},
        value_range=(-5.0, 1000.0),
        params={
            "high": 20.0,
            "hold_s": 0.0,
            "clear_hysteresis": 5.0,
            "clear_hold_s": 0.0,
            "rate_high": 0.0,
            "rate_window_s": 60.0,
        },
        keys=_RATE_KEYS,
    ),
    "co": KindRule(
        event_type="gas_leak",
        severity="emergency",
        units={"": _Unit("ppm"), "ppm": _Unit("ppm")},
        value_range=(-10.0, 100000.0),
        params={
            "high": 50.0,
            "hold_s": 60.0,
            "clear_hysteresis": 10.0,
            "clear_hold_s": 0.0,
            "rate_high": 0.0,
            "rate_window_s": 60.0,
        },
        keys=_RATE_KEYS,
    ),
    "water_level": KindRule(
        event_type="flood",
        severity="urgent",
        units={"": _Unit("m"), "m": _Unit("m"), "cm": _Unit("m", 0.01), "mm": _Unit("m", 0.001)},
        value_range=(-100.0, 1000.0),
        params={
            "high": 0.15,
            "hold_s": 30.0,
            "clear_hysteresis": 0.03,
            "clear_hold_s": 30.0,
            "rate_high": 0.03,
            "rate_window_s": 120.0,
        },
        keys=_RATE_KEYS,
    ),
    "temperature": KindRule(
        event_type="fire",
        severity="emergency",
        units={
            "": _Unit("°C"),
            "°c": _Unit("°C"),
            "℃": _Unit("°C"),
            "c": _Unit("°C"),
            "degc": _Unit("°C"),
            "celsius": _Unit("°C"),
            "°f": _Unit("°C", 5.0 / 9.0, -32.0 * 5.0 / 9.0),
            "f": _Unit("°C", 5.0 / 9.0, -32.0 * 5.0 / 9.0),
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
        keys=_RATE_KEYS,
        confidence=0.6,
    ),
    "heart_rate": KindRule(
        event_type="health_alarm",
        severity="emergency",
        units={
            "": _Unit("bpm"),
            "bpm": _Unit("bpm"),
            "/min": _Unit("bpm"),
            "次/分": _Unit("bpm"),
            "beats/min": _Unit("bpm"),
        },
        value_range=(0.0, 300.0),
        params={
            "low": 45.0,
            "high": 150.0,
            "hold_s": 10.0,
            "clear_hysteresis": 5.0,
            "clear_hold_s": 0.0,
        },
        keys=_VALUE_KEYS | {"low"},
        high_strict=True,
        no_pulse=True,
    ),
    "humidity": KindRule(
        event_type=None,
        severity="normal",
        units={"": _Unit("%"), "%": _Unit("%"), "%rh": _Unit("%")},
        value_range=(-5.0, 105.0),
        params={},
        keys=_COMMON_KEYS,
    ),
    "door": KindRule(
        event_type=None,
        severity="normal",
        units={"": _STATE, "state": _STATE, "bool": _STATE},
        value_range=(0.0, 1.0),
        params={},
        keys=_COMMON_KEYS,
    ),
}

_KEY_LIMITS: dict[str, tuple[float, float]] = {
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
_RATE_CLEAR_RATIO = 0.5
_BATTERY_CLEAR_MARGIN = 10.0
_RULE_ORDER = ("no_pulse", "low", "high", "rate")
_HISTORY_MAX = 1024
_HISTORY_STEPS = 120


@dataclass(frozen=True)
class ThresholdIssue:
    """One problem with a sensor's ``thresholds``: where (config key path) and what."""

    loc: tuple[str | int, ...]
    message: str

    def __str__(self) -> str:
        _, index, *rest = self.loc
        tail = ".".join(str(p) for p in rest)
        return f"sensors[{index}].{tail}: {self.message}"


class SensorRulesConfigError(ValueError):
    """Sensor thresholds that cannot be used; ``issues`` names each key."""

    def __init__(self, issues: list[ThresholdIssue]) -> None:
        self.issues = issues
        super().__init__("; ".join(str(i) for i in issues))


def threshold_issues(sensors: Iterable[SensorConfig]) -> list[ThresholdIssue]:
    """Check every sensor's ``thresholds`` against its kind.

    Args:
        sensors: the node's sensor registry, in config order.

    Returns:
        One issue per unknown key or impossible value; ``loc`` is the config key path
        (``("sensors", i, "thresholds", key)``) so a config loader can add the line.
    """
    issues: list[ThresholdIssue] = []
    for i, sensor in enumerate(sensors):
        rule = KIND_RULES[sensor.kind]
        before = len(issues)
        for key, value in sensor.thresholds.items():
            loc: tuple[str | int, ...] = ("sensors", i, "thresholds", key)
            if key not in rule.keys:
                issues.append(
                    ThresholdIssue(
                        loc,
                        f"expected one of {', '.join(sorted(rule.keys))} for a {sensor.kind} sensor, found {key!r}",
                    )
                )
                continue
            lo, hi = _KEY_LIMITS[key]
            if not math.isfinite(value) or not lo <= value <= hi:
                issues.append(
                    ThresholdIssue(loc, f"expected a number in [{lo:g}, {hi:g}], found {value!r}")
                )
        if "low" in rule.keys and len(issues) == before:
            params = _resolve(sensor, None)
            if params["low"] >= params["high"]:
                issues.append(
                    ThresholdIssue(
                        ("sensors", i, "thresholds", "low"),
                        f"expected low below high ({params['high']:g}), found {params['low']:g}",
                    )
                )
    return issues


def _resolve(sensor: SensorConfig, canonical_unit: str | None) -> dict[str, float]:
    rule = KIND_RULES[sensor.kind]
    params = {**_COMMON_DEFAULTS, **rule.params}
    if canonical_unit is not None:
        params.update(rule.unit_params.get(canonical_unit, {}))
    params.update(sensor.thresholds)
    return params


def _stamp(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def _fmt(value: float | None) -> str:
    if value is None:
        return "无"
    return (
        f"{value:.0f}"
        if abs(value - round(value)) < 1e-9 or abs(value) >= 100
        else f"{value:.2f}".rstrip("0").rstrip(".")
    )


@dataclass
class _RuleState:
    abnormal_since: datetime | None = None
    normal_since: datetime | None = None
    triggered: bool = False


@dataclass
class _Incident:
    key: str
    rule: str
    started_at: datetime
    peak: float | None
    rules_seen: set[str]


@dataclass
class _SensorState:
    config: SensorConfig
    index: int
    rules: dict[str, _RuleState]
    history: deque[tuple[datetime, float]] = field(
        default_factory=lambda: deque(maxlen=_HISTORY_MAX)
    )
    last_ts: datetime | None = None
    last_received: datetime | None = None
    last_value: float | None = None
    unit: str | None = None
    battery: float | None = None
    incident: _Incident | None = None
    offline_key: str | None = None
    battery_key: str | None = None


class SensorRules:
    """Judge sensor readings and silence against the per-kind rules (module docstring)."""

    def __init__(
        self,
        sensors: Iterable[SensorConfig],
        *,
        grid_id: str | None = None,
        address: str | None = None,
        max_future_s: float = 300.0,
        max_age_s: float = 3600.0,
    ) -> None:
        """Set up the rules for a node's sensor registry.

        Args:
            sensors: the sensor registry (``EdgeConfig.sensors``).
            grid_id: default grid of findings when a sensor has none (None: the node's
                event factory fills it).
            address: default address when a sensor has none.
            max_future_s: a reading stamped further ahead of its receive time is rejected.
            max_age_s: a reading stamped further behind its receive time is rejected.

        Raises:
            SensorRulesConfigError: a threshold key or value is not valid for its kind.
        """
        sensor_list = list(sensors)
        issues = threshold_issues(sensor_list)
        if issues:
            raise SensorRulesConfigError(issues)
        self.grid_id = grid_id
        self.address = address
        self.max_future = timedelta(seconds=max_future_s)
        self.max_age = timedelta(seconds=max_age_s)
        self._taxonomy = default_taxonomy()
        self._sensors: dict[str, _SensorState] = {}
        for i, cfg in enumerate(sensor_list):
            rule = KIND_RULES[cfg.kind]
            names: list[str] = []
            if rule.event_type is not None:
                names = ["high"]
                if "low" in rule.params:
                    names.insert(0, "low")
                if rule.no_pulse:
                    names.insert(0, "no_pulse")
                if _resolve(cfg, None).get("rate_high", 0.0) > 0:
                    names.append("rate")
            self._sensors[cfg.id] = _SensorState(
                config=cfg, index=i, rules={n: _RuleState() for n in names}
            )
        self._started: datetime | None = None
        self.accepted = 0
        self.rejected: Counter[str] = Counter()
        self.accepted_by_sensor: Counter[str] = Counter()
        """Accepted readings per registered sensor id."""
        self.rejected_by_sensor: Counter[tuple[str, str]] = Counter()
        """Rejected readings per (device id as sent, reason); unknown ids are capped."""

    # ------------------------------------------------------------------ public API

    @property
    def sensor_ids(self) -> frozenset[str]:
        """Ids of the registered sensors."""
        return frozenset(self._sensors)

    def update(self, reading: SensorReading, received_at: datetime) -> list[Finding]:
        """Judge one reading.

        Args:
            reading: the reading (its ``ts`` is the time of every rule).
            received_at: when the node received it (aware; used for future/past checks
                and for offline detection by :meth:`tick`).

        Returns:
            Findings (often none): alarms opened, updated or cleared, device faults.
        """
        st = self._sensors.get(reading.device)
        if st is None:
            return self._reject("unknown_device", reading.device)
        cfg = st.config
        rule = KIND_RULES[cfg.kind]
        if reading.kind != cfg.kind:
            return self._reject("kind", reading.device)
        if reading.ts - received_at > self.max_future:
            return self._reject("future", reading.device)
        if received_at - reading.ts > self.max_age:
            return self._reject("past", reading.device)
        if st.last_ts is not None and reading.ts <= st.last_ts:
            return self._reject(
                "duplicate" if reading.ts == st.last_ts else "out_of_order", reading.device
            )
        unit = rule.units.get((reading.unit or "").strip().lower())
        if unit is None:
            return self._reject("unit", reading.device)
        value: float | None = reading.value
        if value is None:
            if not rule.no_pulse:
                return self._reject("null", reading.device)
        elif math.isnan(value):
            return self._reject("nan", reading.device)
        elif math.isinf(value):
            return self._reject("inf", reading.device)
        else:
            value = unit.convert(value)
            lo, hi = rule.value_range
            if not lo <= value <= hi:
                return self._reject("out_of_range", reading.device)
        self.accepted += 1
        self.accepted_by_sensor[reading.device] += 1

        findings: list[Finding] = []
        ts = reading.ts
        params = _resolve(cfg, unit.canonical)
        stale = timedelta(seconds=params["stale_factor"] * cfg.interval_s)
        if st.offline_key is not None:
            findings.append(self._offline_cleared(st, ts))
        if st.last_ts is not None and ts - st.last_ts > stale:
            # a long silence breaks every run: holds restart from this reading
            for rs in st.rules.values():
                rs.abnormal_since = None
                rs.normal_since = None
            st.history.clear()
        st.last_ts = ts
        st.last_received = received_at
        st.last_value = value
        st.unit = unit.canonical
        if reading.battery is not None:
            st.battery = reading.battery
            findings.extend(self._battery(st, ts, reading.battery, params))
        if value is not None:
            window_s = params.get("rate_window_s", 0.0)
            # keep about _HISTORY_STEPS points per window however fast the sensor reports;
            # the newest point is always the current reading
            step_s = window_s / _HISTORY_STEPS
            if len(st.history) >= 2 and (ts - st.history[-2][0]).total_seconds() < step_s:
                st.history[-1] = (ts, value)
            else:
                st.history.append((ts, value))
            window = timedelta(seconds=window_s)
            while st.history and ts - st.history[0][0] > window:
                st.history.popleft()
        if st.rules:
            findings.extend(self._judge(st, ts, value, params))
        return findings

    def tick(self, now: datetime) -> list[Finding]:
        """Find sensors silent for ``stale_factor`` × ``interval_s``.

        Args:
            now: the node's current time (aware). The first call starts the clock for
                sensors that have never reported.

        Returns:
            One ``device_fault`` active finding per sensor that has just gone offline.
        """
        if self._started is None:
            self._started = now
        findings: list[Finding] = []
        for st in self._sensors.values():
            if st.offline_key is not None:
                continue
            last = st.last_received or self._started
            params = _resolve(st.config, st.unit)
            if (now - last).total_seconds() >= params["stale_factor"] * st.config.interval_s:
                findings.append(self._offline_active(st, now, last))
        return findings

    def sensor_statuses(self) -> list[SensorStatus]:
        """Each sensor's state for the node status (alarm > stale > fault > ok)."""
        out: list[SensorStatus] = []
        for st in self._sensors.values():
            state: Literal["ok", "alarm", "stale", "fault"] = "ok"
            if st.incident is not None:
                state = "alarm"
            elif st.offline_key is not None:
                state = "stale"
            elif st.battery_key is not None:
                state = "fault"
            out.append(
                SensorStatus(
                    id=st.config.id,
                    kind=st.config.kind,
                    state=state,
                    last_seen=st.last_received,
                    battery=st.battery,
                )
            )
        return out

    def state(self) -> dict[str, Any]:
        """Open incidents as JSON-ready data, so a restarted node keeps their keys."""
        out: dict[str, Any] = {}
        for sid, st in self._sensors.items():
            item: dict[str, Any] = {}
            if st.incident is not None:
                inc = st.incident
                item["incident"] = {
                    "key": inc.key,
                    "rule": inc.rule,
                    "started_at": inc.started_at.isoformat(),
                    "peak": inc.peak,
                    "rules": sorted(n for n, rs in st.rules.items() if rs.triggered),
                }
            if st.offline_key is not None:
                item["offline_key"] = st.offline_key
            if st.battery_key is not None:
                item["battery_key"] = st.battery_key
            if item:
                out[sid] = item
        return out

    def load_state(self, state: Mapping[str, Any]) -> None:
        """Restore open incidents saved by :meth:`state` (unknown sensors are ignored)."""
        for sid, item in state.items():
            st = self._sensors.get(sid)
            if st is None or not isinstance(item, Mapping):
                continue
            inc = item.get("incident")
            if isinstance(inc, Mapping):
                rules = [r for r in inc.get("rules", []) if r in st.rules]
                for r in rules:
                    st.rules[r].triggered = True
                if rules:
                    st.incident = _Incident(
                        key=str(inc["key"]),
                        rule=str(inc["rule"]),
                        started_at=datetime.fromisoformat(str(inc["started_at"])),
                        peak=inc.get("peak"),
                        rules_seen=set(rules),
                    )
            if isinstance(item.get("offline_key"), str):
                st.offline_key = item["offline_key"]
            if isinstance(item.get("battery_key"), str):
                st.battery_key = item["battery_key"]

    # ------------------------------------------------------------------ rules

    def _reject(self, reason: str, device: str) -> list[Finding]:
        self.rejected[reason] += 1
        if device not in self._sensors:
            # ids nobody registered are counted under one label: a flood of made-up ids
            # must not grow the counters (nor the metrics) without bound
            device = "unregistered"
        self.rejected_by_sensor[(device, reason)] += 1
        return []

    def _classify(
        self, st: _SensorState, name: str, value: float | None, params: Mapping[str, float]
    ) -> Classification:
        rule = KIND_RULES[st.config.kind]
        hyst = params["clear_hysteresis"]
        if name == "no_pulse":
            return "abnormal" if value is None else "clear"
        if value is None:
            return "none"
        if name == "high":
            high = params["high"]
            beyond = value > high if rule.high_strict else value >= high
            if beyond:
                return "abnormal"
            return "clear" if value < high - hyst else "band"
        if name == "low":
            low = params["low"]
            if value < low:
                return "abnormal"
            return "clear" if value >= low + hyst else "band"
        slope = self._slope(st, params)
        if slope is None:
            return "none"
        if slope >= params["rate_high"]:
            return "abnormal"
        return "clear" if slope < params["rate_high"] * _RATE_CLEAR_RATIO else "band"

    @staticmethod
    def _slope(st: _SensorState, params: Mapping[str, float]) -> float | None:
        """Least-squares slope (units per minute) over the rate window, when well covered."""
        pts = st.history
        if len(pts) < 3:
            return None
        t0 = pts[0][0]
        span = (pts[-1][0] - t0).total_seconds()
        if span < params["rate_window_s"] / 2:
            return None
        xs = [(t - t0).total_seconds() / 60.0 for t, _ in pts]
        ys = [v for _, v in pts]
        mx = sum(xs) / len(xs)
        my = sum(ys) / len(ys)
        sxx = sum((x - mx) ** 2 for x in xs)
        if sxx <= 0:
            return None
        return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sxx

    def _judge(
        self, st: _SensorState, ts: datetime, value: float | None, params: Mapping[str, float]
    ) -> list[Finding]:
        fired: list[str] = []
        classes = {name: self._classify(st, name, value, params) for name in st.rules}
        for name, rs in st.rules.items():
            cls = classes[name]
            if cls == "clear" and any(c == "abnormal" for n, c in classes.items() if n != name):
                # a reading abnormal for a sibling rule (no pulse → 38 bpm) is no recovery
                cls = "band"
            # every rule honours the hold, the rate rule included: a slope over a noisy
            # level must last hold_s too (a flood alarm at 0.08 m was one such slope)
            hold = params["hold_s"]
            if not rs.triggered:
                if cls == "abnormal":
                    if rs.abnormal_since is None:
                        rs.abnormal_since = ts
                    if (ts - rs.abnormal_since).total_seconds() >= hold:
                        rs.triggered = True
                        rs.normal_since = None
                        fired.append(name)
                elif cls in ("clear", "band"):
                    rs.abnormal_since = None
            else:
                if cls == "clear":
                    if rs.normal_since is None:
                        rs.normal_since = ts
                    if (ts - rs.normal_since).total_seconds() >= params["clear_hold_s"]:
                        rs.triggered = False
                        rs.abnormal_since = None
                        rs.normal_since = None
                elif cls in ("abnormal", "band"):
                    rs.normal_since = None
        inc = st.incident
        if inc is not None and value is not None:
            inc.peak = self._worse(st, inc.peak, value)
        fired.sort(key=_RULE_ORDER.index)
        if inc is None and fired:
            name = fired[0]
            since = st.rules[name].abnormal_since or ts
            key = f"sensor/{st.config.id}/{name}/{_stamp(since)}"
            st.incident = _Incident(
                key=key, rule=name, started_at=since, peak=value, rules_seen={name}
            )
            return [self._alarm(st, "active", name, since, value, params)]
        if inc is not None:
            new = [n for n in fired if n not in inc.rules_seen]
            if new:
                inc.rules_seen.add(new[0])
                return [self._alarm(st, "update", new[0], ts, value, params)]
            if not any(rs.triggered for rs in st.rules.values()):
                finding = self._alarm(st, "cleared", inc.rule, ts, value, params)
                st.incident = None
                return [finding]
        return []

    @staticmethod
    def _worse(st: _SensorState, peak: float | None, value: float) -> float:
        if peak is None:
            return value
        if (
            "low" in st.rules
            and st.incident is not None
            and st.incident.rule in ("low", "no_pulse")
        ):
            return min(peak, value)
        return max(peak, value)

    # ------------------------------------------------------------------ findings

    def _place(self, cfg: SensorConfig) -> str:
        return cfg.address or self.address or cfg.zone or ""

    def _base(self, st: _SensorState) -> dict[str, Any]:
        cfg = st.config
        return {
            "kind": "sensor",
            "device_id": cfg.id,
            "zone": cfg.zone,
            "grid_id": cfg.grid_id or self.grid_id,
            "address": cfg.address or self.address,
        }

    def _severity(self, event_type: str, severity: Severity) -> Severity:
        default = self._taxonomy.get(event_type).severity
        out = max_severity(severity, default)
        return "emergency" if out == "emergency" else "urgent" if out == "urgent" else "normal"

    def _alarm(
        self,
        st: _SensorState,
        state: Literal["active", "update", "cleared"],
        name: str,
        at: datetime,
        value: float | None,
        params: Mapping[str, float],
    ) -> Finding:
        cfg = st.config
        rule = KIND_RULES[cfg.kind]
        event_type = rule.event_type
        assert event_type is not None  # only kinds with value rules reach here
        inc = st.incident
        assert inc is not None
        unit = st.unit or ""
        threshold: float | None
        if name == "rate":
            threshold = params["rate_high"]
        elif name == "no_pulse":
            threshold = None
        else:
            threshold = params[name]
        attributes: dict[str, Any] = {
            "rule": name,
            "value": value,
            "unit": unit,
            "threshold": threshold,
            "hold_s": 0.0 if name == "rate" else params["hold_s"],
            "sensor_kind": cfg.kind,
        }
        if name == "rate":
            slope = self._slope(st, params)
            attributes["rate_per_min"] = round(slope, 4) if slope is not None else None
            attributes["rate_window_s"] = params["rate_window_s"]
        if cfg.resident_id:
            attributes["resident_id"] = cfg.resident_id
        if cfg.camera:
            attributes["camera"] = cfg.camera
        if state == "cleared":
            attributes["peak"] = inc.peak
            attributes["duration_s"] = round((at - inc.started_at).total_seconds(), 3)
        summary = self._summary(
            st, state, name, value, threshold, params, attributes.get("rate_per_min")
        )
        confidence = rule.confidence * (0.8 if name == "rate" else 1.0)
        return Finding(
            type=event_type,
            severity=self._severity(event_type, rule.severity),
            state=state,
            incident_key=inc.key,
            occurred_at=at,
            confidence=round(confidence, 3),
            summary=summary[:500],
            attributes=attributes,
            snapshot=cfg.camera is not None and state != "cleared",
            **self._base(st),
        )

    def _summary(
        self,
        st: _SensorState,
        state: str,
        name: str,
        value: float | None,
        threshold: float | None,
        params: Mapping[str, float],
        rate: Any,
    ) -> str:
        cfg = st.config
        unit = st.unit or ""
        u = _UNIT_TEXT.get(unit, unit)
        title = _TITLES.get(cfg.kind, "传感器报警")
        place = self._place(cfg)
        who = f"{_KIND_NAMES[cfg.kind]}{cfg.id}"
        if cfg.kind == "heart_rate" and cfg.resident_id:
            who = f"居民编号{cfg.resident_id}"
        tail = f"，{place}（{who}）" if place else f"（{who}）"
        if state == "cleared":
            if cfg.kind == "heart_rate":
                shown = f"心率{_fmt(value)}次/分"
            elif unit == "state":
                shown = "恢复正常"
            else:
                shown = f"当前{_fmt(value)}{u}"
            return f"{title}解除：{shown}{tail}"
        hold = _fmt(params["hold_s"])
        if name == "no_pulse":
            detail = f"未检测到脉搏（持续{hold}秒）"
        elif cfg.kind == "heart_rate":
            side = "低于" if name == "low" else "高于"
            detail = f"心率{_fmt(value)}次/分（{side}{_fmt(threshold)}次/分，持续{hold}秒）"
        elif name == "rate":
            shown = _fmt(rate if isinstance(rate, float) else None)
            detail = f"{_QUANTITY.get(cfg.kind, '数值')}快速上升，每分钟{shown}{u}"
        elif unit == "state":
            detail = "探测器报警"
        else:
            detail = (
                f"{_QUANTITY.get(cfg.kind, '数值')}{_fmt(value)}{u}（报警值{_fmt(threshold)}{u}）"
            )
        return f"{title}：{detail}{tail}"

    def _offline_active(self, st: _SensorState, now: datetime, last: datetime) -> Finding:
        cfg = st.config
        st.offline_key = f"sensor/{cfg.id}/offline/{_stamp(now)}"
        minutes = (now - last).total_seconds() / 60.0
        place = self._place(cfg)
        attributes: dict[str, Any] = {
            "rule": "offline",
            "sensor_kind": cfg.kind,
            "last_seen": st.last_received.isoformat() if st.last_received else None,
            "silent_s": round((now - last).total_seconds(), 3),
            "interval_s": cfg.interval_s,
        }
        if cfg.resident_id:
            attributes["resident_id"] = cfg.resident_id
        return Finding(
            type="device_fault",
            severity=self._severity("device_fault", "normal"),
            state="active",
            incident_key=st.offline_key,
            occurred_at=now,
            confidence=1.0,
            summary=f"传感器离线：{_KIND_NAMES[cfg.kind]}{cfg.id}已{_fmt(round(minutes, 1))}分钟无数据"
            + (f"（{place}）" if place else ""),
            attributes=attributes,
            snapshot=False,
            **self._base(st),
        )

    def _offline_cleared(self, st: _SensorState, at: datetime) -> Finding:
        cfg = st.config
        key = st.offline_key
        assert key is not None
        st.offline_key = None
        attributes: dict[str, Any] = {"rule": "offline", "sensor_kind": cfg.kind}
        if cfg.resident_id:
            attributes["resident_id"] = cfg.resident_id
        return Finding(
            type="device_fault",
            severity=self._severity("device_fault", "normal"),
            state="cleared",
            incident_key=key,
            occurred_at=at,
            confidence=1.0,
            summary=f"传感器恢复在线：{_KIND_NAMES[cfg.kind]}{cfg.id}",
            attributes=attributes,
            snapshot=False,
            **self._base(st),
        )

    def _battery(
        self, st: _SensorState, at: datetime, battery: float, params: Mapping[str, float]
    ) -> list[Finding]:
        cfg = st.config
        low = params["battery_low"]
        state: Literal["active", "cleared"]
        if st.battery_key is None and battery < low:
            st.battery_key = f"sensor/{cfg.id}/battery/{_stamp(at)}"
            state = "active"
            summary = f"传感器电量低：{_KIND_NAMES[cfg.kind]}{cfg.id}电量{_fmt(battery)}%，请更换电池或充电"
        elif st.battery_key is not None and battery >= low + _BATTERY_CLEAR_MARGIN:
            state = "cleared"
            summary = f"传感器电量恢复：{_KIND_NAMES[cfg.kind]}{cfg.id}电量{_fmt(battery)}%"
        else:
            return []
        key = st.battery_key
        if state == "cleared":
            st.battery_key = None
        attributes: dict[str, Any] = {
            "rule": "battery",
            "battery": battery,
            "threshold": low,
            "sensor_kind": cfg.kind,
        }
        if cfg.resident_id:
            attributes["resident_id"] = cfg.resident_id
        return [
            Finding(
                type="device_fault",
                severity=self._severity("device_fault", "normal"),
                state=state,
                incident_key=key,
                occurred_at=at,
                confidence=1.0,
                summary=summary,
                attributes=attributes,
                snapshot=False,
                **self._base(st),
            )
        ]
