"""Façade geometry: image pixels ↔ façade metres, and the camera pose from the calibration."""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from pipelines.falling_object.options import FacadeOptions

G = 9.81  # gravity, m/s², in the façade's metric frame


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
