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

from pipelines.sensor_rules.engine import SensorRules
from pipelines.sensor_rules.kinds import KIND_RULES, REJECT_REASONS, KindRule
from pipelines.sensor_rules.thresholds import (
    SensorRulesConfigError,
    ThresholdIssue,
    threshold_issues,
)

__all__ = [
    "SensorRules",
    "SensorRulesConfigError",
    "ThresholdIssue",
    "threshold_issues",
    "KIND_RULES",
    "KindRule",
    "REJECT_REASONS",
]
