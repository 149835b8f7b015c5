"""``shaobing models quantize NAME``: a static INT8 copy of an ONNX detector, checked for recall.

Steps:

1. **Calibration set**: frames sampled evenly from the shared videos (every video of
   ``assets/video``), letterboxed exactly as the node letterboxes them (rectangular inputs,
   sides padded to a multiple of 32).
2. **Quantization** with ``onnxruntime.quantization.quantize_static``: per-channel INT8
   weights, UINT8 activations (MinMax), in the QDQ or QOperator format. ``auto`` builds and
   times both and keeps QDQ unless QOperator is clearly faster (``QOPERATOR_MIN_GAIN``):
   OpenVINO reads QDQ but not onnxruntime's own QLinear operators. The detection head's
   decoding (sigmoid, grid, anchors, the final concatenation of pixel boxes and 0–1 scores)
   stays in float: one shared scale for boxes and scores would blur the scores.
3. **Recall check** against the FP32 model on the pedestrians, parking and pool clips, on
   frames that are not in the calibration set: a FP32 box of a class of interest counts as
   found when the INT8 model gives a box of the same class with IoU ≥ 0.5.
4. **Outputs** in the deployment's models folder (``--dest``, else ``$SHAOBING_MODELS``,
   else the user cache): the model ``NAME-int8.onnx``, its entry in that folder's
   ``manifest.yaml`` (sha256, calibration set, recall check, latency) and a model card
   ``cards/NAME-int8.md``. The resolver reads that manifest beside the packaged one, so
   ``detector.model: NAME-int8`` picks the model. Nothing here is committed.

The quantized model needs only onnxruntime to run (the ``edge`` extra); quantizing needs
``onnx`` as well, which the edge extra already holds.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from shaobing.paths import assets_dir

log = logging.getLogger(__name__)

# the clips the recall check runs on (file-name prefixes in assets/video)
RECALL_CLIPS = ("pedestrians", "cars_parking", "pool_swimming")
# classes the pipelines act on (zone intrusion, water safety, fire lanes)
CLASSES_OF_INTEREST = ("person", "bicycle", "car", "motorcycle", "bus", "truck")
VIDEO_SUFFIXES = (".mp4", ".avi", ".mkv", ".mov")
# recall may drop at most this much (absolute) for the model to become a default
DEFAULT_MAX_RECALL_DROP = 0.02


def _say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- frames


def _videos(names: Sequence[str] | None = None) -> list[Path]:
    folder = assets_dir() / "video"
    out = [
        p
        for p in sorted(folder.glob("*"))
        if p.suffix.lower() in VIDEO_SUFFIXES
        and (names is None or any(p.name.startswith(n) for n in names))
    ]
    if not out:
        raise OSError(f"expected videos in {folder}, found none")
    return out


def sample_frames(video: Path, count: int, phase: float = 0.0) -> Iterator[tuple[int, np.ndarray]]:
    """``count`` frames spread evenly over ``video``: (index, BGR image).

    ``phase`` (0–1) shifts the samples by that fraction of the spacing: phase 0 and 0.5
    give disjoint sets (calibration and evaluation).
    """
    import cv2

    cap = cv2.VideoCapture(str(video))
    try:
        total = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        if total <= 0 or count <= 0:
            return
        step = total / count
        wanted = sorted({min(total - 1, int(k * step + phase * step)) for k in range(count)})
        for idx in wanted:
            cap.set(cv2.CAP_PROP_POS_FRAMES, idx)
            ok, img = cap.read()
            if ok:
                yield idx, img
    finally:
        cap.release()


@dataclass
class CalibrationSet:
    """Frames the activation ranges are measured on."""

    frames: list[tuple[str, int, np.ndarray]] = field(default_factory=list)

    def describe(self) -> dict[str, Any]:
        """Manifest form: per video, the frame indices used."""
        per: dict[str, list[int]] = {}
        for name, idx, _ in self.frames:
            per.setdefault(name, []).append(idx)
        return {"frames": len(self.frames), "phase": 0.0, "videos": per}


def calibration_set(per_video: int = 8, names: Sequence[str] | None = None) -> CalibrationSet:
    """``per_video`` frames of every shared video (phase 0: disjoint from the recall frames)."""
    cal = CalibrationSet()
    for video in _videos(names):
        cal.frames += [(video.name, i, img) for i, img in sample_frames(video, per_video, 0.0)]
    return cal


class _Reader:
    """onnxruntime's CalibrationDataReader over letterboxed frames (one at a time)."""

    def __init__(self, input_name: str, blobs: list[np.ndarray]) -> None:
        self.input_name = input_name
        self._it = iter(blobs)

    def get_next(self) -> dict[str, np.ndarray] | None:
        blob = next(self._it, None)
        return None if blob is None else {self.input_name: blob[None]}

    def rewind(self) -> None:  # pragma: no cover - not used by MinMax in one pass
        pass


