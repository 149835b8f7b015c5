"""The sensor rules engine: readings and silence → findings (see the package docstring)."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any, Literal

from pipelines.base import Finding
from pipelines.sensor_rules.findings import Reporter
from pipelines.sensor_rules.kinds import (
    HISTORY_STEPS,
    KIND_RULES,
    RATE_CLEAR_RATIO,
    RULE_ORDER,
    Classification,
    resolve,
)
from pipelines.sensor_rules.state import (
    Incident,
    RuleState,
    SensorState,
    least_squares_slope,
    stamp,
)
from pipelines.sensor_rules.thresholds import SensorRulesConfigError, threshold_issues
from shaobing.config import SensorConfig
from shaobing.contract import SensorReading, SensorStatus
from shaobing.taxonomy import default_taxonomy


class SensorRules:
    """Judge sensor readings and silence against the per-kind rules (package docstring)."""

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
        self.max_future = timedelta(seconds=max_future_s)
        self.max_age = timedelta(seconds=max_age_s)
        self._reporter = Reporter(default_taxonomy(), grid_id, address)
        self._sensors: dict[str, SensorState] = {}
        for i, cfg in enumerate(sensor_list):
            rule = KIND_RULES[cfg.kind]
            names: list[str] = []
            if rule.event_type is not None:
                names = ["high"]
                if "low" in rule.params:
                    names.insert(0, "low")
                if rule.no_pulse:
                    names.insert(0, "no_pulse")
                if resolve(cfg, None).get("rate_high", 0.0) > 0:
                    names.append("rate")
            self._sensors[cfg.id] = SensorState(
                config=cfg, index=i, rules={n: RuleState() for n in names}
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
    def grid_id(self) -> str | None:
        """Default grid of findings when a sensor has none."""
        return self._reporter.grid_id

    @grid_id.setter
    def grid_id(self, value: str | None) -> None:
        self._reporter.grid_id = value

    @property
    def address(self) -> str | None:
        """Default address of findings when a sensor has none."""
        return self._reporter.address

    @address.setter
    def address(self, value: str | None) -> None:
        self._reporter.address = value

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
        params = resolve(cfg, unit.canonical)
        stale = timedelta(seconds=params["stale_factor"] * cfg.interval_s)
        if st.offline is not None:
            findings.append(self._reporter.offline_cleared(st, ts))
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
            findings.extend(self._reporter.battery(st, ts, reading.battery, params))
        if value is not None:
            window_s = params.get("rate_window_s", 0.0)
            # keep about HISTORY_STEPS points per window however fast the sensor reports;
            # the newest point is always the current reading
            step_s = window_s / HISTORY_STEPS
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
            if st.offline is not None:
                continue
            last = st.last_received or self._started
            params = resolve(st.config, st.unit)
            if (now - last).total_seconds() >= params["stale_factor"] * st.config.interval_s:
                findings.append(self._reporter.offline_active(st, now, last))
        return findings

    def sensor_statuses(self) -> list[SensorStatus]:
        """Each sensor's state for the node status (alarm > stale > fault > ok)."""
        out: list[SensorStatus] = []
        for st in self._sensors.values():
            state: Literal["ok", "alarm", "stale", "fault"] = "ok"
            if st.incident is not None:
                state = "alarm"
            elif st.offline is not None:
                state = "stale"
            elif st.battery_low is not None:
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
            if st.offline is not None:
                item["offline_key"] = st.offline.key
            if st.battery_low is not None:
                item["battery_key"] = st.battery_low.key
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
                    st.incident = Incident(
                        life=self._reporter.alarm_situation(st, str(inc["key"]), "active"),
                        rule=str(inc["rule"]),
                        started_at=datetime.fromisoformat(str(inc["started_at"])),
                        peak=inc.get("peak"),
                        rules_seen=set(rules),
                    )
            if isinstance(item.get("offline_key"), str):
                st.offline = self._reporter.fault_situation(item["offline_key"], "active")
            if isinstance(item.get("battery_key"), str):
                st.battery_low = self._reporter.fault_situation(item["battery_key"], "active")

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
        self, st: SensorState, name: str, value: float | None, params: Mapping[str, float]
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
        return "clear" if slope < params["rate_high"] * RATE_CLEAR_RATIO else "band"

    @staticmethod
    def _slope(st: SensorState, params: Mapping[str, float]) -> float | None:
        """Least-squares slope (units per minute) over the rate window, when well covered."""
        return least_squares_slope(st, params)

    def _judge(
        self, st: SensorState, ts: datetime, value: float | None, params: Mapping[str, float]
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
        fired.sort(key=RULE_ORDER.index)
        if inc is None and fired:
            name = fired[0]
            since = st.rules[name].abnormal_since or ts
            key = f"sensor/{st.config.id}/{name}/{stamp(since)}"
            st.incident = Incident(
                life=self._reporter.alarm_situation(st, key),
                rule=name,
                started_at=since,
                peak=value,
                rules_seen={name},
            )
            return [self._reporter.alarm(st, "active", name, since, value, params)]
        if inc is not None:
            new = [n for n in fired if n not in inc.rules_seen]
            if new:
                inc.rules_seen.add(new[0])
                return [self._reporter.alarm(st, "update", new[0], ts, value, params)]
            if not any(rs.triggered for rs in st.rules.values()):
                finding = self._reporter.alarm(st, "cleared", inc.rule, ts, value, params)
                st.incident = None
                return [finding]
        return []

    @staticmethod
    def _worse(st: SensorState, peak: float | None, value: float) -> float:
        if peak is None:
            return value
        if (
            "low" in st.rules
            and st.incident is not None
            and st.incident.rule in ("low", "no_pulse")
        ):
            return min(peak, value)
        return max(peak, value)
