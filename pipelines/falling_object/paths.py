"""Track before detect in the intensity domain: gravity paths through faint differences.

An object that differs from the wall by only two or three times the camera's noise is
lost among noise peaks in any one frame, but along its trajectory it is there in every
frame. Each frame the search takes pairs of faint peaks, one now and one a few frames
ago, that a body under gravity could join (falling, not too fast sideways). Each pair
fixes a parabola on the façade plane; the difference image is summed along it over the
last frames (projected through the façade's homography). A path whose frames nearly all
show a difference well above the noise becomes a new track; the classifier then asks it
to be a clear fall under g.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from pipelines.falling_object.geometry import FacadeGeometry, G

_WINDOW = 10  # frames summed along a path
_GAP = 5  # frames between the two peaks that fix a path
_Q = 32.0  # z (difference in noise units) stored as z·_Q in uint8
_PEAK_Z = 2.5  # a faint peak: this many times the noise
_SUPPORT_Z = 2.0  # a frame supports a path when the difference there is this many times the noise
_MIN_SUPPORT = 0.85  # share of the other frames that must support a path
_MIN_MEAN_Z = 3.5  # mean difference along the other frames, in noise units
_SIDE = 4  # work pixels between a path and the shifted copies it is compared with
_MIN_CONTRAST_Z = 2.0  # a path's mean over its shifted copies', in noise units
_FOLLOW_Z = 2.5  # a path goes on where the difference next to its prediction reaches this
_FOLLOW_OVER = 2.0  # … and by this much over the median of the 9×9 pixels around it
_MAX_PEAKS = 250  # strongest peaks kept per frame
_MAX_PAIRS = 6000  # pairs scored per frame


@dataclass
class PathHit:
    """A faint path found in the last frames: points in work pixels, with their frames."""

    t: np.ndarray  # (n,) media times
    k: np.ndarray  # (n,) frame numbers
    uv: np.ndarray  # (n, 2) work-resolution pixels
    z: float  # mean difference along the path (noise units)


@dataclass
class _Frame:
    t: float
    k: int
    zq: np.ndarray  # z·_Q, uint8, work resolution
    zmax: np.ndarray  # the same, 3×3 maximum (tolerates a pixel of path error)
    peaks_m: np.ndarray  # (P, 2) faint peaks in façade metres
    peaks_z: np.ndarray  # (P,) their z·_Q


class PathSearch:
    """Keeps the last frames' noise-scaled differences and searches gravity paths in them."""

    def __init__(
        self,
        geo: FacadeGeometry,
        crop: tuple[int, int, int, int],
        sx: float,
        sy: float,
    ) -> None:
        self.geo = geo
        self.crop = crop
        self.sx = sx
        self.sy = sy
        self.frames: list[_Frame] = []
        self.kernel = np.ones((3, 3), np.uint8)

    def to_full(self, uv: np.ndarray) -> np.ndarray:
        """Work-resolution pixels → full-resolution pixels."""
        return np.column_stack(
            [
                self.crop[0] + (uv[..., 0].ravel() + 0.5) * self.sx - 0.5,
                self.crop[1] + (uv[..., 1].ravel() + 0.5) * self.sy - 0.5,
            ]
        )

    def to_work(self, px: np.ndarray) -> np.ndarray:
        """Full-resolution pixels → work-resolution pixels."""
        return np.column_stack(
            [
                (px[:, 0] - self.crop[0] + 0.5) / self.sx - 0.5,
                (px[:, 1] - self.crop[1] + 0.5) / self.sy - 0.5,
            ]
        )

    def push(self, t: float, k: int, diff: np.ndarray, noise: float, blank: np.ndarray) -> None:
        """One frame's difference to the background, in units of ``noise``; ``blank``:
        pixels that carry no evidence (rain, busy places, outside the watched region)."""
        zq = cv2.convertScaleAbs(diff, alpha=_Q / noise)
        zq[blank] = 0
        zmax = cv2.dilate(zq, self.kernel)
        peak = (zq >= int(_PEAK_Z * _Q)) & (zq == zmax)
        vs, us = np.nonzero(peak)
        if us.size > _MAX_PEAKS:
            top = np.argsort(-zq[vs, us])[:_MAX_PEAKS]
            us, vs = us[top], vs[top]
        uv = np.column_stack([us, vs]).astype(np.float64)
        peaks_m = self.geo.metres_of(self.to_full(uv)) if uv.size else np.zeros((0, 2))
        self.frames.append(
            _Frame(t=t, k=k, zq=zq, zmax=zmax, peaks_m=peaks_m, peaks_z=zq[vs, us].astype(float))
        )
        if len(self.frames) > _WINDOW:
            self.frames.pop(0)

    def reset(self) -> None:
        """Forget the frames (the background was relearned)."""
        self.frames = []

    def search(self, avoid_px: np.ndarray) -> list[PathHit]:
        """Paths ending in this frame; ``avoid_px`` (M, 2): points of tracks seen now."""
        if len(self.frames) < _WINDOW or self.frames[-1].k % 2:
            return []  # every other frame: a faint body stays in view for many
        fb, fa = self.frames[-1], self.frames[-1 - _GAP]
        if fb.peaks_m.shape[0] == 0 or fa.peaks_m.shape[0] == 0:
            return []
        tau = fa.t - fb.t  # < 0
        pb = fb.peaks_m[:, None, :]
        pa = fa.peaks_m[None, :, :]
        vx = (pb[..., 0] - pa[..., 0]) / -tau
        vy = (pa[..., 1] - pb[..., 1] + 0.5 * G * tau * tau) / tau
        ok = (np.abs(vx) <= 5.0) & (vy <= -1.0) & (vy >= -25.0)
        ib, ia = np.nonzero(ok)
        if ib.size == 0:
            return []
        if ib.size > _MAX_PAIRS:
            # too many to score: the pairs of the strongest peaks first
            keep = np.argsort(-(fb.peaks_z[ib] + fa.peaks_z[ia]))[:_MAX_PAIRS]
            ib, ia = ib[keep], ia[keep]
        ts = np.array([f.t - fb.t for f in self.frames])
        x = fb.peaks_m[ib, 0][:, None] + vx[ib, ia][:, None] * ts[None, :]
        y = (
            fb.peaks_m[ib, 1][:, None]
            + vy[ib, ia][:, None] * ts[None, :]
            - 0.5 * G * ts[None, :] ** 2
        )
        pts = self.geo.image_of_metres(np.column_stack([x.ravel(), y.ravel()]))
        uv = np.rint(self.to_work(pts)).astype(np.int64).reshape(ib.size, len(self.frames), 2)
        zs = self._sample(uv)
        seeds = (len(self.frames) - 1, len(self.frames) - 1 - _GAP)
        others = [j for j in range(len(self.frames)) if j not in seeds]
        zo = zs[:, others] / _Q
        support = (zo >= _SUPPORT_Z).mean(axis=1)
        mean = zo.mean(axis=1)
        good = np.nonzero((support >= _MIN_SUPPORT) & (mean >= _MIN_MEAN_Z))[0]
        if good.size:
            # the path must stand out from its surroundings: the same path shifted a few
            # pixels to either side (texture, compression blocks or a noisy patch are as
            # bright there)
            side = [self._sample(uv[good] + [d, 0])[:, others] / _Q for d in (-_SIDE, _SIDE)]
            around = np.maximum(side[0].mean(axis=1), side[1].mean(axis=1))
            good = good[mean[good] >= around + _MIN_CONTRAST_Z]
        if good.size == 0:
            return []
        good = good[np.argsort(-mean[good])]
        return self._hits(good, uv, mean, ib, avoid_px)

    def follow(self, px: np.ndarray) -> np.ndarray:
        """Where faint paths went on in this frame: the brightest pixel next to each
        predicted point ``px`` (full resolution; 3×3 work pixels), NaN where none stands out."""
        out = np.full((px.shape[0], 2), np.nan)
        if not self.frames or px.shape[0] == 0:
            return out
        zq = self.frames[-1].zq
        h, w = zq.shape
        uv = np.rint(self.to_work(px)).astype(np.int64)
        for i in range(px.shape[0]):
            u, v = int(uv[i, 0]), int(uv[i, 1])
            u0, u1, v0, v1 = max(u - 1, 0), min(u + 2, w), max(v - 1, 0), min(v + 2, h)
            if u1 <= u0 or v1 <= v0:
                continue
            win = zq[v0:v1, u0:u1]
            idx = int(np.argmax(win))
            # it must stand out from the ring around it too (texture, blocks, noise patches)
            ring = zq[max(v - 4, 0) : v + 5, max(u - 4, 0) : u + 5]
            if win.flat[idx] >= max(_FOLLOW_Z * _Q, float(np.median(ring)) + _FOLLOW_OVER * _Q):
                dv, du = divmod(idx, u1 - u0)
                out[i] = (u0 + du, v0 + dv)
        return out

    def _sample(self, uv: np.ndarray) -> np.ndarray:
        """``zmax`` of each frame at the path's pixels (0 outside the view): (P, N)."""
        out = np.zeros(uv.shape[:2], np.float64)
        for j, f in enumerate(self.frames):
            h, w = f.zmax.shape
            u = uv[:, j, 0]
            v = uv[:, j, 1]
            inside = (u >= 0) & (u < w) & (v >= 0) & (v < h)
            out[inside, j] = f.zmax[v[inside], u[inside]]
        return out

    def _hits(
        self,
        good: np.ndarray,
        uv: np.ndarray,
        mean: np.ndarray,
        ib: np.ndarray,
        avoid_px: np.ndarray,
    ) -> list[PathHit]:
        """The best paths, one per peak now, away from tracks already followed."""
        out: list[PathHit] = []
        used_b: set[int] = set()
        avoid = self.to_work(avoid_px) if avoid_px.size else np.zeros((0, 2))
        for p in good[:50]:
            if int(ib[p]) in used_b:
                continue
            end = uv[p, -1].astype(np.float64)
            if avoid.size and np.min(np.abs(avoid - end).max(axis=1)) <= 6.0:
                continue  # a track already follows this body
            if any(np.abs(h.uv[-1] - end).max() <= 3.0 for h in out):
                continue
            used_b.add(int(ib[p]))
            hit = self._refine(uv[p], float(mean[p]))
            if hit is not None:
                out.append(hit)
            if len(out) >= 3:
                break
        return out

    def _refine(self, path: np.ndarray, mean: float) -> PathHit | None:
        """The brightest pixel next to the path in each frame that supports it."""
        ts: list[float] = []
        ks: list[int] = []
        pts: list[tuple[float, float]] = []
        for j, f in enumerate(self.frames):
            h, w = f.zq.shape
            u, v = int(path[j, 0]), int(path[j, 1])
            if not (1 <= u < w - 1 and 1 <= v < h - 1):
                continue
            win = f.zq[v - 1 : v + 2, u - 1 : u + 2]
            idx = int(np.argmax(win))
            if win.flat[idx] < _SUPPORT_Z * _Q:
                continue
            dv, du = divmod(idx, 3)
            ts.append(f.t)
            ks.append(f.k)
            pts.append((float(u + du - 1), float(v + dv - 1)))
        if len(pts) < 0.75 * _WINDOW:
            return None
        return PathHit(t=np.array(ts), k=np.array(ks), uv=np.array(pts), z=mean)
