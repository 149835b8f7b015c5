"""Per-frame masks and the evidence grids: cells that hold evidence long enough form regions."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Literal

import cv2
import numpy as np

from pipelines.base import Box

Kind = Literal["fire", "smoke"]
CLASSICAL = "classical"
FLICKER_QUANTILE = 0.25
"""Temporal tests use this quantile of the per-sample values over the window: a flame or smoke
changes (nearly) every sample; a passing car or a camera that shakes now and then does not."""


# --------------------------------------------------------------------------- per-frame masks


def flame_mask(bgr: np.ndarray, min_red: int = 170) -> np.ndarray:
    """Flame-coloured pixels of a BGR image (bool H×W).

    Rules (RGB): R ≥ ``min_red``, R ≥ G > B, R − B ≥ 60 and brighter than the frame's mean
    luma; plus bright, not bluish cores (luma ≥ 215, R ≥ B) near such pixels.
    """
    b = bgr[..., 0].astype(np.int32)
    g = bgr[..., 1].astype(np.int32)
    r = bgr[..., 2].astype(np.int32)
    y = (r * 77 + g * 150 + b * 29) >> 8
    mean_y = float(y.mean())
    warm = (r >= min_red) & (r >= g) & (g > b) & (r - b >= 60) & (y > mean_y)
    core = (y >= 215) & (r >= b) & (r + 8 >= g)
    near = cv2.dilate(warm.astype(np.uint8), np.ones((9, 9), np.uint8)) > 0
    return np.asarray(warm | (core & near))


def edge_strength(gray: np.ndarray) -> np.ndarray:
    """Gradient magnitude, blurred over 5×5 pixels (smoke adds little of it)."""
    gx = cv2.Sobel(gray, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(gray, cv2.CV_32F, 0, 1, ksize=3)
    mag = cv2.magnitude(gx, gy)
    return np.asarray(cv2.blur(mag, (5, 5)))


def cell_means(mask: np.ndarray, grid: tuple[int, int]) -> np.ndarray:
    """Mean of a mask (or any float map) per grid cell."""
    return np.asarray(cv2.resize(mask.astype(np.float32), grid, interpolation=cv2.INTER_AREA))


# --------------------------------------------------------------------------- evidence grids


@dataclass
class Sample:
    t: float
    present: np.ndarray  # bool cells
    weight: np.ndarray  # float cells: share of evidence pixels
    churn: np.ndarray  # float cells: changing pixels (XOR for flame, |ΔY| for smoke)
    union: np.ndarray  # float cells: pixels that count for the churn ratio
    score: np.ndarray  # float cells: model confidence (model grids) or evidence share
    step: np.ndarray | None = (
        None  # float cells: brightness change summed over pixels that stayed flame-coloured
    )
    stay: np.ndarray | None = None  # float cells: pixels that stayed flame-coloured
    solid: np.ndarray | None = None  # float cells: flame pixels inside a solid (eroded) flame body


@dataclass
class Region:
    kind: Kind
    cells: np.ndarray  # bool cells
    box: Box  # source pixels
    area: float  # fraction of the watched area
    score: float
    detector: str
    churn: float = 0.0
    rise: float = 0.0


@dataclass
class Grid:
    """Sliding-window persistence test for one (type, detector) pair."""

    kind: Kind
    detector: str
    window_s: float
    confirm_s: float
    samples: deque[Sample] = field(default_factory=deque)
    run_start: np.ndarray | None = None  # per cell: time since which evidence is persistent
    _stacks: dict[str, np.ndarray | None] = field(default_factory=dict)

    def add(self, sample: Sample) -> None:
        self.samples.append(sample)
        while self.samples and sample.t - self.samples[0].t > self.window_s + 1e-6:
            self.samples.popleft()
        self._stacks.clear()

    def reset(self) -> None:
        self.samples.clear()
        self.run_start = None
        self._stacks.clear()

    def stack(self, attr: str) -> np.ndarray | None:
        """The window's cell maps of one attribute as an (S, gh, gw) array (None when missing)."""
        if attr not in self._stacks:
            maps = [getattr(s, attr) for s in self.samples]
            ok = bool(maps) and all(m is not None for m in maps)
            self._stacks[attr] = np.stack(maps) if ok else None
        return self._stacks[attr]

    def persistent(self, now: float, ratio: float) -> np.ndarray:
        """Cells that held evidence in ≥ ratio of the window and for ≥ confirm_s."""
        confirm_s = self.confirm_s
        if not self.samples:
            return np.zeros((0, 0), bool)
        stack = self.stack("present")
        assert stack is not None
        held = stack.mean(axis=0) >= ratio
        if self.run_start is None or self.run_start.shape != held.shape:
            self.run_start = np.full(held.shape, np.inf)
        # a cell's run starts at its first evidence in the window and ends when it stops holding
        times = np.array([s.t for s in self.samples])
        first = np.where(stack.any(axis=0), times[np.argmax(stack, axis=0)], np.inf)
        self.run_start = np.where(held, np.minimum(self.run_start, first), np.inf)
        return np.asarray(held & (now - self.run_start >= confirm_s - 1e-6))


def shrink(frame: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Scale a frame down to ``size``; large frames first by decimation to twice the size (cheap)."""
    if frame.shape[1] >= 4 * size[0] and frame.shape[0] >= 4 * size[1]:
        frame = cv2.resize(frame, (2 * size[0], 2 * size[1]), interpolation=cv2.INTER_NEAREST)
    return np.asarray(cv2.resize(frame, size, interpolation=cv2.INTER_AREA))


def components(cells: np.ndarray) -> list[np.ndarray]:
    """8-connected groups of true cells."""
    if cells.size == 0 or not cells.any():
        return []
    n, labels = cv2.connectedComponents(cells.astype(np.uint8), connectivity=8)
    return [labels == i for i in range(1, n)]


def union_box(boxes: list[Box]) -> Box:
    return (
        min(b[0] for b in boxes),
        min(b[1] for b in boxes),
        max(b[2] for b in boxes),
        max(b[3] for b in boxes),
    )
