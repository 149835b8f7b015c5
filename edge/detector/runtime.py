"""ONNX YOLO detector: letterbox, inference, output decoding for both layouts, NMS.

Layouts (ARCHITECTURE §9): ``[b, N, 5+C]`` (YOLOv5: cx, cy, w, h, obj, classes) and
``[b, 4+C, N]`` (YOLOv8/11: cx, cy, w, h, classes). Never torch on this path.
"""

from __future__ import annotations

import ast
import logging
import threading
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import onnxruntime as ort

log = logging.getLogger(__name__)

Layout = Literal["yolov5", "yolov8", "auto"]

COCO80 = (
    "person bicycle car motorcycle airplane bus train truck boat traffic_light fire_hydrant stop_sign "
    "parking_meter bench bird cat dog horse sheep cow elephant bear zebra giraffe backpack umbrella handbag tie "
    "suitcase frisbee skis snowboard sports_ball kite baseball_bat baseball_glove skateboard surfboard "
    "tennis_racket bottle wine_glass cup fork knife spoon bowl banana apple sandwich orange broccoli carrot "
    "hot_dog pizza donut cake chair couch potted_plant bed dining_table toilet tv laptop mouse remote keyboard "
    "cell_phone microwave oven toaster sink refrigerator book clock vase scissors teddy_bear hair_drier toothbrush"
).split()
COCO80 = [n.replace("_", " ") for n in COCO80]


@dataclass(frozen=True)
class Detections:
    """Detections of one image: arrays of equal length, boxes in source-image pixels."""

    xyxy: np.ndarray  # (n, 4) float32
    confidence: np.ndarray  # (n,) float32
    class_id: np.ndarray  # (n,) int32
    class_names: tuple[str, ...]

    def __post_init__(self) -> None:
        n = len(self.confidence)
        if self.xyxy.shape != (n, 4) or self.class_id.shape != (n,):
            raise ValueError(
                f"Detections: expected xyxy (n,4) and class_id (n,), found {self.xyxy.shape}, {self.class_id.shape}"
            )

    def __len__(self) -> int:
        return len(self.confidence)

    @classmethod
    def empty(cls, class_names: tuple[str, ...] = ()) -> Detections:
        """No detections."""
        return cls(
            np.zeros((0, 4), np.float32),
            np.zeros((0,), np.float32),
            np.zeros((0,), np.int32),
            class_names,
        )

    def name(self, i: int) -> str:
        """Class name of detection ``i``."""
        cid = int(self.class_id[i])
        return self.class_names[cid] if 0 <= cid < len(self.class_names) else str(cid)

    def filter(self, mask: np.ndarray) -> Detections:
        """A subset by boolean mask."""
        return Detections(
            self.xyxy[mask], self.confidence[mask], self.class_id[mask], self.class_names
        )


@dataclass(frozen=True)
class LetterboxInfo:
    """How a source image was fitted into the square input."""

    scale: float
    pad_x: float
    pad_y: float
    width: int
    height: int


class AtScale(np.ndarray):
    """A BGR image already at the detector's scale (a crop resized like its whole frame
    would be): letterboxed without resizing, only padded. Never packed with another."""


