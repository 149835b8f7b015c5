"""Falling objects (高空抛物): motion on a façade that falls like a dropped body.

A camera looks up at a building. The COCO detector does not see a falling bottle, so this
pipeline works on pixels. A background model on a downscaled, smoothed crop of the watched
region (the façade plus ``air_margin`` of air beside it; colour differences by default, so
an object as bright as the wall still shows) gives small moving blobs. Global gain changes
(exposure, clouds) are compensated; a frame where much of the region changes at once
(lightning, a light switched on) relearns the background and is skipped; a per-pixel
activity map mutes places that keep moving (foliage, flags, ghosts); many thin streaks in
one frame are dropped as rain. Repeated frames (frame-rate conversion) are skipped.

Hard conditions (night, infrared, small objects, rain, snow, insects): the threshold
follows the camera's noise floor, learned over time; rain streaks are removed by shape
and common direction (structure tensor, then an opening along that direction); a frame of
many small particles is not a global change; where a known track is expected, faint
candidates (2.5 σ) may extend it but never start one (track before detect); a track linked
through crowds of candidates is rejected, and among clutter only a plain fall under g
counts.

Blobs are linked into tracks in façade metres (a homography from the four calibrated
corners) with a gravity-aware predictor. A finished track is accepted only if it falls like
a body:

* weighted least squares ``Y(t) = y0 + v0·t − ½·a·t²`` with ``a`` within
  ``[min_accel_mps2, max_accel_mps2]`` and significantly above zero (leaves and paper
  drift at near-constant speed, birds fly level or climb), a small residual, a drop of at
  least ``min_drop_m`` and a fast final speed. The upper bound is loose on purpose: an
  object thrown towards a camera that looks up appears, once mapped onto the façade plane,
  to fall faster than g;
* sideways motion close to a straight line, no climbing back once falling, a steady blob
  size, seen in most frames it spans, not in a busy (foliage) area.

Tracks broken by an occlusion or a crossing bird are joined again when the pieces fit one
fall; a piece of a fall already reported is not reported twice.

Physics (issue 19.6): the camera pose comes from the calibration (focal length from the
homography, principal point at the image centre). A fitted acceleration between 0.5 g and
1.25 g is a body under gravity; above that, the track is fitted with g in 3-D, the body
moving towards the camera in front of the façade (``gravity_depth``); when neither
explains it, the fit is ``implausible``: ``floor_range`` is widened and the confidence
lowered. ``attributes.fit`` gives the model, the depth and a Chinese reason.

The release point is the highest point consistent with the fit: the vertex of a parabola
fitted to the early part of the track (velocity zero) when the object was already falling at
its first sighting, else the first sighting itself; a static lead-in (an object resting on a
sill before it falls) pins the release position. Release floor and window column come from
the normalised façade coordinates of that point; ``floor_range`` spans the estimates with
the fitted acceleration and with g, and the first sighting, so it widens when the release
was extrapolated far above the first sighting.

Façade metres: height = ``floors × floor_height_m``; width = ``columns ×
column_width_m`` (default 3.6 m, a common window pitch). The width only scales the
sideways plausibility limits; floor and column indices come from the normalised
coordinates.

One finding (state ``active``) per falling object, emitted when its track ends (object
landed, left the frame or the façade region), i.e. within ``gap_s`` (0.3 s) of the last
sighting.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

import cv2
import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from pipelines.base import CameraContext, Finding, Observation

G = 9.81
_TYPE = "falling_object"

MESSAGES: dict[str, str] = {
    "summary": "{where}{floor}层 第{column}列窗口 高空抛物",
    "fit_gravity": "轨迹符合自由落体（拟合加速度 {accel:.1f} m/s²）",
    "fit_depth": (
        "拟合加速度 {accel:.1f} m/s² 高于重力：物体在墙前 {z0:.1f}→{z1:.1f} 米处落下"
        "（向镜头方向），透视使其看似更快；楼层范围已计入离墙修正"
    ),
    "fit_fast": (
        "拟合加速度 {accel:.1f} m/s²（{g:.1f} g），考虑透视和离墙距离仍无法用重力解释："
        "楼层范围已放宽，置信度已降低"
    ),
    "fit_slow": (
        "拟合加速度 {accel:.1f} m/s² 远低于重力（{g:.1f} g）：可能是轻飘物或轨迹不完整，"
        "楼层范围已放宽，置信度已降低"
    ),
}
"""Chinese strings a worker reads (summary and the physics note in ``attributes.fit``)."""


class FacadeOptions(BaseModel):
    """Façade calibration: four image corners and the window grid."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    corners: list[tuple[float, float]] = Field(
        description="façade corners in image pixels: top-left, top-right, bottom-right, bottom-left"
    )
    floors: int = Field(
        ge=1, le=300, description="storeys between the bottom and top edges; floor 1 = ground floor"
    )
    columns: int = Field(
        ge=1, le=200, description="window columns; column 1 = leftmost as seen in the image"
    )
    floor_height_m: float = Field(
        default=3.0, gt=0.5, le=20.0, description="storey height in metres"
    )
    column_width_m: float = Field(
        default=3.6,
        gt=0.3,
        le=50.0,
        description="window pitch in metres (façade width = columns × this)",
    )

    @field_validator("corners")
    @classmethod
    def _corners(cls, value: list[tuple[float, float]]) -> list[tuple[float, float]]:
        if len(value) != 4:
            raise ValueError(f"expected 4 corners [[x, y], …] (TL, TR, BR, BL), found {len(value)}")
        pts = np.asarray(value, dtype=np.float64)
        cross = []
        for i in range(4):
            a, b, c = pts[i], pts[(i + 1) % 4], pts[(i + 2) % 4]
            ab, bc = b - a, c - b
            cross.append(ab[0] * bc[1] - ab[1] * bc[0])
        if not (all(c > 0 for c in cross) or all(c < 0 for c in cross)):
            raise ValueError(
                f"expected a convex quadrilateral TL, TR, BR, BL, found corners {value}"
            )
        tl, tr, br, bl = pts
        if not (tl[1] + tr[1] < bl[1] + br[1]):
            raise ValueError(
                f"expected the top edge (TL, TR) above the bottom edge (BR, BL), found corners {value}"
            )
        if not (tl[0] < tr[0] and bl[0] < br[0]):
            raise ValueError(
                f"expected left corners left of right corners (TL, TR, BR, BL), found corners {value}"
            )
        e1, e2 = tr - tl, bl - tl
        if abs(float(e1[0] * e2[1] - e1[1] * e2[0])) < 100.0:
            raise ValueError(
                f"expected a façade of some area, found a degenerate quadrilateral {value}"
            )
        return value


