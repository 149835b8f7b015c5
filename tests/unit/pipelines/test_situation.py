"""The shared life of a situation: active once, updates while open, cleared once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from pipelines.base import Finding, State
from pipelines.situation import Situation, SituationError

T0 = datetime(2026, 5, 1, 8, 0, tzinfo=UTC)


def _report(sit: Situation, state: State, minutes: int = 0) -> Finding:
    return sit.report(
        state,
        occurred_at=T0 + timedelta(minutes=minutes),
        confidence=0.8,
        summary=f"{state}",
        attributes={"n": minutes},
        zone="yard",
        snapshot=state != "cleared",
    )


def test_a_situation_reports_active_updates_and_cleared_under_one_key() -> None:
    sit = Situation("fire", "emergency", "cam1/smoke_fire/frame/fire/20260501T080000")
    assert sit.state is None and not sit.is_open
    first = sit.report(
        "active", occurred_at=T0, confidence=0.9, summary="发现明火", boxes=((1.0, 2.0, 3.0, 4.0),)
    )
    assert sit.is_open
    second = _report(sit, "update", 1)
    third = _report(sit, "update", 2)
    last = _report(sit, "cleared", 3)
    assert not sit.is_open and sit.state == "cleared"
    findings = [first, second, third, last]
    assert [f.state for f in findings] == ["active", "update", "update", "cleared"]
    assert {f.incident_key for f in findings} == {sit.key}
    assert {(f.type, f.severity) for f in findings} == {("fire", "emergency")}
    assert first.boxes == ((1.0, 2.0, 3.0, 4.0),) and first.summary == "发现明火"
    assert last.occurred_at == T0 + timedelta(minutes=3)
    assert last.attributes == {"n": 3} and last.zone == "yard" and not last.snapshot


@pytest.mark.parametrize(
    ("before", "state"),
    [
        ([], "update"),  # an update before anything was reported
        ([], "cleared"),  # cleared before active
        (["active"], "active"),  # a second active under the same key
        (["active", "cleared"], "update"),  # anything after cleared
        (["active", "cleared"], "cleared"),
        (["active", "cleared"], "active"),
    ],
)
def test_findings_out_of_order_are_refused(before: list[State], state: State) -> None:
    sit = Situation("smoke", "urgent", "k1")
    for s in before:
        _report(sit, s)
    with pytest.raises(SituationError, match="k1"):
        _report(sit, state)
    # the refused finding changed nothing
    assert sit.state == (before[-1] if before else None)


def test_a_restored_situation_goes_on_and_clears() -> None:
    sit = Situation("device_fault", "normal", "sensor/g1/offline/20260501T080000Z", "active")
    assert sit.is_open
    assert _report(sit, "cleared").state == "cleared"
