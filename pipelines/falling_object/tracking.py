"""Tracks of blobs in façade metres, with a gravity-aware predictor."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np

from pipelines.falling_object.geometry import G

CLUTTERED = 20.0
"""Blobs per 100 000 watched pixels above which a frame is cluttered (snow, heavy rain)."""

QUIET = 0.25 * CLUTTERED
"""Blobs per 100 000 watched pixels at most in a quiet view (a night façade, a clear day)."""

CLEAR_PIECE = 8
"""Points (three in four of them clear blobs) of a piece that carries a faint path joined
to it."""

_POINT_FIELDS = ("t", "px", "m", "scale", "size", "k", "busy", "clutter", "choices", "faint")
"""Per-point lists of a track."""


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
    path: bool = False  # started by the faint-path search (its points are faint)
    with_path: bool = False  # holds a faint path's points, joined to a clear piece before it
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

    def _empty_copy(self, path: bool) -> _Track:
        """A track with this one's identity and limits and no points yet."""
        return _Track(
            tid=self.tid,
            first_at=self.first_at,
            first_t=self.first_t,
            max_accel=self.max_accel,
            path=path,
            with_path=self.with_path,
        )

    def joined(self, later: _Track) -> _Track:
        """This track followed by ``later`` (pieces of one object).

        A faint path stays a faint path joined to anything, unless this earlier piece was
        seen clearly: at night a body is often plain where it was let go (near a lit
        window) and only faint further down. Its clear points then carry the whole, and
        it is judged as a track (mostly faint tracks still fail), not as a faint path.
        """
        clear_first = (
            not self.path and len(self.t) >= CLEAR_PIECE and sum(self.faint) <= 0.25 * len(self.t)
        )
        out = self._empty_copy(path=(self.path or later.path) and not clear_first)
        for name in (*_POINT_FIELDS, "patches"):
            setattr(out, name, getattr(self, name) + getattr(later, name))
        out.with_path = self.path or later.path or self.with_path or later.with_path
        return out

    def head(self, count: int) -> _Track:
        """The first ``count`` points of this track."""
        return self.part(0, count)

    def part(self, start: int, stop: int) -> _Track:
        """Points ``start`` to ``stop`` (exclusive) of this track."""
        out = self._empty_copy(path=self.path)
        for name in _POINT_FIELDS:
            setattr(out, name, getattr(self, name)[start:stop])
        t0, t1 = self.t[start], self.t[stop - 1]
        out.patches = [p for p in self.patches if t0 <= p[0] <= t1]
        return out

    def fill(self) -> float:
        """Share of the frames it spans in which it was seen."""
        return len(self.t) / float(self.k[-1] - self.k[0] + 1)

    def cluttered(self) -> bool:
        """Linked among many blobs per frame (snow, heavy rain): chance links come easily."""
        return bool(self.clutter) and float(np.median(self.clutter)) > CLUTTERED

    def quiet(self) -> bool:
        """Linked where little else moves: a gap there is hardly bridged by chance."""
        return bool(self.clutter) and float(np.median(self.clutter)) <= QUIET

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
