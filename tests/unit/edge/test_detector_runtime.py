"""``detector.runtime``: onnxruntime, OpenVINO, auto (the faster), and the fallback without OpenVINO."""

from __future__ import annotations

import logging
import sys
import time
from typing import Any

import numpy as np
import pytest
from pydantic import ValidationError

from edge.detector import choice
from edge.detector.choice import build_detector_for, build_on_runtime, openvino_available
from edge.detector.runtime import OnnxDetector
from edge.http import _runtime_metric
from shaobing.config import DetectorConfig
from shaobing.models import resolve_model
from shaobing.paths import assets_dir


@pytest.fixture
def no_openvino(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fakes a machine without the openvino package: a None entry in sys.modules makes
    ``import openvino`` raise ImportError, whether or not the package is installed here."""
    monkeypatch.setitem(sys.modules, "openvino", None)


def _frame() -> np.ndarray:
    import cv2

    cap = cv2.VideoCapture(str(assets_dir() / "video" / "pedestrians_opencv_vtest.avi"))
    cap.set(cv2.CAP_PROP_POS_FRAMES, 100)
    ok, img = cap.read()
    cap.release()
    assert ok
    return img


def test_openvino_requested_but_missing_falls_back_with_a_clear_log(
    no_openvino: None, caplog: pytest.LogCaptureFixture
) -> None:
    assert not openvino_available()
    with caplog.at_level(logging.WARNING, logger="edge.detector.choice"):
        det = build_detector_for(resolve_model("yolov5n"), "openvino", threads=1)
    assert isinstance(det, OnnxDetector) and det.runtime == "onnxruntime"
    assert det.runtime_choice == {
        "requested": "openvino",
        "chosen": "onnxruntime",
        "ms": {},
        "reason": "openvino not installed",
    }
    (record,) = [r for r in caplog.records if "openvino" in r.getMessage()]
    assert record.levelno == logging.WARNING
    assert "pip install openvino" in record.getMessage()
    assert "using onnxruntime" in record.getMessage()
    # and the fallback detector works
    assert len(det.infer([_frame()])[0]) > 0


def test_auto_without_openvino_keeps_onnxruntime_without_timing(
    no_openvino: None, caplog: pytest.LogCaptureFixture
) -> None:
    built: list[str] = []

    def make(name: str) -> Any:
        built.append(name)
        return OnnxDetector(resolve_model("yolov5n"), threads=1, runtime=name)

    with caplog.at_level(logging.INFO, logger="edge.detector.choice"):
        det = build_on_runtime(make, "auto", seconds=5.0)
    assert built == ["onnxruntime"]  # nothing timed, nothing else built
    assert det.runtime_choice["chosen"] == "onnxruntime"
    assert det.runtime_choice["reason"] == "openvino not installed"
    assert any("not installed" in r.getMessage() for r in caplog.records)


def test_onnxruntime_configured_builds_only_onnxruntime() -> None:
    built: list[str] = []

    def make(name: str) -> Any:
        built.append(name)
        return OnnxDetector(resolve_model("yolov5n"), threads=1, runtime=name)

    det = build_on_runtime(make, "onnxruntime")
    assert built == ["onnxruntime"]
    assert det.runtime_choice["reason"] == "configured"


class _Timed:
    """A detector that takes ``ms`` per frame."""

    def __init__(self, name: str, ms: float) -> None:
        self.runtime, self.ms = name, ms

    def infer(self, images: list[np.ndarray]) -> list[Any]:
        time.sleep(self.ms / 1000.0)
        return [None for _ in images]


@pytest.mark.parametrize(
    ("ov_ms", "ort_ms", "winner"), [(5.0, 20.0, "openvino"), (20.0, 5.0, "onnxruntime")]
)
def test_auto_times_both_and_keeps_the_faster(
    monkeypatch: pytest.MonkeyPatch, ov_ms: float, ort_ms: float, winner: str
) -> None:
    monkeypatch.setattr(choice, "openvino_available", lambda: True)
    speeds = {"openvino": ov_ms, "onnxruntime": ort_ms}
    det = build_on_runtime(lambda n: _Timed(n, speeds[n]), "auto", seconds=0.2)
    assert det.runtime == winner
    ms = det.runtime_choice["ms"]
    assert set(ms) == {"openvino", "onnxruntime"}
    assert ms[winner] < ms[next(n for n in ms if n != winner)]
    assert det.runtime_choice["reason"] == "faster here"


def test_auto_keeps_the_runtime_that_loads_when_the_other_fails(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(choice, "openvino_available", lambda: True)

    def make(name: str) -> Any:
        if name == "openvino":
            raise RuntimeError("unsupported operator")
        return _Timed(name, 1.0)

    det = build_on_runtime(make, "auto", seconds=0.05)
    assert det.runtime == "onnxruntime"
    assert set(det.runtime_choice["ms"]) == {"onnxruntime"}


def test_metrics_show_the_choice() -> None:
    det = _Timed("openvino", 1.0)
    det.name = "yolov5n"  # type: ignore[attr-defined]
    det.runtime_choice = {  # type: ignore[attr-defined]
        "requested": "auto",
        "chosen": "openvino",
        "reason": "faster here",
        "ms": {"onnxruntime": 27.5, "openvino": 19.0},
    }
    lines: list[str] = []
    _runtime_metric(lines, det)
    text = "\n".join(lines)
    assert (
        'shaobing_detector_runtime_info{runtime="openvino",requested="auto",'
        'reason="faster here",model="yolov5n"} 1'
    ) in text
    assert 'shaobing_detector_runtime_probe_ms{runtime="onnxruntime"} 27.5' in text
    assert 'shaobing_detector_runtime_probe_ms{runtime="openvino"} 19.0' in text


def test_config_accepts_only_known_runtimes() -> None:
    assert DetectorConfig().runtime == "auto"
    assert DetectorConfig(runtime="openvino").runtime == "openvino"
    with pytest.raises(ValidationError):
        DetectorConfig(runtime="tensorrt")  # type: ignore[arg-type]


@pytest.mark.skipif(not openvino_available(), reason="the openvino package is not installed here")
def test_openvino_finds_what_onnxruntime_finds() -> None:
    from shaobing_tools.quantize import match_boxes

    img = _frame()
    ort_det = OnnxDetector(resolve_model("yolov5n"), threads=1)
    ov_det = OnnxDetector(resolve_model("yolov5n"), threads=1, runtime="openvino")
    assert ov_det.stride == 32  # rectangular inputs on OpenVINO too
    a, b = ort_det.infer([img])[0], ov_det.infer([img])[0]
    found, total = match_boxes(a, b)
    assert total >= 3 and found >= total - 1
