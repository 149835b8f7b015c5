"""``detector.runtime``: onnxruntime, OpenVINO, or whichever of the two is faster here.

``auto`` builds the detector on both runtimes, runs each for ``seconds`` on the same frame
(letterbox, inference, decoding: what a camera costs) and keeps the faster; without the
``openvino`` package it keeps onnxruntime and logs why. ``openvino`` without the package
falls back to onnxruntime with a warning that says what to install. The choice and the
measured latencies are kept on the detector (``runtime_choice``) for ``/metrics``.
"""

from __future__ import annotations

import logging
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from edge.detector.openvino_runtime import OpenVinoMissing, import_openvino

log = logging.getLogger(__name__)

RUNTIMES = ("onnxruntime", "openvino")


def openvino_available() -> bool:
    """Whether the ``openvino`` package imports here."""
    try:
        import_openvino()
    except OpenVinoMissing:
        return False
    return True


def median_ms(detector: Any, seconds: float, frame: np.ndarray | None = None) -> float:
    """Median milliseconds per frame over about ``seconds`` (after one warm-up frame)."""
    img = frame if frame is not None else _probe_frame()
    detector.infer([img])
    times: list[float] = []
    end = time.monotonic() + seconds
    while time.monotonic() < end or len(times) < 3:
        t0 = time.perf_counter()
        detector.infer([img])
        times.append((time.perf_counter() - t0) * 1000.0)
    return statistics.median(times)


def _probe_frame() -> np.ndarray:
    """A 640×360 frame with texture (a flat frame decodes nothing and flatters neither)."""
    rng = np.random.default_rng(0)
    return rng.integers(0, 255, (360, 640, 3), dtype=np.uint8)


def build_on_runtime(
    make: Callable[[str], Any],
    runtime: str,
    seconds: float = 2.0,
) -> Any:
    """The detector on ``runtime`` (``auto``, ``onnxruntime`` or ``openvino``).

    Args:
        make: builds the detector for one runtime name (``OnnxDetector(..., runtime=name)``).
        runtime: the config value.
        seconds: how long ``auto`` runs each runtime before choosing.

    Returns the detector, with ``runtime_choice``: requested, chosen, why, and the
    milliseconds per frame measured by ``auto``.
    """
    choice: dict[str, Any] = {"requested": runtime, "chosen": "onnxruntime", "ms": {}}
    if runtime == "onnxruntime":
        det = make("onnxruntime")
        choice["reason"] = "configured"
    elif not openvino_available():
        level = logging.WARNING if runtime == "openvino" else logging.INFO
        log.log(
            level,
            "detector.runtime %s: the openvino package is not installed (pip install openvino); "
            "using onnxruntime",
            runtime,
        )
        det = make("onnxruntime")
        choice["reason"] = "openvino not installed"
    elif runtime == "openvino":
        det = make("openvino")
        choice.update(chosen="openvino", reason="configured")
    else:
        det, choice = _race(make, seconds, choice)
    det.runtime_choice = choice
    return det


def _race(
    make: Callable[[str], Any], seconds: float, choice: dict[str, Any]
) -> tuple[Any, dict[str, Any]]:
    """Each runtime for ``seconds`` on the same frame; the faster one is kept."""
    frame = _probe_frame()
    built: dict[str, Any] = {}
    for name in RUNTIMES:
        try:
            built[name] = make(name)
            choice["ms"][name] = round(median_ms(built[name], seconds, frame), 2)
        except Exception as exc:  # a runtime that cannot load this model is not a choice
            log.warning("detector.runtime auto: %s failed on this model (%s)", name, exc)
            built.pop(name, None)
    if not built:
        raise RuntimeError("detector.runtime auto: no runtime could load the model")
    best = min(built, key=lambda n: choice["ms"].get(n, float("inf")))
    choice.update(chosen=best, reason="faster here")
    log.info(
        "detector.runtime auto: %s (%s)",
        best,
        ", ".join(f"{n} {ms} ms" for n, ms in choice["ms"].items()),
    )
    return built[best], choice


def build_detector_for(path: Path, runtime: str, seconds: float = 2.0, **kwargs: Any) -> Any:
    """``OnnxDetector(path, **kwargs)`` on the runtime the config asks for."""
    from edge.detector.runtime import OnnxDetector

    return build_on_runtime(
        lambda name: OnnxDetector(path, runtime=name, **kwargs), runtime, seconds
    )