# --------------------------------------------------------------------------- quantize


def _head_nodes(model: Any) -> list[str]:
    """The head's last convolutions and the decoding after them: they stay in float.

    Found walking back from the graph's outputs up to (and including) the nearest
    convolutions. Their outputs are logits turned into pixel boxes and scores; 8 bits there
    cost scores near the threshold for little speed.
    """
    producer = {o: n for n in model.graph.node for o in n.output}
    consumers: dict[str, list[Any]] = {}
    for n in model.graph.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n)
    # walk back from the outputs to the nearest Convs
    head: set[str] = set()
    stack = [o.name for o in model.graph.output]
    seen: set[str] = set()
    while stack:
        t = stack.pop()
        if t in seen or t not in producer:
            continue
        seen.add(t)
        node = producer[t]
        head.add(node.name)
        if node.op_type == "Conv":  # the head's own convolutions stay float too
            continue
        stack.extend(node.input)
    return sorted(head)


# inputs that carry shapes, sizes or indices, not image data (op type → input positions)
_SHAPE_INPUTS = {
    "Resize": (1, 2, 3),
    "Reshape": (1,),
    "Expand": (1,),
    "ConstantOfShape": (0,),
    "Tile": (1,),
    "Slice": (1, 2, 3, 4),
    "Range": (0, 1, 2),
}


def _shape_nodes(model: Any) -> list[str]:
    """Nodes that compute shapes (e.g. the upsampling's target size from a ``Shape``).

    Quantizing them rounds the sizes: an upsampled map one row short, and a model that runs
    only at the shape it was calibrated on.
    """
    producer = {o: n for n in model.graph.node for o in n.output}
    found: set[str] = set()
    stack = [
        n.input[k]
        for n in model.graph.node
        for k in _SHAPE_INPUTS.get(n.op_type, ())
        if k < len(n.input) and n.input[k]
    ]
    while stack:
        node = producer.get(stack.pop())
        if node is None or node.name in found:
            continue
        found.add(node.name)
        if node.op_type != "Shape":
            stack.extend(i for i in node.input if i)
    return sorted(found)


def _free_dims(src: Path) -> Any:
    import onnx

    model = onnx.load(str(src))
    dims = model.graph.input[0].type.tensor_type.shape.dim
    if len(dims) == 4:
        for dim, name in ((dims[2], "height"), (dims[3], "width")):
            if dim.HasField("dim_value"):
                dim.ClearField("dim_value")
                dim.dim_param = name
    return model


def quantize_model(
    src: Path,
    dst: Path,
    calibration: CalibrationSet,
    fmt: str = "qdq",
    per_channel: bool = True,
    input_size: int = 640,
    method: str = "minmax",
    keep_float: Sequence[str] = (),
) -> dict[str, Any]:
    """Write an INT8 copy of ``src`` to ``dst``; returns what was done (for the manifest)."""
    import onnx
    from onnxruntime.quantization import (
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    from edge.detector.runtime import letterbox

    model = _free_dims(src)
    excluded = sorted(
        set(_head_nodes(model))
        | set(_shape_nodes(model))
        | {n.name for n in model.graph.node if any(n.name.startswith(p) for p in keep_float)}
    )
    input_name = model.graph.input[0].name
    # MinMax takes the node's own rectangular inputs; the histogram methods need one shape
    stride = 32 if method == "minmax" else None
    blobs = [letterbox(img, input_size, stride=stride)[0] for _, _, img in calibration.frames]
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="shaobing-quantize-") as tmp:
        freed = Path(tmp) / "free.onnx"
        onnx.save(model, str(freed))
        pre = Path(tmp) / "pre.onnx"
        try:
            quant_pre_process(str(freed), str(pre), skip_symbolic_shape=True)
        except Exception:  # an exotic graph: quantize it as it is
            log.debug("quantization pre-processing failed; quantizing as is", exc_info=True)
            pre = freed
        quantize_static(
            str(pre),
            str(dst),
            _Reader(input_name, blobs),
            quant_format=QuantFormat.QDQ if fmt == "qdq" else QuantFormat.QOperator,
            per_channel=per_channel,
            weight_type=QuantType.QInt8,
            activation_type=QuantType.QUInt8,
            calibrate_method={
                "minmax": CalibrationMethod.MinMax,
                "percentile": CalibrationMethod.Percentile,
                "entropy": CalibrationMethod.Entropy,
            }[method],
            nodes_to_exclude=excluded,
            extra_options={"ActivationSymmetric": False, "WeightSymmetric": True},
        )
    return {
        "format": fmt,
        "per_channel": per_channel,
        "weights": "int8",
        "activations": "uint8",
        "calibration_method": method,
        "float_nodes": len(excluded),
        "seconds": round(time.monotonic() - t0, 1),
    }