def _round_up(n: int, stride: int) -> int:
    return -(-n // stride) * stride


def letterbox(
    image: np.ndarray, size: int, pad_value: int = 114, stride: int | None = None
) -> tuple[np.ndarray, LetterboxInfo]:
    """Resize keeping aspect ratio and pad; BGR uint8 in, CHW RGB float32 (0–1) out.

    The longer side becomes ``size``. Without ``stride`` the input is the square
    ``size``×``size``; with it (a model that takes any input shape) each side is only padded
    up to a multiple of ``stride``, so a 16:9 frame costs 640×384 instead of 640×640.
    """
    import cv2

    h, w = image.shape[:2]
    at_scale = isinstance(image, AtScale) and max(h, w) <= size
    scale = 1.0 if at_scale else min(size / w, size / h)
    nw, nh = int(round(w * scale)), int(round(h * scale))
    resized = (
        cv2.resize(image, (nw, nh), interpolation=cv2.INTER_LINEAR) if (nw, nh) != (w, h) else image
    )
    if at_scale:
        image = np.asarray(image)
        resized = np.asarray(resized)
    width, height = (_round_up(nw, stride), _round_up(nh, stride)) if stride else (size, size)
    canvas = np.full((height, width, 3), pad_value, dtype=np.uint8)
    pad_x, pad_y = (width - nw) // 2, (height - nh) // 2
    canvas[pad_y : pad_y + nh, pad_x : pad_x + nw] = resized
    chw = cv2.dnn.blobFromImage(canvas, 1.0 / 255.0, swapRB=True)[0]  # HWC BGR → CHW RGB, one pass
    return chw, LetterboxInfo(scale, float(pad_x), float(pad_y), w, h)


def packable(image: np.ndarray, max_aspect: float = 0.6) -> bool:
    """Whether a frame is wide enough (height/width ≤ ``max_aspect``) to share an input with another."""
    h, w = image.shape[:2]
    return bool(h <= w * max_aspect) and not isinstance(image, AtScale)


def pack_pair(
    top: np.ndarray,
    bottom: np.ndarray,
    size: int,
    pad_value: int = 114,
    stride: int | None = None,
) -> tuple[np.ndarray, list[LetterboxInfo]]:
    """Two wide frames stacked in one input ``size`` high (each fitted into a half).

    A 16:9 frame letterboxed alone into a square leaves 44 % of it as padding; stacking
    two of them fills it, so one inference serves two cameras at 89 % of the scale. With
    ``stride`` (a model that takes any input shape) the width is cut to the frames' width
    rounded up to a multiple of ``stride`` (576 instead of 640 for 16:9).
    Returns the CHW RGB float32 input and, per frame, its scale and offset in the input.
    """
    import cv2

    half = size // 2
    fitted = []
    for image in (top, bottom):
        h, w = image.shape[:2]
        scale = min(size / w, half / h)
        fitted.append((image, scale, int(round(w * scale)), int(round(h * scale))))
    width = _round_up(max(f[2] for f in fitted), stride) if stride else size
    canvas = np.full((size, width, 3), pad_value, dtype=np.uint8)
    infos = []
    for k, (image, scale, nw, nh) in enumerate(fitted):
        h, w = image.shape[:2]
        resized = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_LINEAR)
        pad_x, pad_y = (width - nw) // 2, k * half + (half - nh) // 2
        canvas[pad_y : pad_y + nh, pad_x : pad_x + nw] = resized
        infos.append(LetterboxInfo(scale, float(pad_x), float(pad_y), w, h))
    chw = cv2.dnn.blobFromImage(canvas, 1.0 / 255.0, swapRB=True)[0]
    return chw, infos


