"""Motion gate: run the detector only where and when something moves.

Each frame is reduced to a small grey image (``width`` pixels wide, box-filtered by the
area resize, which also removes most sensor noise) and compared with a running-average
background. Global lighting changes — a cloud, auto-exposure, headlights washing over
the whole view — change every pixel by a similar amount: the difference is taken after
removing the frame's gain and offset against the background (means and spreads are
matched), and a change that covers most of the picture is treated as lighting, not
motion (the background adopts the new picture at once). What remains is thresholded,
opened with a small kernel (isolated noise pixels go), and split into regions.

The gate admits a frame when a region is large enough, keeps admitting for
``hangover_s`` after the last motion (a person who stops is still followed), and admits
a keep-alive frame every ``keepalive_s`` so stationary objects (a parked car) stay tracked.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

Region = tuple[int, int, int, int]
"""x1, y1, x2, y2 in source-frame pixels."""


@dataclass
class MotionStats:
    """Counters of one gate."""

    frames: int = 0
    motion_frames: int = 0
    lighting_changes: int = 0
    keepalives: int = 0
    admitted: int = 0


@dataclass(frozen=True)
class MotionResult:
    """The gate's view of one frame."""

    moving: bool
    regions: tuple[Region, ...]
    changed_fraction: float
    lighting_change: bool


def downscale_grey(image: np.ndarray, width: int) -> np.ndarray:
    """BGR (or grey) image → float32 grey ``width`` pixels wide (area resize)."""
    import cv2

    h, w = image.shape[:2]
    height = max(1, int(round(h * width / max(1, w))))
    grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY) if image.ndim == 3 else image
    small = cv2.resize(grey, (width, height), interpolation=cv2.INTER_AREA)
    return small.astype(np.float32)


class MotionDetector:
    """Background subtraction with lighting compensation on a downscaled grey frame.

    Args:
        width: working width in pixels (height keeps the aspect ratio).
        threshold: grey-level difference (0–255, after lighting compensation) that counts as change.
        min_area_fraction: smallest region, as a fraction of the frame, that counts as motion.
        lighting_fraction: changed fraction of the frame above which the change is lighting.
        learn_rate: background running-average weight of a new frame.
    """

    def __init__(
        self,
        width: int = 160,
        threshold: float = 22.0,
        min_area_fraction: float = 0.0008,
        lighting_fraction: float = 0.6,
        learn_rate: float = 0.05,
    ) -> None:
        self.width = width
        self.threshold = threshold
        self.min_area_fraction = min_area_fraction
        self.lighting_fraction = lighting_fraction
        self.learn_rate = learn_rate
        self._background: np.ndarray | None = None
        self._kernel = np.ones((3, 3), np.uint8)

    def reset(self) -> None:
        """Forget the background (the next frame becomes it)."""
        self._background = None

    def analyse(self, image: np.ndarray, grey: np.ndarray | None = None) -> MotionResult:
        """Compare one frame with the background and update the background.

        Args:
            image: BGR frame (full size; regions are returned in its pixels).
            grey: the frame already reduced by ``downscale_grey(image, width)``, if at hand.
        """
        import cv2

        small = grey if grey is not None else downscale_grey(image, self.width)
        bg = self._background
        if bg is None or bg.shape != small.shape:
            self._background = small.copy()
            return MotionResult(False, (), 0.0, False)
        # match gain and offset of the frame to the background: a global brightness change
        # (multiplicative or additive) leaves no difference
        s_mean, s_std = float(small.mean()), float(small.std())
        b_mean, b_std = float(bg.mean()), float(bg.std())
        gain = b_std / s_std if s_std > 1.0 and b_std > 1.0 else 1.0
        gain = min(4.0, max(0.25, gain))
        normalised = (small - s_mean) * gain + b_mean
        diff = np.abs(normalised - bg)
        mask = (diff > self.threshold).astype(np.uint8)
        mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, self._kernel)
        changed = float(mask.mean())
        if changed > self.lighting_fraction:
            # most of the view changed at once: lighting or a camera move, not an object
            self._background = small.copy()
            return MotionResult(False, (), changed, True)
        cv2.accumulateWeighted(small, bg, self.learn_rate)
        if changed == 0.0:
            return MotionResult(False, (), 0.0, False)
        # group nearby changed pixels (dilated mask), but size each group by its changed pixels
        grouped = cv2.dilate(mask, self._kernel, iterations=2)
        n, labels, stats, _ = cv2.connectedComponentsWithStats(grouped, connectivity=8)
        areas = np.bincount(labels[mask > 0], minlength=n)
        h, w = small.shape
        min_area = max(2.0, self.min_area_fraction * h * w)
        H, W = image.shape[:2]
        sx, sy = W / w, H / h
        regions: list[Region] = []
        for i in range(1, n):
            x, y, bw, bh, _ = (int(v) for v in stats[i])
            if areas[i] < min_area:
                continue
            regions.append(
                (int(x * sx), int(y * sy), int(min(W, (x + bw) * sx)), int(min(H, (y + bh) * sy)))
            )
        return MotionResult(bool(regions), tuple(regions), changed, False)