# --------------------------------------------------------------------------- checks


def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU of (n, 4) and (m, 4) xyxy boxes."""
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)), np.float32)
    x1 = np.maximum(a[:, None, 0], b[None, :, 0])
    y1 = np.maximum(a[:, None, 1], b[None, :, 1])
    x2 = np.minimum(a[:, None, 2], b[None, :, 2])
    y2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-9), 0.0).astype(np.float32)


def match_boxes(reference: Any, candidate: Any, iou: float = 0.5) -> tuple[int, int]:
    """Greedy one-to-one matching of same-class boxes at IoU ≥ ``iou``: (matched, reference)."""
    matched = 0
    for cid in np.unique(reference.class_id):
        ra = reference.xyxy[reference.class_id == cid]
        ca = candidate.xyxy[candidate.class_id == cid]
        m = _iou(ra, ca)
        used: set[int] = set()
        for i in range(len(ra)):
            order = np.argsort(-m[i]) if m.shape[1] else []
            for j in order:
                if m[i, j] < iou:
                    break
                if int(j) not in used:
                    used.add(int(j))
                    matched += 1
                    break
    return matched, len(reference)


@dataclass
class _Tally:
    found: int = 0
    total: int = 0
    extra: int = 0  # candidate boxes with no reference box (of the classes of interest)

    def recall(self) -> float | None:
        return round(self.found / self.total, 4) if self.total else None


def recall_check(
    fp32: Path,
    int8: Path,
    clips: Sequence[str] = RECALL_CLIPS,
    frames_per_clip: int = 120,
    confidence: float = 0.35,
    classes: Sequence[str] = CLASSES_OF_INTEREST,
) -> dict[str, Any]:
    """Recall of ``int8`` against ``fp32`` per clip and class (frames disjoint from calibration)."""
    from edge.detector.runtime import OnnxDetector, filter_classes

    ref = OnnxDetector(fp32, confidence=confidence, threads=1)
    cand = OnnxDetector(int8, confidence=confidence, threads=1)
    per_clip: dict[str, dict[str, _Tally]] = {}
    overall: dict[str, _Tally] = {}
    frames = 0
    for video in _videos(clips):
        tallies = per_clip.setdefault(video.name, {})
        for _, img in sample_frames(video, frames_per_clip, 0.5):
            frames += 1
            r = filter_classes(ref.infer([img])[0], classes)
            c = filter_classes(cand.infer([img])[0], classes)
            for cls in classes:
                rm = r.filter(np.array([r.name(i) == cls for i in range(len(r))], dtype=bool))
                cm = c.filter(np.array([c.name(i) == cls for i in range(len(c))], dtype=bool))
                if not len(rm) and not len(cm):
                    continue
                found, total = match_boxes(rm, cm)
                for t in (tallies.setdefault(cls, _Tally()), overall.setdefault(cls, _Tally())):
                    t.found += found
                    t.total += total
                    t.extra += len(cm) - found
    found = sum(t.found for t in overall.values())
    total = sum(t.total for t in overall.values())
    worst = min((r for t in overall.values() if (r := t.recall()) is not None), default=None)
    return {
        "reference": fp32.name,
        "iou": 0.5,
        "confidence": confidence,
        "frames": frames,
        "clips": {
            name: {cls: _tally_dict(t) for cls, t in tallies.items()}
            for name, tallies in per_clip.items()
        },
        "per_class": {cls: _tally_dict(t) for cls, t in overall.items()},
        "recall": round(found / total, 4) if total else None,
        "recall_min_class": worst,
    }


def choose_offset(
    reference_boxes: int,
    scores: np.ndarray,
    confidence: float,
    max_extra: float = DEFAULT_MAX_RECALL_DROP,
    step: float = 0.005,
    limit: float = 0.05,
) -> float:
    """The largest score offset (a multiple of ``step`` up to ``limit``) at which the INT8
    model raises at most ``max_extra`` more boxes than FP32: the same budget in extra
    boxes as recall may lose. ``scores``: the INT8 scores of the calibration frames."""
    best = 0.0
    for k in range(int(round(limit / step)) + 1):
        offset = round(k * step, 6)
        if int((scores + offset >= confidence).sum()) <= reference_boxes * (1.0 + max_extra):
            best = offset
    return best


def calibrate_score_offset(
    fp32: Path,
    int8: Path,
    calibration: CalibrationSet,
    confidence: float = 0.35,
    max_extra: float = DEFAULT_MAX_RECALL_DROP,
    classes: Sequence[str] = CLASSES_OF_INTEREST,
) -> dict[str, Any]:
    """Measure on the calibration frames how far to raise INT8 scores (see ``choose_offset``)."""
    from edge.detector.runtime import OnnxDetector, filter_classes

    limit = 0.05
    ref = OnnxDetector(fp32, confidence=confidence, threads=1)
    cand = OnnxDetector(int8, confidence=confidence - limit, threads=1)
    reference, scores = 0, []
    for _, _, img in calibration.frames:
        reference += len(filter_classes(ref.infer([img])[0], classes))
        scores.append(filter_classes(cand.infer([img])[0], classes).confidence)
    all_scores = np.concatenate(scores) if scores else np.zeros((0,), np.float32)
    offset = choose_offset(reference, all_scores, confidence, max_extra, limit=limit)
    return {
        "offset": offset,
        "frames": len(calibration.frames),
        "fp32_boxes": reference,
        "int8_boxes": int((all_scores + offset >= confidence).sum()),
        "int8_boxes_without_offset": int((all_scores >= confidence).sum()),
        "max_extra": max_extra,
    }


def write_score_offset(model_path: Path, offset: float) -> None:
    """Store the offset in the model's metadata (``OnnxDetector`` applies it)."""
    import onnx

    model = onnx.load(str(model_path))
    kept = [p for p in model.metadata_props if p.key != "score_offset"]
    del model.metadata_props[:]
    model.metadata_props.extend(kept)
    prop = model.metadata_props.add()
    prop.key, prop.value = "score_offset", f"{offset:.4f}"
    onnx.save(model, str(model_path))