def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Greedy non-maximum suppression; returns kept indices, highest score first."""
    if len(boxes) == 0:
        return np.zeros((0,), dtype=np.int64)
    x1, y1, x2, y2 = boxes[:, 0], boxes[:, 1], boxes[:, 2], boxes[:, 3]
    areas = np.maximum(0.0, x2 - x1) * np.maximum(0.0, y2 - y1)
    order = np.argsort(-scores, kind="stable")
    keep: list[int] = []
    while order.size > 0:
        i = int(order[0])
        keep.append(i)
        rest = order[1:]
        xx1 = np.maximum(x1[i], x1[rest])
        yy1 = np.maximum(y1[i], y1[rest])
        xx2 = np.minimum(x2[i], x2[rest])
        yy2 = np.minimum(y2[i], y2[rest])
        inter = np.maximum(0.0, xx2 - xx1) * np.maximum(0.0, yy2 - yy1)
        union = areas[i] + areas[rest] - inter
        iou = np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)
        order = rest[iou <= iou_threshold]
    return np.asarray(keep, dtype=np.int64)


def decode(
    output: np.ndarray,
    layout: Layout,
    num_classes: int,
    confidence: float,
    iou_threshold: float,
    max_detections: int = 300,
) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Decode a raw batch output into per-image (xyxy, score, class) in input pixels, after NMS."""
    if output.ndim != 3:
        raise ValueError(f"detector output: expected 3 dimensions, found shape {output.shape}")
    if layout == "auto":
        layout = detect_layout(output.shape, num_classes)
    if layout == "yolov8":
        output = output.transpose(0, 2, 1)  # → [b, N, 4+C]
    results = []
    for pred in output:
        if layout == "yolov5":
            obj = pred[:, 4]
            cls_scores = pred[:, 5:]
            keep = obj > confidence * 0.5
            pred_k, obj_k, cls_k = pred[keep], obj[keep], cls_scores[keep]
            class_id = cls_k.argmax(axis=1) if len(cls_k) else np.zeros((0,), np.int64)
            score = (
                obj_k * cls_k[np.arange(len(cls_k)), class_id]
                if len(cls_k)
                else np.zeros((0,), np.float32)
            )
        else:
            cls_scores = pred[:, 4:]
            class_id_all = cls_scores.argmax(axis=1)
            score_all = cls_scores[np.arange(len(cls_scores)), class_id_all]
            keep = score_all > confidence
            pred_k, class_id, score = pred[keep], class_id_all[keep], score_all[keep]
        m = score > confidence
        pred_k, class_id, score = pred_k[m], class_id[m], score[m]
        cx, cy, w, h = pred_k[:, 0], pred_k[:, 1], pred_k[:, 2], pred_k[:, 3]
        boxes = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1).astype(
            np.float32
        )
        # class-aware NMS: shift boxes of different classes apart
        offset = class_id.astype(np.float32)[:, None] * 4096.0
        kept = nms(boxes + offset, score, iou_threshold)[:max_detections]
        results.append(
            (boxes[kept], score[kept].astype(np.float32), class_id[kept].astype(np.int32))
        )
    return results


def filter_classes(dets: Detections, classes: Collection[str]) -> Detections:
    """Only the detections whose class name is in ``classes``."""
    wanted = set(classes)
    mask = np.array([dets.name(i) in wanted for i in range(len(dets))], dtype=bool)
    return dets.filter(mask) if len(dets) else dets


def detect_layout(shape: tuple[int, ...], num_classes: int | None) -> Literal["yolov5", "yolov8"]:
    """Guess the layout from the output shape (and the class count when known)."""
    _, a, b = shape
    if num_classes:
        if b == 5 + num_classes and a != 4 + num_classes:
            return "yolov5"
        if a == 4 + num_classes and b != 5 + num_classes:
            return "yolov8"
    # anchors (N) are many thousands; channels are few
    return "yolov8" if a < b else "yolov5"


def _names_from_metadata(session: ort.InferenceSession) -> list[str] | None:
    meta = session.get_modelmeta().custom_metadata_map
    raw = meta.get("names")
    if not raw:
        return None
    try:
        parsed = ast.literal_eval(raw)
    except (ValueError, SyntaxError):
        return None
    if isinstance(parsed, dict):
        return [str(parsed[k]) for k in sorted(parsed)]
    if isinstance(parsed, list):
        return [str(x) for x in parsed]
    return None


def _score_offset_from_metadata(session: Any) -> float:
    """The score offset a quantized model carries (``score_offset`` metadata), else 0.

    ``shaobing models quantize`` measures how much lower the INT8 copy scores than its FP32
    source and writes the offset into the model, so every threshold keeps its FP32 meaning.
    """
    try:
        raw = session.get_modelmeta().custom_metadata_map.get("score_offset")
        offset = float(raw) if raw else 0.0
    except (AttributeError, ValueError):
        return 0.0
    return offset if 0.0 <= offset <= 0.2 else 0.0


