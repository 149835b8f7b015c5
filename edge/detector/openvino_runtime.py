"""The ``openvino`` package's own runtime behind the small part of onnxruntime's session API
the detector uses (``get_inputs``, ``run``, ``get_modelmeta``).

Optional: ``pip install openvino`` (never ``onnxruntime-openvino`` beside ``onnxruntime``).
The ONNX file is read once; each input shape the detector sends (640×384 for 16:9, 640×480
for 4:3 …) is compiled once as a static model, which OpenVINO's CPU plugin runs faster
than one dynamic model. Infer requests are kept per thread, so workers run side by side.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np


class OpenVinoMissing(ImportError):
    """The ``openvino`` package is not installed."""


def import_openvino() -> Any:
    """The ``openvino`` module, or OpenVinoMissing with the install hint."""
    try:
        import openvino
    except ImportError as exc:
        raise OpenVinoMissing(
            f"the openvino package is not installed ({exc}); pip install openvino"
        ) from None
    return openvino


@dataclass(frozen=True)
class _Input:
    name: str
    shape: list[Any]


@dataclass
class _Meta:
    custom_metadata_map: dict[str, str] = field(default_factory=dict)


class OpenVinoSession:
    """An ONNX model compiled by OpenVINO for the CPU, one static model per input shape.

    Args:
        model_path: the .onnx file.
        threads: inference threads (None: OpenVINO's default).
    """

    MAX_SHAPES = 8

    def __init__(self, model_path: str | Path, threads: int | None = None) -> None:
        ov = import_openvino()
        self._core = ov.Core()
        self._model = self._core.read_model(str(model_path))
        self._config: dict[str, Any] = {
            "PERFORMANCE_HINT": "LATENCY",
            "NUM_STREAMS": 1,
            # cores are shared with the decoders: never pin inference threads to them
            "ENABLE_CPU_PINNING": False,
        }
        if threads:
            self._config["INFERENCE_NUM_THREADS"] = int(threads)
        port = self._model.inputs[0]
        self._input_name = port.get_any_name()
        pshape = port.get_partial_shape()
        self._shape: list[Any] = [int(d.get_length()) if d.is_static else None for d in pshape]
        self._compiled: dict[tuple[int, ...], Any] = {}
        self._lock = threading.Lock()
        self._local = threading.local()
        self._meta = _Meta(self._metadata())

    def _metadata(self) -> dict[str, str]:
        """The ONNX file's ``metadata_props`` (class names, score offset) when OpenVINO kept them."""
        try:
            info = self._model.get_rt_info()
            framework = info["framework"] if "framework" in info else {}
            return {k: str(framework[k]) for k in ("names", "score_offset") if k in framework}
        except Exception:  # not every OpenVINO version keeps them; names then come from COCO
            return {}

    def get_inputs(self) -> list[_Input]:
        """The model's input (spatial sizes free: each shape is compiled when first seen)."""
        shape = list(self._shape)
        if len(shape) == 4:
            shape[2], shape[3] = "height", "width"
        return [_Input(self._input_name, shape)]

    def get_modelmeta(self) -> _Meta:
        """Custom metadata, as onnxruntime gives it."""
        return self._meta

    def _compiled_for(self, shape: tuple[int, ...]) -> Any:
        with self._lock:
            compiled = self._compiled.get(shape)
            if compiled is None:
                if len(self._compiled) >= self.MAX_SHAPES:
                    self._compiled.pop(next(iter(self._compiled)))
                model = self._model.clone()
                model.reshape({self._input_name: list(shape)})
                compiled = self._core.compile_model(model, "CPU", self._config)
                self._compiled[shape] = compiled
            return compiled

    def run(self, _outputs: Any, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        """Infer one batch: ``[output0]`` like ``InferenceSession.run``."""
        x = np.ascontiguousarray(feeds[self._input_name])
        compiled = self._compiled_for(tuple(int(d) for d in x.shape))
        requests: dict[int, Any] = getattr(self._local, "requests", None) or {}
        self._local.requests = requests
        req = requests.get(id(compiled))
        if req is None:
            req = requests[id(compiled)] = compiled.create_infer_request()
        result = req.infer({0: x})
        return [np.asarray(result[compiled.outputs[0]])]
