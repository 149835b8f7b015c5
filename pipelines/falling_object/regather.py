"""A fall followed again along its parabola through every blob of the last seconds.

Online, each blob goes to one track. Among snow or insects a drifting thing's long track
may take the falling body's blob, or the body's track a flake's next to it; then neither
track is a fall, and the body's points lie split between them. When a track that was
falling fast fails the physics check, the body is followed again from that fast part,
forwards and backwards through all the blobs of the last seconds, with no other track
competing for them.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from datetime import timedelta

import numpy as np

from pipelines.falling_object.geometry import G
from pipelines.falling_object.motion import Blobs
from pipelines.falling_object.tracking import CLUTTERED, _refresh_local_fits, _Track

SEED_POINTS = 4
"""Points of the fast part a search starts from."""

SEED_SPAN = 6
"""Frames those points may span at most."""

MIN_SEED_SPEED = 2.5
"""Downward speed (m/s) of a fast part: a body from the first floor has it after 0.25 s."""

AHEAD_S = 4.5
"""How far past its fast part a body is followed (a fall from 30 storeys takes 4.3 s)."""

BEFORE_S = 2.0
"""How far back before its fast part (a body has 2.5 m/s 0.25 s after its release)."""

MAX_SIZE_STEP = float(np.log(2.0))
"""Largest change of a clear blob's size (sqrt of area) against the body's recent size."""

DRIFT_CHECK = 25
"""Points after which (and every 10 more) a path that does not bend under g is given up."""

CLUTTER_GAP = 4
"""Missing frames a body is followed across among snow or rain (elsewhere ``gap_s``)."""


@dataclass(frozen=True)
class _Frame:
    k: int
    t: float
    blobs: Blobs


class BlobHistory:
    """The blobs of the last ``keep_s`` seconds, by frame number."""

    def __init__(self, keep_s: float) -> None:
        self.keep_s = keep_s
        self._frames: deque[_Frame] = deque()

    def add(self, k: int, t: float, blobs: Blobs) -> None:
        """Keep one frame's blobs; forget frames older than ``keep_s``."""
        self._frames.append(_Frame(k, t, blobs))
        while self._frames and self._frames[0].t < t - self.keep_s:
            self._frames.popleft()

    def between(self, k0: int, k1: int) -> list[_Frame]:
        """Frames numbered ``k0 … k1`` that are still held, in order."""
        if not self._frames:
            return []
        first = self._frames[0].k
        lo = max(0, k0 - first)
        return [f for f in list(self._frames)[lo:] if f.k <= k1 and f.k >= k0]


def fast_parts(tr: _Track) -> list[int]:
    """Starts of the fast downward parts of a track: the first, the fastest and the last."""
    n = len(tr.t)
    if n < SEED_POINTS:
        return []
    out: list[tuple[int, float]] = []
    last = SEED_POINTS - 1
    for i in range(n - last):
        if tr.k[i + last] - tr.k[i] > SEED_SPAN:
            continue
        speed = (tr.m[i][1] - tr.m[i + last][1]) / max(tr.t[i + last] - tr.t[i], 1e-3)
        if speed >= MIN_SEED_SPEED:
            out.append((i, speed))
    if not out:
        return []
    # the first one, the fastest one, and the last one (a body that fell to the ground at
    # the end of a track that drifted before)
    starts = [out[0][0], max(out, key=lambda p: p[1])[0], out[-1][0]]
    picked: list[int] = []
    for s in starts:
        if all(abs(s - p) >= SEED_POINTS for p in picked):
            picked.append(s)
    return picked


def follow_again(
    history: BlobHistory,
    tr: _Track,
    start: int,
    gap_frames: int,
    faint_gate: float,
    tid: int,
) -> _Track | None:
    """The body of ``tr``'s fast part at ``start``, followed again through ``history``.

    None when what is followed from there is no body under gravity (a drifting flake).
    """
    stop = start + SEED_POINTS
    seed = [_point(tr, i) for i in range(start, stop)]
    ahead = _follow(history, seed, +1, gap_frames, faint_gate, tr.max_accel)
    if ahead is None:
        return None
    before = _follow(history, seed, -1, gap_frames, faint_gate, tr.max_accel)
    if before is None:
        return None
    points = before[::-1] + seed + ahead
    out = _Track(tid=tid, first_t=points[0][1], max_accel=tr.max_accel)
    if tr.first_at is not None:
        out.first_at = tr.first_at + timedelta(seconds=points[0][1] - tr.first_t)
    for p in points:
        k, t, px, m, scale, size, busy, clutter, choices, faint = p
        out.add(t, px, m, scale, size, k, busy, clutter, choices, faint)
    out.patches = [p for p in tr.patches if out.t[0] <= p[0] <= out.t[-1]]
    return out