class MotionGate:
    """Decide per frame whether the detector should run.

    Args:
        keepalive_s: admit at least one frame this often (media seconds), motion or not.
        hangover_s: keep admitting this long after the last motion.
        detector: the motion detector (default settings when None).
    """

    def __init__(
        self,
        keepalive_s: float = 3.0,
        hangover_s: float = 1.0,
        detector: MotionDetector | None = None,
    ) -> None:
        self.keepalive_s = keepalive_s
        self.hangover_s = hangover_s
        self.detector = detector or MotionDetector()
        self.stats = MotionStats()
        self.last: MotionResult = MotionResult(False, (), 0.0, False)
        self._last_motion_t: float | None = None
        self._last_admit_t: float | None = None

    def observe(self, image: np.ndarray, t: float, grey: np.ndarray | None = None) -> MotionResult:
        """Update the background with a frame at media time ``t``; returns the motion found."""
        result = self.detector.analyse(image, grey)
        self.stats.frames += 1
        if result.lighting_change:
            self.stats.lighting_changes += 1
        if result.moving:
            self.stats.motion_frames += 1
            self._last_motion_t = t
        self.last = result
        return result

    def in_motion(self, t: float) -> bool:
        """Whether ``t`` is within ``hangover_s`` of the last motion (what the gate admits for)."""
        return self._last_motion_t is not None and t - self._last_motion_t <= self.hangover_s

    def should_detect(self, t: float) -> bool:
        """Whether a detector sample at media time ``t`` is worth running (after ``observe``)."""
        if self.in_motion(t):
            self._last_admit_t = t
            self.stats.admitted += 1
            return True
        if self._last_admit_t is None or t - self._last_admit_t >= self.keepalive_s:
            self._last_admit_t = t
            self.stats.admitted += 1
            self.stats.keepalives += 1
            return True
        return False

    def admit(self, frame: np.ndarray, t: float | None = None) -> bool:
        """Observe a frame and decide in one step (``t`` defaults to a 10 fps frame count)."""
        if t is None:
            t = self.stats.frames / 10.0
        self.observe(frame, t)
        return self.should_detect(t)

    def regions(self) -> tuple[Region, ...]:
        """Moving regions of the last observed frame, in source pixels."""
        return self.last.regions

    def motion_box(self, margin: float = 0.15) -> Region | None:
        """The union of the last frame's regions, widened by ``margin`` of its size; None if still."""
        if not self.last.regions:
            return None
        r = np.asarray(self.last.regions, dtype=np.float32)
        x1, y1 = float(r[:, 0].min()), float(r[:, 1].min())
        x2, y2 = float(r[:, 2].max()), float(r[:, 3].max())
        mx, my = (x2 - x1) * margin + 16, (y2 - y1) * margin + 16
        return (int(max(0, x1 - mx)), int(max(0, y1 - my)), int(x2 + mx), int(y2 + my))
