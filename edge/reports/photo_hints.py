"""Hints from a report's photos: what the detector sees, and visible flame.

A grid worker's photo of a car across a fire-lane sign, or of a burning bin, says as much as
their words. The detector's objects and a simple flame-colour measure become candidate event
types; they decide the type only when the words do not (a photo alone, or a vague sentence).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

VEHICLES = ("car", "truck", "bus", "motorcycle")
# share of the picture that must look like open flame (bright, saturated red-orange-yellow)
FLAME_SHARE = 0.006


@dataclass(frozen=True)
class PhotoHints:
    """What the photos suggest."""

    objects: dict[str, int] = field(default_factory=dict)
    flame_share: float = 0.0
    types: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready attributes."""
        return {
            "objects": self.objects,
            "flame_share": round(self.flame_share, 4),
            "types": list(self.types),
        }


def flame_share(image: np.ndarray) -> float:
    """Fraction of pixels with open-flame colour (HSV hue ≤ 35°, saturated, very bright)."""
    import cv2

    small = cv2.resize(image, (320, max(1, int(image.shape[0] * 320 / max(1, image.shape[1])))))
    hsv = cv2.cvtColor(small, cv2.COLOR_BGR2HSV)
    h, s, v = hsv[..., 0], hsv[..., 1], hsv[..., 2]
    b, g, r = (
        small[..., 0].astype(np.int16),
        small[..., 1].astype(np.int16),
        small[..., 2].astype(np.int16),
    )
    mask = (h <= 18) & (s >= 120) & (v >= 220) & (r >= g) & (g > b) & (r - b >= 90)
    return float(mask.mean())


def photo_hints(
    images: Sequence[np.ndarray], detect: Callable[[np.ndarray], Any] | None
) -> PhotoHints:
    """Objects and flame in the photos, and the event types they point to (strongest first)."""
    objects: Counter[str] = Counter()
    flame = 0.0
    for image in images:
        if image is None:
            continue
        flame = max(flame, flame_share(image))
        if detect is not None:
            dets = detect(image)
            for i in range(len(dets)):
                objects[dets.name(i)] += 1
    types: list[str] = []
    if flame >= FLAME_SHARE:
        types.append("fire")
    if any(objects.get(v, 0) for v in VEHICLES):
        types.append("fire_lane_blocked")
    return PhotoHints(objects=dict(objects), flame_share=flame, types=tuple(types))


def combine(
    text_type: str, text_types: list[str], text_unsure: bool, has_text: bool, hints: PhotoHints
) -> tuple[str, list[str], bool]:
    """Primary type, candidates and needs_confirmation from the words and the photo hints.

    The words win when they are clear; a photo decides a report without words or with words
    that name no type; photo-only conclusions always ask for confirmation.
    """
    candidates = list(text_types)
    for t in hints.types:
        if t not in candidates:
            candidates.append(t)
    if has_text and text_type != "other" and not text_unsure:
        return text_type, candidates, False
    if hints.types and (not has_text or text_type == "other"):
        primary = hints.types[0]
        return primary, [primary, *[c for c in candidates if c != primary]], True
    return text_type, candidates, text_unsure or not has_text