class Options(BaseModel):
    """``falling_object`` options under ``cameras[].pipelines``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    facade: FacadeOptions = Field(description="façade calibration (corners, floors, columns)")
    building: str | None = Field(
        default=None, description="building name, e.g. 3栋 (goes into address and summary)"
    )
    severity: Literal["normal", "urgent", "emergency"] = Field(
        default="urgent", description="severity of the event (never below the type's default)"
    )
    work_width: int = Field(
        default=640, ge=160, le=1920, description="motion analysis width in pixels (downscale)"
    )
    min_drop_m: float = Field(
        default=3.0, gt=0.0, le=100.0, description="smallest tracked vertical drop to report (m)"
    )
    min_accel_mps2: float = Field(
        default=3.5, gt=0.0, le=30.0, description="lowest plausible fitted fall acceleration"
    )
    max_accel_mps2: float = Field(
        default=60.0, gt=1.0, le=100.0, description="highest plausible fitted fall acceleration"
    )
    gap_s: float = Field(
        default=0.3, gt=0.0, le=1.0, description="a track ends after this long unseen"
    )
    air_margin: float = Field(
        default=0.25,
        ge=0.0,
        le=1.0,
        description="air beside the façade watched, as a fraction of its width",
    )
    max_activity: float = Field(
        default=0.03,
        ge=0.0,
        le=1.0,
        description="reject tracks through places that keep moving (activity 0..1)",
    )
    color: bool = Field(
        default=True,
        description="compare colour, not only brightness (slower, sees hue-only contrast)",
    )
    min_contrast: float = Field(
        default=10.0, ge=1.0, le=100.0, description="lowest grey-level difference treated as motion"
    )
    faint_candidates: bool = Field(
        default=True,
        description=(
            "look for faint candidates (2.5× the camera's noise floor) where a known track "
            "is expected, so a small or dark object stays tracked (track before detect)"
        ),
    )
    rain_filter: bool = Field(
        default=True,
        description="remove rain: many thin streaks that share one direction in a frame",
    )

    @model_validator(mode="after")
    def _accel(self) -> Options:
        if self.min_accel_mps2 >= self.max_accel_mps2:
            raise ValueError(
                f"expected min_accel_mps2 < max_accel_mps2, found {self.min_accel_mps2} ≥ {self.max_accel_mps2}"
            )
        return self


# --------------------------------------------------------------------------- geometry


class FacadeGeometry:
    """Image pixels ↔ normalised façade coordinates (u across, v up) ↔ metres."""

    def __init__(self, facade: FacadeOptions) -> None:
        self.floors = facade.floors
        self.columns = facade.columns
        self.width_m = facade.columns * facade.column_width_m
        self.height_m = facade.floors * facade.floor_height_m
        self.floor_height_m = facade.floor_height_m
        img = np.asarray(facade.corners, dtype=np.float64)
        norm = np.array([[0.0, 1.0], [1.0, 1.0], [1.0, 0.0], [0.0, 0.0]])
        self.to_norm = cv2.getPerspectiveTransform(
            img.astype(np.float32), norm.astype(np.float32)
        ).astype(np.float64)
        self.to_img = np.linalg.inv(self.to_norm)

    def norm_of(self, pts: np.ndarray) -> np.ndarray:
        """Image points (N,2) → (u, v)."""
        return _apply(self.to_norm, pts)

    def metres_of(self, pts: np.ndarray) -> np.ndarray:
        """Image points (N,2) → (X, Y) metres."""
        uv = self.norm_of(pts)
        return np.column_stack([uv[:, 0] * self.width_m, uv[:, 1] * self.height_m])

    def image_of_metres(self, xy: np.ndarray) -> np.ndarray:
        """(X, Y) metres (N,2) → image points."""
        uv = np.column_stack([xy[:, 0] / self.width_m, xy[:, 1] / self.height_m])
        return _apply(self.to_img, uv)

    def image_of_norm(self, uv: np.ndarray) -> np.ndarray:
        """(u, v) (N,2) → image points."""
        return _apply(self.to_img, uv)

    def floor_of(self, y_m: float) -> int:
        """Floor index (1-based, clamped) of a height in metres."""
        return int(min(max(math.floor(y_m / self.floor_height_m) + 1, 1), self.floors))

    def column_of(self, x_m: float) -> int:
        """Column index (1-based, clamped) of an across-façade position in metres."""
        return int(min(max(math.floor(x_m / self.width_m * self.columns) + 1, 1), self.columns))

    def camera(self, frame_w: int, frame_h: int) -> CameraPose:
        """Where the camera stands, in façade metres, from the calibration alone.

        The four corners give the homography façade → image, ``K·[r1 r2 t]``. With square
        pixels and the principal point at the image centre, ``r1 ⟂ r2`` gives the focal
        length (that constraint holds whatever the window pitch, which the across-façade
        scale depends on); ``|r1| = |r2|`` is used with a lower weight. A view without
        perspective in either direction leaves the focal length open: then it is taken as
        the frame width (a common CCTV lens) and the pose is marked as assumed.
        """
        hmat = self.to_img @ np.diag([1.0 / self.width_m, 1.0 / self.height_m, 1.0])
        centre = np.array([[1.0, 0.0, -frame_w / 2.0], [0.0, 1.0, -frame_h / 2.0], [0, 0, 1.0]])
        hc = centre @ hmat
        hc = hc / np.linalg.norm(hc[:, 1])
        h1, h2 = hc[:, 0], hc[:, 1]
        num = den = 0.0
        for a, b, weight in (
            (h1[0] * h2[0] + h1[1] * h2[1], h1[2] * h2[2], 1.0),
            (h1[0] ** 2 + h1[1] ** 2 - h2[0] ** 2 - h2[1] ** 2, h1[2] ** 2 - h2[2] ** 2, 0.3),
        ):
            norm = math.hypot(a, b) + 1e-12
            a, b = a / norm, b / norm
            wgt = weight * abs(b)  # b ≈ 0: no vanishing point in that direction, no information
            num -= wgt * a * b
            den += wgt * a * a
        assumed = True
        focal = float(frame_w)
        if den > 1e-9 and num / den > 0.0:
            est = 1.0 / math.sqrt(num / den)
            if 0.4 * frame_w <= est <= 4.0 * frame_w:
                focal = min(max(est, 0.6 * frame_w), 2.5 * frame_w)
                assumed = False
        m = np.diag([1.0 / focal, 1.0 / focal, 1.0]) @ hc
        lam = 1.0 / float(np.linalg.norm(m[:, 1]))
        if m[2, 2] * lam < 0:
            lam = -lam  # the façade is in front of the camera
        r2 = lam * m[:, 1]
        r1 = m[:, 0] * math.copysign(1.0 / float(np.linalg.norm(m[:, 0])), lam)
        r1 = r1 - r2 * float(r1 @ r2)
        r1 /= float(np.linalg.norm(r1))
        rot = np.column_stack([r1, r2, np.cross(r1, r2)])
        pos = -rot.T @ (lam * m[:, 2])
        return CameraPose(
            foot_m=(float(pos[0]), float(pos[1])),
            distance_m=max(abs(float(pos[2])), 2.0),
            focal_px=focal,
            assumed=assumed,
        )


@dataclass(frozen=True)
class CameraPose:
    """The camera seen from the façade: its foot point on the façade plane and its distance."""

    foot_m: tuple[float, float]
    distance_m: float
    focal_px: float
    assumed: bool


def _apply(h: np.ndarray, pts: np.ndarray) -> np.ndarray:
    p = np.asarray(pts, dtype=np.float64).reshape(-1, 2)
    q = p @ h[:2, :2].T + h[:2, 2]
    w = p @ h[2, :2] + h[2, 2]
    w = np.where(np.abs(w) < 1e-9, 1e-9, w)
    out: np.ndarray = q / w[:, None]
    return out


# --------------------------------------------------------------------------- motion


@dataclass
class Blobs:
    """Moving blobs of one frame (full-resolution pixels and façade metres)."""

    px: np.ndarray  # (N,2) centroids, full-res pixels
    m: np.ndarray  # (N,2) metres
    scale: np.ndarray  # (N,) metres per full-res pixel at the blob
    size_px: np.ndarray  # (N,) sqrt(area) in full-res pixels
    busy: np.ndarray  # (N,) motion activity around the blob before this frame (0..1)
    clutter: float = 0.0  # blobs in this frame per 100 000 watched pixels (rain, noise)
    weak: np.ndarray | None = None  # (N,) faint candidates (may only extend a known track)


class MotionDetector:
    """Background model + activity map on a downscaled grey crop of the watched region."""

    def __init__(self, geo: FacadeGeometry, frame_w: int, frame_h: int, options: Options) -> None:
        m = options.air_margin
        ring = np.array([[-m, 1.08], [1 + m, 1.08], [1 + m, -0.08], [-m, -0.08]])
        poly = geo.image_of_norm(ring)
        x0 = int(max(0, math.floor(poly[:, 0].min())))
        y0 = int(max(0, math.floor(poly[:, 1].min())))
        x1 = int(min(frame_w, math.ceil(poly[:, 0].max())))
        y1 = int(min(frame_h, math.ceil(poly[:, 1].max())))
        if x1 - x0 < 8 or y1 - y0 < 8:
            raise ValueError(
                f"façade region {x0},{y0}–{x1},{y1} is outside the {frame_w}×{frame_h} frame"
            )
        self.crop = (x0, y0, x1, y1)
        self.scale = min(1.0, options.work_width / float(frame_w))
        self.size = (
            max(8, int(round((x1 - x0) * self.scale))),
            max(8, int(round((y1 - y0) * self.scale))),
        )
        roi = np.zeros((self.size[1], self.size[0]), np.uint8)
        local = (poly - [x0, y0]) * [self.size[0] / (x1 - x0), self.size[1] / (y1 - y0)]
        cv2.fillPoly(roi, [np.round(local).astype(np.int32)], 1)
        self.roi = roi
        self.roi_area = max(1, int(roi.sum()))
        self.sx = (x1 - x0) / self.size[0]
        self.sy = (y1 - y0) / self.size[1]
        self.geo = geo
        self.min_contrast = options.min_contrast
        self.color = options.color
        self.rain_filter = options.rain_filter
        self.bg: np.ndarray | None = None
        self.act = np.zeros(roi.shape, np.float32)
        self.prev: np.ndarray | None = None
        self.last_t: float | None = None
        self.sub = (slice(None, None, 4), slice(None, None, 4))
        self.roi_sub = roi[self.sub] > 0
        self.kernel = np.ones((3, 3), np.uint8)
        self.global_changes = 0
        self.t0 = 0.0
        self.warmup_s = 0.5
        self.frame_dt = 0.04
        self.frames = 0
        self.noise: float | None = None
        self.first: list[np.ndarray] = []
        self.rain: np.ndarray | None = None  # pixels taken as rain streaks in this frame
        self.act_level = 0.0
        self.streak_frames = 0

    def _remove_streaks(self, mask: np.ndarray) -> bool:
        """Remove rain: thin streaks that share one direction. True when rain was found.

        A drop falls a long way during one exposure, so it shows as a line one or two
        pixels wide; heavy rain gives hundreds of them, all at about the same angle (the
        wind's). Their edges then share one orientation across the frame (the structure
        tensor of the mask is coherent), and an opening with a short line along that
        direction keeps exactly the streaks, crossing ones included. A thrown object is
        compact (or blurred along its own path) and alone, so it does not survive it.
        """
        fm = mask.astype(np.float32)
        gx = cv2.Sobel(fm, cv2.CV_32F, 1, 0, ksize=3)
        gy = cv2.Sobel(fm, cv2.CV_32F, 0, 1, ksize=3)
        jxx = float(cv2.sumElems(gx * gx)[0])
        jyy = float(cv2.sumElems(gy * gy)[0])
        jxy = float(cv2.sumElems(gx * gy)[0])
        total = jxx + jyy
        if total <= 0.0:
            return False
        if math.hypot(jxx - jyy, 2.0 * jxy) / total < 0.45:
            return False  # edges in all directions: blobs, not streaks
        # the gradient runs across the streaks: the streaks run at right angles to it
        across = 0.5 * math.atan2(2.0 * jxy, jxx - jyy)
        main = across + math.pi / 2.0
        reach = 4
        kernel = np.zeros((2 * reach + 1, 2 * reach + 1), np.uint8)
        dx, dy = reach * math.cos(main), reach * math.sin(main)
        cv2.line(
            kernel,
            (int(round(reach - dx)), int(round(reach - dy))),
            (int(round(reach + dx)), int(round(reach + dy))),
            1,
            1,
        )
        lines = cv2.morphologyEx(mask, cv2.MORPH_OPEN, kernel)
        found = cv2.countNonZero(lines)
        if found < 6 * (2 * reach + 1):
            return False  # fewer than a handful of streaks: not rain
        self.rain = cv2.dilate(lines, self.kernel)
        mask[self.rain > 0] = 0
        return True

    def _extended_change(self, mask: np.ndarray, fg: int) -> bool:
        """Is this much foreground one extended change (light, camera moved), not many particles?"""
        n, _, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
        if n <= 1:
            return True
        # a light switched on or a camera knocked gives a few large regions; snow, rain or
        # insects give many particles, none of them a sizeable part of the change
        return bool(stats[1:, cv2.CC_STAT_AREA].max() >= 0.25 * fg or fg / (n - 1) > 150.0)

    def prepare(self, frame: np.ndarray) -> np.ndarray:
        """Crop, downscale and smooth (colour kept unless ``color`` is off)."""
        x0, y0, x1, y1 = self.crop
        crop = frame[y0:y1, x0:x1]
        if crop.ndim == 3 and not self.color:
            crop = cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY)
        if self.scale < 1.0:
            crop = cv2.resize(crop, self.size, interpolation=cv2.INTER_LINEAR)
        return cv2.GaussianBlur(crop, (3, 3), 0)

    def detect(self, frame: np.ndarray, t: float, look: np.ndarray | None = None) -> Blobs | None:
        """Blobs of this frame, or None when the frame repeats the previous one.

        ``look``: (K, 3) windows (x, y, radius in full-resolution pixels) where a known
        track is expected; faint candidates are searched there only.
        """
        grey = self.prepare(frame)
        if (
            self.prev is not None
            and cv2.norm(grey, self.prev, cv2.NORM_INF) <= 6
            and cv2.norm(grey, self.prev, cv2.NORM_L1) < 0.05 * grey.size
        ):
            return None  # a duplicated frame (frame-rate conversion): no new information
        dt = 0.04 if self.last_t is None else min(max(t - self.last_t, 1e-3), 1.0)
        self.prev = grey
        self.frames += 1
        if self.last_t is not None:
            # running estimate of the frame interval (duplicates excluded)
            self.frame_dt += 0.1 * (min(max(t - self.last_t, 1e-3), 0.5) - self.frame_dt)
        self.last_t = t
        if self.bg is None:
            # the first background is the median of a few frames: whatever moved through
            # them (snowflakes, rain, a bird) leaves no ghost to be tracked later
            self.first.append(grey)
            if len(self.first) < 5:
                return _empty_blobs()
            self.bg = np.median(np.stack(self.first), axis=0).astype(np.float32)
            self.first = []
            self.t0 = t
            return _empty_blobs()
        warm = t - self.t0 < self.warmup_s
        bg = self.bg
        # global gain (exposure, clouds, flashes): scale the background to this frame
        s_cur = grey[self.sub][self.roi_sub].astype(np.float32)
        s_bg = bg[self.sub][self.roi_sub]
        if s_cur.size:
            gain = float(np.median((s_cur + 8.0) / (s_bg + 8.0)))
            if abs(gain - 1.0) > 0.01:
                bg *= gain
                s_bg = s_bg * gain
        bg8 = cv2.convertScaleAbs(bg)
        diff = cv2.absdiff(grey, bg8)
        if diff.ndim == 3:
            # colour: an object as bright as the wall behind it still differs in hue
            b, g, r = cv2.split(diff)
            diff = cv2.max(cv2.max(b, g), r)
        if s_cur.size:
            sigma = 1.4826 * float(np.median(np.abs(s_cur - s_bg)))
        else:
            sigma = 2.0
        # the camera's noise floor, learned over time (night gain, rain, compression): one
        # frame's estimate is noisy and moving things inflate it, so follow it slowly
        if self.noise is None:
            self.noise = sigma
        else:
            self.noise += (1.0 - math.exp(-dt / 2.0)) * (sigma - self.noise)
        thr = max(self.min_contrast, 4.0 * max(sigma, 0.7 * self.noise))
        mask = (diff > thr).astype(np.uint8)
        mask &= self.roi
        busy = self.act > 0.2
        self.rain = None
        if self.rain_filter and cv2.countNonZero(mask) > 60 and self._remove_streaks(mask):
            self.streak_frames += 1
        local_act = cv2.blur(self.act, (15, 15))
        a_act = 1.0 - math.exp(-dt / 2.0)
        cv2.accumulateWeighted(mask.astype(np.float32), self.act, a_act)
        # activity spread evenly over the view (snow, noise) is weather, not a busy place
        self.act_level = float(np.mean(self.act[self.sub][self.roi_sub])) if s_cur.size else 0.0
        mask[busy] = 0
        fg = int(cv2.countNonZero(mask))
        a_fast = 1.0 - math.exp(-dt / 1.5)
        a_slow = 1.0 - math.exp(-dt / 8.0)
        if fg > 0.08 * self.roi_area and self._extended_change(mask, fg):
            # a global change (lighting, camera moved): relearn, see nothing this frame
            self.bg = grey.astype(np.float32)
            self.global_changes += 1
            return _empty_blobs()
        inv = (mask == 0).astype(np.uint8)
        cv2.accumulateWeighted(grey, bg, a_fast, mask=inv)
        if fg:
            # while learning the scene, forget fast what the first frame held (no ghosts)
            cv2.accumulateWeighted(
                grey, bg, 1.0 - math.exp(-dt / 0.3) if warm else a_slow, mask=mask
            )
        strong = self._strong_blobs(mask, local_act) if fg else _empty_blobs()
        if warm or look is None or look.shape[0] == 0:
            return strong
        # faint candidates, below the threshold that starts a track, searched only where a
        # known track is expected: they may only extend that track (track before detect: a
        # faint object is clear along its trajectory, not in one frame)
        thr_lo = max(0.5 * self.min_contrast, 2.5 * max(sigma, 0.7 * self.noise))
        weak = self._weak_blobs(diff, mask, busy, thr_lo, look, local_act)
        if weak.px.shape[0] == 0:
            return strong
        return Blobs(
            px=np.concatenate([strong.px, weak.px]),
            m=np.concatenate([strong.m, weak.m]),
            scale=np.concatenate([strong.scale, weak.scale]),
            size_px=np.concatenate([strong.size_px, weak.size_px]),
            busy=np.concatenate([strong.busy, weak.busy]),
            clutter=strong.clutter,
            weak=np.concatenate(
                [np.zeros(strong.px.shape[0], bool), np.ones(weak.px.shape[0], bool)]
            ),
        )

    def _strong_blobs(self, mask: np.ndarray, local_act: np.ndarray) -> Blobs:
        """Blobs of the foreground mask: fragments of one object merged, rain streaks dropped."""
        # label on a dilated mask (fragments of one object merge), measure on the raw one
        grown = cv2.dilate(mask, self.kernel)
        n, labels, stats, cents = cv2.connectedComponentsWithStats(grown, connectivity=8)
        if n <= 1:
            return _empty_blobs()
        raw_area = np.bincount(labels[mask > 0], minlength=n)[1:]
        st = stats[1:]
        ce = cents[1:]
        area = raw_area
        bw = np.maximum(st[:, cv2.CC_STAT_WIDTH] - 2, 1)
        bh = np.maximum(st[:, cv2.CC_STAT_HEIGHT] - 2, 1)
        keep = area >= 2
        longest = np.maximum(bw, bh)
        thickness = area / np.maximum(longest, 1)
        thin = (thickness <= 2.5) & (longest >= 2.5 * thickness)
        if int(np.count_nonzero(thin & keep)) >= 4:
            keep &= ~thin  # rain: many thin streaks at once
        idx = np.nonzero(keep)[0]
        if idx.size == 0:
            return _empty_blobs()
        if idx.size > 120:
            idx = idx[np.argsort(-area[idx])[:120]]
        out = self._measure(ce[idx], area[idx], local_act)
        out.clutter = 1e5 * float(idx.size) / self.roi_area
        return out

    def _weak_blobs(
        self,
        diff: np.ndarray,
        mask: np.ndarray,
        busy: np.ndarray,
        thr_lo: float,
        look: np.ndarray,
        local_act: np.ndarray,
    ) -> Blobs:
        """Faint candidates (≥ 2 pixels over ``thr_lo``) inside the look windows."""
        cents: list[np.ndarray] = []
        areas: list[np.ndarray] = []
        wh, ww = diff.shape[:2]
        cx0, cy0 = self.crop[0], self.crop[1]
        for x, y, r in look:
            u = (x - cx0 + 0.5) / self.sx - 0.5
            v = (y - cy0 + 0.5) / self.sy - 0.5
            rad = max(3.0, r / self.sx)
            x0, x1 = int(max(0, u - rad)), int(min(ww, u + rad + 1))
            y0, y1 = int(max(0, v - rad)), int(min(wh, v + rad + 1))
            if x1 - x0 < 2 or y1 - y0 < 2:
                continue
            win = diff[y0:y1, x0:x1] > thr_lo
            win &= self.roi[y0:y1, x0:x1] > 0
            win &= ~busy[y0:y1, x0:x1]
            win &= cv2.dilate(mask[y0:y1, x0:x1], self.kernel) == 0  # clear blobs are there
            if self.rain is not None:
                win &= self.rain[y0:y1, x0:x1] == 0
            n, _, stats, ce = cv2.connectedComponentsWithStats(win.astype(np.uint8), connectivity=8)
            if n <= 1:
                continue
            keep = stats[1:, cv2.CC_STAT_AREA] >= 3  # a lone noisy pixel pair is too common
            cents.append(ce[1:][keep] + [x0, y0])
            areas.append(stats[1:, cv2.CC_STAT_AREA][keep])
        if not cents:
            return _empty_blobs()
        ce_all = np.concatenate(cents)
        area_all = np.concatenate(areas)
        if ce_all.shape[0] == 0:
            return _empty_blobs()
        # overlapping windows find the same component twice: keep one
        _, first = np.unique(np.round(ce_all, 1), axis=0, return_index=True)
        return self._measure(ce_all[first], area_all[first], local_act)

    def _measure(self, ce: np.ndarray, area: np.ndarray, local_act: np.ndarray) -> Blobs:
        """Blobs from work-resolution centroids and areas (too-large ones dropped)."""
        x0, y0 = self.crop[0], self.crop[1]
        px = np.column_stack(
            [x0 + (ce[:, 0] + 0.5) * self.sx - 0.5, y0 + (ce[:, 1] + 0.5) * self.sy - 0.5]
        )
        m = self.geo.metres_of(px)
        m_up = self.geo.metres_of(px + [0.0, 1.0])
        scale = np.hypot(m_up[:, 0] - m[:, 0], m_up[:, 1] - m[:, 1])
        size_px = np.sqrt(area.astype(np.float64) * self.sx * self.sy)
        # too big for a thrown object (a shadow, a person close to the camera)
        ok = size_px * scale < 2.5
        cx = np.clip(ce[:, 0].astype(np.int32), 0, self.size[0] - 1)
        cy = np.clip(ce[:, 1].astype(np.int32), 0, self.size[1] - 1)
        around = np.maximum(local_act[cy, cx] - self.act_level, 0.0)
        return Blobs(
            px=px[ok],
            m=m[ok],
            scale=scale[ok],
            size_px=size_px[ok],
            busy=around[ok],
        )


def _empty_blobs() -> Blobs:
    z2 = np.zeros((0, 2))
    z1 = np.zeros((0,))
    return Blobs(px=z2, m=z2.copy(), scale=z1, size_px=z1.copy(), busy=z1.copy())


# --------------------------------------------------------------------------- tracking


@dataclass
class _Track:
    tid: int
    t: list[float] = field(default_factory=list)
    px: list[tuple[float, float]] = field(default_factory=list)
    m: list[tuple[float, float]] = field(default_factory=list)
    scale: list[float] = field(default_factory=list)
    size: list[float] = field(default_factory=list)
    k: list[int] = field(default_factory=list)
    busy: list[float] = field(default_factory=list)
    clutter: list[float] = field(default_factory=list)
    choices: list[int] = field(default_factory=list)
    faint: list[bool] = field(default_factory=list)
    patches: list[tuple[float, np.ndarray]] = field(default_factory=list)
    first_at: datetime | None = None
    first_t: float = 0.0
    misses: int = 0
    max_accel: float = 60.0
    _cache: tuple[int, tuple[float, float], tuple[float, float, float], float] | None = None

    def add(
        self,
        t: float,
        px: np.ndarray,
        m: np.ndarray,
        scale: float,
        size: float,
        k: int,
        busy: float,
        clutter: float = 0.0,
        choices: int = 1,
        faint: bool = False,
    ) -> None:
        self.t.append(t)
        self.choices.append(choices)
        self.faint.append(faint)
        self.busy.append(busy)
        self.clutter.append(clutter)
        self.k.append(k)
        self.px.append((float(px[0]), float(px[1])))
        self.m.append((float(m[0]), float(m[1])))
        self.scale.append(scale)
        self.size.append(size)
        self.misses = 0

    def joined(self, later: _Track) -> _Track:
        """This track followed by ``later`` (pieces of one object)."""
        out = _Track(
            tid=self.tid, first_at=self.first_at, first_t=self.first_t, max_accel=self.max_accel
        )
        for name in (
            "t",
            "px",
            "m",
            "scale",
            "size",
            "k",
            "busy",
            "clutter",
            "choices",
            "faint",
            "patches",
        ):
            setattr(out, name, getattr(self, name) + getattr(later, name))
        return out

    def fill(self) -> float:
        """Share of the frames it spans in which it was seen."""
        return len(self.t) / float(self.k[-1] - self.k[0] + 1)

    def static(self) -> bool:
        """Never moved by more than its own jitter."""
        xy = np.asarray(self.m)
        tol = max(0.25, 2.0 * max(self.scale))
        return bool(np.all(np.hypot(xy[:, 0] - xy[0, 0], xy[:, 1] - xy[0, 1]) <= tol))

    def landed(self, hold_s: float) -> bool:
        """Dropped a good distance, then stayed level for ``hold_s`` (landed on the ground or a ledge)."""
        ly = self.m[-1][1]
        tol = max(0.25, 2.0 * self.scale[-1])
        i = len(self.t) - 1
        while i > 0 and abs(self.m[i - 1][1] - ly) <= tol:
            i -= 1
        if self.t[-1] - self.t[i] < hold_s or i < 4:
            return False
        return abs(self.m[0][1] - ly) > 2.0

    def predict(self, t: float) -> tuple[float, float, float, float]:
        """Predicted (X, Y) and gate radii (rx, ry) in metres at time ``t``."""
        n = len(self.t)
        last_x, last_y = self.m[-1]
        dt = t - self.t[-1]
        r0 = max(0.35, 3.0 * self.scale[-1] + 0.5 * self.size[-1] * self.scale[-1])
        if n == 1:
            down = 0.5 * 22.0 * dt + 0.5 * G * dt * dt
            return last_x, last_y - down, r0 + 4.0 * dt, r0 + down
        if n == 2:
            d01 = max(self.t[1] - self.t[0], 1e-3)
            vx = (self.m[1][0] - self.m[0][0]) / d01
            vy = (self.m[1][1] - self.m[0][1]) / d01
            speed = math.hypot(vx, vy)
            return (
                last_x + vx * dt,
                last_y + vy * dt - 0.5 * G * dt * dt,
                r0 + 0.4 * speed * dt + 2.0 * dt,
                r0 + 0.5 * speed * dt + 0.6 * G * dt * dt,
            )
        cx, cy, res = self._local_fit()
        px_ = cx[0] + cx[1] * dt
        py_ = cy[0] + cy[1] * dt + cy[2] * dt * dt
        speed = math.hypot(cx[1], cy[1])
        return (
            px_,
            py_,
            r0 + 0.3 * speed * dt + 2.0 * res + 1.0 * dt,
            r0 + 0.5 * speed * dt + 2.0 * res + G * dt * dt,
        )

    def _local_fit(self) -> tuple[tuple[float, float], tuple[float, float, float], float]:
        """Least squares over the last ≤8 detections (X straight, Y parabola), cached per point."""
        n = len(self.t)
        if self._cache is not None and self._cache[0] == n:
            return self._cache[1], self._cache[2], self._cache[3]
        k = min(n, 8)
        ts = [tt - self.t[-1] for tt in self.t[-k:]]
        pts = self.m[-k:]
        cx = _line_fit(ts, [p[0] for p in pts])
        ys = [p[1] for p in pts]
        cy = _parabola_fit(ts, ys)
        c2 = min(max(cy[2], -0.5 * self.max_accel), 0.5 * G)
        if c2 != cy[2]:
            # implausible curvature from a few noisy points: clamp it, refit the rest
            c0, c1 = _line_fit(ts, [y - c2 * t_ * t_ for t_, y in zip(ts, ys, strict=True)])
            cy = (c0, c1, c2)
        res = math.sqrt(
            sum(
                (cy[0] + cy[1] * t_ + cy[2] * t_ * t_ - p[1]) ** 2
                for t_, p in zip(ts, pts, strict=True)
            )
            / k
        )
        res = min(res, 0.6)  # a ragged track must not widen its own gate without end
        self._cache = (n, cx, cy, res)
        return cx, cy, res


def _line_fits(ts: np.ndarray, vs: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row-wise weighted least-squares lines ``v = c0 + c1·t`` (rows padded with w = 0)."""
    s0 = w.sum(axis=1)
    s1 = (w * ts).sum(axis=1)
    s2 = (w * ts * ts).sum(axis=1)
    sv = (w * vs).sum(axis=1)
    stv = (w * ts * vs).sum(axis=1)
    den = s0 * s2 - s1 * s1
    flat = np.abs(den) < 1e-12
    c1 = np.where(flat, 0.0, (s0 * stv - s1 * sv) / np.where(flat, 1.0, den))
    c0 = (sv - c1 * s1) / s0
    return c0, c1


