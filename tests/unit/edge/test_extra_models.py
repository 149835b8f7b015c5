"""detector.extra_models: a fire/smoke YOLO model plugs into smoke_fire through the same runtime
and the same temporal confirmation (a constant ONNX graph stands in for trained weights)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from edge.assembly import DetectorHooks, assemble_camera
from edge.engine import CameraEngine, Frame
from edge.extra_models import ExtraModelAdapter, ExtraModels
from shaobing.config import EdgeConfig, load_edge_config
from shaobing.taxonomy import default_taxonomy
from tests.support.processes import write_yaml
from tests.unit.edge.test_detector import const_model


def fire_model(tmp_path: Path) -> Path:
    # yolov8 layout, input 64×64, classes [fire, smoke]: one confident fire box in the middle
    rows = np.array([[32, 40, 20, 24, 0.92, 0.05], [10, 10, 4, 4, 0.01, 0.02]], dtype=np.float32)
    return const_model(tmp_path, rows, "yolov8")


def config(tmp_path: Path, model_ref: str) -> Path:
    return write_yaml(
        tmp_path / "edge.yaml",
        {
            "node_id": "n1",
            "detector": {
                "extra_models": [
                    {
                        "name": "fire_smoke",
                        "model": model_ref,
                        "classes": ["fire", "smoke"],
                        "confidence": 0.4,
                    }
                ]
            },
            "cameras": [
                {
                    "id": "cam1",
                    "url": "x.mp4",
                    "pipelines": {"smoke_fire": {"model": "fire_smoke", "classical": False}},
                }
            ],
        },
    )


def _engine(cfg: EdgeConfig) -> CameraEngine:
    parts = assemble_camera(
        cfg, cfg.cameras[0], default_taxonomy(), offline=True, extra_models=ExtraModels(cfg)
    )
    return parts.build(datetime(2026, 6, 1, tzinfo=UTC), DetectorHooks())


def test_an_extra_model_confirmed_over_time_raises_one_fire(tmp_path: Path) -> None:
    model = fire_model(tmp_path)
    cfg = load_edge_config(config(tmp_path, str(model)))
    engine = _engine(cfg)
    assert isinstance(engine.pipelines["smoke_fire"], ExtraModelAdapter)
    assert engine.needs_detections is False  # the main COCO detector is not needed
    image = np.zeros((360, 640, 3), np.uint8)
    findings = []
    for i in range(40):  # 8 s at 5 fps
        ems = engine.process(Frame(index=i, t=i / 5, image=image, wall=0.0))
        findings += [em.finding for em in ems if em.pipeline == "smoke_fire"]
    active = [f for f in findings if f.state == "active"]
    assert len(active) == 1
    fire = active[0]
    assert fire.type == "fire" and fire.severity == "emergency"
    assert fire.attributes["detector"] == "fire_smoke"
    assert (fire.occurred_at - datetime(2026, 6, 1, tzinfo=UTC)).total_seconds() <= 4.0


def test_a_single_frame_of_fire_is_not_an_event(tmp_path: Path) -> None:
    model = fire_model(tmp_path)
    cfg = load_edge_config(config(tmp_path, str(model)))
    engine = _engine(cfg)
    adapter = engine.pipelines["smoke_fire"]
    image = np.zeros((360, 640, 3), np.uint8)
    out = engine.process(Frame(index=0, t=0.0, image=image, wall=0.0))
    assert [em for em in out if em.pipeline == "smoke_fire"] == []
    assert isinstance(adapter, ExtraModelAdapter)


def test_unknown_extra_model_name_is_a_clear_error(tmp_path: Path) -> None:
    path = write_yaml(
        tmp_path / "edge.yaml",
        {
            "node_id": "n1",
            "cameras": [
                {"id": "cam1", "url": "x.mp4", "pipelines": {"smoke_fire": {"model": "nope"}}}
            ],
        },
    )
    cfg = load_edge_config(path)
    with pytest.raises(ValueError, match="detector.extra_models"):
        assemble_camera(
            cfg, cfg.cameras[0], default_taxonomy(), offline=True, extra_models=ExtraModels(cfg)
        )
