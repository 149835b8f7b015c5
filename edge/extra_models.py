"""Extra detector models (``detector.extra_models``) for pipelines that confirm their detections.

A pipeline whose options name a model (e.g. ``smoke_fire: {model: fire_smoke}``) gets that
model's boxes — not the main detector's — as the ``tracks`` of its observations. Each
extra model is one onnxruntime session shared by every camera that uses it.
"""

from __future__ import annotations

import dataclasses
import logging
from datetime import datetime
from pathlib import Path
from typing import Any

from pipelines.base import CameraPipeline, Finding, Observation, Track
from shaobing.config import EdgeConfig

log = logging.getLogger(__name__)


class ExtraModelAdapter:
    """Wrap a pipeline so its observations carry an extra model's detections.

    Args:
        inner: the pipeline (e.g. SmokeFire with ``model`` set).
        detector: an OnnxDetector for the extra model.
        confidence: minimum score kept.
    """

    def __init__(self, inner: CameraPipeline, detector: Any, confidence: float) -> None:
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


def attach_extra_models(engine: Any, config: EdgeConfig, cache: dict[str, Any]) -> None:
    """Wrap the engine's pipelines that name an extra model; build each model once (``cache``).

    Raises:
        ValueError: a pipeline names a model that ``detector.extra_models`` does not define.
    """
    from edge.detector.runtime import OnnxDetector
    from shaobing.models import resolve_model

    specs = {m.name: m for m in config.detector.extra_models}
    changed = False
    for name, pipeline in list(engine.pipelines.items()):
        model_name = getattr(getattr(pipeline, "options", None), "model", None)
        if not model_name:
            continue
        spec = specs.get(model_name)
        if spec is None:
            raise ValueError(
                f"cameras[{engine.camera.id}].pipelines.{name}.model: expected a name of "
                f"detector.extra_models ({', '.join(sorted(specs)) or 'none defined'}), found {model_name!r}"
            )
        if spec.name not in cache:
            path = resolve_model(spec.model, Path(config.base_dir))
            cache[spec.name] = OnnxDetector(
                path,
                input_size=config.detector.input_size,
                confidence=spec.confidence,
                iou=config.detector.iou,
                threads=config.detector.threads,
                provider=config.detector.provider,
                class_names=list(spec.classes) or None,
            )
            log.info("extra model %s loaded from %s", spec.name, path)
        engine.pipelines[name] = ExtraModelAdapter(pipeline, cache[spec.name], spec.confidence)
        changed = True
    if changed:
        engine.needs_detections = any(p.needs_detections for p in engine.pipelines.values())
