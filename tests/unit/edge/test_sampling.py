"""Smarter sampling: motion crops, still keep-alives skipped, the rate from the pipelines."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest

from edge.detector.runtime import AtScale, Detections, letterbox
from edge.engine import CameraEngine, EngineOptions
from edge.sampling import Sampler, SamplingOptions, detect_fps
from edge.sources.video import Frame
from pipelines.base import Track
from shaobing.config import EdgeConfig
from shaobing.taxonomy import default_taxonomy


def _track(xyxy: tuple[float, float, float, float], v: tuple[float, float] = (0.0, 0.0)) -> Track:
    return Track(1, xyxy, "person", 0.9, 5.0, v, 0.0)


# ------------------------------------------------------------------ rate from the pipelines


def test_rate_from_pipelines_only_when_detect_fps_is_unset() -> None:
    on = SamplingOptions(rate_from_pipelines=True)
    assert detect_fps(5.0, False, ["fire_lane"], on) == 1.0
    assert detect_fps(5.0, False, ["fire_lane", "water_safety"], on) == 5.0
    assert detect_fps(5.0, False, ["zone_intrusion"], on) == 5.0
    assert detect_fps(5.0, False, ["some_new_pipeline"], on) == 5.0  # unknown: the default
    assert detect_fps(3.0, True, ["fire_lane"], on) == 3.0  # set in the config: kept
    assert detect_fps(5.0, False, ["fire_lane"], SamplingOptions()) == 5.0  # off


def test_engine_takes_the_pipelines_rate_from_config() -> None:
    cam = {
        "id": "lane",
        "url": "x.mp4",
        "zones": {"lane": [[0, 0], [100, 0], [100, 100]]},
        "pipelines": {"fire_lane": {"zone": "lane"}},
    }
    for sampling, explicit, want in (
        ({"rate_from_pipelines": True}, {}, 1.0),
        ({"rate_from_pipelines": True}, {"detect_fps": 4.0}, 4.0),
        ({}, {}, 5.0),
    ):
        cfg = EdgeConfig.model_validate(
            {"node_id": "n", "cameras": [{**cam, **explicit, "sampling": sampling}]}
        )
        eng = CameraEngine(cfg, cfg.cameras[0], None, default_taxonomy(), datetime.now(UTC))
        assert eng.detect_fps == want
        assert eng.period == pytest.approx(1.0 / want)


# ------------------------------------------------------------------ still keep-alives


def test_keepalive_skipped_only_when_quiet_still_and_recent() -> None:
    s = Sampler(SamplingOptions(skip_still_keepalive=True, still_keepalive_s=15.0))
    still = [_track((10, 10, 50, 90), (0.5, 0.0))]
    assert not s.skip_keepalive(3.0, still, True)  # nothing detected yet
    s.note_detection(1.0)
    assert s.skip_keepalive(4.0, still, True)
    assert s.skip_keepalive(4.0, [], True)  # an empty scene is still too
    assert not s.skip_keepalive(4.0, still, False)  # the gate saw motion
    assert not s.skip_keepalive(4.0, [_track((10, 10, 50, 90), (30.0, 0.0))], True)  # walking
    assert not s.skip_keepalive(16.0, still, True)  # one at least every still_keepalive_s
    assert s.stats.keepalives_skipped == 2
    assert not Sampler(SamplingOptions()).skip_keepalive(4.0, still, True)  # off


# ------------------------------------------------------------------ crop


def test_region_is_the_moving_part_with_the_tracks_or_none() -> None:
    s = Sampler(SamplingOptions(crop=True, crop_max_area=0.35, crop_margin=0.25))
    shape = (360, 640, 3)
    r = s.region(shape, (300, 100, 340, 180), [])
    assert r is not None
    x1, y1, x2, y2 = r
    assert x1 < 300 and y1 < 100 and x2 > 340 and y2 > 180  # with a margin
    assert (x2 - x1) * (y2 - y1) < 0.35 * 640 * 360
    # a live track elsewhere widens the region to keep it in view
    r2 = s.region(shape, (300, 100, 340, 180), [_track((400, 200, 440, 300))])
    assert r2 is not None and r2[2] > 440 and r2[3] > 300
    # large motion, no motion, or crop off: the whole frame
    assert s.region(shape, (0, 0, 600, 350), []) is None
    assert s.region(shape, None, []) is None
    assert Sampler(SamplingOptions()).region(shape, (300, 100, 340, 180), []) is None


def test_crop_keeps_the_whole_frames_scale_and_maps_boxes_back() -> None:
    s = Sampler(SamplingOptions(crop=True), input_size=640)
    image = np.zeros((720, 1280, 3), np.uint8)  # scale 0.5 into the 640 input
    crop, undo = s.detector_input(image, (600, 300, 680, 460), [])
    assert undo is not None and isinstance(crop, AtScale)
    x0, y0 = undo.x0, undo.y0
    # the crop is at half scale: its size is half the region's
    region = s.region(image.shape, (600, 300, 680, 460), [])
    assert region is not None
    assert crop.shape[:2] == (
        round((region[3] - region[1]) * 0.5),
        round((region[2] - region[0]) * 0.5),
    )
    # letterboxed without resizing: only padded to a multiple of 32
    blob, info = letterbox(crop, 640, stride=32)
    assert info.scale == 1.0
    assert (
        blob.shape[1] == -(-crop.shape[0] // 32) * 32
        and blob.shape[2] == -(-crop.shape[1] // 32) * 32
    )
    # a box in crop pixels lands at the source pixels it came from
    dets = Detections(
        np.array([[10, 20, 30, 60]], np.float32),
        np.ones(1, np.float32),
        np.zeros(1, np.int32),
        ("person",),
    )
    back = undo(dets)
    assert back.xyxy[0].tolist() == pytest.approx([x0 + 20, y0 + 40, x0 + 60, y0 + 120])
    assert s.stats.cropped == 1 and 0 < s.stats.crop_pixels < 0.2 * s.stats.full_pixels


def _scene(t: int) -> np.ndarray:
    """A dark room with a textured wall and a bright person-sized block walking right."""
    img = np.full((360, 640, 3), 40, np.uint8)
    img[::8, :, :] = 60
    x = 100 + 8 * t
    img[150:270, x : x + 40] = 230
    return img


def _bright_box(_cam: str, image: np.ndarray) -> Detections:
    """A fake detector: the box of the bright pixels of whatever image it is given."""
    ys, xs = np.nonzero(np.asarray(image)[:, :, 0] > 200)
    if len(xs) == 0:
        return Detections.empty(("person",))
    box = np.array([[xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]], np.float32)
    return Detections(box, np.array([0.9], np.float32), np.zeros(1, np.int32), ("person",))


def test_engine_detects_on_the_crop_and_tracks_in_frame_pixels() -> None:
    cfg = EdgeConfig.model_validate(
        {
            "node_id": "n",
            "cameras": [
                {
                    "id": "room",
                    "url": "x.mp4",
                    "detect_fps": 10.0,
                    "zones": {"door": [[500, 100], [640, 100], [640, 360], [500, 360]]},
                    "pipelines": {"zone_intrusion": {"zone": "door", "classes": ["person"]}},
                    "sampling": {"crop": True, "crop_max_area": 0.6},
                }
            ],
        }
    )
    shapes: list[tuple[int, ...]] = []

    def detect(cam: str, image: np.ndarray) -> Detections:
        shapes.append(image.shape)
        return _bright_box(cam, image)

    eng = CameraEngine(
        cfg,
        cfg.cameras[0],
        detect,
        default_taxonomy(),
        datetime.now(UTC),
        options=EngineOptions(health=False, clips=False),
    )
    for t in range(30):
        eng.process(Frame(t, t / 10.0, _scene(t), 0.0))
    assert eng.sampler.stats.cropped > 5
    assert any(s[1] < 320 for s in shapes)  # crops, not whole frames
    (track,) = eng.last_tracks
    x1, y1, x2, y2 = track.xyxy
    last = 100 + 8 * 29
    assert abs(x1 - last) <= 16 and abs(y1 - 150) <= 4 and abs(y2 - 270) <= 4
