"""Photo reports: the detector's objects and visible flame become type hints (real model,
real frames from the shared videos)."""

from __future__ import annotations

from collections.abc import Iterator

import cv2
import numpy as np
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from edge.detector.runtime import OnnxDetector
from edge.reports import load_context
from edge.reports.endpoint import build_router
from edge.reports.photo_hints import combine, flame_share, photo_hints
from shaobing.config import EdgeConfig
from shaobing.models import resolve_model
from shaobing.paths import assets_dir
from tests.unit.edge.test_reports_endpoint import Store

VIDEO = assets_dir() / "video"


def frame(name: str, index: int) -> np.ndarray:
    cap = cv2.VideoCapture(str(VIDEO / name))
    cap.set(cv2.CAP_PROP_POS_FRAMES, index)
    ok, image = cap.read()
    cap.release()
    assert ok
    return image


def jpeg(image: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".jpg", image)
    assert ok
    return buf.tobytes()


@pytest.fixture(scope="module")
def detector() -> OnnxDetector:
    return OnnxDetector(resolve_model("yolov5n"), threads=1)


@pytest.fixture()
def app(detector: OnnxDetector) -> Iterator[tuple[TestClient, Store]]:
    store = Store()
    api = FastAPI()
    cfg = EdgeConfig(node_id="edge-test", grid_id="beibei-tianfu-01")
    api.include_router(build_router(cfg, store, context=load_context(), detector=lambda: detector))
    with TestClient(api) as client:
        yield client, store


def test_flame_colour_separates_fire_from_ordinary_scenes() -> None:
    assert flame_share(frame("fire_indoor_room.mp4", 60)) >= 0.006
    assert flame_share(frame("fire_bonfire_outdoor.mp4", 150)) >= 0.006
    for name in (
        "pedestrians_opencv_vtest.avi",
        "cars_parking_area_intel.mp4",
        "people_indoor_intel_one_by_one.mp4",
    ):
        assert flame_share(frame(name, 100)) < 0.006, name


def test_vehicles_in_the_photo_suggest_a_blocked_fire_lane(detector: OnnxDetector) -> None:
    hints = photo_hints(
        [frame("pedestrians_opencv_vtest.avi", 0)], lambda img: detector.infer([img])[0]
    )
    assert hints.objects.get("car", 0) >= 1
    assert hints.types == ("fire_lane_blocked",)


def test_clear_words_win_and_photos_only_add_candidates() -> None:
    from edge.reports.photo_hints import PhotoHints

    hints = PhotoHints(objects={"car": 1}, types=("fire_lane_blocked",))
    assert combine("noise", ["noise"], False, True, hints) == (
        "noise",
        ["noise", "fire_lane_blocked"],
        False,
    )
    assert combine("other", ["other"], True, True, hints)[0] == "fire_lane_blocked"
    primary, _, unsure = combine("other", [], True, False, hints)
    assert (
        primary == "fire_lane_blocked" and unsure is True
    )  # a photo alone is confirmed by a person


def test_photo_only_report_of_a_fire_is_a_fire_event(app: tuple[TestClient, Store]) -> None:
    client, store = app
    r = client.post(
        "/api/v1/reports",
        data={"worker_id": "w-1"},
        files={"photos": ("fire.jpg", jpeg(frame("fire_indoor_room.mp4", 60)), "image/jpeg")},
    )
    assert r.status_code == 202, r.text
    event, _ = store.items[-1]
    assert event.type == "fire" and event.severity == "emergency"
    assert event.attributes["needs_confirmation"] is True
    assert event.attributes["photo_hints"]["types"][0] == "fire"


def test_photo_with_vague_words_takes_the_photo_hint(app: tuple[TestClient, Store]) -> None:
    client, store = app
    r = client.post(
        "/api/v1/reports",
        data={"text": "这里有情况，请看照片", "worker_id": "w-1"},
        files={"photos": ("car.jpg", jpeg(frame("pedestrians_opencv_vtest.avi", 0)), "image/jpeg")},
    )
    assert r.status_code == 202, r.text
    event, _ = store.items[-1]
    assert event.type == "fire_lane_blocked"
    assert "car" in event.attributes["photo_hints"]["objects"]


def test_nothing_at_all_is_still_refused(app: tuple[TestClient, Store]) -> None:
    client, _ = app
    r = client.post("/api/v1/reports", data={"worker_id": "w-1"})
    assert r.status_code == 422
