"""Detector runtime: both YOLO output layouts, NMS, class filter, providers, batching, the real model."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from edge.detector.batching import BatchingDetector
from edge.detector.runtime import OnnxDetector, decode, detect_layout, letterbox, nms, providers_for
from shaobing.models import resolve_model
from shaobing.paths import assets_dir

SIZE = 64
NAMES = ["person", "car", "dog"]


def const_model(tmp_path: Path, rows: np.ndarray, layout: str) -> Path:
    """A tiny ONNX graph whose output is a fixed prediction tensor.

    ``rows`` is [N, 4+C] (yolov8) or [N, 5+C] (yolov5) in input pixels; the yolov8 graph
    stores it as [1, N, 4+C] and transposes it to [1, 4+C, N] like a real YOLOv8 head.
    """
    const = numpy_helper.from_array(rows[None].astype(np.float32), name="pred")
    nodes = []
    if layout == "yolov8":
        nodes.append(helper.make_node("Transpose", ["pred"], ["output0"], perm=[0, 2, 1]))
        out_shape = [1, rows.shape[1], rows.shape[0]]
    else:
        nodes.append(helper.make_node("Identity", ["pred"], ["output0"]))
        out_shape = [1, rows.shape[0], rows.shape[1]]
    graph = helper.make_graph(
        nodes,
        "const",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, SIZE, SIZE])],
        [helper.make_tensor_value_info("output0", TensorProto.FLOAT, out_shape)],
        initializer=[const],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    meta = model.metadata_props.add()
    meta.key, meta.value = "names", str(dict(enumerate(NAMES)))
    onnx.checker.check_model(model)
    path = tmp_path / f"{layout}.onnx"
    onnx.save(model, str(path))
    return path


def v8_rows() -> np.ndarray:
    # cx, cy, w, h, then 3 class scores; input 64×64
    return np.array(
        [
            [20, 20, 10, 10, 0.90, 0.00, 0.00],  # person A
            [21, 20, 10, 10, 0.80, 0.00, 0.00],  # duplicate of A (IoU 0.82) → suppressed
            [20, 20, 10, 10, 0.00, 0.70, 0.00],  # a car on the same spot: other class, kept
            [45, 45, 8, 12, 0.00, 0.00, 0.60],  # dog
            [50, 10, 6, 6, 0.20, 0.00, 0.00],  # below confidence
        ],
        dtype=np.float32,
    )


def test_yolov8_layout_decoding_from_a_real_onnx_graph(tmp_path: Path) -> None:
    det = OnnxDetector(const_model(tmp_path, v8_rows(), "yolov8"), confidence=0.3, iou=0.5)
    image = np.zeros((SIZE, SIZE, 3), np.uint8)  # square: letterbox is the identity
    (out,) = det.infer([image])
    assert det.layout == "yolov8"
    got = sorted(
        (out.name(i), round(float(out.confidence[i]), 2), tuple(np.round(out.xyxy[i]).astype(int)))
        for i in range(len(out))
    )
    assert got == [
        ("car", 0.7, (15, 15, 25, 25)),
        ("dog", 0.6, (41, 39, 49, 51)),
        ("person", 0.9, (15, 15, 25, 25)),
    ]


def test_yolov5_layout_scores_are_objectness_times_class(tmp_path: Path) -> None:
    rows = np.array(
        [
            [20, 20, 10, 10, 0.9, 0.8, 0.1, 0.0],  # person 0.72
            [40, 40, 10, 20, 0.5, 0.1, 0.9, 0.0],  # car 0.45
            [40, 10, 10, 10, 0.9, 0.2, 0.2, 0.3],  # best class 0.27 → dropped at 0.3
        ],
        dtype=np.float32,
    )
    det = OnnxDetector(const_model(tmp_path, rows, "yolov5"), confidence=0.3)
    (out,) = det.infer([np.zeros((SIZE, SIZE, 3), np.uint8)])
    assert det.layout == "yolov5"
    assert [out.name(i) for i in range(len(out))] == ["person", "car"]
    np.testing.assert_allclose(out.confidence, [0.72, 0.45], atol=1e-5)
    np.testing.assert_allclose(out.xyxy[1], [35, 30, 45, 50])


def test_boxes_map_back_through_the_letterbox(tmp_path: Path) -> None:
    det = OnnxDetector(const_model(tmp_path, v8_rows(), "yolov8"), confidence=0.3)
    image = np.zeros((SIZE // 2, SIZE, 3), np.uint8)  # 64×32: scale 1, padded 16 rows on top
    _, info = letterbox(image, SIZE)
    assert (info.scale, info.pad_x, info.pad_y) == (1.0, 0.0, 16.0)
    (out,) = det.infer([image], classes={"person"})
    assert len(out) == 1 and out.name(0) == "person"
    np.testing.assert_allclose(out.xyxy[0], [15, 0, 25, 9])  # y 15-16 → clipped at 0, 25-16=9


def test_layout_guess_from_shape() -> None:
    assert detect_layout((1, 25200, 85), 80) == "yolov5"
    assert detect_layout((1, 84, 8400), 80) == "yolov8"
    assert detect_layout((1, 84, 8400), None) == "yolov8"
    assert detect_layout((1, 25200, 85), None) == "yolov5"


def test_nms_against_hand_computed_overlaps() -> None:
    boxes = np.array(
        [
            [0, 0, 10, 10],  # A, 0.9
            [1, 0, 11, 10],  # IoU(A) = 90/110 = 0.818 → suppressed at 0.5
            [5, 0, 15, 10],  # IoU(A) = 50/150 = 0.333 → kept at 0.5, suppressed at 0.3
            [20, 20, 30, 30],  # disjoint
        ],
        dtype=np.float32,
    )
    scores = np.array([0.9, 0.8, 0.7, 0.6], np.float32)
    assert nms(boxes, scores, 0.5).tolist() == [0, 2, 3]
    assert nms(boxes, scores, 0.3).tolist() == [0, 3]
    assert nms(boxes, scores, 0.9).tolist() == [0, 1, 2, 3]
    assert nms(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), 0.5).tolist() == []


def test_decode_is_class_aware() -> None:
    out = v8_rows().T[None]  # [1, 7, N]
    (boxes, score, cls) = decode(out, "yolov8", 3, 0.3, 0.5)[0]
    assert sorted(cls.tolist()) == [0, 1, 2]


def test_provider_selection_prefers_openvino_when_installed() -> None:
    with_ov = ["OpenVINOExecutionProvider", "CPUExecutionProvider"]
    assert providers_for("openvino", with_ov) == with_ov
    assert providers_for("auto", with_ov) == with_ov
    assert providers_for("openvino", ["CPUExecutionProvider"]) == ["CPUExecutionProvider"]
    assert providers_for("cpu", with_ov) == ["CPUExecutionProvider"]


def test_batching_applies_each_submitters_confidence_and_classes(tmp_path: Path) -> None:
    det = OnnxDetector(const_model(tmp_path, v8_rows(), "yolov8"), confidence=0.3)
    batcher = BatchingDetector(det, batch=4, max_wait_ms=20, confidence=0.3)
    try:
        img = np.zeros((SIZE, SIZE, 3), np.uint8)
        f_all = batcher.submit(img)
        f_strict = batcher.submit(img, confidence=0.75)
        f_dogs = batcher.submit(img, classes={"dog"})
        assert f_all and f_strict and f_dogs
        assert len(f_all.result(10)) == 3
        assert [f_strict.result(10).name(i) for i in range(len(f_strict.result(10)))] == ["person"]
        assert [f_dogs.result(10).name(0)] == ["dog"]
        assert batcher.stats.images == 3
    finally:
        batcher.close()


def test_batching_queue_is_bounded(tmp_path: Path) -> None:
    det = OnnxDetector(const_model(tmp_path, v8_rows(), "yolov8"))
    batcher = BatchingDetector(det, queue_size=2)
    batcher.close()  # worker stopped: nothing drains the queue
    img = np.zeros((SIZE, SIZE, 3), np.uint8)
    results = [batcher.submit(img) for _ in range(5)]
    assert sum(r is not None for r in results) == 2
    assert batcher.stats.refused == 3


def test_real_model_finds_people_in_the_pedestrians_video() -> None:
    cap = cv2.VideoCapture(str(assets_dir() / "video" / "pedestrians_opencv_vtest.avi"))
    ok, frame = cap.read()
    cap.release()
    assert ok
    det = OnnxDetector(resolve_model("yolov5n"), threads=2)
    (out,) = det.infer([frame], classes={"person"})
    assert len(out) >= 3
    assert all(out.name(i) == "person" for i in range(len(out)))
    h, w = frame.shape[:2]
    assert float(out.xyxy[:, [0, 2]].max()) <= w and float(out.xyxy[:, [1, 3]].max()) <= h


@pytest.mark.parametrize("size", [(360, 640), (720, 1280), (100, 50)])
def test_letterbox_shapes(size: tuple[int, int]) -> None:
    chw, info = letterbox(np.full((*size, 3), 200, np.uint8), 320)
    assert chw.shape == (3, 320, 320) and chw.dtype == np.float32
    assert 0.0 <= float(chw.min()) and float(chw.max()) <= 1.0
    assert info.width == size[1] and info.height == size[0]


def _wide_pedestrian_frames(every: int = 40, count: int = 10) -> list[np.ndarray]:
    """Frames of the pedestrians video cropped and scaled to a 640×360 (16:9) camera."""
    cap = cv2.VideoCapture(str(assets_dir() / "video" / "pedestrians_opencv_vtest.avi"))
    frames = []
    for i in range(every * count):
        ok, img = cap.read()
        assert ok
        if i % every == 0:
            frames.append(cv2.resize(img[45:315], (640, 360)))
    cap.release()
    return frames


def _matched(reference: list, candidate: list) -> tuple[int, int, list[float]]:
    """(matched, total, per-frame share): reference boxes found again at IoU ≥ 0.5."""
    from edge.tracker import iou_matrix

    matched, total, shares = 0, 0, []
    for r, c in zip(reference, candidate, strict=True):
        hit = int((iou_matrix(r.xyxy, c.xyxy).max(axis=1) >= 0.5).sum()) if len(c) else 0
        matched, total = matched + hit, total + len(r)
        shares.append(hit / max(1, len(r)))
    return matched, total, shares


def test_packed_pairs_find_the_same_people_as_single_frames() -> None:
    """Two wide frames stacked in one input: each gets its own people back, in its own pixels."""
    from edge.detector.runtime import pack_pair, packable

    frames = _wide_pedestrian_frames()
    assert all(packable(f) for f in frames)
    _, infos = pack_pair(frames[0], frames[1], 640)
    assert infos[0].pad_y < 320 <= infos[1].pad_y and infos[0].scale == pytest.approx(320 / 360)
    det = OnnxDetector(resolve_model("yolov5n"), threads=2)
    single = det.infer(frames, confidence=0.3, classes={"person"})
    packed = det.infer_packed(frames, confidence=0.3, classes={"person"})
    matched, total, shares = _matched(single, packed)
    assert total >= 30 and all(len(s) >= 3 for s in single)
    assert matched / total >= 0.85  # most people found at the same place
    assert min(shares) >= 0.5
    for s, p in zip(single, packed, strict=True):
        assert abs(len(p) - len(s)) <= max(2, len(s) // 4)
        assert float(p.xyxy[:, 3].max()) <= 360 and float(p.xyxy[:, 1].min()) >= 0


def test_rectangular_inputs_cut_the_padding_and_find_the_same_people() -> None:
    """The fixed 640×640 model made shape-free: a 16:9 frame costs 640×384, same detections."""
    from edge.detector.runtime import pack_pair

    frames = _wide_pedestrian_frames(count=6)
    square = OnnxDetector(resolve_model("yolov5n"), threads=2, rectangular=False)
    rect = OnnxDetector(resolve_model("yolov5n"), threads=2)
    assert square.stride is None and rect.stride == 32
    chw, info = letterbox(frames[0], 640, stride=rect.stride)
    assert chw.shape == (3, 384, 640) and info.pad_y == 12 and info.scale == 1.0
    pair, _ = pack_pair(frames[0], frames[1], 640, stride=32)
    assert pair.shape == (3, 640, 576)  # 569 px wide halves, rounded up to 32
    a = square.infer(frames, confidence=0.3, classes={"person"})
    b = rect.infer(frames, confidence=0.3, classes={"person"})
    matched, total, _ = _matched(a, b)
    assert total >= 20 and matched / total >= 0.9


def test_a_graph_that_ignores_its_input_shape_keeps_square_inputs(tmp_path: Path) -> None:
    """The rectangular probe must see the grid follow the input; a constant output does not."""
    big = 128
    rows = v8_rows()
    const = numpy_helper.from_array(rows[None].astype(np.float32), name="pred")
    graph = helper.make_graph(
        [helper.make_node("Transpose", ["pred"], ["output0"], perm=[0, 2, 1])],
        "const",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, big, big])],
        [helper.make_tensor_value_info("output0", TensorProto.FLOAT, [1, 7, len(rows)])],
        initializer=[const],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    meta = model.metadata_props.add()
    meta.key, meta.value = "names", str(dict(enumerate(NAMES)))
    path = tmp_path / "const128.onnx"
    onnx.save(model, str(path))
    det = OnnxDetector(path, confidence=0.3)
    assert det.stride is None
    (out,) = det.infer([np.zeros((72, 128, 3), np.uint8)])
    assert len(out) >= 1  # still decodes through the square input


def test_two_workers_run_inferences_side_by_side() -> None:
    """Workers take frames side by side; the detector's ``parallel`` bounds runs in the model."""
    import threading
    import time

    frames = _wide_pedestrian_frames(count=2)
    det = OnnxDetector(resolve_model("yolov5n"), threads=1, parallel=2)
    inside, peak = [0], [0]
    lock = threading.Lock()

    class CountingSession:
        """The real session, counting how many runs are inside it at once."""

        def __init__(self, session: object) -> None:
            self.session = session

        def run(self, *args: object) -> object:
            with lock:
                inside[0] += 1
                peak[0] = max(peak[0], inside[0])
            try:
                time.sleep(0.05)  # widen the window so overlap shows on a busy machine
                return self.session.run(*args)  # type: ignore[attr-defined]
            finally:
                with lock:
                    inside[0] -= 1

    det.session = CountingSession(det.session)  # type: ignore[assignment]
    batcher = BatchingDetector(det, workers=3, pack=False, queue_size=16)
    try:
        futures = [batcher.submit(frames[i % 2]) for i in range(8)]
        results = [f.result(timeout=60) for f in futures if f is not None]
    finally:
        batcher.close()
    assert len(results) == 8 and all(len(r) >= 1 for r in results)
    assert peak[0] == 2  # three workers, but never more than ``parallel`` in the model
    assert batcher.stats.images == 8
