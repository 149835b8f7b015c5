"""Moving blobs on the façade: background model, noise floor, rain filter, faint candidates."""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from pipelines.falling_object.geometry import FacadeGeometry
from pipelines.falling_object.options import Options
from pipelines.falling_object.paths import PathSearch


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
        # shrunk further, a 5–20 cm body on a 1080p or 4 MP camera fades to one pixel or less
        self.scale = min(1.0, max(options.work_width / float(frame_w), 1.0 / options.max_shrink))
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
        self.thick = np.ones((6, 6), np.uint8)  # no rain streak is this thick
        self.thick_grow = np.ones((9, 9), np.uint8)
        self.global_changes = 0
        self.t0 = 0.0
        self.warmup_s = 0.5
        self.frame_dt = 0.04
        self.first_dts: list[float] = []  # the first frame intervals (set the rate at once)
        self.frames = 0
        self.noise: float | None = None
        self.first: list[np.ndarray] = []
        self.rain: np.ndarray | None = None  # pixels taken as rain streaks in this frame
        self.act_level = 0.0
        self.streak_frames = 0
        self.paths = PathSearch(geo, self.crop, self.sx, self.sy) if options.path_search else None

    def _remove_streaks(self, mask: np.ndarray, look: np.ndarray | None = None) -> bool:
        """Remove rain: thin streaks that share one direction. True when rain was found.

        ``look``: windows where known tracks are expected; a body there that is thicker
        than any streak is kept, with its rim. Elsewhere a thick part long along the rain
        is kept (a body smeared along its fall while the shutter was open).

        A drop falls a long way during one exposure, so it shows as a line one or two
        pixels wide; heavy rain gives hundreds of them, all at about the same angle (the
        wind's). Their edges then share one orientation across the frame (the structure
        tensor of the mask is coherent), and an opening with a short line along that
        direction keeps exactly the streaks, crossing ones included. A compact thrown
        object does not survive it; one as long as a streak along the rain (turned that
        way, or smeared along its fall by a slow night shutter) does, but it is thicker
        than any streak.
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
        # a body near the camera is several pixels across and parts of it survive the
        # opening too: what is thicker than any streak is no rain. Where a known track is
        # expected, the body is kept with its rim and what touches it. Elsewhere a thick
        # blob in rain is as likely a near insect or flake, which is round: only a thick
        # part long along the rain is kept there (a body smeared along its fall, which no
        # track expects yet), exactly (an opening by hand: OpenCV's own shifts an
        # even-sized square by a pixel), so that no streak that touches it stays
        core = cv2.erode(mask, self.thick)
        keep = None
        if cv2.countNonZero(core):
            back = self.thick.shape[0] // 2 - 1
            thick = cv2.dilate(core, self.thick, anchor=(back, back))
            keep = self._long_along(thick, main)
            if look is not None and look.shape[0]:
                core = cv2.bitwise_and(core, self._windows(look, core.shape))
                keep = cv2.max(keep, cv2.dilate(core, self.thick_grow))
            lines[keep > 0] = 0
        self.rain = cv2.dilate(lines, self.kernel)
        if keep is not None:
            self.rain[keep > 0] = 0
        mask[self.rain > 0] = 0
        return True

    @staticmethod
    def _long_along(thick: np.ndarray, main: float) -> np.ndarray:
        """The parts of ``thick`` that are long along the direction ``main`` (1.5 times
        their width or more, within 30°)."""
        out = np.zeros_like(thick)
        n, labels, stats, _ = cv2.connectedComponentsWithStats(thick, connectivity=8)
        for i in range(1, n):
            x, y, w, h, area = stats[i]
            if area < 36:
                continue
            part = labels[y : y + h, x : x + w] == i
            ys, xs = np.nonzero(part)
            cov = np.cov(np.vstack([xs, ys]).astype(np.float64))
            evals, evecs = np.linalg.eigh(cov)
            if evals[0] <= 0.0 or evals[1] < 2.25 * evals[0]:
                continue
            ang = math.atan2(float(evecs[1, 1]), float(evecs[0, 1]))
            d = abs((ang - main + math.pi / 2.0) % math.pi - math.pi / 2.0)
            if d <= math.radians(30.0):
                out[y : y + h, x : x + w][part] = 1
        return out

    def _box(
        self, x: float, y: float, r: float, shape: tuple[int, ...]
    ) -> tuple[int, int, int, int]:
        """A look window (full-resolution x, y, radius) as work pixels x0, x1, y0, y1."""
        u = (x - self.crop[0] + 0.5) / self.sx - 0.5
        v = (y - self.crop[1] + 0.5) / self.sy - 0.5
        rad = max(3.0, r / self.sx)
        x0, x1 = int(max(0, u - rad)), int(min(shape[1], u + rad + 1))
        y0, y1 = int(max(0, v - rad)), int(min(shape[0], v + rad + 1))
        return x0, x1, y0, y1

    def _windows(self, look: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
        """The look windows as a 0/1 mask at work resolution."""
        out = np.zeros(shape[:2], np.uint8)
        for x, y, r in look:
            x0, x1, y0, y1 = self._box(x, y, r, shape)
            out[y0:y1, x0:x1] = 1
        return out

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
            # shrunk by more than 2× (max_shrink raised), linear sampling reads only some of
            # the pixels: the noise stays as strong as at full size and a small body comes
            # and goes with where the samples fall. Averaging each cell keeps both right
            interp = cv2.INTER_AREA if self.scale < 0.45 else cv2.INTER_LINEAR
            crop = cv2.resize(crop, self.size, interpolation=interp)
        return cv2.GaussianBlur(crop, (3, 3), 0)

    def _note_interval(self, step: float) -> None:
        """The frame interval (repeated frames excluded): the median of the first few, so
        that a 10 fps recording is judged at its own rate from its first fall on; then a
        running estimate."""
        step = min(max(step, 1e-3), 0.5)
        if len(self.first_dts) < 5:
            self.first_dts.append(step)
            self.frame_dt = float(np.median(self.first_dts))
        else:
            self.frame_dt += 0.1 * (step - self.frame_dt)

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
            self._note_interval(t - self.last_t)
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
        if self.rain_filter and cv2.countNonZero(mask) > 60 and self._remove_streaks(mask, look):
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
            if self.paths is not None:
                self.paths.reset()
            return _empty_blobs()
        inv = (mask == 0).astype(np.uint8)
        cv2.accumulateWeighted(grey, bg, a_fast, mask=inv)
        if fg:
            # while learning the scene, forget fast what the first frame held (no ghosts)
            cv2.accumulateWeighted(
                grey, bg, 1.0 - math.exp(-dt / 0.3) if warm else a_slow, mask=mask
            )
        strong = self._strong_blobs(mask, local_act) if fg else _empty_blobs()
        if self.paths is not None and not warm:
            blank = busy | (self.roi == 0)
            if self.rain is not None:
                blank |= self.rain > 0
            # the noise unit never falls below a quarter of the contrast a blob needs: on a
            # clean daytime camera, texture and compression differ by a few grey levels
            unit = max(sigma, 0.7 * self.noise, 0.25 * self.min_contrast)
            self.paths.push(t, self.frames, diff, unit, blank)
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
        if idx.size > _MAX_BLOBS:
            idx = idx[np.argsort(-area[idx])[:_MAX_BLOBS]]
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
        for x, y, r in look:
            x0, x1, y0, y1 = self._box(x, y, r, diff.shape)
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

    def path_blobs(self, uv: np.ndarray) -> Blobs:
        """Points of a faint path (work-resolution pixels) measured as blobs of ~2 pixels."""
        return self._measure(uv, np.full(uv.shape[0], 2), self.act)

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


_MAX_BLOBS = 300
"""Blobs kept per frame (the largest): near snowflakes can be as large as a small body, and
heavy snow gives a couple of hundred of them in a frame."""


def _empty_blobs() -> Blobs:
    z2 = np.zeros((0, 2))
    z1 = np.zeros((0,))
    return Blobs(px=z2, m=z2.copy(), scale=z1, size_px=z1.copy(), busy=z1.copy())