def providers_for(provider: str, available: list[str] | None = None) -> list[str]:
    """onnxruntime execution providers for a config value, keeping only the available ones.

    ``openvino`` needs the ``onnxruntime-openvino`` wheel installed *instead of*
    ``onnxruntime``; when it is missing the CPU provider is used and a warning logged.
    """
    available = available if available is not None else ort.get_available_providers()
    wanted = {
        "cpu": ["CPUExecutionProvider"],
        "openvino": ["OpenVINOExecutionProvider", "CPUExecutionProvider"],
        "cuda": ["CUDAExecutionProvider", "CPUExecutionProvider"],
        "auto": ["OpenVINOExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"],
    }[provider]
    chosen = [p for p in wanted if p in available]
    if provider not in ("cpu", "auto") and chosen == ["CPUExecutionProvider"]:
        log.warning("execution provider %s requested but not installed; using CPU", provider)
    return chosen or ["CPUExecutionProvider"]


def _free_spatial_dims(path: Path) -> bytes | None:
    """The model with its input's height and width made symbolic, or None (needs ``onnx``)."""
    try:
        import onnx
    except ImportError:
        return None
    try:
        model = onnx.load(str(path))
        dims = model.graph.input[0].type.tensor_type.shape.dim
        if len(dims) != 4:
            return None
        for dim, name in ((dims[2], "height"), (dims[3], "width")):
            dim.ClearField("dim_value")
            dim.dim_param = name
        return bytes(model.SerializeToString())
    except Exception:  # an unusual graph (external data, …): keep the square input
        log.debug("could not free the input dims of %s", path, exc_info=True)
        return None


