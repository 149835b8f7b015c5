"""Findings of the sensor rules: alarms, offline and low-battery faults, in Chinese words."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from pipelines.base import Finding, Severity, State
from pipelines.sensor_rules.kinds import BATTERY_CLEAR_MARGIN, KIND_RULES
from pipelines.sensor_rules.state import SensorState, least_squares_slope, stamp
from pipelines.situation import Situation
from shaobing.config import SensorConfig
from shaobing.severity import max_severity
from shaobing.taxonomy import Taxonomy

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


def fmt(value: float | None) -> str:
    if value is None:
        return "无"
    return (
        f"{value:.0f}"
        if abs(value - round(value)) < 1e-9 or abs(value) >= 100
        else f"{value:.2f}".rstrip("0").rstrip(".")
    )


@dataclass
class Reporter:
    """Builds the findings of one node's sensors (grid and address default to the node's)."""

    taxonomy: Taxonomy
    grid_id: str | None = None
    address: str | None = None

    def place(self, cfg: SensorConfig) -> str:
        return cfg.address or self.address or cfg.zone or ""

    def base(self, st: SensorState) -> dict[str, Any]:
        cfg = st.config
        return {
            "kind": "sensor",
            "device_id": cfg.id,
            "zone": cfg.zone,
            "grid_id": cfg.grid_id or self.grid_id,
            "address": cfg.address or self.address,
        }

    def severity(self, event_type: str, severity: Severity) -> Severity:
        default = self.taxonomy.get(event_type).severity
        return max_severity(severity, default)

    def alarm_situation(self, st: SensorState, key: str, state: State | None = None) -> Situation:
        """The situation of an alarm of this sensor (``state`` "active" when restored)."""
        rule = KIND_RULES[st.config.kind]
        event_type = rule.event_type
        assert event_type is not None  # only kinds with value rules raise alarms
        return Situation(event_type, self.severity(event_type, rule.severity), key, state)

    def fault_situation(self, key: str, state: State | None = None) -> Situation:
        """The situation of a device fault (offline, low battery)."""
        return Situation("device_fault", self.severity("device_fault", "normal"), key, state)

    def alarm(
        self,
        st: SensorState,
        state: State,
        name: str,
        at: datetime,
        value: float | None,
        params: Mapping[str, float],
    ) -> Finding:
        cfg = st.config
        rule = KIND_RULES[cfg.kind]
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
            slope = least_squares_slope(st, params)
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
        return inc.life.report(
            state,
            occurred_at=at,
            confidence=round(confidence, 3),
            summary=summary[:500],
            attributes=attributes,
            snapshot=cfg.camera is not None and state != "cleared",
            **self.base(st),
        )

    def _summary(
        self,
        st: SensorState,
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
        place = self.place(cfg)
        who = f"{_KIND_NAMES[cfg.kind]}{cfg.id}"
        if cfg.kind == "heart_rate" and cfg.resident_id:
            who = f"居民编号{cfg.resident_id}"
        tail = f"，{place}（{who}）" if place else f"（{who}）"
        if state == "cleared":
            if cfg.kind == "heart_rate":
                shown = f"心率{fmt(value)}次/分"
            elif unit == "state":
                shown = "恢复正常"
            else:
                shown = f"当前{fmt(value)}{u}"
            return f"{title}解除：{shown}{tail}"
        hold = fmt(params["hold_s"])
        if name == "no_pulse":
            detail = f"未检测到脉搏（持续{hold}秒）"
        elif cfg.kind == "heart_rate":
            side = "低于" if name == "low" else "高于"
            detail = f"心率{fmt(value)}次/分（{side}{fmt(threshold)}次/分，持续{hold}秒）"
        elif name == "rate":
            shown = fmt(rate if isinstance(rate, float) else None)
            detail = f"{_QUANTITY.get(cfg.kind, '数值')}快速上升，每分钟{shown}{u}"
        elif unit == "state":
            detail = "探测器报警"
        else:
            detail = (
                f"{_QUANTITY.get(cfg.kind, '数值')}{fmt(value)}{u}（报警值{fmt(threshold)}{u}）"
            )
        return f"{title}：{detail}{tail}"

    def offline_active(self, st: SensorState, now: datetime, last: datetime) -> Finding:
        cfg = st.config
        st.offline = self.fault_situation(f"sensor/{cfg.id}/offline/{stamp(now)}")
        minutes = (now - last).total_seconds() / 60.0
        place = self.place(cfg)
        attributes: dict[str, Any] = {
            "rule": "offline",
            "sensor_kind": cfg.kind,
            "last_seen": st.last_received.isoformat() if st.last_received else None,
            "silent_s": round((now - last).total_seconds(), 3),
            "interval_s": cfg.interval_s,
        }
        if cfg.resident_id:
            attributes["resident_id"] = cfg.resident_id
        return st.offline.report(
            "active",
            occurred_at=now,
            confidence=1.0,
            summary=f"传感器离线：{_KIND_NAMES[cfg.kind]}{cfg.id}已{fmt(round(minutes, 1))}分钟无数据"
            + (f"（{place}）" if place else ""),
            attributes=attributes,
            snapshot=False,
            **self.base(st),
        )

    def offline_cleared(self, st: SensorState, at: datetime) -> Finding:
        cfg = st.config
        offline = st.offline
        assert offline is not None
        st.offline = None
        attributes: dict[str, Any] = {"rule": "offline", "sensor_kind": cfg.kind}
        if cfg.resident_id:
            attributes["resident_id"] = cfg.resident_id
        return offline.report(
            "cleared",
            occurred_at=at,
            confidence=1.0,
            summary=f"传感器恢复在线：{_KIND_NAMES[cfg.kind]}{cfg.id}",
            attributes=attributes,
            snapshot=False,
            **self.base(st),
        )

    def battery(
        self, st: SensorState, at: datetime, battery: float, params: Mapping[str, float]
    ) -> list[Finding]:
        cfg = st.config
        low = params["battery_low"]
        state: Literal["active", "cleared"]
        if st.battery_low is None and battery < low:
            st.battery_low = self.fault_situation(f"sensor/{cfg.id}/battery/{stamp(at)}")
            state = "active"
            summary = f"传感器电量低：{_KIND_NAMES[cfg.kind]}{cfg.id}电量{fmt(battery)}%，请更换电池或充电"
        elif st.battery_low is not None and battery >= low + BATTERY_CLEAR_MARGIN:
            state = "cleared"
            summary = f"传感器电量恢复：{_KIND_NAMES[cfg.kind]}{cfg.id}电量{fmt(battery)}%"
        else:
            return []
        situation = st.battery_low
        if state == "cleared":
            st.battery_low = None
        attributes: dict[str, Any] = {
            "rule": "battery",
            "battery": battery,
            "threshold": low,
            "sensor_kind": cfg.kind,
        }
        if cfg.resident_id:
            attributes["resident_id"] = cfg.resident_id
        return [
            situation.report(
                state,
                occurred_at=at,
                confidence=1.0,
                summary=summary,
                attributes=attributes,
                snapshot=False,
                **self.base(st),
            )
        ]
