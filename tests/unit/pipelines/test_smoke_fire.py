"""Smoke/fire pipeline: real clips, synthetic look-alikes, the model path and options.

Real clips come from ``../shared/assets/video`` and are fed the way the node feeds a camera
with ``detect_fps=5``: one frame every 0.2 s of media time, the first 15 s of each clip.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import cv2
import numpy as np
import pytest
from pydantic import ValidationError

from pipelines.base import CameraContext, Finding, Observation, Track
from pipelines.registry import build_pipeline, options_models
from pipelines.smoke_fire import Options, SmokeFire, build, flame_mask
from shaobing.config import ConfigError, load_edge_config
from shaobing.paths import assets_dir
from tests.synth import fire_scenes

T0 = datetime(2026, 5, 1, 20, 0, tzinfo=UTC)
SEVERITY = {"fire": "emergency", "smoke": "urgent"}
VIDEO = assets_dir() / "video"


def _context(zones: dict[str, list[tuple[float, float]]] | None = None) -> CameraContext:
    return CameraContext(camera_id="cam1", zones=zones or {}, default_severity=dict(SEVERITY))


def _pipeline(
    zones: dict[str, list[tuple[float, float]]] | None = None, **options: object
) -> SmokeFire:
    return build(Options.model_validate(options), _context(zones))


def _obs(
    i: int,
    t: float,
    frame: np.ndarray | None,
    tracks: list[Track] | None = None,
    size: tuple[int, int] = (0, 0),
) -> Observation:
    if frame is not None:
        size = (frame.shape[1], frame.shape[0])
    return Observation("cam1", i, t, T0 + timedelta(seconds=t), tracks, frame, size)


def _run_frames(
    p: SmokeFire, frames: Iterable[np.ndarray], fps: float = 5.0
) -> list[tuple[float, Finding]]:
    out: list[tuple[float, Finding]] = []
    for i, frame in enumerate(frames):
        t = i / fps
        out.extend((t, f) for f in p.update(_obs(i, t, frame)))
    return out


def _sampled(
    path: Path, every_s: float = 0.2, max_s: float = 15.0
) -> Iterator[tuple[float, np.ndarray]]:
    """Frames of a clip at detect_fps sampling, by media time (the node's way)."""
    cap = cv2.VideoCapture(str(path))
    assert cap.isOpened(), f"cannot open {path}"
    fps = cap.get(cv2.CAP_PROP_FPS) or 25.0
    i, next_t = 0, 0.0
    try:
        while True:
            t = i / fps
            if t > max_s:
                break
            if t + 1e-9 < next_t:
                if not cap.grab():
                    break
                i += 1
                continue
            ok, frame = cap.read()
            if not ok:
                break
            i += 1
            next_t += every_s
            yield t, frame
    finally:
        cap.release()


def _run_clip(name: str) -> list[tuple[float, Finding]]:
    path = VIDEO / name
    if not path.exists():
        pytest.skip(f"asset {path} not present")
    p = _pipeline()
    out: list[tuple[float, Finding]] = []
    for i, (t, frame) in enumerate(_sampled(path)):
        out.extend((t, f) for f in p.update(_obs(i, t, frame)))
    return out


# --------------------------------------------------------------------------- real clips

# clip → second from which flame or smoke is visible (checked on the frames)
POSITIVE_CLIPS = {
    "fire_bonfire_outdoor.mp4": 0.0,
    "fire_smoke_small_flame_night.mp4": 0.5,
    "fire_indoor_room.mp4": 0.0,
}
NEGATIVE_CLIPS = [
    "pedestrians_opencv_vtest.avi",
    "cars_parking_area_intel.mp4",
    "people_indoor_intel_one_by_one.mp4",
    "pool_swimming_overwater.mp4",
    "swimming_underwater.mp4",
    "drowning_underwater.mp4",
]


@pytest.mark.parametrize("clip", sorted(POSITIVE_CLIPS))
def test_real_fire_clip_raises_event_within_5s(clip: str) -> None:
    findings = _run_clip(clip)
    active = [(t, f) for t, f in findings if f.state == "active"]
    assert active, f"{clip}: no fire/smoke event in the first 15 s"
    t, first = active[0]
    assert t <= POSITIVE_CLIPS[clip] + 5.0, f"{clip}: first event at {t:.1f} s"
    assert t >= 2.0 - 1e-6, "an event needs at least 2 s of evidence"
    assert first.type in ("fire", "smoke")
    assert first.severity == SEVERITY[first.type]
    assert first.attributes["detector"] == "classical"
    assert first.incident_key.startswith("cam1/smoke_fire/")
    x1, y1, x2, y2 = first.attributes["region"]
    assert 0 <= x1 < x2 and 0 <= y1 < y2 and first.boxes
    # one situation per type: later findings for a type reuse its key
    keys = {f.type: f.incident_key for _, f in active}
    for _, f in findings:
        assert f.incident_key == keys.get(f.type, f.incident_key)


@pytest.mark.parametrize("clip", NEGATIVE_CLIPS)
def test_real_clip_without_fire_raises_nothing(clip: str) -> None:
    findings = _run_clip(clip)
    assert findings == [], f"{clip}: false events {[(round(t, 1), f.type) for t, f in findings]}"


def _run_clip_with(name: str, max_s: float, **options: object) -> list[tuple[float, Finding]]:
    p = _pipeline(**options)
    out: list[tuple[float, Finding]] = []
    for i, (t, frame) in enumerate(_sampled(VIDEO / name, max_s=max_s)):
        out.extend((t, f) for f in p.update(_obs(i, t, frame)))
    return out


def test_thin_smoke_at_night_is_one_smoke_incident_within_10s() -> None:
    # a small flame at night with a thin grey plume rising from it, visible from 2 s on
    found = _run_clip_with("fire_smoke_small_flame_night.mp4", max_s=30.0)
    smoke = [(t, f) for t, f in found if f.type == "smoke"]
    assert smoke and smoke[0][1].state == "active", found
    assert smoke[0][0] <= 2.0 + 10.0, smoke[0][0]
    assert [f.state for _, f in smoke if f.state != "update"] == ["active"]  # one incident
    # the plume rises up and to the right of the flame (x 365–440, y 326–384), not its glow
    x1, y1, x2, y2 = smoke[0][1].attributes["region"]
    assert x1 >= 400 and y2 <= 326, (x1, y1, x2, y2)
    # the constants alone (the former detector) miss it
    before = _run_clip_with(
        "fire_smoke_small_flame_night.mp4",
        max_s=30.0,
        smoke_dark_diff=14,
        smoke_dark_soft=0.0,
        smoke_hold_background=1.0,
        smoke_max_saturation=1.0,
    )
    assert [f for _, f in before if f.type == "smoke"] == []


# --------------------------------------------------------------------------- synthetic scenes


@pytest.mark.parametrize("name", sorted(fire_scenes.POSITIVES))
@pytest.mark.parametrize("seed", [0, 1])
def test_synthetic_positive(name: str, seed: int) -> None:
    scene, kind, onset = fire_scenes.POSITIVES[name]
    findings = _run_frames(_pipeline(), scene(seed=seed))
    hits = [(t, f) for t, f in findings if f.type == kind and f.state == "active"]
    assert hits, f"{name}: no {kind} event; got {[(t, f.type) for t, f in findings]}"
    t = hits[0][0]
    assert onset + 2.0 - 1e-6 <= t <= onset + 5.0


@pytest.mark.parametrize("name", sorted(fire_scenes.DISTRACTORS))
@pytest.mark.parametrize("seed", [0, 1])
def test_synthetic_distractor_raises_nothing(name: str, seed: int) -> None:
    findings = _run_frames(_pipeline(), fire_scenes.DISTRACTORS[name](seed=seed))
    assert findings == [], f"{name}: {[(round(t, 1), f.type, f.state) for t, f in findings]}"


def test_global_changes_are_left_to_camera_health() -> None:
    p = _pipeline()
    assert _run_frames(p, fire_scenes.fade_to_black(seed=3)) == []
    assert p.global_changes > 0


@pytest.mark.parametrize("fps", [2.5, 5.0, 12.5])
def test_flame_found_at_other_sampling_rates(fps: float) -> None:
    frames = fire_scenes.flame(seed=4, seconds=6.0, fps=fps)
    findings = _run_frames(_pipeline(), frames, fps=fps)
    fire = [t for t, f in findings if f.type == "fire" and f.state == "active"]
    assert fire and 3.0 - 1e-6 <= fire[0] <= 6.0


def test_flame_mask_rejects_grey_and_blue_and_keeps_flame_colours() -> None:
    img = np.zeros((4, 4, 3), np.uint8)
    img[0, 0] = (30, 160, 255)  # orange flame (BGR)
    img[0, 1] = (180, 250, 255)  # yellow-white core next to it
    img[1, 0] = (200, 200, 200)  # grey
    img[1, 1] = (255, 120, 40)  # blue
    mask = flame_mask(img)
    assert mask[0, 0] and mask[0, 1]
    assert not mask[1, 0] and not mask[1, 1]


def test_grey_and_bgra_frames_are_accepted() -> None:
    frames = fire_scenes.flame(seed=0, seconds=3.0)
    grey = [cv2.cvtColor(f, cv2.COLOR_BGR2GRAY) for f in frames]
    assert _run_frames(_pipeline(), grey) == []  # no colour, no flame
    bgra = [cv2.cvtColor(f, cv2.COLOR_BGR2BGRA) for f in fire_scenes.flame(seed=0)]
    assert any(f.type == "fire" for _, f in _run_frames(_pipeline(), bgra))


def test_zone_limits_the_watched_area() -> None:
    frames = fire_scenes.flame(seed=0)
    w, h = frames[0].shape[1], frames[0].shape[0]
    far = {"far": [(0.0, 0.0), (20.0, 0.0), (20.0, 20.0), (0.0, 20.0)]}
    assert _run_frames(_pipeline(far, zone="far"), frames) == []
    whole = {"all": [(0.0, 0.0), (float(w), 0.0), (float(w), float(h)), (0.0, float(h))]}
    findings = _run_frames(_pipeline(whole, zone="all"), frames)
    assert findings and findings[0][1].zone == "all" and findings[0][1].attributes["zone"] == "all"


# --------------------------------------------------------------------------- lifecycle


def _fire_track(
    box: tuple[float, float, float, float], conf: float = 0.8, cls: str = "fire"
) -> Track:
    return Track(track_id=1, xyxy=box, class_name=cls, confidence=conf)


def _run_tracks(
    p: SmokeFire, boxes: list[list[Track]], fps: float = 5.0
) -> list[tuple[float, Finding]]:
    out: list[tuple[float, Finding]] = []
    for i, tracks in enumerate(boxes):
        t = i / fps
        out.extend((t, f) for f in p.update(_obs(i, t, None, tracks, size=(640, 360))))
    return out


def test_model_detections_are_confirmed_then_updated_then_cleared() -> None:
    p = _pipeline(model="fire_smoke", classical=False, clear_s=3.0)
    assert p.needs_detections and not p.needs_frames and not p.needs_every_frame
    seq: list[list[Track]] = []
    for i in range(75):  # 15 s: small fire for 4 s, then fourfold for 4 s, then gone
        if i < 20:
            seq.append([_fire_track((300, 200, 340, 240))])
        elif i < 40:
            seq.append([_fire_track((280, 160, 380, 260))])
        else:
            seq.append([])
    findings = _run_tracks(p, seq)
    states = [(f.state, f.type) for _, f in findings]
    assert states[0] == ("active", "fire")
    assert ("update", "fire") in states
    assert states[-1] == ("cleared", "fire")
    t_active = findings[0][0]
    assert 2.0 - 1e-6 <= t_active <= 3.0
    first = findings[0][1]
    assert first.attributes["detector"] == "fire_smoke"
    assert first.severity == "emergency"
    assert first.attributes["region"][0] >= 290 and first.attributes["region"][2] <= 350
    update = next(f for _, f in findings if f.state == "update")
    assert update.attributes["area_ratio"] >= 1.5
    assert len({f.incident_key for _, f in findings}) == 1


def test_model_smoke_class_and_flicker_free_confirmation() -> None:
    p = _pipeline(model="fire_smoke", classical=False)
    seq = [
        [Track(track_id=7, xyxy=(100, 50, 200, 150), class_name="smoke", confidence=0.6)]
        for _ in range(20)
    ]
    findings = _run_tracks(p, seq)
    assert [(f.type, f.state, f.severity) for _, f in findings] == [("smoke", "active", "urgent")]


def test_model_detections_that_do_not_persist_raise_nothing() -> None:
    p = _pipeline(model="fire_smoke", classical=False)
    # flickering detector output: one sample in three, and weak or foreign boxes
    seq: list[list[Track]] = []
    for i in range(40):
        tracks = [
            _fire_track((10, 10, 60, 60), conf=0.2),
            _fire_track((400, 10, 450, 60), cls="person"),
        ]
        if i % 3 == 0:
            tracks.append(_fire_track((300, 200, 340, 240)))
        seq.append(tracks)
    assert _run_tracks(p, seq) == []


def test_model_detections_of_a_moving_object_raise_nothing() -> None:
    p = _pipeline(model="fire_smoke", classical=False)
    seq = [[_fire_track((i * 20.0, 100, i * 20.0 + 30, 130))] for i in range(30)]
    assert _run_tracks(p, seq) == []


def test_classical_fire_is_cleared_when_gone() -> None:
    frames = fire_scenes.flame(seed=5, seconds=5.0)
    bg = frames[0]
    findings = _run_frames(_pipeline(clear_s=4.0), frames + [bg] * 40)  # then 8 s without flame
    states = [(round(t, 1), f.type, f.state) for t, f in findings]
    assert [s[1:] for s in states] == [("fire", "active"), ("fire", "cleared")], states
    t_cleared = findings[-1][0]
    assert 5.0 + 4.0 - 1e-6 <= t_cleared <= 5.0 + 4.0 + 3.0
    assert findings[0][1].incident_key == findings[-1][1].incident_key
    assert findings[-1][1].snapshot is False


def test_flush_clears_open_situations() -> None:
    p = _pipeline()
    findings = _run_frames(p, fire_scenes.flame(seed=2))
    assert [f.state for _, f in findings][:1] == ["active"]
    cleared = p.flush(T0 + timedelta(seconds=60))
    assert [(f.state, f.type) for f in cleared] == [("cleared", "fire")]
    assert cleared[0].incident_key == findings[0][1].incident_key
    assert p.flush(T0) == []


# --------------------------------------------------------------------------- options


def test_options_defaults_and_registry() -> None:
    assert "smoke_fire" in options_models()
    p = build_pipeline("smoke_fire", {}, _context())
    assert isinstance(p, SmokeFire)
    assert p.needs_frames and not p.needs_detections and not p.needs_every_frame
    assert p.fire_severity == "emergency" and p.smoke_severity == "urgent"
    for name, field in Options.model_fields.items():
        assert field.description, f"option {name} has no description"


@pytest.mark.parametrize(
    "bad",
    [
        {"unknown": 1},
        {"detect_fire": False, "detect_smoke": False},
        {"classical": False},
        {"confirm_s": 5.0, "window_s": 3.0},
        {"fire_severity": "high"},
        {"persist_ratio": 0.0},
        {"work_width": 10},
    ],
)
def test_options_rejects(bad: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        Options.model_validate(bad)


def test_unknown_zone_is_an_error() -> None:
    with pytest.raises(KeyError, match="nowhere"):
        _pipeline({"a": [(0, 0), (1, 0), (1, 1)]}, zone="nowhere")


def test_edge_config_validates_smoke_fire(tmp_path: Path) -> None:
    good = tmp_path / "edge.yaml"
    good.write_text(
        "node_id: n1\ncameras:\n  - id: c1\n    url: x.mp4\n    pipelines:\n      smoke_fire: {}\n",
        encoding="utf-8",
    )
    load_edge_config(good, options_models())
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "node_id: n1\ncameras:\n  - id: c1\n    url: x.mp4\n    zones:\n      yard: [[0, 0], [10, 0], [10, 10]]\n"
        "    pipelines:\n      smoke_fire:\n        zone: roof\n        flicker_min: -1\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as exc:
        load_edge_config(bad, options_models())
    text = str(exc.value)
    assert "smoke_fire.flicker_min" in text and ":10" in text
    bad.write_text(
        bad.read_text(encoding="utf-8").replace("        flicker_min: -1\n", ""), encoding="utf-8"
    )
    with pytest.raises(ConfigError, match="expected a zone of this camera"):
        load_edge_config(bad, options_models())
