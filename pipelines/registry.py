"""Pipeline registry: config name → module with ``Options`` and ``build(options, context)``.

Modules are imported lazily so that importing the registry stays cheap.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from types import ModuleType
from typing import Any

from pydantic import BaseModel

from pipelines.base import CameraContext, CameraPipeline

# name under cameras[].pipelines → module path. Each module exposes
# `Options` (pydantic, extra="forbid") and `build(options, context)`.
PIPELINES: dict[str, str] = {
    "zone_intrusion": "pipelines.zone_intrusion",
    "falling_object": "pipelines.falling_object",
    "fire_lane": "pipelines.fire_lane",
    "water_safety": "pipelines.water_safety",
    "smoke_fire": "pipelines.smoke_fire",
}


def _module(name: str) -> ModuleType | None:
    try:
        return importlib.import_module(PIPELINES[name])
    except ModuleNotFoundError as exc:
        if exc.name == PIPELINES[name]:
            return None  # not built in this version
        raise


def options_models() -> dict[str, type[BaseModel]]:
    """Name → options model of every available pipeline."""
    out: dict[str, type[BaseModel]] = {}
    for name in PIPELINES:
        mod = _module(name)
        if mod is not None:
            out[name] = mod.Options
    return out


def parse_options(name: str, options: Mapping[str, Any]) -> BaseModel:
    """One pipeline's config options validated into its typed ``Options``.

    Raises:
        KeyError: no such pipeline in this version.
        pydantic.ValidationError: the options do not fit the pipeline's model.
    """
    options_model: type[BaseModel] = _available(name).Options
    return options_model.model_validate(options or {})


def build_pipeline(
    name: str, options: Mapping[str, Any] | BaseModel, context: CameraContext
) -> CameraPipeline:
    """Instantiate a pipeline for one camera from its options (typed, or as in the config)."""
    mod = _available(name)
    opts = (
        options if isinstance(options, mod.Options) else parse_options(name, _as_mapping(options))
    )
    pipeline: CameraPipeline = mod.build(opts, context)
    return pipeline


def _available(name: str) -> ModuleType:
    mod = _module(name) if name in PIPELINES else None
    if mod is None:
        raise KeyError(f"pipeline {name!r} is not available; known: {sorted(options_models())}")
    return mod


def _as_mapping(options: Mapping[str, Any] | BaseModel) -> Mapping[str, Any]:
    return options.model_dump(exclude_unset=True) if isinstance(options, BaseModel) else options