def _refresh_local_fits(tracks: list[_Track]) -> None:
    """:meth:`_Track._local_fit` for every stale track at once (numpy; many tracks in snow)."""
    stale = [
        tr for tr in tracks if len(tr.t) >= 3 and (tr._cache is None or tr._cache[0] != len(tr.t))
    ]
    if len(stale) < 4:
        return  # the per-track path is as fast
    rows = len(stale)
    ts = np.zeros((rows, 8))
    xs = np.zeros((rows, 8))
    ys = np.zeros((rows, 8))
    w = np.zeros((rows, 8))
    max_accel = np.empty(rows)
    for i, tr in enumerate(stale):
        k = min(len(tr.t), 8)
        ts[i, :k] = np.asarray(tr.t[-k:]) - tr.t[-1]
        pts = np.asarray(tr.m[-k:])
        xs[i, :k] = pts[:, 0]
        ys[i, :k] = pts[:, 1]
        w[i, :k] = 1.0
        max_accel[i] = tr.max_accel
    cx0, cx1 = _line_fits(ts, xs, w)
    mom = [(w * ts**p).sum(axis=1) for p in range(5)]
    normal = np.stack(
        [
            np.stack([mom[0], mom[1], mom[2]], axis=1),
            np.stack([mom[1], mom[2], mom[3]], axis=1),
            np.stack([mom[2], mom[3], mom[4]], axis=1),
        ],
        axis=1,
    )
    rhs = np.stack([(w * ys * ts**p).sum(axis=1) for p in range(3)], axis=1)
    det = np.linalg.det(normal)
    ok = np.abs(det) >= 1e-12
    coef = np.zeros((rows, 3))
    if ok.any():
        coef[ok] = np.linalg.solve(normal[ok], rhs[ok][:, :, None])[:, :, 0]
    if (~ok).any():
        l0, l1 = _line_fits(ts[~ok], ys[~ok], w[~ok])
        coef[~ok] = np.column_stack([l0, l1, np.zeros(l0.size)])
    c2 = np.minimum(np.maximum(coef[:, 2], -0.5 * max_accel), 0.5 * G)
    clamped = c2 != coef[:, 2]
    if clamped.any():
        # implausible curvature from a few noisy points: clamp it, refit the rest
        l0, l1 = _line_fits(
            ts[clamped], ys[clamped] - c2[clamped, None] * ts[clamped] ** 2, w[clamped]
        )
        coef[clamped] = np.column_stack([l0, l1, c2[clamped]])
    pred = coef[:, :1] + coef[:, 1:2] * ts + coef[:, 2:3] * ts**2
    res = np.sqrt((w * (pred - ys) ** 2).sum(axis=1) / w.sum(axis=1))
    res = np.minimum(res, 0.6)
    for i, tr in enumerate(stale):
        tr._cache = (
            len(tr.t),
            (float(cx0[i]), float(cx1[i])),
            (float(coef[i, 0]), float(coef[i, 1]), float(coef[i, 2])),
            float(res[i]),
        )


