"""Does a track fall like a body under gravity, and from where? (free fit, g with depth)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from pipelines.falling_object.geometry import CameraPose, FacadeGeometry, G
from pipelines.falling_object.options import Options
from pipelines.falling_object.tracking import _Track


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
        chi2_x: mean squared sideways residual (in units of the centroid noise).
    """

    chi2: float
    depth_m: tuple[float, float]
    release_m: tuple[float, float]
    t_release: float
    chi2_x: float = 0.0


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
    res_x = (bx - a_mat @ np.array([x0, vx])) / sig
    t_vertex = float(vy[best]) / G
    t_rel = max(min(t_vertex, float(ts[0])), float(ts[0]) - 3.0)
    y_rel = float(y0[best] + vy[best] * t_rel - 0.5 * G * t_rel**2)
    return GravityFit(
        chi2=float(chi2[best]),
        depth_m=(float(depth[best, 0]), float(depth[best, -1])),
        release_m=(float(x0 + vx * t_rel), y_rel),
        t_release=t_rel,
        chi2_x=float(np.mean(res_x**2)),
    )


class FallClassifier:
    """Does a track fall like a body under gravity? If so, where was it released?"""

    def __init__(self, geo: FacadeGeometry, options: Options) -> None:
        self.geo = geo
        self.o = options
        self.reason = ""  # why the last track was not a fall (for diagnostics)
        self.pose: CameraPose | None = None
        self._rescued: GravityFit | None = None
        self._clear_fall = False  # the last track screened passed the clear-fall test

    def fit(
        self, tr: _Track, frame_dt: float, min_fill: float = 0.65, linked: bool = True
    ) -> FallFit | None:
        """Physics check; None when the track is not a fall (``reason`` says why).

        ``linked``: linked frame by frame, competing for its blobs (not gathered again
        along a predicted path). Linked without doubt, it may be a throw towards the
        camera (g with depth) even among snow or rain."""
        cluttered = self._screen(tr, frame_dt, min_fill)
        if cluttered is None:
            return None
        depth_ok = not cluttered or (linked and _unambiguous(tr))
        span = self._moving_span(tr)
        if span is None:
            return None
        start, stop, rest = span
        t = np.asarray(tr.t)
        xy = np.asarray(tr.m)
        sc = np.asarray(tr.scale)[start:stop]
        sz = np.asarray(tr.size)[start:stop]
        t_ref = float(t[start])
        ts = t[start:stop] - t_ref
        xs, ys = xy[start:stop, 0], xy[start:stop, 1]
        sig = _centroid_sigma(ts, ys, sc, sz, np.asarray(tr.faint[start:stop], bool), frame_dt)
        vert = self._vertical_fit(
            ts, xs, ys, sig, cluttered, at_rest=rest is not None, depth_ok=depth_ok
        )
        vert = self._without_drifters(tr, (start, stop), ts, ys, vert, frame_dt)
        if vert is None:
            return None
        cy, chi2, used, accel = vert
        tight = sc * (0.8 + 0.1 * sz) + 0.03
        if self._rescued is not None:
            # the 3-D fit explains the sideways path too (``_not_traced`` asks it closely)
            w = 1.0 / sig[used]
            a_x = np.column_stack([np.ones(used.sum()), ts[used]]) * w[:, None]
            cx1, *_ = np.linalg.lstsq(a_x, xs[used] * w, rcond=None)
            cx: np.ndarray | None = np.array([cx1[0], cx1[1], 0.0])
        else:
            x_px = np.asarray(tr.px)[start:stop, 0]
            cx = self._sideways(ts, xs, ys, sig, tight, used, accel, x_px, frame_dt)
        if cx is None:
            return None
        tu = ts[used]
        v_end = -(float(cy[1]) + 2.0 * float(cy[2]) * float(tu[-1]))
        # release: the vertex of the parabola when it was already falling, else the first
        # sighting. Fitted on the early part only: air drag bends long falls later on.
        t_first = float(tu[0])
        early = used & (ts <= t_first + 0.9)
        if early.sum() < 6:
            early = used & (ts <= np.sort(ts[used])[min(5, int(used.sum()) - 1)])
        ce = _early_fit(ts[early], ys[early], sig[early], accel)
        t_vertex = -float(ce[1]) / (2.0 * float(ce[2]))
        v_first = -(float(ce[1]) + 2.0 * float(ce[2]) * t_first)
        # a body seen falling at v_first fell for about v_first / g before: a fitted
        # curvature below g (drag on a long fall, noisy faint points) stretches the way
        # back to the vertex, so it is bounded by what g (less a fifth) allows
        t_back = max(v_first, 0.0) / (0.8 * G)
        t_rel = max(min(t_vertex, t_first), t_first - min(3.0, t_back))
        y_rel = float(ce[0] + ce[1] * t_rel + ce[2] * t_rel**2)
        # the same with g instead of the fitted acceleration (calibration scale errors)
        y_first = float(ce[0] + ce[1] * t_first + ce[2] * t_first**2)
        y_g = y_first + (max(v_first, 0.0) ** 2) / (2.0 * G) if t_vertex < t_first else y_first
        x_rel = float(cx[0] + cx[1] * t_rel)
        gfit: GravityFit | None
        if self._rescued is not None:
            model, gfit = "gravity_depth", self._rescued
        else:
            model, gfit = self._physics(
                accel, chi2, tu, xs[used], ys[used], sig[used], at_rest=rest is not None
            )
        why = _not_traced(model, accel, chi2, gfit)
        if why:
            self.reason = why
            return None
        if model == "implausible" and used.sum() < 0.5 * len(tr.t):
            # no model explains it, and the part fitted is the lesser part of the track:
            # a piece of something that moved on along the street or the façade
            self.reason = "implausible_part"
            return None
        if cluttered and model != "gravity" and not (depth_ok and model == "gravity_depth"):
            # among snow, rain or insects a chance chain fits almost anything given the extra
            # freedom of depth; there only a plain fall under g counts (or g with depth for
            # a track linked without doubt)
            self.reason = "cluttered_not_gravity"
            return None
        if _short_and_steep(model, gfit, tu, frame_dt):
            self.reason = "short_not_gravity"
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
        y_alt = float(ce[0] + ce[1] * t_rel + ce[2] * t_rel**2)
        lo, hi = self._release_range(model, gfit, y_rel, y_g, y_first, y_alt, top)
        n = len(tr.t)
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

    def _screen(self, tr: _Track, frame_dt: float, min_fill: float) -> bool | None:
        """Cheap tests on the track as linked; None when it fails, else whether it is cluttered."""
        n = len(tr.t)
        if n < max(7, int(round(0.45 / frame_dt))):
            self.reason = "few_points"
            return None
        choices = float(np.mean(np.asarray(tr.choices) > 1))
        # (a throw towards the camera seems to fall at up to twice g on the façade)
        clear_fall = choices <= 0.35 and _ballistic(
            tr, frame_dt, self.o.min_drop_m, steepest=1.4 if tr.path else _STEEPEST_CLEAN
        )
        if tr.path and (
            not clear_fall
            or n < _PATH_FILL * (tr.k[-1] - tr.k[0] + 1)
            or (
                float(np.median(tr.busy)) > self.o.max_activity
                and not _ballistic(tr, frame_dt, self.o.min_drop_m, sigmas=25.0)
            )
        ):
            # found as a faint path: nothing but a clear fall under g, seen in most of the
            # frames it spans, away from busy places (where faint differences come from
            # things that keep moving) unless its curvature stands at 25 standard errors
            # (snow keeps the whole façade busy), is taken from it
            self.reason = "faint_path_not_clear"
            return None
        self._clear_fall = clear_fall
        if clear_fall:
            # clearly a body under g: snow, rain or a busy area hid it in some frames, but
            # no chain of drifting particles traces such a parabola
            min_fill = min(min_fill, 0.25)
            cluttered = False
        else:
            # many blobs per frame (rain, heavy noise): chance links are easy, ask for more
            cluttered = tr.cluttered()
        if cluttered and choices > 0.1:
            # several candidates at some steps: a gap may have been bridged by a chance
            # link, so ask for a track seen in nearly every frame it spans
            min_fill = max(min_fill, 0.8)
        if n < min_fill * (tr.k[-1] - tr.k[0] + 1):
            self.reason = "sparse"
            return None  # seen in too few of the frames it spans: chance links
        if float(np.median(tr.busy)) > self.o.max_activity and not clear_fall:
            self.reason = "busy_area"
            return None  # moves where things keep moving (foliage, flags, water)
        if choices > 0.35:
            self.reason = "ambiguous"
            return None  # linked through a crowd of candidates (snow, rain): chance links
        clear = ~np.asarray(tr.faint, bool)
        if tr.path:
            return cluttered  # its points are faint by nature; the clear-fall test decided
        if clear.sum() < max(3, 0.4 * n) and not _anchored(tr, clear, choices):
            self.reason = "faint"
            return None  # mostly faint candidates: a chain of noise, not an object
        if not tr.with_path and _faint_end(tr, clear):
            self.reason = "faint_end"
            return None
        sizes = np.log(np.maximum(np.asarray(tr.size)[clear], 0.5))
        if float(np.std(sizes)) > 0.5:
            self.reason = "size_unsteady"
            return None  # not one object (rain streaks, noise)
        if tr.t[-1] - tr.t[0] < 0.2:
            self.reason = "too_short"
            return None
        return cluttered

    def _moving_span(self, tr: _Track) -> tuple[int, int, tuple[float, float] | None] | None:
        """The moving part of the track: (start, stop, rest point before the onset or None)."""
        n = len(tr.t)
        xy = np.asarray(tr.m)
        sc = np.asarray(tr.scale)
        # static lead-in (resting on a sill, or a ghost at the release point)
        start = 0
        tol = np.maximum(0.25, 2.0 * sc)
        moved = np.hypot(xy[:, 0] - xy[0, 0], xy[:, 1] - xy[0, 1]) > tol
        rest: tuple[float, float] | None = None
        if not moved.any():
            self.reason = "never_moved"
            return None
        onset = int(np.argmax(moved))
        if onset >= 3:
            rest = (float(np.median(xy[:onset, 0])), float(np.median(xy[:onset, 1])))
            start = onset - 1
            if _passed_by(np.asarray(tr.t), xy[:, 1], onset, rest[1], tol):
                # a body already falling fast passed something that sat still there (a
                # window's glint, a blotch of compression): that was never this body
                rest = None
                start = onset
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
            if xy[-1, 1] > self.geo.floor_height_m and _stalled(tr, last_moving):
                self.reason = "stalled"
                return None
        if stop - start < 6:
            self.reason = "few_moving_points"
            return None
        if rest is not None and self._clear_fall and _faint_after_rest(tr, start):
            # the clear-fall test spared it the fill asked of a track, and its curvature
            # came from the rest points: a still blotch (compression, a lit window) linked
            # to a chain of faint noise or insects below, not a body seen falling
            self.reason = "faint_after_rest"
            return None
        return start, stop, rest

    def _without_drifters(
        self,
        tr: _Track,
        span: tuple[int, int],
        ts: np.ndarray,
        ys: np.ndarray,
        vert: tuple[np.ndarray, float, np.ndarray, float] | None,
        frame_dt: float,
    ) -> tuple[np.ndarray, float, np.ndarray, float] | None:
        """``vert``, or None when a track linked among clutter holds a straight run (a flake
        or a drop drifting at a steady speed, which no part of a falling body does)."""
        if vert is None or self._rescued is not None or not tr.cluttered():
            return vert
        start, stop = span
        if _straight_run(
            ts,
            ys,
            np.asarray(tr.scale)[start:stop],
            np.asarray(tr.size)[start:stop],
            np.asarray(tr.choices)[start:stop],
            vert[2],
            vert[3],
            frame_dt,
        ):
            self.reason = "drifter_linked"
            return None
        return vert

    def _vertical_fit(
        self,
        ts: np.ndarray,
        xs: np.ndarray,
        ys: np.ndarray,
        sig: np.ndarray,
        cluttered: bool,
        at_rest: bool = False,
        depth_ok: bool = True,
    ) -> tuple[np.ndarray, float, np.ndarray, float] | None:
        """Robust weighted parabola of height over time: (coeffs, chi², inliers, accel).

        A body thrown towards the camera does not trace a parabola on the façade plane
        (perspective grows as it comes nearer); where the parabola fits poorly, gravity in
        3-D with the body moving in front of the façade may still explain the path
        (``_rescued`` then holds that fit).
        """
        self._rescued = None
        used = np.ones(ts.size, bool)
        cy: np.ndarray = np.zeros(3)
        chi2 = 0.0
        cov: np.ndarray = np.eye(3)
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
                # the acceleration's error from the points' own scatter: a body tracked
                # cleanly lies on its parabola far closer than the centroid noise model
                # (blur, merges with flakes) allows for; never below half that model
                cov = np.linalg.pinv(a_mat.T @ a_mat) * max(0.25, chi2)
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
            gfit = None
            if depth_ok and self.pose is not None and self.o.depth_paths:
                gfit = gravity_depth_fit(
                    ts[used],
                    xs[used],
                    ys[used],
                    sig[used],
                    self.pose,
                    max_release_depth_m=0.5 if at_rest else 2.5,
                )
            # two more free parameters (depth and its rate): the 3-D model must then fit
            # as closely as a clean track does, not just acceptably (a chance chain that a
            # parabola fits badly often fits g-with-depth merely less badly)
            if gfit is None or gfit.chi2 > _CLOSE_DEPTH_CHI2:
                self.reason = "poor_fit"
                return None
            self._rescued = gfit
        if cluttered and accel > 3.0 * G:
            self.reason = "cluttered_fast"
            return None
        # a path bending at g itself (significant, as asked above) is no chain of chance
        # links among flakes: it is held to the plain drop, and to the straight-line ratio
        # even when its points are so steady that both fits are far better than their
        # sizes suggest (χ² ≪ 1, where the floor of 0.1 would hide its curvature)
        at_g = abs(accel - G) <= 0.2 * G
        if cluttered:
            # among flakes a chain of chance links bends a little, however long; a fall
            # bends clearly: its height must fit a parabola far better than a straight line
            w = 1.0 / sig[used]
            a_line = np.column_stack([np.ones(used.sum()), ts[used]]) * w[:, None]
            cl, *_ = np.linalg.lstsq(a_line, ys[used] * w, rcond=None)
            line = float(np.sum((a_line @ cl - ys[used] * w) ** 2)) / max(1, int(used.sum()) - 2)
            if line < 8.0 * max(chi2, 0.02 if at_g else 0.1):
                self.reason = "cluttered_straight"
                return None
        tu = ts[used]
        y_fit = cy[0] + cy[1] * tu + cy[2] * tu**2
        drop = float(y_fit[0] - y_fit[-1])
        if drop < (1.5 if cluttered and not at_g else 1.0) * self.o.min_drop_m:
            self.reason = "small_drop"
            return None
        v_end = -(float(cy[1]) + 2.0 * float(cy[2]) * float(tu[-1]))
        if v_end < 3.0:
            self.reason = "slow_end"
            return None
        return np.asarray(cy), chi2, used, accel

    def _sideways(
        self,
        ts: np.ndarray,
        xs: np.ndarray,
        ys: np.ndarray,
        sig: np.ndarray,
        tight: np.ndarray,
        used: np.ndarray,
        accel: float,
        x_px: np.ndarray,
        frame_dt: float,
    ) -> np.ndarray | None:
        """Sideways motion of a thrown body: a straight drift, no zig-zag, no wander,
        never climbing.

        Returns the sideways coefficients (c0, c1, 0), or None for flight (a bird, a leaf).
        """
        tu = ts[used]
        w = 1.0 / sig[used]
        ax_mat = np.column_stack([np.ones(used.sum()), tu, tu**2]) * w[:, None]
        cx2, *_ = np.linalg.lstsq(ax_mat, xs[used] * w, rcond=None)
        if abs(2.0 * float(cx2[2])) > max(4.0, 0.6 * accel):
            self.reason = "sideways_curve"
            return None
        cx1, *_ = np.linalg.lstsq(ax_mat[:, :2], xs[used] * w, rcond=None)
        if abs(float(cx1[1])) > 8.0:
            self.reason = "sideways_fast"
            return None
        # a thrown body drifts sideways in a straight line; its centroid is good to about a
        # pixel (plus blur along the fall, which is vertical and does not count here)
        res_x = (xs[used] - (cx1[0] + cx1[1] * tu)) / tight[used]
        if float(np.mean(res_x**2)) > 9.0:
            self.reason = "sideways_erratic"
            return None  # erratic sideways (a bird, a leaf)
        # a gentle curve is perspective (moving towards the camera); a zig-zag is flight
        res_x2 = (xs[used] - (cx2[0] + cx2[1] * tu + cx2[2] * tu**2)) / tight[used]
        if float(np.mean(res_x2**2)) > 4.0:
            self.reason = "sideways_zigzag"
            return None
        if _wanders(tu, x_px[used], frame_dt):
            self.reason = "sideways_wander"
            return None
        # and it never climbs back once falling: largest rebound above the lowest point since
        # it began to fall (a body thrown upwards rises first: that is no rebound)
        yu = ys[used]
        margin = 0.1 + 3.0 * tight[used]
        fell = np.nonzero(yu < np.maximum.accumulate(yu) - margin)[0]
        falling = np.arange(yu.size) >= (fell[0] if fell.size else yu.size)
        rebound = yu - np.minimum.accumulate(np.where(falling, yu, np.inf))
        late = (tu > tu[0] + 0.3) & falling
        if late.any() and np.any(rebound[late] > margin[late]):
            self.reason = "climbed"
            return None  # climbed again (a bird)
        return np.array([cx1[0], cx1[1], 0.0])

    def _release_range(
        self,
        model: str,
        gfit: GravityFit | None,
        y_rel: float,
        y_g: float,
        y_first: float,
        y_alt: float,
        top: float,
    ) -> tuple[float, float]:
        """Heights the release may have been at (façade metres), widened by the model's doubt."""
        lo, hi = min(y_rel, y_g, y_first), max(y_rel, y_g)
        if model == "gravity_depth" and gfit is not None and self.pose is not None:
            # thrown towards the camera: seen in front of the façade, the release point
            # projects higher up than the window it came from; the range covers both
            fy = self.pose.foot_m[1]
            k0 = self.pose.distance_m / (self.pose.distance_m - gfit.depth_m[0])
            lo = min(lo, fy + (y_rel - fy) / k0)
        if model == "implausible":
            # the façade model cannot explain this path: every estimate stays in the range
            alt = [y for y in (y_first, y_alt) if y < top]
            if gfit is not None:
                alt.append(min(gfit.release_m[1], top))
            lo, hi = min([lo, *alt]), max([hi, *alt])
        return lo, hi

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


