"""A camera is assembled whole: typed options kept from load, extra models resolved and
shared, detector hooks given at construction, and the detector behind a protocol."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edge.assembly import DetectorHooks, assemble_camera, camera_confidence, pipeline_options
from edge.detector.protocol import Detector, PackingDetector
from edge.detector.runtime import Detections, OnnxDetector
from edge.engine import Frame
from edge.extra_models import ExtraModelAdapter, ExtraModels
from pipelines.registry import options_models
from shaobing.config import EdgeConfig, ExtraModelConfig, load_edge_config
from shaobing.taxonomy import default_taxonomy
from tests.support.processes import write_yaml
from tests.unit.edge.test_detector import const_model

T0 = datetime(2026, 6, 1, tzinfo=UTC)
ZONE = [[0, 0], [640, 0], [640, 360], [0, 360]]


def _config(tmp_path: Path, cameras: list[dict[str, Any]], **extra: Any) -> Path:
    return write_yaml(tmp_path / "edge.yaml", {"node_id": "n1", "cameras": cameras, **extra})


def _pool(cam_id: str, **water: Any) -> dict[str, Any]:
    return {
        "id": cam_id,
        "url": "x.mp4",
        "zones": {"water": ZONE, "bank": ZONE},
        "pipelines": {"water_safety": {"water_zone": "water", "bank_zone": "bank", **water}},
    }


def test_options_validated_at_load_are_the_ones_the_pipelines_get(tmp_path: Path) -> None:
    cfg = load_edge_config(_config(tmp_path, [_pool("cam1", still_s=7)]), options_models())
    cam = cfg.cameras[0]
    kept = cam.typed_options("water_safety")
    assert kept is not None and kept.still_s == 7  # type: ignore[attr-defined]
    assert pipeline_options(cam)["water_safety"] is kept  # not validated a second time
    parts = assemble_camera(
        cfg, cam, default_taxonomy(), offline=False, extra_models=ExtraModels(cfg)
    )
    assert parts.options["water_safety"] is kept
    assert parts.pipelines["water_safety"].options is kept  # type: ignore[attr-defined]


def test_changed_options_are_validated_again_not_taken_from_the_load(tmp_path: Path) -> None:
    cfg = load_edge_config(_config(tmp_path, [_pool("cam1", still_s=7)]), options_models())
    cam = cfg.cameras[0]
    changed = cam.model_copy(
        update={"pipelines": {"water_safety": {**cam.pipelines["water_safety"], "still_s": 9}}}
    )
    assert changed.typed_options("water_safety") is None
    assert pipeline_options(changed)["water_safety"].still_s == 9  # type: ignore[attr-defined]
    assert cam.typed_options("water_safety") is not None  # the loaded one is untouched


def test_only_a_written_min_confidence_lowers_the_track_start(tmp_path: Path) -> None:
    path = _config(tmp_path, [_pool("default"), _pool("lowered", min_confidence=0.15)])
    cfg = load_edge_config(path, options_models())
    default, lowered = cfg.cameras
    # water_safety's own default (0.2) is not a request of this camera's config
    assert camera_confidence(cfg, default) == cfg.detector.confidence
    assert camera_confidence(cfg, lowered) == pytest.approx(0.15)
    parts = assemble_camera(
        cfg, lowered, default_taxonomy(), offline=True, extra_models=ExtraModels(cfg)
    )
    assert parts.detect_confidence == pytest.approx(0.06)


def test_an_extra_model_is_loaded_once_for_every_camera_that_names_it(tmp_path: Path) -> None:
    rows = np.array([[32, 40, 20, 24, 0.92, 0.05]], dtype=np.float32)
    model = const_model(tmp_path, rows, "yolov8")
    fire = {"smoke_fire": {"model": "fire_smoke", "classical": False}}
    path = _config(
        tmp_path,
        [{"id": c, "url": "x.mp4", "pipelines": fire} for c in ("cam1", "cam2")],
        detector={"extra_models": [{"name": "fire_smoke", "model": str(model)}]},
    )
    cfg = load_edge_config(path, options_models())
    loaded: list[str] = []

    def load(spec: ExtraModelConfig) -> Detector:
        loaded.append(spec.name)
        return OnnxDetector(spec.model, class_names=["fire", "smoke"])

    extra = ExtraModels(cfg, load)
    parts = [
        assemble_camera(cfg, c, default_taxonomy(), offline=False, extra_models=extra)
        for c in cfg.cameras
    ]
    assert loaded == ["fire_smoke"]
    adapters = [p.pipelines["smoke_fire"] for p in parts]
    assert all(isinstance(a, ExtraModelAdapter) for a in adapters)
    assert adapters[0].detector is adapters[1].detector  # type: ignore[attr-defined]
    assert not any(p.needs_detections for p in parts)  # the main detector is not started


def test_the_engine_is_built_with_its_hooks_and_pipelines(tmp_path: Path) -> None:
    cfg = load_edge_config(_config(tmp_path, [_pool("cam1")]), options_models())
    parts = assemble_camera(
        cfg, cfg.cameras[0], default_taxonomy(), offline=True, extra_models=ExtraModels(cfg)
    )
    asked: list[str] = []

    def detect(camera_id: str, image: np.ndarray) -> Detections:
        asked.append(camera_id)
        return Detections.empty()

    engine = parts.build(T0, DetectorHooks(detect=detect))
    assert engine.detect is detect and engine.submit is None
    assert engine.pipelines == dict(parts.pipelines)
    assert engine.options.clips is False  # offline: no clips
    engine.process(Frame(index=0, t=0.0, image=np.zeros((360, 640, 3), np.uint8), wall=0.0))
    assert asked == ["cam1"]


def test_an_unknown_pipeline_in_a_config_made_in_code_is_refused() -> None:
    from shaobing.config import CameraConfig

    cam = CameraConfig(id="c", url="x.mp4", pipelines={"no_such_pipeline": {}})
    cfg = EdgeConfig(node_id="n1", cameras=[cam])
    with pytest.raises(KeyError, match="no_such_pipeline"):
        assemble_camera(cfg, cam, default_taxonomy(), offline=True, extra_models=ExtraModels(cfg))


def test_the_onnx_detector_is_a_packing_detector(tmp_path: Path) -> None:
    rows = np.array([[32, 40, 20, 24, 0.92, 0.05, 0.01]], dtype=np.float32)
    det = OnnxDetector(const_model(tmp_path, rows, "yolov8"))
    assert isinstance(det, Detector) and isinstance(det, PackingDetector)

    class Plain:
        name = "plain"
        class_names = ("person",)
        parallel = 1

        def infer(
            self, images: list[np.ndarray], confidence: float | None = None, classes: Any = None
        ) -> list[Detections]:
            return [Detections.empty(self.class_names) for _ in images]

    assert isinstance(Plain(), Detector) and not isinstance(Plain(), PackingDetector)
