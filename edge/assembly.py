"""A camera assembled whole: everything its engine is made of is resolved first.

``assemble_camera`` takes a camera's config to ``CameraParts``: its pipeline options, typed
(validated once, when the config was loaded; validated here only for a config made in
code), its pipelines with the extra models they name, the engine's options and the
tracker's confidence. ``CameraParts.build`` then makes the engine in one piece with its
``DetectorHooks``. Nothing is set on an engine afterwards.

The node (``edge run``, and ``/setup`` when a camera changes) and ``shaobing detect``
assemble their cameras here. The node first assembles every camera, so that it knows
whether any needs the shared detector before it starts one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from pydantic import BaseModel

from edge.engine import CameraEngine, DetectFn, EngineOptions, SubmitFn, camera_context
from edge.extra_models import ExtraModels
from pipelines.base import CameraPipeline
from pipelines.registry import build_pipeline, parse_options
from shaobing.config import CameraConfig, EdgeConfig
from shaobing.taxonomy import Taxonomy

__all__ = [
    "CameraParts",
    "DetectorHooks",
    "assemble_camera",
    "camera_confidence",
    "engine_options",
    "pipeline_options",
]


@dataclass(frozen=True)
class DetectorHooks:
    """How an engine reaches the detector.

    Attributes:
        detect: synchronous (offline, and live sources that must not skip samples).
        submit: asynchronous (live sources: a busy detector lowers the camera's rate).
    """

    detect: DetectFn | None = None
    submit: SubmitFn | None = None


@dataclass(frozen=True)
class CameraParts:
    """Everything one camera's engine is made of, resolved (build one engine from it)."""

    config: EdgeConfig
    camera: CameraConfig
    taxonomy: Taxonomy
    options: Mapping[str, BaseModel]
    pipelines: Mapping[str, CameraPipeline]
    engine_options: EngineOptions
    confidence: float

    @property
    def needs_detections(self) -> bool:
        """Whether a pipeline uses the node's detector (extra models are their own)."""
        return any(p.needs_detections for p in self.pipelines.values())

    @property
    def detect_confidence(self) -> float:
        """The lowest score to ask of the detector: tracks continue below the start confidence."""
        return max(0.05, self.confidence * 0.4)

    def build(self, start: datetime, hooks: DetectorHooks) -> CameraEngine:
        """The camera's engine; media time 0 is ``start``."""
        return CameraEngine(
            self.config,
            self.camera,
            hooks.detect,
            self.taxonomy,
            start,
            self.confidence,
            options=self.engine_options,
            submit=hooks.submit,
            pipelines=self.pipelines,
        )


def pipeline_options(camera: CameraConfig) -> dict[str, BaseModel]:
    """The camera's pipeline options, typed: as validated at config load, else validated now.

    Raises:
        KeyError: a pipeline this version does not have.
        pydantic.ValidationError: options that do not fit the pipeline (a config made in
            code; a loaded config was checked with file and line already).
    """
    out: dict[str, BaseModel] = {}
    for name, raw in camera.pipelines.items():
        typed = camera.typed_options(name)
        out[name] = typed if typed is not None else parse_options(name, raw)
    return out


def camera_confidence(
    cfg: EdgeConfig, camera: CameraConfig, options: Mapping[str, BaseModel] | None = None
) -> float:
    """Track-start confidence of a camera: the detector's, lowered where a pipeline asks for
    less (people in water are seen at 0.2–0.4 by COCO models). Only a ``min_confidence``
    written in the config counts, not a pipeline's default."""
    typed = pipeline_options(camera) if options is None else options
    wanted = [
        float(value)
        for opts in typed.values()
        if "min_confidence" in opts.model_fields_set
        and isinstance(value := getattr(opts, "min_confidence", None), int | float)
        and value > 0
    ]
    return min([cfg.detector.confidence, *wanted])


def engine_options(cfg: EdgeConfig, camera: CameraConfig, offline: bool) -> EngineOptions:
    """The engine's settings from the camera's config (clips only live)."""
    return EngineOptions(
        motion_gate=camera.motion_gate,
        keepalive_s=camera.keepalive_s,
        hangover_s=camera.hangover_s,
        health=camera.health,
        clips=camera.clips and not offline,
        clip_pre_s=cfg.evidence.clip_pre_s,
        clip_post_s=cfg.evidence.clip_post_s,
        max_detect_fps=camera.max_detect_fps,
    )


def assemble_camera(
    cfg: EdgeConfig,
    camera: CameraConfig,
    taxonomy: Taxonomy,
    *,
    offline: bool,
    extra_models: ExtraModels,
) -> CameraParts:
    """Resolve everything ``camera``'s engine is made of.

    Raises:
        ValueError: a pipeline names a model that ``detector.extra_models`` does not define.
    """
    options = pipeline_options(camera)
    context = camera_context(cfg, camera, taxonomy)
    pipelines = {
        name: extra_models.wrap(camera.id, name, build_pipeline(name, opts, context), opts)
        for name, opts in options.items()
    }
    return CameraParts(
        config=cfg,
        camera=camera,
        taxonomy=taxonomy,
        options=options,
        pipelines=pipelines,
        engine_options=engine_options(cfg, camera, offline),
        confidence=camera_confidence(cfg, camera, options),
    )