def _tally_dict(t: _Tally) -> dict[str, Any]:
    return {"recall": t.recall(), "matched": t.found, "reference_boxes": t.total, "extra": t.extra}


def latency_ms(model: Path, repeats: int = 15, threads: int = 1) -> float:
    """Median milliseconds per 640×360 frame (letterbox + inference + decoding), ``threads`` threads."""
    from edge.detector.runtime import OnnxDetector

    video = _videos(["cars_parking"])[0]
    img = next(sample_frames(video, 1, 0.5))[1]
    import cv2

    img = cv2.resize(img, (640, 360))
    det = OnnxDetector(model, threads=threads)
    for _ in range(3):
        det.infer([img])
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        det.infer([img])
        times.append((time.perf_counter() - t0) * 1000)
    return round(statistics.median(times), 2)


def latencies_ms(models: dict[str, Path], rounds: int = 5, repeats: int = 3) -> dict[str, float]:
    """``latency_ms`` of several models measured round-robin (median of the rounds), so
    that a busy machine's load falls on each alike."""
    got: dict[str, list[float]] = {k: [] for k in models}
    for _ in range(rounds):
        for k, path in models.items():
            got[k].append(latency_ms(path, repeats=repeats))
    return {k: round(statistics.median(v), 2) for k, v in got.items()}


def recall_passes(check: dict[str, Any], max_drop: float, min_boxes: int = 20) -> bool:
    """Every class of interest with ``min_boxes`` reference boxes keeps ≥ 1 − ``max_drop``."""
    judged = [c for c in check["per_class"].values() if c["reference_boxes"] >= min_boxes]
    return bool(judged) and all(c["recall"] >= 1.0 - max_drop - 1e-9 for c in judged)