class OnnxDetector:
    """A YOLO ONNX model in one onnxruntime session, safe to share between threads.

    Args:
        model_path: the .onnx file.
        input_size: the letterbox's longer side (the square size when the model is fixed).
        confidence: minimum score kept.
        iou: NMS IoU threshold.
        threads: intra-op threads per inference (None: onnxruntime's default).
        provider: cpu, openvino, cuda or auto.
        layout: yolov5, yolov8 or auto (from the output shape).
        class_names: override the names in the model's metadata.
        parallel: inferences allowed to run at once (from different threads). On a small
            CPU two single-threaded inferences side by side do ~20 % more than one
            two-threaded inference: no thread waits for the slowest at each layer.
        rectangular: letterbox to the frame's aspect (sides padded to a multiple of 32)
            instead of a square. A model exported with a fixed square input is made
            shape-free in memory when the ``onnx`` package is present, and kept only if a
            probe inference gives the expected grid; otherwise the input stays square.
        runtime: ``onnxruntime``, or ``openvino`` for the openvino package's own runtime
            (see ``edge.detector.openvino_runtime``; raises OpenVinoMissing when it is not
            installed). ``edge.detector.choice`` picks between them.
    """

    STRIDE = 32

    def __init__(
        self,
        model_path: str | Path,
        input_size: int = 640,
        confidence: float = 0.35,
        iou: float = 0.45,
        threads: int | None = None,
        provider: str = "cpu",
        layout: Layout = "auto",
        class_names: list[str] | None = None,
        parallel: int = 1,
        rectangular: bool = True,
        runtime: str = "onnxruntime",
    ) -> None:
        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        # idle intra-op threads must sleep, not spin: on a small box the decoders need those cores
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        providers = providers_for(provider)
        provider_options: list[dict[str, str]] = [
            {"device_type": "CPU"} if p == "OpenVINOExecutionProvider" else {} for p in providers
        ]
        self.providers = providers
        self.runtime = runtime
        self.session: Any
        if runtime == "openvino":
            from edge.detector.openvino_runtime import OpenVinoSession

            self.session = OpenVinoSession(model_path, threads)
        else:
            self.session = ort.InferenceSession(
                str(model_path),
                sess_options=opts,
                providers=providers,
                provider_options=provider_options,
            )
        self.input_name = self.session.get_inputs()[0].name
        shape = self.session.get_inputs()[0].shape
        fixed = [d for d in shape[2:] if isinstance(d, int)]
        self.input_size = int(fixed[0]) if fixed else input_size
        self.fixed_batch = shape[0] if isinstance(shape[0], int) else None
        self.confidence = confidence
        self.iou = iou
        names = class_names or _names_from_metadata(self.session)
        self.score_offset = _score_offset_from_metadata(self.session)
        self.layout: Layout = layout
        self.model_path = Path(model_path)
        self.name = self.model_path.stem
        self._names_given = names is not None
        self.class_names: tuple[str, ...] = tuple(names or COCO80)
        self.parallel = max(1, parallel)
        self._slots = threading.BoundedSemaphore(self.parallel)
        # the stride inputs are padded to when the model takes any shape; None: square inputs
        self.stride: int | None = None
        if rectangular and "OpenVINOExecutionProvider" not in providers:
            if not fixed:
                self.stride = self.STRIDE if self._probe_rectangular(self.session) else None
            elif len(fixed) == 2 and fixed[0] == fixed[1]:
                self._free_input(opts, providers, provider_options)

    def _probe_rectangular(self, session: Any) -> bool:
        """Whether a wide input gives the grid a stride-32 YOLO head should give."""
        size = self.input_size
        if size % (2 * self.STRIDE) or size < 4 * self.STRIDE:
            return False
        batch = self.fixed_batch or 1
        short = size // 2 + self.STRIDE  # an odd multiple of 32: a stride-64 head fails here
        try:
            square = session.run(
                None, {self.input_name: np.zeros((batch, 3, size, size), np.float32)}
            )
            wide = session.run(
                None, {self.input_name: np.zeros((batch, 3, short, size), np.float32)}
            )
        except Exception:
            return False
        sq, wd = np.asarray(square[0]).shape, np.asarray(wide[0]).shape
        if len(sq) != 3 or len(wd) != 3:
            return False
        # anchors run along the longer axis (N ≫ channels)
        n_sq, n_wd = max(sq[1:]), max(wd[1:])
        return bool(n_sq * short == n_wd * size and min(sq[1:]) == min(wd[1:]))

    def _free_input(
        self,
        opts: ort.SessionOptions,
        providers: list[str],
        provider_options: list[dict[str, str]],
    ) -> None:
        data = _free_spatial_dims(self.model_path)
        if data is None:
            return
        try:
            session = ort.InferenceSession(
                data, sess_options=opts, providers=providers, provider_options=provider_options
            )
        except Exception:
            log.debug("shape-free copy of %s did not load", self.model_path, exc_info=True)
            return
        if self._probe_rectangular(session):
            self.session = session
            self.stride = self.STRIDE
            log.info("detector %s: rectangular inputs (stride %d)", self.name, self.STRIDE)

    def infer(
        self,
        images: list[np.ndarray],
        confidence: float | None = None,
        classes: Collection[str] | None = None,
    ) -> list[Detections]:
        """Detect objects in BGR images (any sizes); one Detections per image, in source pixels.

        Args:
            images: BGR uint8 images.
            confidence: minimum score (default: the detector's).
            classes: keep only these class names (default: all).
        """
        if not images:
            return []
        blobs, infos = zip(
            *(letterbox(img, self.input_size, stride=self.stride) for img in images), strict=True
        )
        return self._infer_blobs(list(blobs), [[i] for i in infos], confidence, classes)

    def infer_packed(
        self,
        images: list[np.ndarray],
        confidence: float | None = None,
        classes: Collection[str] | None = None,
    ) -> list[Detections]:
        """Like ``infer``, but wide frames are stacked two to an input (see ``pack_pair``).

        Used when the detector is the bottleneck: half the inferences for a small loss of
        scale. Frames that are not wide, or an odd one out, are letterboxed alone.
        """
        if not images:
            return []
        order: list[int] = []
        blobs: list[np.ndarray] = []
        groups: list[list[LetterboxInfo]] = []
        wide = [i for i, img in enumerate(images) if packable(img)]
        single = [i for i, img in enumerate(images) if not packable(img)]
        if len(wide) % 2:
            single.append(wide.pop())
        for a, b in zip(wide[0::2], wide[1::2], strict=True):
            chw, pair = pack_pair(images[a], images[b], self.input_size, stride=self.stride)
            blobs.append(chw)
            groups.append(pair)
            order += [a, b]
        for i in single:
            chw, info = letterbox(images[i], self.input_size, stride=self.stride)
            blobs.append(chw)
            groups.append([info])
            order.append(i)
        results = self._infer_blobs(blobs, groups, confidence, classes)
        out: list[Detections | None] = [None] * len(images)
        for idx, det in zip(order, results, strict=True):
            out[idx] = det
        return [d if d is not None else Detections.empty(self.class_names) for d in out]

    def _infer_blobs(
        self,
        blobs: list[np.ndarray],
        groups: list[list[LetterboxInfo]],
        confidence: float | None,
        classes: Collection[str] | None,
    ) -> list[Detections]:
        """Run inputs; each input holds one frame or a stacked pair (split by box centre).

        Inputs of the same shape run as one batch (rectangular inputs differ by aspect).
        """
        conf = (self.confidence if confidence is None else confidence) - self.score_offset
        num_classes = len(self.class_names) if self._names_given else None
        by_shape: dict[tuple[int, ...], list[int]] = {}
        for i, blob in enumerate(blobs):
            by_shape.setdefault(blob.shape, []).append(i)
        decoded: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = [
            (np.zeros((0, 4), np.float32), np.zeros((0,), np.float32), np.zeros((0,), np.int32))
        ] * len(blobs)
        for idxs in by_shape.values():
            batch = np.stack([blobs[i] for i in idxs])
            if self.fixed_batch == 1 and len(idxs) > 1:
                raw = np.concatenate([self._run(batch[k : k + 1]) for k in range(len(idxs))])
            else:
                raw = self._run(batch)
            if self.layout == "auto":
                self.layout = detect_layout(raw.shape, num_classes)
            for i, (boxes, score, cls) in zip(
                idxs, decode(raw, self.layout, num_classes or 0, conf, self.iou), strict=True
            ):
                if self.score_offset:
                    score = np.minimum(score + self.score_offset, 1.0).astype(np.float32)
                decoded[i] = (boxes, score, cls)
        parts: list[tuple[np.ndarray, np.ndarray, np.ndarray, LetterboxInfo]] = []
        half = self.input_size / 2
        for (boxes, score, cls), group in zip(decoded, groups, strict=True):
            if len(group) == 1:
                parts.append((boxes, score, cls, group[0]))
                continue
            lower = (boxes[:, 1] + boxes[:, 3]) / 2 >= half
            for k, info in enumerate(group):
                m = lower if k else ~lower
                b = boxes[m].copy()
                lo, hi = (half, float(self.input_size)) if k else (0.0, half)
                b[:, [1, 3]] = b[:, [1, 3]].clip(lo, hi)  # a box never spills into the other frame
                parts.append((b, score[m], cls[m], info))
        out = []
        for boxes, score, cls, info in parts:
            boxes = boxes.copy()
            boxes[:, [0, 2]] = (boxes[:, [0, 2]] - info.pad_x) / info.scale
            boxes[:, [1, 3]] = (boxes[:, [1, 3]] - info.pad_y) / info.scale
            boxes[:, [0, 2]] = boxes[:, [0, 2]].clip(0, info.width)
            boxes[:, [1, 3]] = boxes[:, [1, 3]].clip(0, info.height)
            names = self.class_names
            if cls.size and int(cls.max()) >= len(names):
                names = tuple(list(names) + [str(i) for i in range(len(names), int(cls.max()) + 1)])
            dets = Detections(boxes, score, cls, names)
            out.append(filter_classes(dets, classes) if classes else dets)
        return out

    def _run(self, batch: np.ndarray) -> np.ndarray:
        # onnxruntime sessions are thread-safe for run(); the slots bound how many run at once
        # so that intra-op threads are not oversubscribed by several cameras at once.
        with self._slots:
            result = self.session.run(None, {self.input_name: batch})
        out = np.asarray(result[0])
        return out
