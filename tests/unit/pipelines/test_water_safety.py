"""Water-safety pipeline: scripted scenes of tracks and rendered frames.

The frames are drawn here: a textured pool (the water shimmers a little every frame), people
as textured patches at their track boxes — calm (the same patch every frame) or thrashing
(a new patch every frame, with splashes in the water around them).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from pydantic import ValidationError

from pipelines.base import Box, CameraContext, Finding, Observation, Track
from pipelines.registry import build_pipeline, options_models
from pipelines.water_safety import Options, WaterSafety, build

W, H = 320, 240
WATER = [(0.0, 80.0), (320.0, 80.0), (320.0, 240.0), (0.0, 240.0)]
BANK = [(0.0, 40.0), (320.0, 40.0), (320.0, 80.0), (0.0, 80.0)]
CONTEXT = CameraContext(
    camera_id="pool1",
    zones={"water": WATER, "bank": BANK},
    default_severity={"water_danger_intrusion": "urgent", "drowning": "emergency"},
)
DAY = datetime(2026, 7, 1, 4, 0, tzinfo=UTC)  # 12:00 in Asia/Shanghai
NIGHT = datetime(2026, 7, 1, 14, 0, tzinfo=UTC)  # 22:00 in Asia/Shanghai
FPS = 2.0

_BG = np.random.default_rng(0).integers(60, 140, size=(H, W, 3), dtype=np.uint8)
_PATCH = np.random.default_rng(1).integers(150, 255, size=(H, W, 3), dtype=np.uint8)


@dataclass(frozen=True)
class Person:
    """One person in one sample: a track (None: not detected) and how they look."""

    box: Box
    track_id: int | None
    mode: str = "calm"  # calm | thrash | absent (not drawn)


def _render(rng: np.random.Generator, people: list[Person]) -> np.ndarray:
    frame = _BG.astype(np.int16) + rng.integers(-4, 5, size=(H, W, 1), dtype=np.int16)
    for p in people:
        if p.mode == "absent":
            continue
        x1, y1, x2, y2 = (int(round(v)) for v in p.box)
        x1, y1, x2, y2 = max(0, x1), max(0, y1), min(W, x2), min(H, y2)
        if p.mode == "thrash":
            frame[y1:y2, x1:x2] = rng.integers(0, 255, size=(y2 - y1, x2 - x1, 3))
            # splashes: white blobs scattered in the water around the person
            lo, hi = max(80, y1 - 10), min(H - 3, y2 + 10)
            for _ in range(12 if lo < hi else 0):
                sx = int(rng.integers(max(0, x1 - 15), min(W - 3, x2 + 15)))
                sy = int(rng.integers(lo, hi))
                frame[sy : sy + 3, sx : sx + 3] = 255
        else:
            frame[y1:y2, x1:x2] = _PATCH[y1:y2, x1:x2]
    return np.clip(frame, 0, 255).astype(np.uint8)


def _pipeline(**overrides: object) -> WaterSafety:
    return build(
        Options.model_validate({"water_zone": "water", "bank_zone": "bank", **overrides}), CONTEXT
    )


def _run(
    pipeline: WaterSafety,
    scene: Iterable[tuple[float, list[Person]]],
    start: datetime = DAY,
    frames: bool = True,
) -> list[tuple[float, Finding]]:
    rng = np.random.default_rng(5)
    out: list[tuple[float, Finding]] = []
    for i, (t, people) in enumerate(scene):
        tracks = [
            Track(track_id=p.track_id, xyxy=p.box, class_name="person", confidence=0.6)
            for p in people
            if p.track_id is not None
        ]
        obs = Observation(
            camera_id="pool1",
            frame_index=i,
            t=t,
            at=start + timedelta(seconds=t),
            tracks=tracks,
            frame=_render(rng, people) if frames else None,
            frame_size=(W, H),
        )
        out.extend((t, f) for f in pipeline.update(obs))
    return out


def _times(duration: float) -> list[float]:
    return [i / FPS for i in range(int(duration * FPS))]


def _types(found: list[tuple[float, Finding]]) -> list[tuple[str, str]]:
    return [(f.type, f.state) for _, f in found]


def _swimmer_box(x: float, y: float = 150.0) -> Box:
    return (x, y, x + 40.0, y + 24.0)


def test_swimmer_diving_5s_and_coming_up_further_on_raises_no_drowning() -> None:
    # swims right at 12 px/s; dives at t=10 for 5 s; comes up 60 px further under a new id
    scene = []
    for t in _times(30.0):
        x = 20.0 + 12.0 * t
        if t < 10.0:
            scene.append((t, [Person(_swimmer_box(x), 1)]))
        elif t < 15.0:
            scene.append((t, [Person(_swimmer_box(x), None, "absent")]))
        else:
            scene.append((t, [Person(_swimmer_box(x), 2)]))
    found = _run(_pipeline(), scene)
    assert _types(found) == [("water_danger_intrusion", "active")]  # one visit, one event


def test_person_vanishing_in_the_water_raises_one_drowning_after_disappear_s() -> None:
    box = (150.0, 120.0, 180.0, 170.0)
    scene = [(t, [Person(box, 1)]) for t in _times(8.0)]
    scene += [(8.0 + t, [Person(box, None, "absent")]) for t in _times(30.0)]
    found = _run(_pipeline(), scene)
    drown = [(t, f) for t, f in found if f.type == "drowning"]
    assert len(drown) == 1, _types(found)
    t, f = drown[0]
    last_seen = 7.5
    assert last_seen + 10.0 <= t <= last_seen + 11.0
    assert f.severity == "emergency" and f.state == "active" and f.snapshot
    assert f.attributes["rule"] == "disappeared"
    assert f.attributes["last_position"] == [165.0, 145.0]
    assert f.attributes["time_in_water_s"] == pytest.approx(7.5, abs=0.6)
    assert f.boxes == (box,)
    assert [g.type for _, g in found].count("water_danger_intrusion") == 1


def test_vanishing_without_frames_still_raises_drowning() -> None:
    box = (150.0, 120.0, 180.0, 170.0)
    scene = [(t, [Person(box, 1)]) for t in _times(5.0)]
    scene += [(5.0 + t, []) for t in _times(15.0)]
    found = _run(_pipeline(disappear_s=3), scene, frames=False)
    assert [f.attributes["rule"] for _, f in found if f.type == "drowning"] == ["disappeared"]


def test_surfacing_after_the_alarm_sends_an_update_on_the_same_incident() -> None:
    box = (150.0, 120.0, 180.0, 170.0)
    scene = [(t, [Person(box, 1)]) for t in _times(5.0)]
    scene += [(5.0 + t, []) for t in _times(6.0)]
    scene += [(11.0 + t, [Person(box, 9)]) for t in _times(3.0)]
    found = _run(_pipeline(disappear_s=4), scene)
    drown = [f for _, f in found if f.type == "drowning"]
    assert [f.state for f in drown] == ["active", "update"]
    assert drown[0].incident_key == drown[1].incident_key
    assert drown[1].attributes["reappeared"] is True


def test_swimmer_leaving_the_view_at_the_frame_edge_raises_no_drowning() -> None:
    scene = []
    for t in _times(40.0):
        x = 200.0 + 8.0 * t
        visible = x + 40.0 <= W
        scene.append(
            (t, [Person(_swimmer_box(x), 1 if visible else None, "calm" if visible else "absent")])
        )
    found = _run(_pipeline(), scene)
    assert "drowning" not in [f.type for _, f in found]


def test_person_standing_on_the_bank_raises_one_intrusion_and_no_drowning() -> None:
    box = (100.0, 20.0, 120.0, 70.0)  # feet on the bank
    scene = [
        (t, [Person(box, 1 + int(t // 20), "thrash")]) for t in _times(60.0)
    ]  # waving; tracker ids switch
    found = _run(_pipeline(), scene, start=NIGHT)
    assert _types(found) == [("water_danger_intrusion", "active")]
    f = found[0][1]
    assert f.severity == "urgent"
    assert f.attributes["count"] == 1 and f.attributes["in_water"] is False
    assert f.attributes["person_zone"] == "bank"


def test_struggling_in_one_place_raises_drowning_after_still_s() -> None:
    rng = np.random.default_rng(3)
    scene = []
    for t in _times(30.0):
        j = rng.uniform(-2.0, 2.0, size=4)
        box = (140.0 + j[0], 110.0 + j[1], 180.0 + j[2], 170.0 + j[3])
        scene.append((t, [Person(box, 1, "thrash")]))
    found = _run(_pipeline(), scene)
    drown = [(t, f) for t, f in found if f.type == "drowning"]
    assert len(drown) == 1, _types(found)
    t, f = drown[0]
    assert 15.0 <= t <= 17.0
    assert f.attributes["rule"] == "struggling"
    assert f.attributes["time_in_water_s"] >= 15.0


def test_calm_person_floating_in_place_is_not_struggling() -> None:
    box = (140.0, 110.0, 180.0, 170.0)
    found = _run(_pipeline(), [(t, [Person(box, 1, "calm")]) for t in _times(40.0)])
    assert "drowning" not in [f.type for _, f in found]


def test_fidgeting_where_nothing_around_moves_is_not_struggling() -> None:
    # the box's pixels change (a person gesturing) but the water around is undisturbed
    # (a zone drawn over dry ground, or someone wading calmly): not a struggle
    rng = np.random.default_rng(4)
    pipeline = _pipeline(still_s=5)
    out = []
    box = (140.0, 110.0, 180.0, 170.0)
    for i, t in enumerate(_times(30.0)):
        frame = _BG.copy()
        frame[110:170, 140:180] = rng.integers(0, 255, size=(60, 40, 3))
        obs = Observation(
            "pool1", i, t, DAY + timedelta(seconds=t), [Track(1, box, "person", 0.7)], frame, (W, H)
        )
        out.extend(pipeline.update(obs))
    assert [f.type for f in out if f.type == "drowning"] == []


def test_two_swimmers_crossing_keep_their_identities_and_nobody_drowns() -> None:
    scene = []
    for t in _times(30.0):
        a = Person(_swimmer_box(20.0 + 9.0 * t, 120.0), 1)
        b = Person(
            _swimmer_box(280.0 - 9.0 * t, 130.0), 2 if t < 15.0 else 3
        )  # id switch when they cross
        scene.append((t, [a, b]))
    found = _run(_pipeline(), scene, start=NIGHT)
    assert _types(found) == [("water_danger_intrusion", "active")] * 2
    assert found[-1][1].attributes["count"] == 2 and found[-1][1].attributes["in_water"] is True


def test_hours_window_limits_intrusions_not_drowning() -> None:
    box = (150.0, 120.0, 180.0, 170.0)
    scene = [(t, [Person(box, 1)]) for t in _times(5.0)]
    scene += [(5.0 + t, []) for t in _times(15.0)]
    night_only = {"hours": [["18:00", "06:00"]], "disappear_s": 5}
    day = _run(_pipeline(**night_only), scene, start=DAY)
    assert _types(day) == [("drowning", "active")]
    night = _run(_pipeline(**night_only), scene, start=NIGHT)
    assert _types(night) == [("water_danger_intrusion", "active"), ("drowning", "active")]
    evening = _run(_pipeline(hours=[["08:00", "11:00"], ["11:30", "12:30"]]), scene[:10], start=DAY)
    assert _types(evening) == [("water_danger_intrusion", "active")]


def test_options_validation_and_registry() -> None:
    with pytest.raises(ValidationError):
        Options.model_validate({"water_zone": "water", "disappear": 10})
    with pytest.raises(ValidationError, match="18:00"):
        Options.model_validate({"water_zone": "water", "hours": [["25:00", "06:00"]]})
    with pytest.raises(ValidationError):
        Options.model_validate({"water_zone": "water", "hours": [["18:00"]]})
    with pytest.raises(ValidationError):
        Options.model_validate({"water_zone": "water", "still_s": 0.5})
    opts = Options.model_validate({"water_zone": "water", "disappear_s": 1, "still_s": 1})
    assert (opts.disappear_s, opts.still_s, opts.hours) == (1.0, 1.0, "all")
    defaults = Options.model_validate({"water_zone": "water"})
    assert (defaults.disappear_s, defaults.still_s) == (10.0, 15.0)
    for name, info in Options.model_fields.items():
        assert info.description, f"option {name} has no description"
    assert options_models()["water_safety"] is Options
    pipeline = build_pipeline("water_safety", {"water_zone": "water", "bank_zone": "bank"}, CONTEXT)
    assert pipeline.needs_frames and pipeline.needs_detections and not pipeline.needs_every_frame
    with pytest.raises(KeyError, match="bank"):
        build_pipeline("water_safety", {"water_zone": "water", "bank_zone": "shore"}, CONTEXT)