# --------------------------------------------------------------------------- outputs


def models_folder(dest: str | None) -> Path | None:
    """The deployment's models folder: ``--dest``, else ``$SHAOBING_MODELS``; None if neither."""
    import os

    chosen = dest or os.environ.get("SHAOBING_MODELS")
    return Path(chosen).expanduser() if chosen else None


def write_entry(folder: Path, name: str, entry: dict[str, Any]) -> Path:
    """Add or replace ``name`` in the folder's ``manifest.yaml`` (other entries kept)."""
    import yaml

    from shaobing.models import LOCAL_MANIFEST

    path = folder / LOCAL_MANIFEST
    data = (yaml.safe_load(path.read_text(encoding="utf-8")) if path.exists() else None) or {}
    data.setdefault("kind", "manifest")
    models = data.setdefault("models", {}) or {}
    data["models"] = models
    models[name] = entry
    tmp = path.with_suffix(".yaml.tmp")
    header = (
        "# Models made on this deployment (shaobing models quantize): read beside the\n"
        "# packaged manifest; the model files are never committed.\n"
    )
    tmp.write_text(
        header + yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8"
    )
    tmp.replace(path)
    return path


def write_card(folder: Path, name: str, source: str, entry: dict[str, Any]) -> Path:
    """A model card beside the model (``cards/NAME.md``)."""
    card = folder / "cards" / f"{name}.md"
    card.parent.mkdir(parents=True, exist_ok=True)
    q, check, lat = entry["quantization"], entry["recall_check"], entry["latency_ms_1_thread"]
    rows = "\n".join(
        f"| {cls} | {v['recall']} | {v['matched']} / {v['reference_boxes']} | {v['extra']} |"
        for cls, v in check["per_class"].items()
    )
    card.write_text(
        f"""# {name} (INT8 copy of {source})

- **What**: static INT8 quantization of `{source}` with onnxruntime: {q["format"].upper()}
  format, per-channel INT8 weights, UINT8 activations ({q["calibration_method"]} ranges);
  the head's last convolutions and the box decoding stay in float ({q["float_nodes"]} nodes).
- **Calibration**: {entry["calibration"]["frames"]} frames sampled evenly from the shared videos
  (see the manifest entry for the frame indices), letterboxed as the node does.
- **Runs with**: onnxruntime alone (the `edge` extra); pick it with `detector.model: {name}`.
- **Speed** (one thread, 640×360 frame, letterbox + inference + decoding, median): FP32
  {lat["fp32"]} ms, INT8 {lat["int8"]} ms.
- **Score offset**: {entry["score_calibration"]["offset"]} is added to every INT8 score (stored in
  the model's metadata): the largest offset at which the INT8 model raises at most
  {round(entry["score_calibration"]["max_extra"] * 100)} % more boxes than FP32 on the calibration frames
  ({entry["score_calibration"]["int8_boxes"]} against {entry["score_calibration"]["fp32_boxes"]}).
- **Recall against FP32** on {check["frames"]} frames of {", ".join(check["clips"])}
  (not calibration frames): a FP32 box (confidence ≥ {check["confidence"]}) is found when
  the INT8 model gives a box of the same class at IoU ≥ {check["iou"]}. Overall
  {check["recall"]}.

| class | recall | matched / FP32 boxes | INT8 boxes without a FP32 box |
|---|---|---|---|
{rows}

- **Default**: {"yes: `" + source + "` resolves to this model in this folder" if entry.get("default_for") else "no"}
  (recall must stay within {round(check["max_drop"] * 100)} points of FP32 for every class with
  ≥ 20 FP32 boxes; passed: {check["passed"]}).
- **Limits**: those of `{source}`; scores move by a few hundredths, so boxes near the
  confidence threshold come and go.
- **Licence**: that of `{source}`.
""",
        encoding="utf-8",
    )
    return card


# --------------------------------------------------------------------------- command


QOPERATOR_MIN_GAIN = 0.10
"""QOperator is kept over QDQ only when it is at least this much faster on onnxruntime."""


def pick_format(timed: dict[str, float]) -> str:
    """The format to keep from the formats' single-thread milliseconds: QDQ, which both
    onnxruntime and OpenVINO run, unless QOperator saves ``QOPERATOR_MIN_GAIN`` of its time
    (the two usually run within a few per cent of each other on onnxruntime)."""
    if "qdq" in timed and "qoperator" in timed:
        return (
            "qoperator" if timed["qoperator"] < (1 - QOPERATOR_MIN_GAIN) * timed["qdq"] else "qdq"
        )
    return min(timed, key=lambda k: timed[k])