_CLOSE_DEPTH_CHI2 = 1.0
"""Reduced χ² at most of g with depth that rescues a path its parabola fits poorly."""

_ROUGH_CHI2 = 2.0
"""Reduced χ² of the height parabola beyond which a path faster than g is no fall unless
g with depth traces it closely."""

_STEEPEST_CLEAN = 2.0
"""Largest curvature (in g) of a track that clearly falls: a throw towards the camera from
2 m before the façade seems to fall at up to about twice g on it."""

_CLEAN_DEPTH_CHI2 = 0.5
"""Reduced χ² (height, and sideways) below which a short path is a throw towards the camera.

Measured on the tracks refused as short on 8 blocks of the hard benchmark (seeds
1000000–1070000): those on a true fall fitted g with depth at χ² 0.01–0.4 (sideways
0.002–0.36); those of insects, birds and flakes at 0.78 or more."""


def _rough_and_fast(accel: float, chi2: float, gfit: GravityFit | None) -> bool:
    """Faster than g on the façade, and no parabola (reduced χ² over ``_ROUGH_CHI2``): only a
    close fit of g with depth (a throw towards the camera) makes it a fall, as it must for
    a path that no parabola fits at all. An insect that hovered by the lamp and then dived
    past it is neither."""
    return (
        accel > 1.25 * G
        and chi2 > _ROUGH_CHI2
        and not (gfit is not None and gfit.chi2 <= _CLOSE_DEPTH_CHI2)
    )


