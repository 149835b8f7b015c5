"""What the node asks of an object detector, whatever runs it.

``OnnxDetector`` (onnxruntime) is one; any runtime whose object answers ``infer`` the
same way (BGR images in, one ``Detections`` per image in source pixels out) can take its
place in the batching detector, the extra models and the report photos.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Protocol, runtime_checkable

import numpy as np

from edge.detector.runtime import Detections


@runtime_checkable
class Detector(Protocol):
    """An object detector that cameras may share (safe to call from several threads)."""

    @property
    def name(self) -> str:
        """The model's name (for logs and events)."""
        ...

    @property
    def class_names(self) -> tuple[str, ...]:
        """Class names in model order."""
        ...

    @property
    def parallel(self) -> int:
        """Inferences it allows to run at once (from different threads)."""
        ...

    def infer(
        self,
        images: list[np.ndarray],
        confidence: float | None = None,
        classes: Collection[str] | None = None,
    ) -> list[Detections]:
        """Detect objects in BGR images; one ``Detections`` per image, in source pixels.

        Args:
            images: BGR uint8 images of any size.
            confidence: minimum score (default: the detector's own).
            classes: keep only these class names (default: all).
        """
        ...


@runtime_checkable
class PackingDetector(Detector, Protocol):
    """A detector that can also stack two wide frames into one input when it is behind."""

    def infer_packed(
        self,
        images: list[np.ndarray],
        confidence: float | None = None,
        classes: Collection[str] | None = None,
    ) -> list[Detections]:
        """Like ``infer``; wide frames may share an input two by two."""
        ...