def _line_fit(t: list[float], y: list[float]) -> tuple[float, float]:
    """Least-squares line (c0, c1) in pure Python (small n, called often)."""
    n = len(t)
    st, sy = sum(t), sum(y)
    stt = sum(a * a for a in t)
    sty = sum(a * b for a, b in zip(t, y, strict=True))
    den = n * stt - st * st
    if abs(den) < 1e-12:
        return sy / n, 0.0
    c1 = (n * sty - st * sy) / den
    return (sy - c1 * st) / n, c1


def _parabola_fit(t: list[float], y: list[float]) -> tuple[float, float, float]:
    """Least-squares parabola (c0, c1, c2) in pure Python (Cramer's rule)."""
    n = float(len(t))
    s1 = sum(t)
    s2 = sum(a * a for a in t)
    s3 = sum(a**3 for a in t)
    s4 = sum(a**4 for a in t)
    b0 = sum(y)
    b1 = sum(a * b for a, b in zip(t, y, strict=True))
    b2 = sum(a * a * b for a, b in zip(t, y, strict=True))

    def det(m: tuple[float, ...]) -> float:
        a, b, c, d, e, f, g, h, i = m
        return a * (e * i - f * h) - b * (d * i - f * g) + c * (d * h - e * g)

    d = det((n, s1, s2, s1, s2, s3, s2, s3, s4))
    if abs(d) < 1e-12:
        c0, c1 = _line_fit(t, y)
        return c0, c1, 0.0
    d0 = det((b0, s1, s2, b1, s2, s3, b2, s3, s4))
    d1 = det((n, b0, s2, s1, b1, s3, s2, b2, s4))
    d2 = det((n, s1, b0, s1, s2, b1, s2, s3, b2))
    return d0 / d, d1 / d, d2 / d