_Point = tuple[int, float, np.ndarray, np.ndarray, float, float, float, float, int, bool]


def _point(tr: _Track, i: int) -> _Point:
    return (
        tr.k[i],
        tr.t[i],
        np.asarray(tr.px[i]),
        np.asarray(tr.m[i]),
        tr.scale[i],
        tr.size[i],
        tr.busy[i],
        tr.clutter[i],
        tr.choices[i],
        tr.faint[i],
    )


def _follow(
    history: BlobHistory,
    seed: list[_Point],
    step: int,
    gap_frames: int,
    faint_gate: float,
    max_accel: float,
) -> list[_Point] | None:
    """Points beyond the seed, one frame at a time in direction ``step`` (time reversed for -1).

    None when the path, followed for a second or more, does not bend under gravity.
    """
    sign = float(step)
    probe = _Track(tid=0, max_accel=max_accel)
    for p in seed if step > 0 else seed[::-1]:
        probe.add(sign * p[1], p[2], p[3], p[4], p[5], p[0], p[6], faint=p[9])
    k_edge = seed[-1][0] if step > 0 else seed[0][0]
    t_end = seed[-1][1] + AHEAD_S if step > 0 else seed[0][1] - BEFORE_S
    if step > 0:
        frames = history.between(k_edge + 1, k_edge + 10_000)
    else:
        frames = history.between(0, k_edge - 1)[::-1]
    out: list[_Point] = []
    for fr in frames:
        # among snow or rain a wide gate across a long gap always holds some flake: there
        # the body is followed across at most CLUTTER_GAP missing frames
        gap = gap_frames if fr.blobs.clutter <= CLUTTERED else min(gap_frames, CLUTTER_GAP)
        if abs(fr.k - probe.k[-1]) > gap + 1 or sign * (fr.t - t_end) > 0.0:
            break
        b = fr.blobs
        if b.m.shape[0] == 0:
            continue
        _refresh_local_fits([probe])
        pred = probe.predict(sign * fr.t)
        if pred[1] < -1.0 and step > 0:
            break  # below the ground
        cost = np.hypot((b.m[:, 0] - pred[0]) / pred[2], (b.m[:, 1] - pred[1]) / pred[3])
        weak = b.weak if b.weak is not None else np.zeros(cost.size, bool)
        in_gate = int(((cost < 1.0) & ~weak).sum())
        cost = np.where(weak, np.where(cost + 0.1 < faint_gate + 0.1, cost + 0.1, np.inf), cost)
        # one body keeps its size from frame to frame; a chain of flakes does not
        seen = [z for z, f in zip(probe.size[-5:], probe.faint[-5:], strict=True) if not f]
        if seen:
            ratio = np.abs(np.log(np.maximum(b.size_px, 0.5) / max(float(np.median(seen)), 0.5)))
            cost = np.where(~weak & (ratio > MAX_SIZE_STEP), np.inf, cost)
        j = int(np.argmin(cost))
        if cost[j] >= 1.0:
            continue
        probe.add(
            sign * fr.t,
            b.px[j],
            b.m[j],
            float(b.scale[j]),
            float(b.size_px[j]),
            fr.k,
            float(b.busy[j]),
            faint=bool(weak[j]),
        )
        if _drifting(probe):
            return None  # a flake or a drop at a steady speed: no body to follow
        out.append(
            (
                fr.k,
                fr.t,
                b.px[j],
                b.m[j],
                float(b.scale[j]),
                float(b.size_px[j]),
                float(b.busy[j]),
                b.clutter,
                max(in_gate, 1),
                bool(weak[j]),
            )
        )
    return out


def _drifting(probe: _Track) -> bool:
    """Followed for a second or more, the path bends at less than 0.4 g (in either time)."""
    n = len(probe.t)
    if n < DRIFT_CHECK or (n - DRIFT_CHECK) % 10:
        return False
    c2 = float(np.polyfit(np.asarray(probe.t), np.asarray(probe.m)[:, 1], 2)[0])
    return -2.0 * c2 < 0.4 * G
