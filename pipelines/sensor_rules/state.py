"""What the rules remember per sensor: rule runs, the open incident, recent values."""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from pipelines.sensor_rules.kinds import HISTORY_MAX
from pipelines.situation import Situation
from shaobing.config import SensorConfig


def stamp(at: datetime) -> str:
    """The UTC time in an incident key (``20260101T080000Z``)."""
    return at.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


@dataclass
class RuleState:
    abnormal_since: datetime | None = None
    normal_since: datetime | None = None
    triggered: bool = False


@dataclass
class Incident:
    """A sensor's open alarm: its life, the rule that opened it and the worst value seen."""

    life: Situation
    rule: str
    started_at: datetime
    peak: float | None
    rules_seen: set[str]

    @property
    def key(self) -> str:
        """The incident key."""
        return self.life.key


@dataclass
class SensorState:
    config: SensorConfig
    index: int
    rules: dict[str, RuleState]
    history: deque[tuple[datetime, float]] = field(
        default_factory=lambda: deque(maxlen=HISTORY_MAX)
    )
    last_ts: datetime | None = None
    last_received: datetime | None = None
    last_value: float | None = None
    unit: str | None = None
    battery: float | None = None
    incident: Incident | None = None
    offline: Situation | None = None  # device_fault: no readings
    battery_low: Situation | None = None  # device_fault: low battery


def least_squares_slope(st: SensorState, params: Mapping[str, float]) -> float | None:
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