@dataclass
class FallFit:
    """Result of the physics check on one track."""

    accel: float
    t_release: float
    release_m: tuple[float, float]
    y_range_m: tuple[float, float]
    v_end: float
    coeff_y: np.ndarray
    coeff_x: np.ndarray
    t_ref: float
    used: np.ndarray
    chi2: float
    start: int
    model: str = "gravity"  # gravity · gravity_depth · implausible
    depth_m: tuple[float, float] | None = None
    gravity_chi2: float | None = None


def _early_fit(ts: np.ndarray, ys: np.ndarray, sig: np.ndarray, accel: float) -> np.ndarray:
    """Weighted parabola through the first points; its curvature kept physical.

    Returns (c0, c1, c2) of ``y = c0 + c1·t + c2·t²`` with ``c2 < 0``.
    """
    w = 1.0 / sig
    a_mat = np.column_stack([np.ones(ts.size), ts, ts**2]) * w[:, None]
    c, *_ = np.linalg.lstsq(a_mat, ys * w, rcond=None)
    a_early = -2.0 * float(c[2])
    if not (0.3 * G <= a_early <= 3.0 * G) or ts.size < 6:
        # too few or too noisy: keep the whole track's acceleration (bounded) and refit the rest
        a_fix = min(max(accel, 0.5 * G), 3.0 * G)
        c2 = -0.5 * a_fix
        c01, *_ = np.linalg.lstsq(a_mat[:, :2], (ys - c2 * ts**2) * w, rcond=None)
        c = np.array([c01[0], c01[1], c2])
    return np.asarray(c, dtype=np.float64)


@dataclass(frozen=True)
class GravityFit:
    """A track explained as a body under g that moves towards (or away from) the façade.

    Attributes:
        chi2: reduced chi² of the vertical fit (same noise model as the free fit).
        depth_m: distance in front of the façade plane at the first and the last point.
        release_m: (X, Y) of the release in façade metres (the body itself, not its
            projection onto the façade).
        t_release: release time, relative to the fit's reference time.
    """

    chi2: float
    depth_m: tuple[float, float]
    release_m: tuple[float, float]
    t_release: float


def gravity_depth_fit(
    ts: np.ndarray,
    xs: np.ndarray,
    ys: np.ndarray,
    sig: np.ndarray,
    pose: CameraPose,
    max_release_depth_m: float = 2.5,
) -> GravityFit | None:
    """Fit ``P(t) = P0 + V·t − ½·g·t²·ŷ`` in 3-D, seen through the façade homography.

    A point at depth ``Z`` in front of the façade maps, through the homography, to where
    the camera ray through it meets the façade: ``foot + (P − foot)·D/(D − Z)`` (``D``: the
    camera's distance, ``foot``: its foot point). An object thrown towards the camera
    therefore seems to fall faster than g and to drift away from the foot point. For each
    (Z0, Vz) on a grid the rest of the model is linear; the best grid point wins. The
    release is at the façade: in a window or off a balcony, at most
    ``max_release_depth_m`` in front of it (along one camera ray, height and depth trade
    against each other; the release depth bounds that trade).
    """
    n = ts.size
    if n < 6:
        return None
    dist = pose.distance_m
    fx, fy = pose.foot_m
    z0, vz = np.meshgrid(np.linspace(-0.5, max_release_depth_m, 8), np.linspace(-2.0, 8.0, 21))
    z0 = z0.ravel()[:, None]
    vz = vz.ravel()[:, None]
    depth = z0 + vz * ts[None, :]
    ok = (depth.max(axis=1) < 0.7 * dist) & (depth.min(axis=1) > -1.0)
    k = dist / (dist - np.minimum(depth, 0.9 * dist))
    w = 1.0 / sig**2
    b = ys[None, :] - fy * (1.0 - k) + 0.5 * G * k * ts[None, :] ** 2
    kw = k * k * w
    s11 = kw.sum(axis=1)
    s12 = (kw * ts).sum(axis=1)
    s22 = (kw * ts * ts).sum(axis=1)
    bw = k * w * b
    r1 = bw.sum(axis=1)
    r2 = (bw * ts).sum(axis=1)
    det = s11 * s22 - s12 * s12
    det = np.where(np.abs(det) < 1e-12, 1e-12, det)
    y0 = (r1 * s22 - r2 * s12) / det
    vy = (s11 * r2 - s12 * r1) / det
    res = b - k * (y0[:, None] + vy[:, None] * ts[None, :])
    chi2 = (w * res * res).sum(axis=1) / max(1, n - 4)
    chi2 = np.where(ok, chi2, np.inf)
    best = int(np.argmin(chi2))
    if not math.isfinite(float(chi2[best])):
        return None
    kb = k[best]
    bx = xs - fx * (1.0 - kb)
    a_mat = np.column_stack([kb, kb * ts])
    (x0, vx), *_ = np.linalg.lstsq(a_mat, bx, rcond=None)
    t_vertex = float(vy[best]) / G
    t_rel = max(min(t_vertex, float(ts[0])), float(ts[0]) - 3.0)
    y_rel = float(y0[best] + vy[best] * t_rel - 0.5 * G * t_rel**2)
    return GravityFit(
        chi2=float(chi2[best]),
        depth_m=(float(depth[best, 0]), float(depth[best, -1])),
        release_m=(float(x0 + vx * t_rel), y_rel),
        t_release=t_rel,
    )


