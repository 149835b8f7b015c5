"""Fire-lane and water-safety pipelines on real clips, through the node's own engine.

Each clip runs through ``edge.engine.CameraEngine`` (the real ONNX detector, the node's
tracker, the configured pipelines, at each camera's ``detect_fps``) with the demo configs ``configs/demo/fire_lane.yaml``
and ``configs/demo/water_safety.yaml`` — zones drawn for these clips, durations shortened
to a few seconds (the clips last 5–80 s). Expected answers:

* drowning_underwater.mp4 — a staged drowning: one ``drowning`` (struggling in place);
* swimming_underwater.mp4, pool_swimming_overwater.mp4 — swimmers: no ``drowning``;
* cars_parking_area_intel.mp4 — cars drive through the aisle: no ``fire_lane_blocked``;
* pedestrians_opencv_vtest.avi — walkers on a path and a lawn: nothing on the walkway lane,
  no drowning with the lawn drawn as water, no intrusion outside the night hours; the van
  and the car standing at the kerb: one alert each, never repeated.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from edge.engine import CameraEngine, EngineOptions, camera_context
from edge.pipeline_runner import build_detector
from edge.sources.video import VideoSource
from pipelines.base import CameraContext, Finding
from pipelines.registry import build_pipeline, options_models
from shaobing.config import CameraConfig, EdgeConfig, load_edge_config
from shaobing.paths import assets_dir, project_root
from shaobing.taxonomy import default_taxonomy

DEMO = project_root() / "configs" / "demo"
DAYTIME = datetime(2026, 7, 1, 11, 0, tzinfo=ZoneInfo("Asia/Shanghai"))


def _config(name: str) -> EdgeConfig:
    return load_edge_config(DEMO / name, options_models())


def _run(
    cfg: EdgeConfig,
    camera: CameraConfig,
    start: datetime = DAYTIME,
    from_s: float = 0.0,
    extra: dict[str, tuple[str, dict[str, object]]] | None = None,
) -> dict[str, list[tuple[float, Finding]]]:
    """Run one camera over its clip; findings per pipeline as (media time, finding).

    ``from_s`` skips the start of a long clip (frames are decoded, not detected);
    ``extra`` adds more pipeline instances fed by the same detector and tracker.
    """
    video = cfg.resolve(camera.url)
    assert Path(video).exists(), f"expected the clip at {video}"
    detector = build_detector(cfg)
    low = max(0.05, cfg.detector.confidence * 0.4)
    pipelines = None
    if extra:
        pipelines = {
            name: build_pipeline(name, options, camera_context(cfg, camera, default_taxonomy()))
            for name, options in camera.pipelines.items()
        }
        context = CameraContext(
            camera_id=camera.id,
            zones={k: [(float(x), float(y)) for x, y in v] for k, v in camera.zones.items()},
            timezone=cfg.timezone,
        )
        for label, (kind, options) in extra.items():
            pipelines[label] = build_pipeline(kind, options, context)
    engine = CameraEngine(
        cfg,
        camera,
        lambda _cam, image: detector.infer([image], confidence=low)[0],
        default_taxonomy(),
        start,
        cfg.detector.confidence,
        # the rules are measured at the configured detect_fps: no extra samples at zone
        # edges, no motion gate (its coasting would hold lost tracks), no clips or health
        options=EngineOptions(motion_gate=False, zone_band=0.0, clips=False, health=False),
        pipelines=pipelines,
    )
    out: dict[str, list[tuple[float, Finding]]] = {name: [] for name in engine.pipelines}
    last_t = 0.0
    for frame in VideoSource(str(video), loop=False, realtime=False).frames():
        if frame.t < from_s:
            continue
        last_t = frame.t
        for em in engine.process(frame):
            out[em.pipeline].append((em.media_t, em.finding))
    for em in engine.flush(last_t):
        out[em.pipeline].append((em.media_t, em.finding))
    return out


def _summary(found: list[tuple[float, Finding]]) -> list[str]:
    return [
        f"{t:.1f}s {f.type}/{f.state} {f.incident_key} {f.attributes.get('rule', '')}"
        for t, f in found
    ]


# --------------------------------------------------------------------------- water safety


@pytest.fixture(scope="module")
def water() -> EdgeConfig:
    return _config("water_safety.yaml")


def test_staged_drowning_underwater_raises_one_drowning(water: EdgeConfig) -> None:
    found = _run(water, water.camera("pool-underwater-a"))["water_safety"]
    drown = [(t, f) for t, f in found if f.type == "drowning" and f.state == "active"]
    assert len(drown) == 1, _summary(found)
    t, f = drown[0]
    assert f.severity == "emergency" and f.snapshot and f.boxes
    assert f.attributes["rule"] == "struggling"
    assert t <= 6.0  # still_s = 3 s in the demo config; the clip lasts 7.4 s
    assert [g.type for _, g in found].count("water_danger_intrusion") == 1


@pytest.mark.parametrize("camera_id", ["pool-underwater-b", "pool-overwater"])
def test_swimmers_raise_no_drowning(water: EdgeConfig, camera_id: str) -> None:
    found = _run(water, water.camera(camera_id))["water_safety"]
    assert [f for _, f in found if f.type == "drowning"] == [], _summary(found)
    intrusions = [f for _, f in found if f.type == "water_danger_intrusion"]
    assert intrusions, "a swimmer in the water is a person in the danger zone"
    assert all(f.attributes["in_water"] for f in intrusions)


# --------------------------------------------------------------------------- fire lane


def test_cars_driving_through_the_aisle_raise_nothing() -> None:
    cfg = _config("fire_lane.yaml")
    camera = cfg.camera("lot-aisle").model_copy(update={"detect_fps": 2.5})
    found = _run(cfg, camera)["fire_lane"]
    assert found == [], _summary(found)


def test_pedestrians_clip_negatives_and_the_parked_van_and_car(water: EdgeConfig) -> None:
    # one pass of the detector over the walkway clip feeds four pipelines:
    # fire lane on the kerb (a van and a car stand there all along), fire lane on the
    # walkway (pedestrians only), water safety with the lawn as water at night hours only
    # (the run is at 11:00) and the same with hours "all" (intrusions, but no drowning)
    lanes = _config("fire_lane.yaml")
    kerb = lanes.camera("campus-kerb")
    walkway = lanes.camera("campus-walkway")
    river = water.camera("riverside-walk")
    zones = {**kerb.zones, **walkway.zones, **river.zones}
    camera = kerb.model_copy(
        update={
            "zones": zones,
            "pipelines": {
                "fire_lane": kerb.pipelines["fire_lane"],
                "water_safety": river.pipelines["water_safety"],
            },
        }
    )
    extra: dict[str, tuple[str, dict[str, object]]] = {
        "fire_lane_walkway": ("fire_lane", dict(walkway.pipelines["fire_lane"])),
        "water_safety_all_hours": (
            "water_safety",
            {**river.pipelines["water_safety"], "hours": "all"},
        ),
    }
    found = _run(lanes, camera, from_s=38.0, extra=extra)

    kerb_found = found["fire_lane"]
    actives = [f for _, f in kerb_found if f.state == "active"]
    assert len(actives) == 2, _summary(kerb_found)
    assert len({f.incident_key for f in actives}) == 2
    for f in actives:
        assert f.attributes["class"] in {"car", "truck"} and f.snapshot
        cleared = [
            g for _, g in kerb_found if g.state == "cleared" and g.incident_key == f.incident_key
        ]
        assert len(cleared) == 1, _summary(kerb_found)

    assert found["fire_lane_walkway"] == [], _summary(found["fire_lane_walkway"])
    assert found["water_safety"] == [], _summary(found["water_safety"])
    all_hours = found["water_safety_all_hours"]
    assert [f for _, f in all_hours if f.type == "drowning"] == [], _summary(all_hours)
    assert len([f for _, f in all_hours if f.type == "water_danger_intrusion"]) >= 3


def test_demo_configs_point_at_the_shared_clips() -> None:
    for name in ("fire_lane.yaml", "water_safety.yaml"):
        cfg = _config(name)
        for camera in cfg.cameras:
            video = Path(cfg.resolve(camera.url)).resolve()
            assert video.parent == (assets_dir() / "video").resolve(), video
            assert video.exists()
