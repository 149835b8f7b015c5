"""``shaobing models quantize``: yolov5n quantized once into a temporary models folder.

Real model, real videos, onnxruntime's own quantization. A small calibration and recall
set keeps the test at about 20 s; ``shaobing models quantize yolov5n`` uses the full sets.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from edge.detector.runtime import Detections, OnnxDetector
from shaobing.models import load_manifest, resolve_model, sha256_file
from shaobing.paths import assets_dir
from shaobing_tools import quantize as q

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def deployed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    folder = tmp_path_factory.mktemp("models")
    entry = q.quantize("yolov5n", folder, fmt="qdq", calibration_per_video=2, recall_frames=8)
    return folder, entry


def test_writes_model_manifest_entry_and_card(deployed: tuple[Path, dict[str, Any]]) -> None:
    folder, entry = deployed
    model = folder / "yolov5n-int8.onnx"
    assert model.is_file()
    data = yaml.safe_load((folder / "manifest.yaml").read_text(encoding="utf-8"))
    written = data["models"]["yolov5n-int8"]
    # the hash in the manifest is the file's
    assert written["files"][0]["sha256"] == sha256_file(model)
    assert written["files"][0]["bytes"] == model.stat().st_size
    assert written["source"]["sha256"] == sha256_file(resolve_model("yolov5n"))
    assert written["precision"] == "int8"
    assert written["quantization"]["per_channel"] is True
    assert written["quantization"]["format"] == "qdq"
    # the calibration set names real frames of every shared video
    cal = written["calibration"]
    videos = {p.name for p in (assets_dir() / "video").iterdir()}
    assert set(cal["videos"]) <= videos and len(cal["videos"]) >= 3
    assert cal["frames"] == sum(len(v) for v in cal["videos"].values())
    card = folder / written["card"]
    assert card.is_file() and "Recall against FP32" in card.read_text(encoding="utf-8")
    # an INT8 copy is smaller than the FP32 file (weights in 8 bits)
    assert model.stat().st_size < 0.5 * resolve_model("yolov5n").stat().st_size


def test_recall_check_is_recorded_and_decides_the_default(
    deployed: tuple[Path, dict[str, Any]],
) -> None:
    _, entry = deployed
    check = entry["recall_check"]
    assert set(check["clips"]) == {
        "pedestrians_opencv_vtest.avi",
        "cars_parking_area_intel.mp4",
        "pool_swimming_overwater.mp4",
    }
    person = check["per_class"]["person"]
    assert person["reference_boxes"] > 20
    # INT8 keeps most of the FP32 boxes (measured 0.95–0.97 on the full sets)
    assert 0.8 <= person["recall"] <= 1.0
    assert check["passed"] == q.recall_passes(check, check["max_drop"])
    assert ("default_for" in entry) == check["passed"]


def test_node_resolves_and_runs_the_int8_model(
    deployed: tuple[Path, dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    folder, _ = deployed
    monkeypatch.setenv("SHAOBING_MODELS", str(folder))
    assert "yolov5n-int8" in load_manifest()
    path = resolve_model("yolov5n-int8")
    assert path == folder / "yolov5n-int8.onnx"
    det = OnnxDetector(path, threads=1)
    assert det.stride == 32  # rectangular inputs work on the quantized graph too
    frame = next(q.sample_frames(assets_dir() / "video" / "pedestrians_opencv_vtest.avi", 1, 0.5))[
        1
    ]
    d = det.infer([frame])[0]
    people = [d.name(i) for i in range(len(d))]
    assert people.count("person") >= 3, d


def test_default_for_makes_the_name_resolve_to_the_int8_model(
    deployed: tuple[Path, dict[str, Any]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder, entry = deployed
    fp32 = resolve_model("yolov5n")
    local = tmp_path / "deploy"
    local.mkdir()
    (local / "yolov5n-int8.onnx").write_bytes((folder / "yolov5n-int8.onnx").read_bytes())
    monkeypatch.setenv("SHAOBING_MODELS", str(local))
    q.write_entry(local, "yolov5n-int8", {**entry, "default_for": "yolov5n"})
    assert resolve_model("yolov5n") == local / "yolov5n-int8.onnx"
    q.write_entry(local, "yolov5n-int8", {k: v for k, v in entry.items() if k != "default_for"})
    assert resolve_model("yolov5n") == fp32


def test_quantized_model_runs_without_the_quantization_tools(
    deployed: tuple[Path, dict[str, Any]],
) -> None:
    folder, _ = deployed
    probe = (
        "import sys, numpy as np\n"
        "from edge.detector.runtime import OnnxDetector\n"
        f"d = OnnxDetector({str(folder / 'yolov5n-int8.onnx')!r}, threads=1)\n"
        "d.infer([np.zeros((360, 640, 3), np.uint8)])\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'sympy')"
        " or m.startswith('onnxruntime.quantization')))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_command_needs_a_models_folder(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SHAOBING_MODELS", raising=False)
    out = subprocess.run(
        [sys.executable, "-m", "shaobing.cli", "models", "quantize", "yolov5n"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={k: v for k, v in __import__("os").environ.items() if k != "SHAOBING_MODELS"},
    )
    assert out.returncode == 2
    assert "--dest" in out.stderr


def test_match_boxes_one_to_one_same_class_iou_half() -> None:
    names = ("person", "car")

    def dets(rows: list[tuple[float, float, float, float, int]]) -> Detections:
        a = np.array([r[:4] for r in rows], np.float32).reshape(-1, 4)
        return Detections(
            a, np.ones(len(rows), np.float32), np.array([r[4] for r in rows], np.int32), names
        )

    ref = dets([(0, 0, 10, 10, 0), (20, 20, 30, 30, 0), (0, 0, 10, 10, 1)])
    # one exact, one shifted to IoU 1/3 (not a match), the car as a person (not a match),
    # and a duplicate of the first box (matched only once)
    cand = dets([(0, 0, 10, 10, 0), (25, 20, 35, 30, 0), (0, 0, 10, 10, 0), (0, 0, 10, 10, 0)])
    assert q.match_boxes(ref, cand) == (1, 3)
    assert q.match_boxes(ref, ref) == (3, 3)
    assert json.loads(json.dumps(q.match_boxes(ref, dets([])))) == [0, 3]


def test_choose_offset_spends_the_same_budget_on_extra_boxes() -> None:
    scores = np.array([0.30, 0.328, 0.338, 0.347, 0.36, 0.40, 0.50, 0.60, 0.70, 0.80])
    # FP32 gave 7 boxes: 2 % more allows none beyond 7 → the 0.347 box comes in, 0.338 not
    assert q.choose_offset(7, scores, 0.35, max_extra=0.02) == pytest.approx(0.01)
    # 50 % more than 6 allows 9: the 0.328 box comes in at 0.025, the 0.30 one would at 0.05
    assert q.choose_offset(6, scores, 0.35, max_extra=0.5) == pytest.approx(0.045)
    assert q.choose_offset(3, scores, 0.35) == 0.0


def test_score_offset_is_stored_in_the_model_and_applied(
    deployed: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    folder, entry = deployed
    score = entry["score_calibration"]
    assert 0.0 <= score["offset"] <= 0.05
    assert score["int8_boxes"] <= score["fp32_boxes"] * (1 + score["max_extra"])
    assert score["int8_boxes"] >= score["int8_boxes_without_offset"]
    model = folder / "yolov5n-int8.onnx"
    assert OnnxDetector(model).score_offset == pytest.approx(score["offset"], abs=1e-4)
    assert "Score offset" in (folder / "cards" / "yolov5n-int8.md").read_text(encoding="utf-8")
    # the same model with a larger offset: every score moves up by it, more boxes pass
    shifted = tmp_path / "shifted.onnx"
    shifted.write_bytes(model.read_bytes())
    q.write_score_offset(shifted, 0.0)
    q.write_score_offset(shifted, 0.1)  # replaces the first, never two entries
    plain, raised = OnnxDetector(shifted, confidence=0.35), OnnxDetector(model, confidence=0.35)
    raised_more = OnnxDetector(shifted, confidence=0.35)
    assert raised_more.score_offset == pytest.approx(0.1)
    img = np.ascontiguousarray(
        next(q.sample_frames(assets_dir() / "video" / "pedestrians_opencv_vtest.avi", 1, 0.5))[1]
    )
    base = OnnxDetector(model, confidence=0.2).infer([img])[0]
    more = raised_more.infer([img])[0]
    assert len(more) >= len(raised.infer([img])[0])
    top = float(base.confidence.max())
    assert float(more.confidence.max()) == pytest.approx(
        min(1.0, top + 0.1 - score["offset"]), abs=1e-3
    )
    assert plain.score_offset == pytest.approx(0.1)


def test_auto_keeps_the_portable_qdq_unless_qoperator_is_clearly_faster() -> None:
    assert q.pick_format({"qdq": 19.46, "qoperator": 19.04}) == "qdq"  # within noise
    assert q.pick_format({"qdq": 20.0, "qoperator": 17.0}) == "qoperator"
    assert q.pick_format({"qoperator": 17.0}) == "qoperator"