def _not_traced(model: str, accel: float, chi2: float, gfit: GravityFit | None) -> str:
    """Why a path that seems to fall is no fall (or "" when nothing speaks against it).

    Faster than g on the façade and poorly fitted (``_rough_and_fast``), or a throw towards
    the camera whose sideways path g with depth does not trace closely: coming nearer, a
    body drifts in a straight line that perspective bends away from the camera's foot
    point in step with the depth that explains its height; an insect wandering by the lamp
    drifts as it likes."""
    if _rough_and_fast(accel, chi2, gfit):
        return "poor_fit"
    if model == "gravity_depth" and gfit is not None and gfit.chi2_x > _CLOSE_DEPTH_CHI2:
        return "sideways_not_depth"
    return ""


def _short_and_steep(model: str, gfit: GravityFit | None, tu: np.ndarray, frame_dt: float) -> bool:
    """A short path that plain g does not explain: an insect darting past the lamp or a
    bird diving, which depth or no model "explains". A throw towards the camera is seen
    longer, or, from a low floor, briefly but traced by g with depth as closely as a plain
    fall is traced by g."""
    return (
        model != "gravity"
        and tu.size < max(12.0, 0.7 / frame_dt)
        and tu[-1] - tu[0] < 1.0
        and not _clean_depth_fit(model, gfit)
    )


