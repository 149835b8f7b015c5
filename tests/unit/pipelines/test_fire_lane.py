"""Fire-lane pipeline: scripted timelines of tracks (parking, occlusions, restarts, night).

Each timeline states the scene; the tracks are what a tracker would report for it, with
new tracker ids after every loss (as a real tracker gives).
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from pipelines.base import CameraContext, Finding, Observation, Track
from pipelines.fire_lane import FireLane, Options, build
from pipelines.registry import build_pipeline, options_models

START = datetime(2026, 5, 1, 20, 0, tzinfo=UTC)
LANE = [(0.0, 200.0), (640.0, 200.0), (640.0, 320.0), (0.0, 320.0)]
CONTEXT = CameraContext(
    camera_id="cam3", zones={"lane": LANE}, default_severity={"fire_lane_blocked": "normal"}
)
CAR = (300.0, 220.0, 420.0, 300.0)  # a car standing in the lane
STEP = 1.0  # detector samples per second of the scripted scenes


def _pipeline(**overrides: object) -> FireLane:
    return build(Options.model_validate({"zone": "lane", **overrides}), CONTEXT)


def _obs(t: float, tracks: list[Track]) -> Observation:
    return Observation(
        camera_id="cam3",
        frame_index=int(t * 25),
        t=t,
        at=START + timedelta(seconds=t),
        tracks=tracks,
        frame_size=(640, 480),
    )


def _car(
    track_id: int,
    box: tuple[float, float, float, float] = CAR,
    cls: str = "car",
    appearance: tuple[float, ...] | None = None,
) -> Track:
    return Track(track_id=track_id, xyxy=box, class_name=cls, confidence=0.8, appearance=appearance)


def _run(
    pipeline: FireLane, timeline: Iterable[tuple[float, list[Track]]], end_flush: bool = False
) -> list[tuple[float, Finding]]:
    out: list[tuple[float, Finding]] = []
    last = 0.0
    for t, tracks in timeline:
        last = t
        out.extend((t, f) for f in pipeline.update(_obs(t, tracks)))
    if end_flush:
        out.extend((last, f) for f in pipeline.flush(START + timedelta(seconds=last)))
    return out


def _moving(
    track_id: int, t0: float, t1: float, x0: float, speed: float, y: float = 230.0
) -> dict[float, Track]:
    """A car driving along the lane from x0 at ``speed`` px/s between t0 and t1."""
    out: dict[float, Track] = {}
    t = t0
    while t <= t1 + 1e-9:
        x = x0 + speed * (t - t0)
        out[round(t, 3)] = _car(track_id, (x, y, x + 120.0, y + 70.0))
        t += STEP
    return out


def _parked_timeline(
    park_s: float,
    gaps: list[tuple[float, float]],
    jitter: float = 0.0,
    seed: int = 1,
    tail_s: float = 400.0,
) -> list[tuple[float, list[Track]]]:
    """Arrive at t=10, stand ``park_s`` (unseen during ``gaps``), drive off, then ``tail_s`` of empty lane."""
    rng = random.Random(seed)
    timeline: list[tuple[float, list[Track]]] = []
    arrive = _moving(1, 0.0, 9.0, -120.0, 46.0)
    for t, tr in arrive.items():
        timeline.append((t, [tr]))
    track_id = 1
    hidden_before = False
    t = 10.0
    while t < 10.0 + park_s:
        hidden = any(a <= t - 10.0 < b for a, b in gaps)
        if hidden:
            # a bus passes in front (its own box, moving) and hides the car
            timeline.append(
                (t, [_car(900, (t * 10.0 % 500, 200.0, t * 10.0 % 500 + 260.0, 318.0), cls="bus")])
            )
        else:
            if hidden_before:
                track_id += 1  # the tracker lost the car: it comes back under a new id
            box = tuple(v + rng.uniform(-jitter, jitter) for v in CAR)
            timeline.append((t, [_car(track_id, box)]))  # type: ignore[arg-type]
        hidden_before = hidden
        t += STEP
    track_id += 1
    for tt, tr in _moving(track_id, 10.0 + park_s, 10.0 + park_s + 8.0, CAR[0], 60.0).items():
        timeline.append((tt, [tr]))
    t = 10.0 + park_s + 9.0
    while t < 10.0 + park_s + tail_s:
        timeline.append((t, []))
        t += STEP
    return timeline


def _states(found: list[tuple[float, Finding]]) -> list[tuple[str, str]]:
    return [(f.state, f.incident_key) for _, f in found]


def test_car_parked_200s_with_two_occlusions_alerts_once_then_clears_with_total_dwell() -> None:
    # A car stands 200 s in the lane; a bus hides it twice (30 s and 20 s), each time the
    # tracker gives it a new id; it drives off → one active at 180 s, one cleared after.
    pipeline = _pipeline()
    found = _run(pipeline, _parked_timeline(200.0, gaps=[(40.0, 70.0), (120.0, 140.0)]))
    assert _states(found) == [
        ("active", "cam3/fire_lane/v0001"),
        ("cleared", "cam3/fire_lane/v0001"),
    ], _states(found)
    (t_active, active), (t_cleared, cleared) = found
    assert 189.0 <= t_active <= 192.0  # arrived at t=10, alert after dwell_s=180
    assert active.type == "fire_lane_blocked" and active.severity == "normal"
    assert active.snapshot and active.boxes and active.attributes["class"] == "car"
    assert active.attributes["dwell_s"] >= 180.0
    assert active.attributes["vehicle_id"] == "v0001"
    assert cleared.attributes["dwell_s"] == pytest.approx(199.0, abs=2.0)
    assert t_cleared >= 210.0 + 120.0 - 1.0  # unseen for leave_s before it is cleared


def test_car_driving_through_never_alerts() -> None:
    timeline = [(t, [tr]) for t, tr in _moving(1, 0.0, 40.0, -120.0, 20.0).items()]
    assert _run(_pipeline(dwell_s=10), timeline, end_flush=True) == []


def test_slow_queue_crawling_through_the_lane_never_alerts() -> None:
    # inching forward at 3 px/s for 300 s: never stands still long enough
    timeline = [(t, [tr]) for t, tr in _moving(1, 0.0, 300.0, -100.0, 3.0).items()]
    assert _run(_pipeline(dwell_s=120), timeline, end_flush=True) == []


def test_car_stopping_60s_then_driving_on_never_alerts() -> None:
    timeline = _parked_timeline(60.0, gaps=[])
    assert _run(_pipeline(), timeline, end_flush=True) == []


def test_jittering_boxes_do_not_reset_the_dwell() -> None:
    found = _run(_pipeline(), _parked_timeline(200.0, gaps=[], jitter=12.0, seed=7))
    assert [s for s, _ in _states(found)] == ["active", "cleared"]
    assert 189.0 <= found[0][0] <= 192.0


def test_van_reported_as_car_and_truck_is_one_vehicle() -> None:
    pipeline = _pipeline(dwell_s=5)
    timeline = [
        (float(t), [_car(1), _car(2, (301.0, 221.0, 421.0, 299.0), cls="truck")]) for t in range(30)
    ]
    found = _run(pipeline, timeline, end_flush=True)
    assert [s for s, _ in _states(found)] == ["active", "cleared"]


def test_night_falls_headlights_on_and_colour_changes_still_one_alert() -> None:
    # daylight histogram, then a very different one (night, headlights) and a box that
    # blooms by a few pixels: the place identifies the car
    day = tuple([0.5, 0.3, 0.1, 0.1])
    night = tuple([0.05, 0.05, 0.1, 0.8])
    pipeline = _pipeline()
    timeline: list[tuple[float, list[Track]]] = []
    for i in range(400):
        t = float(i)
        if i < 100:
            tr = _car(1, appearance=day)
        elif i < 130:
            tr = _car(2, (296.0, 216.0, 426.0, 306.0), appearance=night)  # headlights bloom
        else:
            tr = _car(3 + i % 2, appearance=night)  # flickering ids in the dark
        timeline.append((t, [tr] if i % 7 else []))  # and a miss every 7th sample
    found = _run(pipeline, timeline, end_flush=True)
    assert [s for s, _ in _states(found)] == ["active", "cleared"]
    assert 179.0 <= found[0][0] <= 182.0


def test_different_colour_car_half_overlapping_is_another_vehicle() -> None:
    # a red car stands beside the white one, overlapping its place moderately: with
    # appearances the two are told apart and each alerts once
    white = (0.9, 0.05, 0.05)
    red = (0.05, 0.9, 0.05)
    pipeline = _pipeline(dwell_s=20)
    other = (340.0, 220.0, 460.0, 300.0)  # IoU with CAR ≈ 0.5
    timeline = [
        (float(t), [_car(1, appearance=white), _car(2, other, appearance=red)]) for t in range(40)
    ]
    found = _run(pipeline, timeline, end_flush=True)
    keys = {f.incident_key for _, f in found if f.state == "active"}
    assert keys == {"cam3/fire_lane/v0001", "cam3/fire_lane/v0002"}


def test_restart_before_the_alert_keeps_the_dwell_and_after_it_never_alerts_again() -> None:
    timeline = _parked_timeline(300.0, gaps=[])
    first = _pipeline()
    # restart at t=100 (before the alert): the dwell continues from the saved state
    before = [(t, trs) for t, trs in timeline if t < 100.0]
    after = [
        (
            t,
            [
                Track(
                    track_id=tr.track_id + 50,
                    xyxy=tr.xyxy,
                    class_name=tr.class_name,
                    confidence=tr.confidence,
                )
                for tr in trs
            ],
        )
        for t, trs in timeline
        if t >= 130.0
    ]  # 30 s down
    assert _run(first, before) == []
    state = json.loads(json.dumps(first.state_dict()))
    second = _pipeline()
    second.load_state(state)
    found = _run(second, after)
    assert [s for s, _ in _states(found)] == ["active", "cleared"]
    assert 189.0 <= found[0][0] <= 192.0  # the 30 s downtime is part of the dwell

    # restart after the alert (node down 10 minutes, longer than leave_s): no second alert
    third = _pipeline()
    found = _run(third, [(t, trs) for t, trs in timeline if t < 250.0])
    assert [s for s, _ in _states(found)] == ["active"]
    state = json.loads(json.dumps(third.state_dict()))
    fourth = _pipeline()
    fourth.load_state(state)
    later = [
        (t + 600.0, [Track(track_id=7, xyxy=CAR, class_name="car", confidence=0.7)])
        for t in range(250, 310)
    ]
    assert _run(fourth, later) == []
    gone = [(t + 600.0, []) for t in range(310, 500)]
    found = _run(fourth, gone)
    assert _states(found) == [("cleared", "cam3/fire_lane/v0001")]


def test_car_reappearing_after_being_cleared_is_remembered_not_re_alerted() -> None:
    pipeline = _pipeline(dwell_s=10, leave_s=20)
    timeline = [(float(t), [_car(1)]) for t in range(30)]
    timeline += [(float(t), []) for t in range(30, 60)]  # a long miss (detector at night)
    timeline += [(float(t), [_car(2)]) for t in range(60, 120)]
    found = _run(pipeline, timeline, end_flush=True)
    assert [s for s, _ in _states(found)] == ["active", "cleared"]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    gaps=st.lists(st.tuples(st.integers(0, 280), st.integers(1, 60)), max_size=6),
    park_s=st.integers(20, 300),
    jitter=st.floats(0.0, 10.0),
    seed=st.integers(0, 1000),
)
def test_property_at_most_one_active_per_parked_vehicle(
    gaps: list[tuple[int, int]], park_s: int, jitter: float, seed: int
) -> None:
    # random occlusions (each shorter than leave_s), id switches and jitter: a parked car
    # never alerts twice; it alerts once iff it stood ≥ dwell_s; every active is cleared once
    pipeline = _pipeline(dwell_s=120, leave_s=90)
    windows = [(float(a), float(a + n)) for a, n in gaps]
    found = _run(
        pipeline,
        _parked_timeline(float(park_s), windows, jitter=jitter, seed=seed, tail_s=100.0),
        end_flush=True,
    )
    actives = [f for _, f in found if f.state == "active"]
    cleared = [f for _, f in found if f.state == "cleared"]
    assert len(actives) <= 1
    assert len(cleared) == len(actives)
    seen_s = [t for t in range(park_s) if not any(a <= t < b for a, b in windows)]
    if not seen_s:
        assert actives == []
        return
    # the dwell goes on through a gap shorter than leave_s and than the time already stood
    # (a car seen only a moment before it is hidden starts afresh when it reappears)
    start = seen_s[0]
    for prev, nxt in zip(seen_s, seen_s[1:], strict=False):
        gap = nxt - prev
        if gap > 1 and gap + 2 >= min(90, max(3, prev - start)):  # ±1 sample at the limits
            start = nxt
    if seen_s[-1] - start >= 121:
        assert len(actives) == 1
    if park_s < 117:  # it did not stand dwell_s (arriving/leaving samples add a second each)
        assert actives == []


def test_options_validation_and_registry() -> None:
    with pytest.raises(ValidationError):
        Options.model_validate({"zone": "lane", "dwell": 10})  # unknown key
    with pytest.raises(ValidationError):
        Options.model_validate({"zone": "lane", "dwell_s": 0.5})
    assert Options.model_validate({"zone": "lane", "dwell_s": 1}).dwell_s == 1.0
    for name, info in Options.model_fields.items():
        assert info.description, f"option {name} has no description"
    assert options_models()["fire_lane"] is Options
    pipeline = build_pipeline("fire_lane", {"zone": "lane", "dwell_s": 3}, CONTEXT)
    assert pipeline.name == "fire_lane" and pipeline.needs_detections and not pipeline.needs_frames
    with pytest.raises(KeyError, match="zone"):
        build_pipeline("fire_lane", {"zone": "nope"}, CONTEXT)
