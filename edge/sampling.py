"""Smarter detector sampling: three ways to spend fewer detector cycles per camera.

Each is off unless the camera's ``sampling`` options turn it on, and each is measured alone
by ``shaobing bench edge`` (detector work saved, zone entries found):

- **crop** (``sampling.crop``): while the moving area (the motion gate's regions, and the
  boxes of the live tracks) covers at most ``crop_max_area`` of the frame, the detector
  gets only that region, at the scale the whole frame would have had. A 640×360 camera
  with one person walking costs a 160×192 input instead of 640×384.
- **still keep-alives** (``sampling.skip_still_keepalive``): the periodic keep-alive
  detection is skipped while the motion gate is quiet and every track stands still; one
  still runs at least every ``still_keepalive_s``.
- **rate from the pipelines** (``sampling.rate_from_pipelines``): a camera whose
  ``detect_fps`` is not set samples as fast as its most demanding pipeline needs (a fire
  lane: 1/s; people at a zone or in water: 5/s), not the node-wide 5/s.

The engine calls three hooks: ``detect_fps`` at construction, ``skip_keepalive`` when the
gate admits a keep-alive, and ``detector_input`` / ``Undo`` around each detection.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from edge.detector.runtime import AtScale, Detections
from pipelines.base import Track

# detections per second each detection pipeline needs to decide well (while objects move)
PIPELINE_DETECT_FPS: dict[str, float] = {
    "fire_lane": 1.0,  # parked vehicles: dwell times of minutes
    "zone_intrusion": 5.0,  # entries: at 2.5/s the pedestrians clip loses 5 of 16
    "water_safety": 5.0,  # a person slipping under water: seconds matter
}
FALLBACK_DETECT_FPS = 5.0  # a pipeline not listed keeps the node's default


@dataclass(frozen=True)
class SamplingOptions:
    """Per-camera sampling switches (``cameras[].sampling``)."""

    crop: bool = False
    crop_max_area: float = 0.35
    crop_margin: float = 0.25
    skip_still_keepalive: bool = False
    still_speed_px_s: float = 4.0
    still_keepalive_s: float = 15.0
    rate_from_pipelines: bool = False

    @classmethod
    def from_config(cls, raw: Any) -> SamplingOptions:
        """From the camera's ``sampling`` mapping (None: all off)."""
        if raw is None:
            return cls()
        if isinstance(raw, SamplingOptions):
            return raw
        data = raw if isinstance(raw, dict) else raw.model_dump()
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


def detect_fps(
    configured: float, explicit: bool, pipelines: Sequence[str], options: SamplingOptions
) -> float:
    """The camera's detector rate: ``configured`` unless it was left unset and the pipelines
    may decide (then the highest need among its detection pipelines)."""
    if explicit or not options.rate_from_pipelines:
        return configured
    needs = [PIPELINE_DETECT_FPS.get(p, FALLBACK_DETECT_FPS) for p in pipelines]
    return max(needs) if needs else configured


class Undo:
    """Maps detections of a cropped, rescaled input back to the source frame."""

    def __init__(self, x0: int, y0: int, scale: float, width: int, height: int) -> None:
        self.x0, self.y0, self.scale, self.width, self.height = x0, y0, scale, width, height

    def __call__(self, dets: Detections) -> Detections:
        if not len(dets):
            return dets
        b = dets.xyxy.astype(np.float32, copy=True) / self.scale
        b[:, [0, 2]] = (b[:, [0, 2]] + self.x0).clip(0, self.width)
        b[:, [1, 3]] = (b[:, [1, 3]] + self.y0).clip(0, self.height)
        return Detections(b, dets.confidence, dets.class_id, dets.class_names)


@dataclass
class SamplingStats:
    """What the sampler saved."""

    cropped: int = 0  # detections run on a crop
    crop_pixels: int = 0  # input pixels of those crops (at the detector's scale)
    full_pixels: int = 0  # what the same detections would have cost on the whole frame
    keepalives_skipped: int = 0


class Sampler:
    """One camera's sampling decisions (see the module docstring)."""

    def __init__(self, options: SamplingOptions, input_size: int = 640, stride: int = 32) -> None:
        self.options = options
        self.input_size = input_size
        self.stride = stride
        self.stats = SamplingStats()
        self._last_detect_t: float | None = None

    # ---------------------------------------------------------------- keep-alives

    def note_detection(self, t: float) -> None:
        """A detection ran at media time ``t``."""
        self._last_detect_t = t

    def skip_keepalive(self, t: float, tracks: Sequence[Track], gate_quiet: bool) -> bool:
        """Whether a keep-alive at ``t`` can be skipped: quiet gate, every track still, and
        a detection within ``still_keepalive_s``."""
        o = self.options
        if not (o.skip_still_keepalive and gate_quiet):
            return False
        if self._last_detect_t is None or t - self._last_detect_t >= o.still_keepalive_s:
            return False
        if any(np.hypot(*tr.velocity) > o.still_speed_px_s for tr in tracks):
            return False
        self.stats.keepalives_skipped += 1
        return True

    # ---------------------------------------------------------------- crop

    def region(
        self, shape: tuple[int, ...], motion_box: Any, tracks: Sequence[Track]
    ) -> tuple[int, int, int, int] | None:
        """The part of the frame worth detecting in, or None for the whole frame."""
        if not self.options.crop or motion_box is None:
            return None
        h, w = int(shape[0]), int(shape[1])
        boxes = [tuple(float(v) for v in motion_box)]
        boxes += [tuple(float(v) for v in tr.xyxy) for tr in tracks if tr.lost_s < 2.0]
        r = np.asarray(boxes, dtype=np.float32)
        x1, y1, x2, y2 = r[:, 0].min(), r[:, 1].min(), r[:, 2].max(), r[:, 3].max()
        m = self.options.crop_margin
        mx, my = (x2 - x1) * m + 8, (y2 - y1) * m + 8
        x1, y1 = max(0, int(x1 - mx)), max(0, int(y1 - my))
        x2, y2 = min(w, int(x2 + mx + 1)), min(h, int(y2 + my + 1))
        if x2 <= x1 or y2 <= y1 or (x2 - x1) * (y2 - y1) > self.options.crop_max_area * w * h:
            return None
        return x1, y1, x2, y2

    def detector_input(
        self, image: np.ndarray, motion_box: Any, tracks: Sequence[Track]
    ) -> tuple[np.ndarray, Undo | None]:
        """The image to detect on (a crop at the whole frame's scale, or the frame) and the
        mapping of its detections back to the frame (None: nothing to map)."""
        region = self.region(image.shape, motion_box, tracks)
        if region is None:
            return image, None
        import cv2

        h, w = image.shape[:2]
        x1, y1, x2, y2 = region
        scale = min(self.input_size / w, self.input_size / h)
        cw, ch = max(1, int(round((x2 - x1) * scale))), max(1, int(round((y2 - y1) * scale)))
        crop = cv2.resize(image[y1:y2, x1:x2], (cw, ch), interpolation=cv2.INTER_LINEAR)
        s = self.stride

        def padded(n: int) -> int:
            return -(-n // s) * s

        self.stats.cropped += 1
        self.stats.crop_pixels += padded(cw) * padded(ch)
        self.stats.full_pixels += padded(int(round(w * scale))) * padded(int(round(h * scale)))
        return crop.view(AtScale), Undo(x1, y1, scale, w, h)