def quantize(
    name: str,
    folder: Path,
    fmt: str = "auto",
    calibration_per_video: int = 8,
    recall_frames: int = 120,
    max_drop: float = DEFAULT_MAX_RECALL_DROP,
    make_default: bool = True,
) -> dict[str, Any]:
    """Quantize manifest model ``name`` into ``folder``; returns its manifest entry."""
    import shutil

    from shaobing.models import load_manifest, resolve_model, sha256_file

    spec = load_manifest().get(name)
    if spec is None or spec.format != "onnx" or spec.task != "detect":
        raise ValueError(f"{name}: expected an ONNX detector of the manifest")
    src = resolve_model(name) if spec.home is None else Path(spec.home) / spec.relpath
    folder.mkdir(parents=True, exist_ok=True)
    target_name = f"{name}-int8"
    target = folder / f"{target_name}.onnx"
    _say(f"quantize {name}: calibration frames from {assets_dir() / 'video'} …")
    cal = calibration_set(calibration_per_video)
    formats = ["qdq", "qoperator"] if fmt == "auto" else [fmt]
    done: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="shaobing-quantize-", dir=folder) as tmp:
        for f in formats:
            out = Path(tmp) / f"{f}.onnx"
            _say(f"quantize {name}: {f} …")
            done[f] = quantize_model(src, out, cal, fmt=f)
        timed = latencies_ms({f: Path(tmp) / f"{f}.onnx" for f in formats})
        best = pick_format(timed)
        shutil.move(str(Path(tmp) / f"{best}.onnx"), target)
    _say(f"quantize {name}: score offset on the calibration frames …")
    score = calibrate_score_offset(src, target, cal)
    write_score_offset(target, score["offset"])
    _say(f"quantize {name}: recall check against FP32 …")
    check = recall_check(src, target, frames_per_clip=recall_frames)
    check["max_drop"] = max_drop
    check["passed"] = recall_passes(check, max_drop)
    entry: dict[str, Any] = {
        "task": "detect",
        "format": "onnx",
        "precision": "int8",
        "layout": spec.layout,
        "classes": spec.classes,
        "licence": spec.licence,
        "source": {"name": name, "sha256": sha256_file(src)},
        "quantization": {**done[best], "formats_timed_ms": timed},
        "calibration": cal.describe(),
        "score_calibration": score,
        "recall_check": check,
        "latency_ms_1_thread": {"fp32": latency_ms(src), "int8": timed[best]},
        "card": f"cards/{target_name}.md",
        "files": [
            {
                "path": target.name,
                "sha256": sha256_file(target),
                "bytes": target.stat().st_size,
            }
        ],
    }
    if check["passed"] and make_default:
        entry["default_for"] = name
    write_card(folder, target_name, name, entry)
    write_entry(folder, target_name, entry)
    return entry


def quantize_command(args: argparse.Namespace) -> int:
    """``shaobing models quantize NAME``: print where the model went and its recall check."""
    folder = models_folder(args.dest)
    if folder is None:
        print(
            "shaobing models quantize: name the deployment's models folder with --dest "
            "or $SHAOBING_MODELS",
            file=sys.stderr,
        )
        return 2
    try:
        entry = quantize(
            args.name,
            folder,
            fmt=args.format,
            calibration_per_video=args.calibration_frames,
            recall_frames=args.recall_frames,
            make_default=not args.no_default,
        )
    except (ValueError, OSError) as exc:
        print(f"shaobing models quantize: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(entry, ensure_ascii=False))
        return 0
    check, lat = entry["recall_check"], entry["latency_ms_1_thread"]
    print(f"{folder / entry['files'][0]['path']} ({entry['quantization']['format']})")
    print(f"latency ms (1 thread): fp32 {lat['fp32']}, int8 {lat['int8']}")
    for cls, v in check["per_class"].items():
        print(f"recall {cls:<10} {v['recall']} ({v['matched']}/{v['reference_boxes']})")
    print(
        f"default for {args.name}: {'yes' if entry.get('default_for') else 'no'} "
        f"(recall within {round(check['max_drop'] * 100)} points: {check['passed']})"
    )
    return 0
