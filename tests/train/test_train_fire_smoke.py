"""Training path: ``shaobing models train fire-smoke`` on a tiny synthetic dataset (train extra).

Skipped unless ultralytics is importable (``scripts/test-train`` builds ``.venv-train`` with
torch and ultralytics and runs this file). It trains one epoch on the CPU from
``yolov8n.yaml`` (random weights, nothing downloaded), exports ONNX, and checks that
onnxruntime loads it and that its output is ``[1, 4+2, N]``.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip(
    "ultralytics", reason="train extra (ultralytics) not installed; run scripts/test-train"
)

import cv2  # noqa: E402
import onnxruntime as ort  # noqa: E402
import yaml  # noqa: E402

from shaobing.cli import main  # noqa: E402

pytestmark = pytest.mark.slow
IMGSZ = 64


def _make_dataset(root: Path, n_train: int = 8, n_val: int = 2, seed: int = 0) -> None:
    """Orange blobs labelled fire (0) and grey blobs labelled smoke (1), YOLO txt labels."""
    rng = np.random.default_rng(seed)
    for split, n in (("train", n_train), ("val", n_val)):
        (root / "images" / split).mkdir(parents=True)
        (root / "labels" / split).mkdir(parents=True)
        for i in range(n):
            img = np.full((IMGSZ, IMGSZ, 3), rng.integers(40, 90), np.uint8)
            lines = []
            for cls, colour in ((0, (30, 140, 255)), (1, (180, 180, 180))):
                w, h = (int(v) for v in rng.integers(10, 22, 2))
                x, y = int(rng.integers(0, IMGSZ - w)), int(rng.integers(0, IMGSZ - h))
                cv2.ellipse(img, (x + w // 2, y + h // 2), (w // 2, h // 2), 0, 0, 360, colour, -1)
                lines.append(
                    f"{cls} {(x + w / 2) / IMGSZ:.4f} {(y + h / 2) / IMGSZ:.4f} {w / IMGSZ:.4f} {h / IMGSZ:.4f}"
                )
            cv2.imwrite(str(root / "images" / split / f"{i}.jpg"), img)
            (root / "labels" / split / f"{i}.txt").write_text(
                "\n".join(lines) + "\n", encoding="utf-8"
            )
    (root / "classes.txt").write_text("fire\nsmoke\n", encoding="utf-8")


def test_train_one_epoch_and_export_onnx(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert os.environ.get("YOLO_OFFLINE", "1") in ("1", "true", "True")
    data = tmp_path / "data"
    _make_dataset(data)
    out = tmp_path / "out"
    rc = main(
        [
            "models",
            "train",
            "fire-smoke",
            "--data",
            str(data),
            "--epochs",
            "1",
            "--imgsz",
            str(IMGSZ),
            "--model",
            "yolov8n.yaml",
            "--out",
            str(out),
            "--name",
            "fire_smoke",
        ]
    )
    assert rc == 0
    onnx = out / "fire_smoke.onnx"
    assert onnx.is_file() and onnx.stat().st_size > 100_000

    session = ort.InferenceSession(str(onnx), providers=["CPUExecutionProvider"])
    inp = session.get_inputs()[0]
    assert inp.name == "images"
    (output,) = session.run(None, {inp.name: np.zeros((1, 3, IMGSZ, IMGSZ), np.float32)})
    assert output.shape[0] == 1 and output.shape[1] == 4 + 2 and output.shape[2] > 0

    printed = capsys.readouterr().out
    assert "fire_smoke:" in printed and "\x1b" not in printed, (
        "stdout carries only the manifest entry"
    )
    entry = yaml.safe_load(printed[printed.index("fire_smoke:") :])
    spec = entry["fire_smoke"]
    assert spec["layout"] == "yolov8" and spec["classes"] == ["fire", "smoke"]
    assert len(spec["files"][0]["sha256"]) == 64 and spec["files"][0]["path"] == "fire_smoke.onnx"


def test_bad_dataset_is_a_usage_error(tmp_path: Path) -> None:
    rc = main(
        [
            "models",
            "train",
            "fire-smoke",
            "--data",
            str(tmp_path),
            "--epochs",
            "1",
            "--out",
            str(tmp_path / "o"),
        ]
    )
    assert rc == 2