class FallClassifier:
    """Does a track fall like a body under gravity? If so, where was it released?"""

    def __init__(self, geo: FacadeGeometry, options: Options) -> None:
        self.geo = geo
        self.o = options
        self.reason = ""  # why the last track was not a fall (for diagnostics)
        self.pose: CameraPose | None = None

    def fit(self, tr: _Track, frame_dt: float, min_fill: float = 0.65) -> FallFit | None:
        """Physics check; None when the track is not a fall."""
        n = len(tr.t)
        if n < max(7, int(round(0.45 / frame_dt))):
            self.reason = "few_points"
            return None
        t = np.asarray(tr.t)
        # many blobs per frame (rain, heavy noise): chance links are easy, ask for more
        cluttered = float(np.median(tr.clutter)) > 20.0 if tr.clutter else False
        choices = float(np.mean(np.asarray(tr.choices) > 1))
        if cluttered and choices > 0.1:
            # several candidates at some steps: a gap may have been bridged by a chance
            # link, so ask for a track seen in nearly every frame it spans
            min_fill = max(min_fill, 0.8)
        if n < min_fill * (tr.k[-1] - tr.k[0] + 1):
            self.reason = "sparse"
            return None  # seen in too few of the frames it spans: chance links
        if float(np.median(tr.busy)) > self.o.max_activity:
            self.reason = "busy_area"
            return None  # moves where things keep moving (foliage, flags, water)
        if choices > 0.35:
            self.reason = "ambiguous"
            return None  # linked through a crowd of candidates (snow, rain): chance links
        clear = ~np.asarray(tr.faint, bool)
        if clear.sum() < max(3, 0.4 * n):
            self.reason = "faint"
            return None  # mostly faint candidates: a chain of noise, not an object
        sizes = np.log(np.maximum(np.asarray(tr.size)[clear], 0.5))
        if float(np.std(sizes)) > 0.5:
            self.reason = "size_unsteady"
            return None  # not one object (rain streaks, noise)
        xy = np.asarray(tr.m)
        sc = np.asarray(tr.scale)
        sz = np.asarray(tr.size)
        if t[-1] - t[0] < 0.2:
            self.reason = "too_short"
            return None
        # static lead-in (resting on a sill, or a ghost at the release point)
        start = 0
        tol = np.maximum(0.25, 2.0 * sc)
        moved = np.hypot(xy[:, 0] - xy[0, 0], xy[:, 1] - xy[0, 1]) > tol
        rest: tuple[float, float] | None = None
        if moved.any():
            onset = int(np.argmax(moved))
            if onset >= 3:
                rest = (float(np.median(xy[:onset, 0])), float(np.median(xy[:onset, 1])))
                start = onset - 1
        else:
            self.reason = "never_moved"
            return None
        # level tail (landed on the ground or a ledge, then maybe linked to something that
        # moves along the street): keep its first point only
        still = np.abs(xy[:, 1] - xy[-1, 1]) <= np.maximum(0.3, 3.0 * sc)
        stop = n
        if still.all():
            self.reason = "level"
            return None
        last_moving = n - 1 - int(np.argmax(~still[::-1]))
        if n - 1 - last_moving >= 2:
            stop = last_moving + 2
        if stop - start < 6:
            self.reason = "few_moving_points"
            return None
        t_ref = float(t[start])
        ts = t[start:stop] - t_ref
        xs = xy[start:stop, 0]
        ys = xy[start:stop, 1]
        # centroid noise grows with blob size and with motion during one frame (blur,
        # exposure and rolling-shutter timing)
        c0 = np.polyfit(ts, ys, 2)
        speed = np.abs(c0[1] + 2.0 * c0[0] * ts)
        sig = (
            np.sqrt(
                (sc[start:stop] * (0.8 + 0.25 * sz[start:stop])) ** 2
                + (0.15 * speed * frame_dt) ** 2
            )
            + 0.03
        )
        # a faint candidate's centroid is less certain (fewer pixels, some of them noise)
        sig = sig * np.where(np.asarray(tr.faint[start:stop], bool), 1.5, 1.0)
        used = np.ones(ts.size, bool)
        cy = cx = np.zeros(3)
        chi2 = 0.0
        cov = np.eye(3)
        for _ in range(3):
            if used.sum() < 5:
                self.reason = "outliers"
                return None
            w = 1.0 / sig[used]
            a_mat = np.column_stack([np.ones(used.sum()), ts[used], ts[used] ** 2]) * w[:, None]
            cy, *_ = np.linalg.lstsq(a_mat, ys[used] * w, rcond=None)
            res = (ys - (cy[0] + cy[1] * ts + cy[2] * ts**2)) / sig
            dof = max(1, int(used.sum()) - 3)
            chi2 = float(np.sum(res[used] ** 2) / dof)
            bad = used & (np.abs(res) > max(4.0, 2.5 * math.sqrt(chi2)))
            if not bad.any() or bad.sum() > max(1, used.sum() // 5):
                cov = np.linalg.pinv(a_mat.T @ a_mat) * max(1.0, chi2)
                break
            used &= ~bad
        accel = -2.0 * float(cy[2])
        se_a = 2.0 * math.sqrt(max(float(cov[2, 2]), 0.0))
        if not (self.o.min_accel_mps2 <= accel <= self.o.max_accel_mps2):
            self.reason = "accel_out_of_limits"
            return None
        # among many moving particles a chance link can bend a drifting track: there the
        # acceleration must stand out clearly, and the drop be longer than one storey-ish
        if accel < (3.0 if cluttered else 1.5) * se_a:
            self.reason = "accel_not_significant"
            return None
        if chi2 > (2.5 if cluttered else 4.0):
            self.reason = "poor_fit"
            return None
        if cluttered and accel > 3.0 * G:
            self.reason = "cluttered_fast"
            return None
        tu = ts[used]
        y_fit = cy[0] + cy[1] * tu + cy[2] * tu**2
        drop = float(y_fit[0] - y_fit[-1])
        if drop < (1.5 if cluttered else 1.0) * self.o.min_drop_m:
            self.reason = "small_drop"
            return None
        v_end = -(float(cy[1]) + 2.0 * float(cy[2]) * float(tu[-1]))
        if v_end < 3.0:
            self.reason = "slow_end"
            return None
        w = 1.0 / sig[used]
        ax_mat = np.column_stack([np.ones(used.sum()), tu, tu**2]) * w[:, None]
        cx2, *_ = np.linalg.lstsq(ax_mat, xs[used] * w, rcond=None)
        if abs(2.0 * float(cx2[2])) > max(4.0, 0.6 * accel):
            self.reason = "sideways_curve"
            return None
        cx1, *_ = np.linalg.lstsq(ax_mat[:, :2], xs[used] * w, rcond=None)
        cx = np.array([cx1[0], cx1[1], 0.0])
        if abs(float(cx1[1])) > 8.0:
            self.reason = "sideways_fast"
            return None
        # a thrown body drifts sideways in a straight line; its centroid is good to about a
        # pixel (plus blur along the fall, which is vertical and does not count here)
        tight = sc[start:stop] * (0.8 + 0.1 * sz[start:stop]) + 0.03
        res_x = (xs[used] - (cx1[0] + cx1[1] * tu)) / tight[used]
        if float(np.mean(res_x**2)) > 9.0:
            self.reason = "sideways_erratic"
            return None  # erratic sideways (a bird, a leaf)
        # a gentle curve is perspective (moving towards the camera); a zig-zag is flight
        res_x2 = (xs[used] - (cx2[0] + cx2[1] * tu + cx2[2] * tu**2)) / tight[used]
        if float(np.mean(res_x2**2)) > 4.0:
            self.reason = "sideways_zigzag"
            return None
        # and it never climbs back once falling: largest rebound above the lowest point so far
        yu = ys[used]
        rebound = yu - np.minimum.accumulate(yu)
        late = tu > tu[0] + 0.3
        if late.any() and np.any(rebound[late] > 0.1 + 3.0 * tight[used][late]):
            self.reason = "climbed"
            return None  # climbed again (a bird)
        # release: the vertex of the parabola when it was already falling, else the first
        # sighting. Fitted on the early part only: air drag bends long falls later on.
        t_first = float(tu[0])
        early = used & (ts <= t_first + 0.9)
        if early.sum() < 6:
            early = used & (ts <= np.sort(ts[used])[min(5, int(used.sum()) - 1)])
        ce = _early_fit(ts[early], ys[early], sig[early], accel)
        t_vertex = -float(ce[1]) / (2.0 * float(ce[2]))
        t_rel = max(min(t_vertex, t_first), t_first - 3.0)
        y_rel = float(ce[0] + ce[1] * t_rel + ce[2] * t_rel**2)
        # the same with g instead of the fitted acceleration (calibration scale errors)
        v_first = -(float(ce[1]) + 2.0 * float(ce[2]) * t_first)
        y_first = float(ce[0] + ce[1] * t_first + ce[2] * t_first**2)
        y_g = y_first + (max(v_first, 0.0) ** 2) / (2.0 * G) if t_vertex < t_first else y_first
        x_rel = float(cx[0] + cx[1] * t_rel)
        model, gfit = self._physics(
            accel, chi2, tu, xs[used], ys[used], sig[used], at_rest=rest is not None
        )
        if cluttered and model != "gravity":
            # among snow, rain or insects a chance chain fits almost anything given the extra
            # freedom of depth; there only a plain fall under g counts
            self.reason = "cluttered_not_gravity"
            return None
        top = self.geo.height_m + 0.5 * self.geo.floor_height_m
        if min(y_rel, y_g) > top:
            self.reason = "above_roof"
            return None  # would have come from above the roof: chance links, not a fall
        y_rel = min(y_rel, top)
        y_g = min(y_g, top)
        if rest is not None:
            x_rel, y_rel = rest
            y_g = rest[1]
            # seen at rest there: released between its first sighting and the onset of motion
            t_rel = min(max(t_rel, float(t[0]) - t_ref), t_first)
        lo, hi = min(y_rel, y_g, y_first), max(y_rel, y_g)
        if model == "gravity_depth" and gfit is not None and self.pose is not None:
            # thrown towards the camera: seen in front of the façade, the release point
            # projects higher up than the window it came from; the range covers both
            fy = self.pose.foot_m[1]
            k0 = self.pose.distance_m / (self.pose.distance_m - gfit.depth_m[0])
            lo = min(lo, fy + (y_rel - fy) / k0)
        if model == "implausible":
            # the façade model cannot explain this path: every estimate stays in the range
            alt = [y for y in (y_first, float(ce[0] + ce[1] * t_rel + ce[2] * t_rel**2)) if y < top]
            if gfit is not None:
                alt.append(min(gfit.release_m[1], top))
            lo, hi = min([lo, *alt]), max([hi, *alt])
        return FallFit(
            accel=accel,
            t_release=t_ref + t_rel,
            release_m=(x_rel, y_rel),
            y_range_m=(lo, hi),
            v_end=v_end,
            coeff_y=cy,
            coeff_x=cx,
            t_ref=t_ref,
            used=np.concatenate([np.zeros(start, bool), used, np.zeros(n - stop, bool)]),
            chi2=chi2,
            start=start,
            model=model,
            depth_m=gfit.depth_m if gfit is not None and model == "gravity_depth" else None,
            gravity_chi2=gfit.chi2 if gfit is not None else None,
        )

    def _physics(
        self,
        accel: float,
        chi2: float,
        ts: np.ndarray,
        xs: np.ndarray,
        ys: np.ndarray,
        sig: np.ndarray,
        at_rest: bool = False,
    ) -> tuple[str, GravityFit | None]:
        """Which physical model explains the track: gravity, gravity with depth, or none.

        Air drag only lowers the acceleration a little before it builds up, so a fitted
        value between 0.5 g and 1.25 g is a body under gravity. Above that it must be
        perspective: a body thrown towards the camera, fitted with g in 3-D. Far below g,
        or a path that g with any plausible depth cannot explain, is implausible.
        """
        if 0.5 * G <= accel <= 1.25 * G:
            return "gravity", None
        if self.pose is None:
            return "implausible", None
        gfit = gravity_depth_fit(
            ts, xs, ys, sig, self.pose, max_release_depth_m=0.5 if at_rest else 2.5
        )
        if accel > G and gfit is not None and gfit.chi2 <= max(2.0 * chi2, chi2 + 1.5, 2.0):
            return "gravity_depth", gfit
        return "implausible", gfit


# --------------------------------------------------------------------------- pipeline


@dataclass
class _Emitted:
    t0: float
    t1: float
    fit: FallFit


@dataclass
class FallingObject:
    """Watches a façade for falling objects; one finding per fall."""

    options: Options
    context: CameraContext
    severity: str = "urgent"
    name: str = "falling_object"
    needs_every_frame: bool = True
    needs_frames: bool = True
    needs_detections: bool = False
    max_tracks: int = 150
    max_new_per_frame: int = 16
    _geo: FacadeGeometry | None = None
    _motion: MotionDetector | None = None
    _classifier: FallClassifier | None = None
    _tracks: list[_Track] = field(default_factory=list)
    _next_id: int = 1
    _emitted: list[_Emitted] = field(default_factory=list)
    _fragments: list[_Track] = field(default_factory=list)
    _last_frame: Any = None
    _last_at: datetime | None = None
    _last_t: float = 0.0
    _count: int = 0

    def __post_init__(self) -> None:
        self._geo = FacadeGeometry(self.options.facade)
        self._classifier = FallClassifier(self._geo, self.options)

    def update(self, obs: Observation) -> list[Finding]:
        """Consume one frame; return findings of falls whose tracks just ended."""
        frame = obs.frame
        if frame is None:
            return []
        if self._motion is None:
            h, w = frame.shape[:2]
            assert self._geo is not None
            self._motion = MotionDetector(self._geo, w, h, self.options)
            assert self._classifier is not None
            self._classifier.pose = self._geo.camera(w, h)
        self._last_frame = frame
        self._last_at = obs.at
        self._last_t = obs.t
        look = self._look_windows(obs.t) if self.options.faint_candidates else None
        blobs = self._motion.detect(frame, obs.t, look)
        if blobs is None:
            return []
        self._associate(blobs, obs)
        self._keep_patches(frame, obs.t)
        return self._close_tracks(obs.t, obs.camera_id, force=False)

    def _look_windows(self, t: float) -> np.ndarray:
        """Where known tracks (≥ 3 points, recently seen) should be now: (x, y, r) pixels."""
        assert self._geo is not None
        known = [tr for tr in self._tracks if len(tr.t) >= 3 and tr.misses <= 3]
        if not known:
            return np.zeros((0, 3))
        if len(known) > 40:
            known = sorted(known, key=lambda tr: len(tr.t), reverse=True)[:40]
        _refresh_local_fits(known)
        pred = np.array([tr.predict(t) for tr in known])
        px = self._geo.image_of_metres(pred[:, :2])
        scale = np.array([max(tr.scale[-1], 1e-3) for tr in known])
        # faint candidates are only taken close to the prediction
        radius = np.clip(_FAINT_GATE * np.maximum(pred[:, 2], pred[:, 3]) / scale, 3.0, 40.0)
        return np.column_stack([px, radius])

    def _keep_patches(self, frame: np.ndarray, t: float) -> None:
        """Full-resolution crops around tracks that fall fast, for the evidence (bounded).

        The node's clip is small (a few hundred pixels wide) and a 20-pixel object at night
        vanishes in it; these crops keep the object's surroundings at full resolution.
        """
        held = sum(len(tr.patches) for tr in self._tracks) + sum(
            len(tr.patches) for tr in self._fragments
        )
        h, w = frame.shape[:2]
        size = min(_PATCH_PX, h, w)
        for tr in self._tracks:
            if held >= _MAX_PATCHES:
                return
            if tr.t[-1] != t or len(tr.t) < 3 or tr._cache is None or len(tr.patches) >= 60:
                continue
            if tr._cache[2][1] > -2.0:
                continue  # not falling fast (yet): snow, birds, static things
            x0 = int(min(max(round(tr.px[-1][0]) - size // 2, 0), w - size))
            y0 = int(min(max(round(tr.px[-1][1]) - size // 2, 0), h - size))
            tr.patches.append((t, frame[y0 : y0 + size, x0 : x0 + size].copy()))
            held += 1

    def flush(self, at: datetime) -> list[Finding]:
        """End of stream: judge the tracks still open."""
        cam = self.context.camera_id
        return self._close_tracks(self._last_t + 10.0, cam, force=True)

    # ---------------------------------------------------------------- tracking

    def _associate(self, blobs: Blobs, obs: Observation) -> None:
        assert self._motion is not None
        frame_no = self._motion.frames
        n_b = blobs.m.shape[0]
        taken = np.zeros(n_b, bool)
        weak = blobs.weak if blobs.weak is not None else np.zeros(n_b, bool)
        if self._tracks and n_b:
            _refresh_local_fits(self._tracks)
            preds = np.array([tr.predict(obs.t) for tr in self._tracks])
            dx = (blobs.m[None, :, 0] - preds[:, None, 0]) / preds[:, None, 2]
            dy = (blobs.m[None, :, 1] - preds[:, None, 1]) / preds[:, None, 3]
            cost = np.hypot(dx, dy)
            # older tracks first win ties: add a small penalty for short tracks
            lengths = np.array([len(tr.t) for tr in self._tracks], float)
            # how many blobs each track could have taken: in snow or rain a chain of chance
            # links has several candidates at most steps, a real object has one
            in_gate = ((cost < 1.0) & ~weak[None, :]).sum(axis=1)
            cost = cost + 0.05 / lengths[:, None]
            if weak.any():
                # a faint candidate extends only a track whose path is known (≥ 3 points),
                # close to its prediction, and loses to a clear blob
                faint_cost = cost[:, weak] + 0.1
                faint_cost[(faint_cost >= _FAINT_GATE + 0.1) | (lengths < 3)[:, None]] = np.inf
                cost[:, weak] = faint_cost
            order = np.argsort(cost, axis=None)
            used_t = np.zeros(len(self._tracks), bool)
            for flat in order:
                ti, bi = divmod(int(flat), n_b)
                if cost[ti, bi] >= 1.0:
                    break
                if used_t[ti] or taken[bi]:
                    continue
                used_t[ti] = True
                taken[bi] = True
                self._tracks[ti].add(
                    obs.t,
                    blobs.px[bi],
                    blobs.m[bi],
                    float(blobs.scale[bi]),
                    float(blobs.size_px[bi]),
                    frame_no,
                    float(blobs.busy[bi]),
                    blobs.clutter,
                    int(in_gate[ti]),
                    bool(weak[bi]),
                )
            for ti, tr in enumerate(self._tracks):
                if not used_t[ti]:
                    tr.misses += 1
        else:
            for tr in self._tracks:
                tr.misses += 1
        # short tracks that missed are chance detections: drop them now
        self._tracks = [
            tr
            for tr in self._tracks
            if not ((tr.misses and len(tr.t) == 1) or (tr.misses > 1 and len(tr.t) == 2))
        ]
        free = np.nonzero(~taken & ~weak)[0]
        fresh = [tr for tr in self._tracks if tr.misses == 0 and len(tr.t) >= 2]
        if fresh and free.size:
            # a fragment of an object already tracked starts no track of its own
            last = np.array([tr.m[-1] for tr in fresh])
            rad = np.array([2.0 * tr.size[-1] * tr.scale[-1] + 3.0 * tr.scale[-1] for tr in fresh])
            d = np.abs(blobs.m[free, None, :] - last[None, :, :]).max(axis=2)
            free = free[~(d < rad[None, :]).any(axis=1)]
        if free.size > self.max_new_per_frame:
            free = free[np.argsort(-blobs.size_px[free])[: self.max_new_per_frame]]
        for bi in free:
            if len(self._tracks) >= self.max_tracks:
                # keep the longest tracks; drop the newest short ones
                self._tracks.sort(key=lambda tr: len(tr.t), reverse=True)
                if len(self._tracks[-1].t) > 2:
                    break
                self._tracks.pop()
            tr = _Track(
                tid=self._next_id,
                first_at=obs.at,
                first_t=obs.t,
                max_accel=self.options.max_accel_mps2,
            )
            self._next_id += 1
            tr.add(
                obs.t,
                blobs.px[bi],
                blobs.m[bi],
                float(blobs.scale[bi]),
                float(blobs.size_px[bi]),
                frame_no,
                float(blobs.busy[bi]),
                blobs.clutter,
            )
            self._tracks.append(tr)

    def _close_tracks(self, now: float, camera_id: str, force: bool) -> list[Finding]:
        assert self._geo is not None
        out: list[Finding] = []
        keep: list[_Track] = []
        m = self.options.air_margin
        for tr in self._tracks:
            unseen = now - tr.t[-1]
            done = force or unseen > self.options.gap_s or (tr.t[-1] - tr.t[0]) > 12.0
            if not done and len(tr.t) >= 8 and tr.landed(self.options.gap_s):
                done = True
            if not done and tr.misses and len(tr.t) >= 3:
                px, py, _, _ = tr.predict(now)
                u = px / self._geo.width_m
                v = py / self._geo.height_m
                if u < -m or u > 1 + m or v < -0.08:
                    done = True  # left the watched region
            if not done:
                keep.append(tr)
                continue
            if len(tr.t) >= 5:
                finding = self._judge(tr, camera_id)
                if finding is not None:
                    out.append(finding)
        self._tracks = keep
        horizon = now - 10.0
        self._emitted = [e for e in self._emitted if e.t1 > horizon]
        self._fragments = [f for f in self._fragments if f.t[-1] > now - 12.0]
        return out

    # ---------------------------------------------------------------- judging

    def _judge(self, tr: _Track, camera_id: str) -> Finding | None:
        assert self._classifier is not None and self._geo is not None
        assert self._motion is not None
        dt = self._motion.frame_dt
        fit = self._classifier.fit(tr, dt)
        # an occlusion or a crossing bird may have cut the fall in pieces: try the
        # recent unexplained pieces that ended just before this one began
        for _ in range(3):
            best: tuple[_Track, FallFit, _Track] | None = None
            for frag in self._fragments:
                gap = tr.t[0] - frag.t[-1]
                if not (0.0 < gap <= 1.2) or frag.m[0][1] < tr.m[0][1] - 1.0 or frag.static():
                    continue
                if min(frag.fill(), tr.fill()) < 0.6:
                    continue  # each piece must be a solid track of its own
                merged = frag.joined(tr)
                fit2 = self._classifier.fit(merged, dt, min_fill=0.5)
                if fit2 is None or fit2.start > len(frag.t) - 3:
                    continue  # the piece must take part in the fit, not just sit before it
                if fit is not None and fit2.chi2 > max(2.0 * fit.chi2, 2.0):
                    continue
                if best is None or len(merged.t) > len(best[2].t):
                    best = (frag, fit2, merged)
            if best is None:
                break
            self._fragments.remove(best[0])
            fit, tr = best[1], best[2]
        if fit is None:
            if len(tr.t) >= 3:
                self._fragments.append(tr)
                if len(self._fragments) > 40:
                    self._fragments.pop(0)
            return None
        if self._continues_a_mover(tr):
            return None
        if self._duplicate(tr, fit):
            return None
        self._emitted.append(_Emitted(t0=fit.t_release, t1=tr.t[-1], fit=fit))
        return self._finding(tr, fit, camera_id)

    def _continues_a_mover(self, tr: _Track) -> bool:
        """Starts right where something that did not fall (a bird) was just moving."""
        x0, y0 = tr.m[0]
        for frag in self._fragments:
            gap = tr.t[0] - frag.t[-1]
            if not (0.0 < gap <= 0.3) or len(frag.t) < 6 or frag.static():
                continue
            fx, fy = frag.m[-1]
            if abs(fx - x0) < 1.5 and abs(fy - y0) < 1.5:
                return True
        return False

    def _duplicate(self, tr: _Track, fit: FallFit) -> bool:
        """A piece of a fall already reported (track broken by an occlusion)."""
        t = np.asarray(tr.t)
        xy = np.asarray(tr.m)
        for e in self._emitted:
            if t[0] > e.t1 + 2.0 or t[-1] < e.t0:
                continue
            ts = t - e.fit.t_ref
            yp = e.fit.coeff_y[0] + e.fit.coeff_y[1] * ts + e.fit.coeff_y[2] * ts**2
            xp = e.fit.coeff_x[0] + e.fit.coeff_x[1] * ts
            near = (np.abs(yp - xy[:, 1]) < 2.0 + 0.1 * np.abs(yp - xy[0, 1])) & (
                np.abs(xp - xy[:, 0]) < 2.0
            )
            if near.mean() > 0.5:
                return True
        return False

    def _finding(self, tr: _Track, fit: FallFit, camera_id: str) -> Finding:
        assert self._geo is not None and tr.first_at is not None
        geo = self._geo
        floor = geo.floor_of(fit.release_m[1])
        column = geo.column_of(fit.release_m[0])
        lo_f = geo.floor_of(fit.y_range_m[0])
        hi_f = geo.floor_of(fit.y_range_m[1])
        frac = fit.release_m[1] / geo.floor_height_m - math.floor(
            fit.release_m[1] / geo.floor_height_m
        )
        if frac < 0.12:
            lo_f = min(lo_f, max(1, floor - 1))
        if frac > 0.88:
            hi_f = max(hi_f, min(geo.floors, floor + 1))
        lo_f, hi_f = min(lo_f, floor), max(hi_f, floor)
        if fit.model == "implausible":
            lo_f, hi_f = max(1, lo_f - 1), min(geo.floors, hi_f + 1)
        release_at = tr.first_at + timedelta(seconds=fit.t_release - tr.first_t)
        t0 = fit.t_release
        traj_px = [
            [round(t - t0, 3), round(p[0], 1), round(p[1], 1)]
            for t, p in zip(tr.t, tr.px, strict=True)
        ]
        traj_m = [
            [round(t - t0, 3), round(p[0], 2), round(p[1], 2)]
            for t, p in zip(tr.t, tr.m, strict=True)
        ]
        building = self.options.building
        where = f"{building} " if building else ""
        summary = MESSAGES["summary"].format(where=where, floor=floor, column=column)
        agreement = {
            "gravity": math.exp(-abs(fit.accel - G) / 4.0),
            "gravity_depth": 0.7,
            "implausible": 0.0,
        }[fit.model]
        conf = 0.55 + 0.3 * agreement + 0.15 * min(1.0, len(tr.t) / 15.0)
        if fit.model == "implausible":
            conf *= 0.7
        image = self._composite(tr, fit, floor, column)
        strip = _path_strip(tr.patches, fit.t_release)
        xs = [p[0] for p in tr.px]
        ys = [p[1] for p in tr.px]
        box = (min(xs) - 4, min(ys) - 4, max(xs) + 4, max(ys) + 4)
        attributes: dict[str, Any] = {
            "acceleration_mps2": round(fit.accel, 2),
            "trajectory_px": traj_px,
            "trajectory_m": traj_m,
            "floor": floor,
            "floor_range": [lo_f, hi_f],
            "column": column,
            "fall_duration_s": round(tr.t[-1] - fit.t_release, 3),
            "release_t": round(fit.t_release, 3),
            "first_seen_t": round(tr.t[0], 3),
            "release_m": [round(fit.release_m[0], 2), round(fit.release_m[1], 2)],
            "speed_end_mps": round(fit.v_end, 2),
            "points": len(tr.t),
            "activity": round(float(np.median(tr.busy)), 3),
            "fit": self._fit_attributes(fit),
            "path_crops": len(tr.patches),
        }
        return Finding(
            type=_TYPE,
            severity=self.severity,  # type: ignore[arg-type]
            state="active",
            incident_key=f"{camera_id}/falling_object/{release_at.strftime('%Y%m%dT%H%M%S.%f')[:-3]}",
            occurred_at=release_at,
            confidence=round(min(conf, 0.99), 3),
            summary=summary,
            attributes=attributes,
            floor=floor,
            column=column,
            address=building or self.context.address,
            grid_id=self.context.grid_id,
            boxes=(box,),
            evidence_images=tuple(("image/jpeg", b) for b in (image, strip) if b),
        )

    def _fit_attributes(self, fit: FallFit) -> dict[str, Any]:
        """How the fall was explained physically, for the person who checks the event."""
        pose = self._classifier.pose if self._classifier is not None else None
        out: dict[str, Any] = {
            "model": fit.model,
            "plausible": fit.model != "implausible",
            "accel_mps2": round(fit.accel, 2),
            "chi2": round(fit.chi2, 2),
        }
        if fit.depth_m is not None:
            out["depth_m"] = [round(fit.depth_m[0], 2), round(fit.depth_m[1], 2)]
        if fit.gravity_chi2 is not None:
            out["gravity_chi2"] = round(fit.gravity_chi2, 2)
        if pose is not None:
            out["camera_distance_m"] = round(pose.distance_m, 1)
        if fit.model == "gravity_depth" and fit.depth_m is not None:
            out["reason"] = MESSAGES["fit_depth"].format(
                accel=fit.accel, z0=fit.depth_m[0], z1=fit.depth_m[1]
            )
        elif fit.model == "implausible":
            key = "fit_slow" if fit.accel < G else "fit_fast"
            out["reason"] = MESSAGES[key].format(accel=fit.accel, g=fit.accel / G)
        else:
            out["reason"] = MESSAGES["fit_gravity"].format(accel=fit.accel)
        return out

    def _composite(self, tr: _Track, fit: FallFit, floor: int, column: int) -> bytes:
        """The last frame with the trajectory, the fitted path and the release window."""
        assert self._geo is not None
        frame = self._last_frame
        if frame is None:
            return b""
        img = frame.copy() if frame.ndim == 3 else cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)
        xs = [p[0] for p in tr.px]
        ys = [p[1] for p in tr.px]
        _enhance_path(img, (min(xs), min(ys), max(xs), max(ys)))
        geo = self._geo
        cell = np.array(
            [
                [(column - 1) / geo.columns, floor / geo.floors],
                [column / geo.columns, floor / geo.floors],
                [column / geo.columns, (floor - 1) / geo.floors],
                [(column - 1) / geo.columns, (floor - 1) / geo.floors],
            ]
        )
        quad = geo.image_of_norm(cell)
        cv2.polylines(img, [np.round(quad).astype(np.int32)], True, (0, 0, 255), 2, cv2.LINE_AA)
        ts = np.linspace(fit.t_release - fit.t_ref, tr.t[-1] - fit.t_ref, 40)
        path_m = np.column_stack(
            [
                fit.coeff_x[0] + fit.coeff_x[1] * ts,
                fit.coeff_y[0] + fit.coeff_y[1] * ts + fit.coeff_y[2] * ts**2,
            ]
        )
        path = geo.image_of_metres(path_m)
        cv2.polylines(img, [np.round(path).astype(np.int32)], False, (0, 255, 255), 1, cv2.LINE_AA)
        for x, y in tr.px:
            cv2.circle(img, (int(round(x)), int(round(y))), 3, (0, 0, 255), -1, cv2.LINE_AA)
        label = f"floor {floor} col {column} a={fit.accel:.1f} m/s2"
        (tw, _), _ = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, 0.5, 1)
        x_text = int(quad[:, 0].max()) + 6
        if x_text + tw > img.shape[1]:
            x_text = max(0, int(quad[:, 0].min()) - 6 - tw)
        org = (x_text, int(min(max(quad[:, 1].mean(), 14), img.shape[0] - 4)))
        cv2.rectangle(img, (org[0] - 2, org[1] - 14), (org[0] + tw + 2, org[1] + 5), (0, 0, 0), -1)
        cv2.putText(img, label, org, cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 255, 255), 1, cv2.LINE_AA)
        if img.shape[1] > 1280:
            f = 1280.0 / img.shape[1]
            img = cv2.resize(img, None, fx=f, fy=f, interpolation=cv2.INTER_AREA)
        ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 80])
        return buf.tobytes() if ok else b""


_FAINT_GATE = 0.45  # share of a track's gate in which a faint candidate may extend it
_PATCH_PX = 48  # full-resolution crop around the object, per sighting
_MAX_PATCHES = 400  # all tracks together (≈ 2.8 MB of crops at most)


def _enhance_path(img: np.ndarray, box: tuple[float, float, float, float]) -> None:
    """Brighten a dark frame and bring out the region of the path (in place).

    At night the façade is nearly black and a thrown object a few grey levels off it: a
    gamma lift makes the scene readable, local contrast equalisation (CLAHE) around the
    path makes the object stand out from the noise.
    """
    h, w = img.shape[:2]
    lab = cv2.cvtColor(img, cv2.COLOR_BGR2LAB)
    lum = lab[:, :, 0]
    if float(np.mean(lum)) < 90.0:
        lut = (255.0 * (np.arange(256) / 255.0) ** 0.5).astype(np.uint8)
        lum[:] = cv2.LUT(lum, lut)
    pad = 40
    x0 = int(max(0, math.floor(box[0]) - pad))
    y0 = int(max(0, math.floor(box[1]) - pad))
    x1 = int(min(w, math.ceil(box[2]) + pad))
    y1 = int(min(h, math.ceil(box[3]) + pad))
    if x1 - x0 >= 8 and y1 - y0 >= 8:
        clahe = cv2.createCLAHE(clipLimit=3.0, tileGridSize=(4, 4))
        lum[y0:y1, x0:x1] = clahe.apply(np.ascontiguousarray(lum[y0:y1, x0:x1]))
    img[:] = cv2.cvtColor(lab, cv2.COLOR_LAB2BGR)
    cv2.rectangle(img, (x0, y0), (x1 - 1, y1 - 1), (255, 255, 255), 1)


def _path_strip(patches: list[tuple[float, np.ndarray]], t_release: float) -> bytes:
    """A film strip of full-resolution crops along the path, each enhanced, as one JPEG."""
    if not patches:
        return b""
    pick = np.unique(np.linspace(0, len(patches) - 1, min(12, len(patches))).round().astype(int))
    tiles = []
    for i in pick:
        t, patch = patches[int(i)]
        tile = patch if patch.ndim == 3 else cv2.cvtColor(patch, cv2.COLOR_GRAY2BGR)
        lab = cv2.cvtColor(tile, cv2.COLOR_BGR2LAB)
        lab[:, :, 0] = cv2.normalize(lab[:, :, 0], None, 0, 255, cv2.NORM_MINMAX)
        tile = cv2.cvtColor(lab, cv2.COLOR_LAB2BGR)
        tile = cv2.resize(tile, (144, 144), interpolation=cv2.INTER_NEAREST)
        cv2.putText(
            tile,
            f"+{t - t_release:.2f}s",
            (4, 14),
            cv2.FONT_HERSHEY_SIMPLEX,
            0.4,
            (0, 255, 255),
            1,
            cv2.LINE_AA,
        )
        tiles.append(tile)
    while len(tiles) % 6 and len(tiles) > 6:
        tiles.append(np.zeros_like(tiles[0]))
    rows = [cv2.hconcat(tiles[i : i + 6]) for i in range(0, len(tiles), 6)]
    ok, buf = cv2.imencode(".jpg", cv2.vconcat(rows), [cv2.IMWRITE_JPEG_QUALITY, 90])
    return buf.tobytes() if ok else b""


def build(options: Options, context: CameraContext) -> FallingObject:
    """Factory used by the registry."""
    levels = ["normal", "urgent", "emergency"]
    default = context.default_severity.get(_TYPE, "urgent")
    sev: str = options.severity
    if default in levels and levels.index(sev) < levels.index(default):
        sev = default
    return FallingObject(options=options, context=context, severity=sev)
