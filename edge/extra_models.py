"""Extra detector models (``detector.extra_models``) for pipelines that confirm their detections.

A pipeline whose options name a model (e.g. ``smoke_fire: {model: fire_smoke}``) gets that
model's boxes — not the main detector's — as the ``tracks`` of its observations. Each
extra model is one onnxruntime session shared by every camera that uses it.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from edge.detector.protocol import Detector
from pipelines.base import CameraPipeline, Finding, Observation, Track
from shaobing.config import EdgeConfig, ExtraModelConfig

log = logging.getLogger(__name__)


class ExtraModelAdapter:
    """Wrap a pipeline so its observations carry an extra model's detections.

    Args:
        inner: the pipeline (e.g. SmokeFire with ``model`` set).
        detector: the extra model.
        confidence: minimum score kept.
    """

    def __init__(self, inner: CameraPipeline, detector: Detector, confidence: float) -> None:
        self.inner = inner
        self.detector = detector
        self.confidence = confidence
        self.name = inner.name
        self.needs_every_frame = inner.needs_every_frame
        self.needs_frames = True  # the model needs the pixels
        self.needs_detections = False  # not the main detector's tracks

    def update(self, obs: Observation) -> list[Finding]:
        """Run the extra model on the observation's frame, then the pipeline."""
        tracks: list[Track] | None = None
        if obs.frame is not None:
            dets = self.detector.infer([obs.frame], confidence=self.confidence)[0]
            tracks = [
                Track(
                    track_id=i + 1,
                    xyxy=tuple(float(v) for v in dets.xyxy[i]),  # type: ignore[arg-type]
                    class_name=dets.name(i),
                    confidence=float(dets.confidence[i]),
                )
                for i in range(len(dets))
            ]
        frame = obs.frame if self.inner.needs_frames else None
        return self.inner.update(dataclasses.replace(obs, tracks=tracks, frame=frame))

    def flush(self, at: datetime) -> list[Finding]:
        """Delegate to the pipeline."""
        return self.inner.flush(at)

    def __getattr__(self, item: str) -> Any:
        # state_dict / load_state and other pipeline extras pass through
        return getattr(self.inner, item)


class ExtraModels:
    """The node's ``detector.extra_models``: each loaded on first use, then shared.

    Args:
        config: the node config (the models, and the runtime settings they share).
        load: builds the detector of one entry (default: an OnnxDetector from the manifest).
    """

    def __init__(
        self, config: EdgeConfig, load: Callable[[ExtraModelConfig], Detector] | None = None
    ) -> None:
        self.config = config
        self.specs = {m.name: m for m in config.detector.extra_models}
        self._load = load or self._onnx
        self._loaded: dict[str, Detector] = {}
        self._lock = threading.Lock()

    def wrap(
        self, camera_id: str, name: str, pipeline: CameraPipeline, options: BaseModel
    ) -> CameraPipeline:
        """``pipeline`` fed by the extra model its options name, or itself when they name none.

        Raises:
            ValueError: the options name a model that ``detector.extra_models`` does not define.
        """
        model_name = getattr(options, "model", None)
        if not model_name:
            return pipeline
        spec = self.specs.get(model_name)
        if spec is None:
            raise ValueError(
                f"cameras[{camera_id}].pipelines.{name}.model: expected a name of "
                f"detector.extra_models ({', '.join(sorted(self.specs)) or 'none defined'}), found {model_name!r}"
            )
        return ExtraModelAdapter(pipeline, self.detector(spec), spec.confidence)

    def detector(self, spec: ExtraModelConfig) -> Detector:
        """The loaded model of ``spec`` (loaded now if it is the first use)."""
        with self._lock:
            if spec.name not in self._loaded:
                self._loaded[spec.name] = self._load(spec)
            return self._loaded[spec.name]

    def _onnx(self, spec: ExtraModelConfig) -> Detector:
        from edge.detector.runtime import OnnxDetector
        from shaobing.models import resolve_model

        config = self.config
        path = resolve_model(spec.model, Path(config.base_dir))
        detector = OnnxDetector(
            path,
            input_size=config.detector.input_size,
            confidence=spec.confidence,
            iou=config.detector.iou,
            threads=config.detector.threads,
            provider=config.detector.provider,
            class_names=list(spec.classes) or None,
        )
        log.info("extra model %s loaded from %s", spec.name, path)
        return detector
