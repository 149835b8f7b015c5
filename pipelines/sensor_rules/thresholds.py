"""Checks of the per-sensor ``thresholds`` against each kind's rules."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from pipelines.sensor_rules.kinds import KEY_LIMITS, KIND_RULES, resolve
from shaobing.config import SensorConfig


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
            lo, hi = KEY_LIMITS[key]
            if not math.isfinite(value) or not lo <= value <= hi:
                issues.append(
                    ThresholdIssue(loc, f"expected a number in [{lo:g}, {hi:g}], found {value!r}")
                )
        if "low" in rule.keys and len(issues) == before:
            params = resolve(sensor, None)
            if params["low"] >= params["high"]:
                issues.append(
                    ThresholdIssue(
                        ("sensors", i, "thresholds", "low"),
                        f"expected low below high ({params['high']:g}), found {params['low']:g}",
                    )
                )
    return issues