def _clean_depth_fit(model: str, gfit: GravityFit | None) -> bool:
    """Does g with depth trace the path as closely as g alone traces a plain fall?"""
    return (
        model == "gravity_depth"
        and gfit is not None
        and gfit.chi2 <= _CLEAN_DEPTH_CHI2
        and gfit.chi2_x <= _CLEAN_DEPTH_CHI2
    )


_PATH_FILL = 0.7
"""Share of the frames it spans in which a faint-path track must stand out."""


def _height_fits(
    tr: _Track, frame_dt: float, drop: int = 0, floor: float = 1.0
) -> tuple[np.ndarray, float, float, float]:
    """Height over time of the whole track as linked: parabola (coefficients, reduced chi²,
    standard error of the acceleration) and the reduced chi² of a straight line.

    The standard error takes the points' own scatter where it exceeds the centroid noise
    model, and never less than ``floor`` times the model (in variance).

    With ``drop``, up to that many points (one in ten at most) that the parabola misses by
    more than 3 σ are left out of both fits: a link to a flake beside the body."""
    n = len(tr.t)
    t = np.asarray(tr.t)
    ts = t - t[0]
    ys = np.asarray(tr.m)[:, 1]
    sc = np.asarray(tr.scale)
    sig = _centroid_sigma(ts, ys, sc, np.asarray(tr.size), np.asarray(tr.faint, bool), frame_dt)
    w = 1.0 / sig
    a_mat = np.column_stack([np.ones(n), ts, ts**2]) * w[:, None]
    cy, *_ = np.linalg.lstsq(a_mat, ys * w, rcond=None)
    if drop:
        res = np.abs(a_mat @ cy - ys * w)
        worst = np.argsort(res)[::-1][: min(drop, n // 10)]
        worst = worst[res[worst] > 3.0]
        if worst.size:
            keep = np.ones(n, bool)
            keep[worst] = False
            a_mat, ys, w, n = a_mat[keep], ys[keep], w[keep], int(keep.sum())
            cy, *_ = np.linalg.lstsq(a_mat, ys * w, rcond=None)
    chi2 = float(np.sum((a_mat @ cy - ys * w) ** 2)) / max(1, n - 3)
    se_a = 2.0 * math.sqrt(
        max(float(np.linalg.pinv(a_mat.T @ a_mat)[2, 2]), 0.0) * max(floor, chi2)
    )
    cl, *_ = np.linalg.lstsq(a_mat[:, :2], ys * w, rcond=None)
    chi2_line = float(np.sum((a_mat[:, :2] @ cl - ys * w) ** 2)) / max(1, n - 2)
    return np.asarray(cy), chi2, se_a, chi2_line


_SEEN_THROUGHOUT = 0.9
"""A linked track seen in at least this share of the frames it spans is measured by its own
scatter in the clear-fall test (down to half the centroid noise model)."""


_ANCHOR_POINTS = 8
"""Clear sightings that hold a mostly faint track."""


def _late_half(tr: _Track) -> np.ndarray:
    """Which points lie in the second half of the track's time."""
    t = np.asarray(tr.t)
    return np.asarray(t >= 0.5 * (t[0] + t[-1]))


def _anchored(tr: _Track, clear: np.ndarray, choices: float) -> bool:
    """Mostly faint, yet held by clear sightings at both ends, where little else moves.

    At night a dark body is plain against a lit window and faint against the wall: its
    track goes on through faint candidates near its prediction and takes it up clearly
    again further down. A chain of noise that follows its own prediction has no clear
    sighting to come back to.
    """
    if choices > 0.1 or not tr.quiet() or clear.sum() < _ANCHOR_POINTS:
        return False
    late = _late_half(tr)
    return bool(clear[~late].sum() >= 2 and clear[late].sum() >= 2)


def _faint_end(tr: _Track, clear: np.ndarray) -> bool:
    """Its second half (in time) holds faint candidates alone, four or more.

    Faint candidates are taken only near a track's prediction. A bird that flew level, or
    something that sat at a window, may then seem to fall on through faint differences
    (noise, an insect's wing) that the widening gate admits: nothing clear confirms the
    fall. (A body plain at its window and only faint further down is found by the faint
    path search, whose path the difference holds all along the parabola: a track joined
    to such a path is not asked this.)
    """
    late = _late_half(tr)
    return bool(late.sum() >= 4 and not clear[late].any())


_REST_FALL_FILL = 0.65
"""Share of its frames in which a fall after rest points must be seen, unless it is
mostly clear sightings."""

_REST_FALL_FAINT = 0.3
"""Share of faint points from which a fall after rest points seen in fewer of its frames
is a chain of noise."""


def _faint_after_rest(tr: _Track, last_rest: int) -> bool:
    """From its last point at rest on, seen in under ``_REST_FALL_FILL`` of the frames, and
    ``_REST_FALL_FAINT`` or more of those points faint.

    A body seen at rest and then let go is in view all along its fall, as it was at rest;
    its curvature is its fall's. Rest points followed by a sparse, faint chain bend the
    fit as a release does, whatever the chain: the clear-fall test (which lets a body
    hidden by snow be seen in as few as a quarter of its frames) must not rest on them.
    """
    k = np.asarray(tr.k)
    n = len(tr.t) - last_rest
    seen = n / float(k[-1] - k[last_rest] + 1)
    faint = float(np.mean(np.asarray(tr.faint[last_rest:], bool)))
    return seen < _REST_FALL_FILL and faint >= _REST_FALL_FAINT


def _unambiguous(tr: _Track) -> bool:
    """Linked without doubt: 20 points or more, seen in 70 % of the frames it spans, one
    candidate in the gate at 90 % of its steps, at most a quarter of them faint."""
    n = len(tr.t)
    return (
        n >= 20
        and tr.fill() >= 0.7
        and float(np.mean(np.asarray(tr.choices) > 1)) <= 0.1
        and sum(tr.faint) <= 0.25 * n
    )


def _ballistic(
    tr: _Track,
    frame_dt: float,
    min_drop_m: float,
    sigmas: float = 10.0,
    steepest: float = 1.4,
) -> bool:
    """Does the whole track, as linked, trace a clean fall under g?

    Snowflakes and rain drift at a nearly constant speed and insects wander: their height
    over time is a line, or no smooth curve at all. A falling body's height is a parabola
    whose curvature is g (within drag and perspective), measured to ``sigmas`` standard
    errors, and that a straight line fits far worse. Such a track is a fall even where the
    scene is busy or the body was hidden in many frames.

    ``steepest``: the largest curvature allowed, in g. Beyond 1.4 g (a throw towards the
    camera, seen in perspective) the parabola must trace the track closely (reduced χ² ≤
    ``_CLEAN_DEPTH_CHI2``) and its curvature stand at twice as many standard errors: among
    snow a chain of near flakes that speeds up is more often steep than at g.
    """
    n = len(tr.t)
    if n < 12 or tr.m[0][1] - tr.m[-1][1] < min_drop_m:
        return False
    if sum(tr.faint) > 0.6 * n and not tr.path:
        return False
    # a coarse curvature first (mean time and height of each third of the track): most
    # tracks in snow drift at a steady speed and stop here
    t = np.asarray(tr.t)
    ys = np.asarray(tr.m)[:, 1]
    thirds = [slice(0, n // 3), slice(n // 3, n - n // 3), slice(n - n // 3, n)]
    tm = [float(t[p].mean()) for p in thirds]
    ym = [float(ys[p].mean()) for p in thirds]
    slope0 = (ym[1] - ym[0]) / max(tm[1] - tm[0], 1e-3)
    slope1 = (ym[2] - ym[1]) / max(tm[2] - tm[1], 1e-3)
    if not (0.3 * G <= -2.0 * (slope1 - slope0) / max(tm[2] - tm[0], 1e-3) <= 3.0 * G):
        return False
    # (a body's track may hold a link or two to a flake beside it: those are left out)
    # seen in nearly every frame it spans (linked, not gathered as a faint path), the
    # track's own scatter measures its curvature: the centroid noise model, made for blobs
    # merged with flakes, allows a large blob a pixel and more, and a low fall lasts well
    # under a second (a gap is where a chance link may join two particles: not there)
    seen = n / float(tr.k[-1] - tr.k[0] + 1)
    own = seen >= _SEEN_THROUGHOUT and not tr.path
    cy, chi2, se_a, chi2_line = _height_fits(tr, frame_dt, drop=2, floor=0.25 if own else 1.0)
    accel = -2.0 * float(cy[2])
    if not (0.6 * G <= accel <= steepest * G) or chi2 > 1.5 or accel < sigmas * se_a:
        return False
    if accel > 1.4 * G and (chi2 > _CLEAN_DEPTH_CHI2 or accel < 2.0 * sigmas * se_a):
        return False
    v_end = -(float(cy[1]) + 2.0 * float(cy[2]) * (tr.t[-1] - tr.t[0]))
    return chi2_line >= 10.0 * max(chi2, 0.1) and v_end >= 5.0


_WANDER_PX = 2.5
"""A body's sideways path leaves its straight (or gently perspective-curved) course by
well under this many pixels (root mean square); a moth near the lamp or a bird wanders
farther, smoothly."""


def _wanders(ts: np.ndarray, x_px: np.ndarray, frame_dt: float, jitter_ratio: float = 4.0) -> bool:
    """Does the sideways path wander smoothly, as flight does, where a thrown body's is
    straight?

    A thrown body drifts sideways at a steady speed; seen in perspective (thrown towards
    the camera) the drift curves gently, which a cubic in time follows. An insect circling
    the lamp or a bird's flight, caught on a stretch where its height happens to trace a
    parabola, sways sideways: a smooth departure from any cubic of ``_WANDER_PX`` or more,
    while the blob's own jitter from frame to frame (from second differences over
    consecutive frames) is a fraction of that. Where the jitter is as large (compression
    blocks, a body merging with a lit window), the departure is noise, and proves nothing.
    """
    if ts.size < 10:
        return False
    # (a stray link to a flake or a compression blotch is left out: wander is broad)
    res = x_px - np.polyval(np.polyfit(ts, x_px, 3), ts)
    keep = np.abs(res) <= 3.0 * float(np.median(np.abs(res))) + 0.5
    if keep.sum() < 10:
        return False
    ts, x_px = ts[keep], x_px[keep]
    res = x_px - np.polyval(np.polyfit(ts, x_px, 3), ts)
    wander = float(np.sqrt(np.mean(res**2)))
    if wander < _WANDER_PX:
        return False
    k = np.round(ts / frame_dt).astype(int)
    step = (np.diff(k[:-1]) == 1) & (np.diff(k[1:]) == 1)
    if step.sum() < 8:
        return False
    d2 = (res[2:] - 2.0 * res[1:-1] + res[:-2])[step]
    jitter = math.sqrt(float(np.mean(d2**2)) / 6.0)
    return wander > jitter_ratio * max(jitter, 0.3)


def _stalled(tr: _Track, last_moving: int, run: int = 3) -> bool:
    """Did the mover slow down over several frames before it stopped in mid-air?

    A falling body stops only by striking something (a canopy, a ledge): from full speed
    to rest within a frame or two. A moth or a bird that turns slows over several frames
    first. Asked of the frames up to the first few of the level tail: ``run`` or more
    speeds in a row, each lower than the last, between 15 % and 85 % of the fastest, over
    consecutive frames, and the mover had been falling at 5 m/s or more.
    """
    t = np.asarray(tr.t)
    y = np.asarray(tr.m)[:, 1]
    k = np.asarray(tr.k)
    step = np.diff(k) == 1
    v = np.where(step, -np.diff(y) / np.maximum(np.diff(t), 1e-6), np.nan)  # into point i+1
    upto = min(last_moving + 3, v.size)
    v_max = float(np.nanmax(v[:upto])) if np.isfinite(v[:upto]).any() else 0.0
    if v_max < 5.0:
        return False
    longest = count = 0
    prev = math.inf
    for vi in v[max(0, last_moving - 6) : upto]:
        if np.isfinite(vi) and 0.15 * v_max < vi < 0.85 * v_max and vi < prev:
            count += 1
        else:
            count = 0
        longest = max(longest, count)
        prev = vi if np.isfinite(vi) else math.inf
    return longest >= run


_STRAIGHT_RUN_S = 0.3
"""A clean run this long (one candidate per step, no gap, steady size) shows whether it
bends with the rest of the track: every 0.3 s of a fall under g bends by 11 cm."""

_SIZE_STEP = math.log(1.5)
"""A blob larger or smaller than the last by more than half (sqrt of area) ends a run."""


def _straight_run(
    ts: np.ndarray,
    ys: np.ndarray,
    sc: np.ndarray,
    sz: np.ndarray,
    choices: np.ndarray,
    used: np.ndarray,
    accel: float,
    frame_dt: float,
) -> bool:
    """Does a clean run of the track trace a straight line while the whole track bends at
    ``accel``?

    Among snow or rain a track is easily linked through a flake or a drop for a while. A
    flake drifts at a steady speed; a body bends at g in every part of its fall. A
    chain of two or three flakes, each straight, one faster than the last, can fit a
    parabola as a whole. A run whose own curvature lies 8 standard errors (of its own
    scatter, never below 0.3 pixel) below the track's, and within 0.3 g of none, is taken
    as a drifting particle's.
    """
    idx = np.flatnonzero(used)
    if idx.size < 7:
        return False
    size = np.maximum(sz[idx], 1e-3)
    cut = (
        (np.diff(idx) != 1)
        | (np.diff(ts[idx]) > 1.5 * frame_dt)
        | (choices[idx[1:]] > 1)
        | (np.abs(np.diff(np.log(size))) > _SIZE_STEP)
    )
    bounds = np.concatenate([[0], np.flatnonzero(cut) + 1, [idx.size]])
    for a, b in zip(bounds[:-1], bounds[1:], strict=True):
        run = idx[a:b]
        if run.size < 7 or ts[run[-1]] - ts[run[0]] < _STRAIGHT_RUN_S:
            continue
        tr_ = ts[run] - ts[run[0]]
        a_mat = np.column_stack([np.ones(run.size), tr_, tr_**2])
        c, *_ = np.linalg.lstsq(a_mat, ys[run], rcond=None)
        res = ys[run] - a_mat @ c
        s = max(math.sqrt(float(np.sum(res**2)) / (run.size - 3)), 0.3 * float(np.median(sc[run])))
        se = 2.0 * s * math.sqrt(max(float(np.linalg.pinv(a_mat.T @ a_mat)[2, 2]), 0.0))
        a_run = -2.0 * float(c[2])
        if abs(a_run) < 0.3 * G and accel - a_run > 8.0 * se:
            return True
    return False


_THROW_MPS = 6.0
"""Fastest downward throw (m/s) of a body let go from rest where it was seen."""


def _passed_by(t: np.ndarray, ys: np.ndarray, onset: int, y_rest: float, tol: np.ndarray) -> bool:
    """Did the track's first moving points drop from its still lead-in faster than a body
    let go there could (from rest, or thrown down at ``_THROW_MPS``)? Two of the first six
    must lie clearly below that reach."""
    t0 = float(t[onset - 1])
    dt = float(t[onset] - t0)
    stop = min(onset + 6, t.size)
    tau = t[onset:stop] - t0 + dt
    reach = _THROW_MPS * tau + 0.5 * G * tau**2
    below = (y_rest - ys[onset:stop]) > reach + tol[onset:stop]
    return int(np.count_nonzero(below)) >= 2


def _centroid_sigma(
    ts: np.ndarray,
    ys: np.ndarray,
    sc: np.ndarray,
    sz: np.ndarray,
    faint: np.ndarray,
    frame_dt: float,
) -> np.ndarray:
    """Centroid noise (metres) per point: it grows with blob size and with motion in a frame.

    Blur, exposure and rolling-shutter timing move a fast body's centroid; a faint
    candidate's centroid is less certain (fewer pixels, some of them noise).
    """
    c0 = np.polyfit(ts, ys, 2)
    speed = np.abs(c0[1] + 2.0 * c0[0] * ts)
    sig = np.sqrt((sc * (0.8 + 0.25 * sz)) ** 2 + (0.15 * speed * frame_dt) ** 2) + 0.03
    return np.asarray(sig * np.where(faint, 1.5, 1.0))
