"""The falling-object pipeline: frames in, one finding per fall out."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import cv2
import numpy as np

from pipelines.base import CameraContext, Finding, Observation
from pipelines.falling_object.evidence import _MAX_PATCHES, _PATCH_PX, _enhance_path, _path_strip
from pipelines.falling_object.geometry import FacadeGeometry, G
from pipelines.falling_object.motion import Blobs, MotionDetector
from pipelines.falling_object.options import Options
from pipelines.falling_object.physics import FallClassifier, FallFit, _ballistic
from pipelines.falling_object.regather import BlobHistory, fast_parts, follow_again
from pipelines.falling_object.tracking import _refresh_local_fits, _Track
from shaobing.severity import Severity, max_severity

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


@dataclass
class _Emitted:
    t0: float
    t1: float
    fit: FallFit
    points: frozenset[tuple[int, int, int]] = frozenset()  # (frame, x, y) of its blobs
    last_m: tuple[float, float] = (0.0, 0.0)  # where it was seen last (façade metres)
    # its last clear sighting (time, façade metres), where it ends in faint points: a
    # track that ran on over faint blotches ahead of the body ends too low, too soon
    clear_t: float | None = None
    clear_m: tuple[float, float] = (0.0, 0.0)

    def after_last(self, t: np.ndarray, xy: np.ndarray) -> np.ndarray:
        """Which points (at times ``t`` after its last sighting) could be the same body
        further down: it falls at least at its last speed (air drag only slows the gain)
        and at most freely; sideways it drifts, more so on its way towards the camera.

        Where the track ended in faint points, the same is asked from its last clear
        sighting too, of a track that begins within a second of it."""
        inside = self._after(t, xy, self.t1, self.last_m)
        if self.clear_t is not None and t[0] - self.clear_t <= 1.0:
            inside |= self._after(t, xy, self.clear_t, self.clear_m)
        return inside

    def _after(
        self, t: np.ndarray, xy: np.ndarray, t1: float, at: tuple[float, float]
    ) -> np.ndarray:
        d = t - t1
        v = max(0.0, self.speed_at(t1))
        vx = float(self.fit.coeff_x[1])
        x1, y1 = at
        slow = y1 - 0.8 * v * d
        fast = y1 - v * d - 0.5 * G * d**2
        margin = 2.0 + 0.1 * (y1 - fast)
        inside = (
            (d > 0.0)
            & (xy[:, 1] < slow + margin)
            & (xy[:, 1] > fast - margin)
            & (np.abs(xy[:, 0] - (x1 + vx * d)) < 2.0 + 3.0 * d)
        )
        # and it is as fast: a body let go there later starts slowly
        if inside.sum() < 3 or -np.polyfit(t[inside], xy[inside, 1], 1)[0] < 0.8 * v:
            inside[:] = False
        return inside

    def last_speed(self) -> float:
        """Downward speed (m/s) of the fitted path at the last sighting."""
        return self.speed_at(self.t1)

    def speed_at(self, t: float) -> float:
        """Downward speed (m/s) of the fitted path at time ``t``."""
        ts = t - self.fit.t_ref
        return -(float(self.fit.coeff_y[1]) + 2.0 * float(self.fit.coeff_y[2]) * ts)

    def landed_by(self) -> float:
        """The latest time the body can still be in the air (at its last speed, or 1 m/s)."""
        v = max(1.0, self.last_speed())
        return self.t1 + min(6.0, max(0.0, self.last_m[1]) / v)


@dataclass
class FallingObject:
    """Watches a façade for falling objects; one finding per fall."""

    options: Options
    context: CameraContext
    severity: Severity = "urgent"
    name: str = "falling_object"
    needs_every_frame: bool = True
    needs_frames: bool = True
    needs_detections: bool = False
    # snow with insects at night keeps some 330 tracks of flakes and noise open (300 blobs a
    # frame at 960×540): a body's own track, or a faint path's, must still find room (the
    # limit only guards against a runaway noise storm)
    max_tracks: int = 1000
    max_new_per_frame: int = 16
    _geo: FacadeGeometry | None = None
    _motion: MotionDetector | None = None
    _classifier: FallClassifier | None = None
    _tracks: list[_Track] = field(default_factory=list)
    _next_id: int = 1
    _emitted: list[_Emitted] = field(default_factory=list)
    _fragments: list[_Track] = field(default_factory=list)
    _history: BlobHistory = field(default_factory=lambda: BlobHistory(_HISTORY_S))
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
        if self.options.regather:
            self._history.add(self._motion.frames, obs.t, blobs)
        self._associate(blobs, obs)
        if self._motion.paths is not None:
            self._follow_paths(obs, blobs.clutter)
            self._start_paths(obs, blobs.clutter)
        self._keep_patches(frame, obs.t)
        return self._close_tracks(obs.t, obs.camera_id, force=False)

    def _look_windows(self, t: float) -> np.ndarray:
        """Where known tracks (≥ 3 points, recently seen) should be now: (x, y, r) pixels."""
        assert self._geo is not None
        # (faint-path tracks follow the intensity along their path instead)
        known = [tr for tr in self._tracks if len(tr.t) >= 3 and tr.misses <= 3 and not tr.path]
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

    def _follow_paths(self, obs: Observation, clutter: float) -> None:
        """Faint-path tracks not seen this frame go on where the difference stands out."""
        assert self._motion is not None and self._motion.paths is not None
        assert self._geo is not None
        faint = [tr for tr in self._tracks if tr.path and tr.t[-1] != obs.t and len(tr.t) >= 3]
        if not faint:
            return
        _refresh_local_fits(faint)
        pred = np.array([tr.predict(obs.t) for tr in faint])
        found = self._motion.paths.follow(self._geo.image_of_metres(pred[:, :2]))
        ok = ~np.isnan(found[:, 0])
        if not ok.any():
            return
        pts = self._motion.path_blobs(found[ok])
        if pts.px.shape[0] != int(ok.sum()):
            return
        for j, i in enumerate(np.nonzero(ok)[0]):
            faint[int(i)].add(
                obs.t,
                pts.px[j],
                pts.m[j],
                float(pts.scale[j]),
                float(pts.size_px[j]),
                self._motion.frames,
                float(pts.busy[j]),
                clutter,
                faint=True,
            )

    def _start_paths(self, obs: Observation, clutter: float) -> None:
        """New tracks from faint gravity paths that no track follows yet."""
        assert self._motion is not None and self._motion.paths is not None
        # bodies already followed: where tracks are now, or are expected after a miss
        now = [tr.px[-1] for tr in self._tracks if tr.t[-1] == obs.t]
        known = [tr for tr in self._tracks if tr.t[-1] != obs.t and len(tr.t) >= 3]
        if known:
            assert self._geo is not None
            pred = np.array([tr.predict(obs.t)[:2] for tr in known])
            now.extend(self._geo.image_of_metres(pred))
        avoid = np.asarray(now, np.float64).reshape(-1, 2)
        for hit in self._motion.paths.search(avoid):
            pts = self._motion.path_blobs(hit.uv)
            if pts.px.shape[0] != hit.t.size or len(self._tracks) >= self.max_tracks:
                continue
            tr = _Track(
                tid=self._next_id,
                first_at=obs.at + timedelta(seconds=float(hit.t[0]) - obs.t),
                first_t=float(hit.t[0]),
                max_accel=self.options.max_accel_mps2,
                path=True,
            )
            self._next_id += 1
            for i in range(hit.t.size):
                tr.add(
                    float(hit.t[i]),
                    pts.px[i],
                    pts.m[i],
                    float(pts.scale[i]),
                    float(pts.size_px[i]),
                    int(hit.k[i]),
                    float(pts.busy[i]),
                    clutter,
                    faint=True,
                )
            self._tracks.append(tr)

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
            # a thing's size changes little from one frame to the next: a track does not
            # readily take a blob far larger or smaller than its recent ones (among snow a
            # flake's drift may lead straight onto a falling body's next blob)
            cost = cost + _size_cost(self._tracks, blobs.size_px, lengths, weak)
            # a faint-path track never takes a blob from the track of a body seen clearly
            cost[np.array([tr.path for tr in self._tracks])] += _PATH_PENALTY
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
            # a fragment of an object already tracked starts no track of its own: it lies
            # within the object's own extent (half its size and a pixel or two of blur).
            # Wider, a large near flake drifting past a window hid a body let go beside it.
            last = np.array([tr.m[-1] for tr in fresh])
            rad = np.array([(0.5 * tr.size[-1] + 1.5) * tr.scale[-1] for tr in fresh])
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
            elif len(tr.t) >= 4:
                # too short to judge alone; in a quiet view (at night a dark body is lost
                # against the wall between lit windows) it may be the last piece of a fall
                finding = (self._judge if tr.quiet() else self._judge_again)(tr, camera_id)
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
                if not _earlier_piece(frag, tr):
                    continue
                merged = frag.joined(tr)
                # among snow or rain the pieces must together be seen in most frames, as
                # one track must: there a gap is easily bridged by chance
                fit2 = self._classifier.fit(
                    merged, dt, min_fill=0.65 if merged.cluttered() else 0.5
                )
                # the piece must take part in the fit, not just sit before it (a piece
                # that never moved takes part as the rest the body was let go from)
                if fit2 is None or fit2.start > len(frag.t) - (1 if frag.static() else 3):
                    continue
                # joined, the pieces fit about as well as the later one alone; a fall made
                # of pieces that are none alone fits as cleanly as one solid track (a bird
                # before the gap and an insect after it fit roughly)
                if fit is not None and fit2.chi2 > max(2.0 * fit.chi2, _JOINED_CHI2):
                    continue
                if fit is None and fit2.model == "gravity" and fit2.chi2 > _JOINED_CHI2:
                    continue
                if best is None or len(merged.t) > len(best[2].t):
                    best = (frag, fit2, merged)
            if best is None:
                break
            self._fragments.remove(best[0])
            fit, tr = best[1], best[2]
        if fit is None:
            # air drag bends a long fall, or the track ran on into snow or a bird, or past
            # the ground: its first part alone may still be a clear fall under g
            early = self._early_fall(tr, dt)
            if early is not None:
                fit, tr = early
        if fit is None:
            # (faint paths that failed are mostly noise: they would crowd out real pieces)
            if len(tr.t) >= 3 and not tr.path:
                self._fragments.append(tr)
                if len(self._fragments) > 40:
                    self._fragments.pop(0)
            return self._judge_again(tr, camera_id)
        return self._emit(tr, fit, camera_id)

    def _emit(self, tr: _Track, fit: FallFit, camera_id: str) -> Finding | None:
        if self._beside_the_facade(fit):
            return None
        if self._continues_a_mover(tr):
            return None
        if self._falling_from_the_start(tr, fit):
            return None
        if self._duplicate(tr, fit):
            return None
        self._emitted.append(
            _Emitted(
                t0=fit.t_release,
                t1=tr.t[-1],
                fit=fit,
                points=frozenset(_points_of(tr)),
                last_m=(float(tr.m[-1][0]), float(tr.m[-1][1])),
                **_last_clear(tr),
            )
        )
        return self._finding(tr, fit, camera_id)

    def _judge_again(self, tr: _Track, camera_id: str) -> Finding | None:
        """A track that fell fast and is no fall: its body followed again through every blob."""
        if not self.options.regather or tr.path:
            return None
        assert self._classifier is not None and self._motion is not None
        dt = self._motion.frame_dt
        gap = int(round(self.options.gap_s / dt))
        for start in fast_parts(tr):
            again = follow_again(self._history, tr, start, gap, _FAINT_GATE, self._next_id)
            if again is None or len(again.t) < 5 or again.t == tr.t:
                continue
            fit = self._classifier.fit(again, dt, linked=False)
            if fit is None:
                # followed on past the ground, where the body lay still: judged down to it
                landed = self._down_to_ground(again, dt)
                if landed is not None:
                    fit, again = landed
            if fit is None or fit.model == "implausible":
                continue  # (no other track competed for its blobs: physics must explain it)
            if again.cluttered() and fit.accel < 0.6 * G:
                # among snow or rain, a path gathered by the gravity-aware predictor that
                # bends at little more than half of g is a chain of flakes it steered
                continue
            self._next_id += 1
            return self._emit(again, fit, camera_id)
        return None

    def _early_fall(self, tr: _Track, dt: float) -> tuple[FallFit, _Track] | None:
        """The part of a track that clearly falls under g: down to the ground, the first
        1.8 s or 1.2 s of a long one, or up to 1.8 s from a later start."""
        t = np.asarray(tr.t)
        n = len(t)
        end = _ground_index(tr)
        parts = [(0, end)] if end < n else []
        # (down to where it landed: the last metre holds much of a low fall's curvature)
        landed = _landing_index(tr, end)
        if end < landed < n:
            parts.append((0, landed))
        if t[-1] - t[0] >= 2.0:
            parts += [(0, int(np.searchsorted(t, t[0] + s, side="right"))) for s in (1.8, 1.2)]
        found = self._falling_piece(tr, parts, dt)
        if found is not None:
            return found
        # or the track took up the body only later: it drifted with a flake before the body
        # passed by (searched from every second point, to the ground or for 1.8 s; of the
        # pieces that fall under g, the one the parabola fits best: it starts at the body).
        # Among so many pieces one may fall under g by chance: each must be seen well
        # (16 points or more, in 60 % of its frames, less than a third of them faint)
        later = []
        k = np.asarray(tr.k)
        faint = np.asarray(tr.faint, bool)
        for start in range(2, n - 15, 2):
            stop = min(end, int(np.searchsorted(t, t[start] + 1.8, side="right")))
            if stop - start < 16:
                break
            seen = (stop - start) / float(k[stop - 1] - k[start] + 1)
            if seen >= 0.6 and faint[start:stop].mean() < 1.0 / 3.0:
                later.append((start, stop))
        return self._falling_piece(tr, later, dt, best=True)

    def _down_to_ground(self, tr: _Track, dt: float) -> tuple[FallFit, _Track] | None:
        """A track followed again on past the ground, judged down to the ground alone (as if
        it had stopped there: the body lying still bends the fit of the whole).

        (Down to the ground itself: a fall from a low floor needs its last metre to drop as
        far as a fall must.)"""
        assert self._classifier is not None
        end = _ground_index(tr, below=0.0)
        if end == len(tr.t):
            return None
        piece = tr.part(0, end)
        fit = self._classifier.fit(piece, dt, linked=False)
        return None if fit is None else (fit, piece)

    def _falling_piece(
        self, tr: _Track, parts: list[tuple[int, int]], dt: float, best: bool = False
    ) -> tuple[FallFit, _Track] | None:
        """The first (or, with ``best``, the best fitted) of ``parts`` of ``tr`` that clearly
        falls under g, after which the body goes on at least as fast."""
        assert self._classifier is not None
        t = np.asarray(tr.t)
        ys = np.asarray(tr.m)[:, 1]
        out: tuple[FallFit, _Track] | None = None
        for start, stop in parts:
            piece = tr.part(start, stop)
            if not _ballistic(piece, dt, self.options.min_drop_m):
                continue
            fit = self._classifier.fit(piece, dt)
            if fit is None or fit.model != "gravity":
                continue
            # drag slows the gain in speed, never the speed itself: a body goes on at least
            # as fast as it ended its first part (a flake that took over the track does not)
            # (judged over the next half second, above the ground it lands on)
            last = t[stop - 1]
            after = (t > last) & (t <= last + 0.5) & (ys > _GROUND_M)
            if after.sum() >= 3 and -np.polyfit(t[after], ys[after], 1)[0] < 0.85 * fit.v_end:
                continue
            if not best:
                return fit, piece
            if out is None or fit.chi2 < out[0].chi2:
                out = (fit, piece)
        return out

    def _beside_the_facade(self, fit: FallFit) -> bool:
        """Released well beside the façade's columns: no window is there.

        A body is let go from a window (or the roof's edge), all of which lie on the
        façade; a parabola whose release lies more than a tenth of the façade's width to
        its side is a chance chain of flakes or insects, or a bird diving past the edge.
        """
        assert self._geo is not None
        u = fit.release_m[0] / self._geo.width_m
        return bool(u < -_BESIDE or u > 1.0 + _BESIDE)

    def _falling_from_the_start(self, tr: _Track, fit: FallFit) -> bool:
        """Already falling when the view was first learnt (its fit lets it go before then,
        and it was followed from the first frames after, never seen at rest): its release
        was never seen, so no window can be named. (A snowflake near the lens, followed
        from the first frames, whose few tenths of a second at a steady speed end in a hop
        to the next flake, fits a short fall as well as a fall does; later in the stream
        its track would hold the steady seconds before.) So is one among snow or rain, begun
        during the warm-up (the first half second of learning the view), whose first points,
        taken for the body at rest before its release, went down in every frame, a pixel a
        frame or more."""
        assert self._motion is not None
        if fit.start == 0:
            early = tr.t[0] <= self._motion.t0 + 2.5 * self._motion.frame_dt
            return early and fit.t_release < self._motion.t0
        # (begun while the view was still being learnt: later, a flake's track holds the
        # steady seconds before, and a body just let go may step as evenly for a few frames)
        if tr.t[0] > self._motion.t0 + self._motion.warmup_s:
            return False
        # the fit took its first points for a body at rest (less than a quarter of a metre
        # of motion); a body at rest does not drift down frame after frame (among snow or
        # rain; in a clear view it is a body thrown down as the stream began)
        if not tr.cluttered():
            return False
        ys = np.asarray(tr.px)[: fit.start + 1, 1]
        steps = np.diff(ys)
        return steps.size >= 2 and bool(np.all(steps > 0.0)) and float(np.mean(steps)) >= 1.0

    def _continues_a_mover(self, tr: _Track) -> bool:
        """Starts right where something that did not fall (a bird) was just moving, as fast
        (up to 0.3 s later, or in the very frame it was last seen where it flew across).

        A body let go from a window starts slowly; a bird that dives goes on at its speed.
        Only flight counts: not a thing hardly moving (under ``_FLYING_MPS``) when last
        seen, nor one drifting down more than across (under ``_DRIFT_MPS``).
        """
        x0, y0 = tr.m[0]
        for frag in self._fragments:
            gap = tr.t[0] - frag.t[-1]
            if not (0.0 <= gap <= 0.3) or len(frag.t) < 6 or frag.static():
                continue
            v_last = _speed(frag, -4)
            if v_last < _FLYING_MPS or (v_last < _DRIFT_MPS and _went_down(frag)):
                # hardly moving when last seen (the body jittering at its window on
                # compression blotches), or drifting down more than across as a flake
                # does past the window the body is let go from: a dive goes on from a
                # bird's flight. (Faster down, it may be an earlier piece of this very
                # fall, reported on its own: the later piece is then no new event.)
                continue
            if gap == 0.0 and not _flew_across(frag):
                # begun in the very frame the other was last seen: a flapping bird's blob
                # splits; a still body jittering on a compression blotch, or a flake
                # drifting down beside a falling body, does not count
                continue
            fx, fy = frag.m[-1]
            if (
                abs(fx - x0) < 1.5
                and abs(fy - y0) < 1.5
                and _speed(tr, 0) >= 0.5 * _speed(frag, -4)
            ):
                return True
        return False

    def _duplicate(self, tr: _Track, fit: FallFit) -> bool:
        """A piece of a fall already reported (track broken by an occlusion, or the same
        body followed again)."""
        t = np.asarray(tr.t)
        xy = np.asarray(tr.m)
        mine = _points_of(tr)
        assert self._geo is not None
        for e in self._emitted:
            if (
                abs(fit.t_release - e.fit.t_release) <= 0.5
                and abs(fit.release_m[0] - e.fit.release_m[0]) <= 1.5
                and abs(fit.release_m[1] - e.fit.release_m[1]) <= 1.5 * self._geo.floor_height_m
            ):
                return True  # let go from the same window at the same moment: one event
            if t[0] > max(e.t1 + 2.0, e.landed_by()) or t[-1] < e.t0:
                continue
            if len(mine & e.points) >= max(3, 0.3 * min(len(mine), len(e.points))):
                return True  # the same blobs
            ts = t - e.fit.t_ref
            yp = e.fit.coeff_y[0] + e.fit.coeff_y[1] * ts + e.fit.coeff_y[2] * ts**2
            xp = e.fit.coeff_x[0] + e.fit.coeff_x[1] * ts
            near = (np.abs(yp - xy[:, 1]) < 2.0 + 0.1 * np.abs(yp - xy[0, 1])) & (
                np.abs(xp - xy[:, 0]) < 2.0
            )
            # after its last sighting the parabola no longer holds (air drag, perspective)
            near |= e.after_last(t, xy)
            if near.mean() > 0.5:
                return True
            if abs(fit.t_release - e.fit.t_release) <= 0.5 and near.sum() >= 8:
                # let go at the same moment, and seen at the same place at the same time
                # for a third of a second: the same body, its track begun on a still
                # blotch or an insect beside the window (which moved its release aside)
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
            severity=self.severity,
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


_HISTORY_S = 13.0  # blobs kept for following a body again (a track ends within 12 s)
_PATH_PENALTY = 0.3  # association cost added for faint-path tracks (clear tracks win)
_GROUND_M = 1.0
"""Height on the façade (m) below which a fallen body is at the ground."""

_FAINT_GATE = 0.45  # share of a track's gate in which a faint candidate may extend it
_BESIDE = 0.1  # share of the façade's width beside it where a release may still lie


_SIZE_COST = 0.6
"""Gate units a blob costs a track per e-fold its size lies beyond 1.5× (or 1/1.5×) the
track's recent size (the median of its last 5 points)."""


def _size_cost(
    tracks: list[_Track], size_px: np.ndarray, lengths: np.ndarray, weak: np.ndarray
) -> np.ndarray:
    """(tracks, blobs) cost of the blobs' sizes against each track's recent size."""
    recent = np.array([_median(tr.size[-5:]) for tr in tracks])
    log_t = np.log(np.maximum(recent, 0.5))
    log_b = np.log(np.maximum(size_px, 0.5))
    cost: np.ndarray = np.abs(log_b[None, :] - log_t[:, None])
    cost -= math.log(1.5)
    np.maximum(cost, 0.0, out=cost)
    cost *= _SIZE_COST
    cost[lengths < 3] = 0.0  # (a track of one or two points knows its size poorly)
    cost[:, weak] = 0.0  # (a faint candidate's size says little)
    return cost


def _median(values: list[float]) -> float:
    """Median of a few values (quicker than numpy's for five)."""
    v = sorted(values)
    return 0.5 * (v[(len(v) - 1) // 2] + v[len(v) // 2])


def _ground_index(tr: _Track, below: float = _GROUND_M) -> int:
    """Where a track comes ``below`` that height (after 12 points at least), else its length.

    A body stops at the ground; the track may run on, linked to flakes, to the ground's own
    changes or to the body lying still, and bend the fit of the whole."""
    ground = np.nonzero(np.asarray(tr.m)[:, 1] < below)[0]
    return int(ground[0]) if ground.size and ground[0] >= 12 else len(tr.t)


def _landing_index(tr: _Track, ground: int) -> int:
    """Where a track that came below the ground line (at ``ground``) stopped falling: the
    first point after it that lies no lower than the one before (by its own jitter)."""
    ys = np.asarray(tr.m)[:, 1]
    i = ground
    while 0 < i < len(ys) and ys[i] < ys[i - 1] - max(0.05, 2.0 * tr.scale[i]):
        i += 1
    return i


def _last_clear(tr: _Track) -> dict[str, Any]:
    """Where a track that ends in faint points was last seen clearly: the fields
    ``clear_t``, ``clear_m`` of ``_Emitted`` (none where it ends clear, or is all faint)."""
    i = len(tr.t) - 1
    while i > 0 and tr.faint[i]:
        i -= 1
    if i == len(tr.t) - 1 or tr.faint[i]:
        return {}
    return {"clear_t": float(tr.t[i]), "clear_m": (float(tr.m[i][0]), float(tr.m[i][1]))}


def _points_of(tr: _Track) -> set[tuple[int, int, int]]:
    """The blobs of a track: (frame, x, y) in whole pixels."""
    return {(k, round(p[0]), round(p[1])) for k, p in zip(tr.k, tr.px, strict=True)}


_JOINED_CHI2 = 2.0
"""Reduced χ² that a fall joined from pieces may always reach, and that one joined from
pieces that are no fall alone must not pass (under g)."""


def _earlier_piece(frag: _Track, tr: _Track) -> bool:
    """Could ``frag`` be the earlier piece of a fall that ``tr`` goes on with?

    It ended shortly before ``tr`` began, not below it, and was seen in most of its frames.
    Either it was falling when it was lost, or it sat at its release and ``tr`` is seen
    falling from right below it. A bird that rose and levelled off, or something that sat
    still before a mover further down that does not fall, is no fall cut in two.
    """
    gap = tr.t[0] - frag.t[-1]
    # in a quiet view a body hidden for longer is still hardly mistaken for another mover,
    # and a piece that never moved may be a body seen only where it was let go (at night,
    # lit at its window for the first few tenths of a second, when it hardly drops)
    quiet = frag.quiet() and tr.quiet()
    longest = 1.6 if quiet else 1.2
    if not (0.0 < gap <= longest) or frag.m[0][1] < tr.m[0][1] - 1.0:
        return False
    if frag.static() and not quiet:
        return False
    if min(frag.fill(), tr.fill()) < 0.6:
        return False  # each piece must be a solid track of its own
    n, m = min(6, len(frag.t)), min(6, len(tr.t))
    if n < 3 or m < 3:
        return False
    fy = np.asarray(frag.m)[:, 1]
    if float(fy.max() - fy[0]) > 1.5:
        return False  # climbed further than a body thrown up does
    v_lost = -float(np.polyfit(frag.t[-n:], fy[-n:], 1)[0])
    if not _gap_bridged(frag, tr, v_lost):
        return False
    if v_lost > 1.0:
        return True  # falling when it was lost
    end = np.asarray(frag.m[-n:])
    tol = max(0.5, 3.0 * max(frag.scale))
    still = bool(np.all(np.ptp(end, axis=0) <= tol))
    falling = np.polyfit(tr.t[:m], [p[1] for p in tr.m[:m]], 1)[0] < -1.0
    return still and bool(falling) and abs(tr.m[0][0] - frag.m[-1][0]) <= 1.5


def _gap_bridged(frag: _Track, tr: _Track, v_lost: float) -> bool:
    """Could one body falling under g have covered the height between the pieces?

    Falling, a body only gains speed: across the gap it moved faster than when it was lost
    and slower than when it was seen again. Each speed is measured over a few points only,
    so half as much again is allowed, and a metre plus the body's size (a large blob's
    centroid may jump by that much). A body seen sitting at a window and, half a second
    later, something 6 m further down moving at 3 m/s (a bird) is no fall cut in two; nor
    is a chain that fell at 8 m/s and is seen again, after more than half a second, at
    nearly the same height.
    """
    gap = tr.t[0] - frag.t[-1]
    m = min(6, len(tr.t))
    v_next = -float(np.polyfit(tr.t[:m], [p[1] for p in tr.m[:m]], 1)[0])
    size = max(3.0, float(np.median(frag.size)), float(np.median(tr.size)))
    tol = 1.0 + size * max(frag.scale)
    drop = frag.m[-1][1] - tr.m[0][1]
    return 0.6 * max(v_lost, 0.0) * gap - tol <= drop <= 1.5 * max(v_lost, v_next, 0.0) * gap + tol


def _flew_across(tr: _Track) -> bool:
    """Moved a metre or more, nearly straight (its net displacement 80 % of the path its
    points trace) and more across than down: a bird in flight, not a still body's jitter,
    nor a flake or a body drifting down."""
    m = np.asarray(tr.m, dtype=float)
    dx, dy = m[-1] - m[0]
    net = float(np.hypot(dx, dy))
    path = float(np.sum(np.hypot(*np.diff(m, axis=0).T)))
    return net >= 1.0 and net >= 0.8 * path and abs(dx) >= abs(dy)


_FLYING_MPS = 1.0
"""Slowest speed (m/s) over its last four points of a mover whose flight a dive continues."""

_DRIFT_MPS = 3.0
"""Fastest speed (m/s) over its last four points of a flake drifting down (snow falls at
1–2 m/s)."""


def _went_down(tr: _Track) -> bool:
    """Its net way went down by more than it went across (drifting or falling)."""
    dx, dy = np.asarray(tr.m[-1], float) - np.asarray(tr.m[0], float)
    return bool(dy < -abs(dx))


def _speed(tr: _Track, first: int) -> float:
    """Mean speed (m/s) over four points of a track from index ``first``."""
    i0 = first % len(tr.t)
    i1 = min(i0 + 3, len(tr.t) - 1)
    dt = tr.t[i1] - tr.t[i0]
    if dt <= 0.0:
        return 0.0
    return math.hypot(tr.m[i1][0] - tr.m[i0][0], tr.m[i1][1] - tr.m[i0][1]) / dt


def build(options: Options, context: CameraContext) -> FallingObject:
    """Factory used by the registry."""
    sev = max_severity(options.severity, context.severity_of(_TYPE, "urgent"))
    return FallingObject(options=options, context=context, severity=sev)
