"""The detector of one camera: frames (and an extra model's tracks) in, confirmed regions out."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import cv2
import numpy as np

from pipelines.base import Box, CameraContext, Observation, Track
from pipelines.smoke_fire.evidence import (
    CLASSICAL,
    FLICKER_QUANTILE,
    Grid,
    Kind,
    Region,
    Sample,
    cell_means,
    components,
    edge_strength,
    flame_mask,
    shrink,
    union_box,
)
from pipelines.smoke_fire.options import Options


@dataclass
class Detector:
    """Classical detector and model path of one camera, with the geometry they share."""

    options: Options
    context: CameraContext
    _size: tuple[int, int] = (0, 0)  # source (w, h)
    _work: tuple[int, int] = (0, 0)  # work (w, h)
    _grid: tuple[int, int] = (0, 0)  # cells (gw, gh)
    _zone_cells: np.ndarray | None = None
    _zone_px: np.ndarray | None = None
    _prev_flame: np.ndarray | None = None
    _prev_gray: np.ndarray | None = None
    _bg: np.ndarray | None = None
    _bg_edges: np.ndarray | None = None
    _grids: dict[tuple[str, str], Grid] = field(default_factory=dict)
    global_changes: int = 0
    last_shift: tuple[float, float, float] = (0.0, 0.0, 0.0)
    _hann: np.ndarray | None = None

    def regions(self, obs: Observation) -> list[Region]:
        """Confirmed regions of this observation (both paths, as the options ask)."""
        opts = self.options
        regions: list[Region] = []
        if opts.classical and obs.frame is not None:
            regions.extend(self._classical(obs))
        if opts.model is not None and obs.tracks is not None:
            regions.extend(self._from_model(obs.tracks, obs.t))
        return regions

    def forget_previous(self) -> None:
        """After a gap: the evidence restarts, the background is kept."""
        self._prev_flame = None
        self._prev_gray = None
        for g in self._grids.values():
            g.reset()

    # ------------------------------------------------------------------ geometry

    @staticmethod
    def frame_size(obs: Observation) -> tuple[int, int] | None:
        """Source (width, height) of an observation; None when it tells none."""
        if obs.frame is not None:
            h, w = obs.frame.shape[:2]
            return (int(w), int(h))
        if obs.frame_size[0] > 0 and obs.frame_size[1] > 0:
            return obs.frame_size
        return None

    def ensure_geometry(self, size: tuple[int, int]) -> None:
        """Work size, grid and zone masks for frames of ``size`` (all evidence restarts on a change)."""
        if size == self._size:
            return
        w, h = size
        ww = min(self.options.work_width, w)
        wh = max(8, round(h * ww / w))
        self._size, self._work = size, (ww, wh)
        c = self.options.cell_px
        self._grid = (max(1, math.ceil(ww / c)), max(1, math.ceil(wh / c)))
        zone_px = np.ones((wh, ww), np.uint8)
        if self.options.zone is not None:
            poly = self.context.zones[self.options.zone]
            pts = np.array([[x * ww / w, y * wh / h] for x, y in poly], np.float32)
            zone_px = np.zeros((wh, ww), np.uint8)
            cv2.fillPoly(zone_px, [np.round(pts).astype(np.int32)], 1)
        self._zone_px = zone_px.astype(bool)
        self._zone_cells = cell_means(zone_px, self._grid) > 0.25
        self.restart()

    def restart(self) -> None:
        """Forget the evidence and the background (a long gap, a new frame size)."""
        self._prev_flame = None
        self._prev_gray = None
        self._bg = None
        self._bg_edges = None
        for g in self._grids.values():
            g.reset()

    def _grid_for(self, kind: Kind, detector: str) -> Grid:
        key = (kind, detector)
        if key not in self._grids:
            opts = self.options
            slow = kind == "smoke" and detector == CLASSICAL
            window = opts.smoke_window_s if slow else opts.window_s
            confirm = opts.smoke_confirm_s if slow else opts.confirm_s
            self._grids[key] = Grid(
                kind=kind, detector=detector, window_s=window, confirm_s=confirm
            )
        return self._grids[key]

    def _watched_px(self) -> int:
        assert self._zone_px is not None
        return max(1, int(self._zone_px.sum()))

    def _cell_box(self, cells: np.ndarray) -> Box:
        ys, xs = np.nonzero(cells)
        c = self.options.cell_px
        sx = self._size[0] / self._work[0]
        sy = self._size[1] / self._work[1]
        x1 = float(xs.min() * c * sx)
        y1 = float(ys.min() * c * sy)
        x2 = float(min(self._size[0], (xs.max() + 1) * c * sx))
        y2 = float(min(self._size[1], (ys.max() + 1) * c * sy))
        return (round(x1, 1), round(y1, 1), round(x2, 1), round(y2, 1))

    # ------------------------------------------------------------------ classical detector

    def _classical(self, obs: Observation) -> list[Region]:
        opts = self.options
        assert self._zone_px is not None and self._zone_cells is not None
        frame = np.asarray(obs.frame)
        if frame.ndim == 2:  # grey (IR night mode): no flame colour, smoke still works
            frame = cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)
        elif frame.shape[2] == 4:
            frame = frame[..., :3]
        small = shrink(frame, self._work)
        gray = cv2.cvtColor(small, cv2.COLOR_BGR2GRAY)
        zone = self._zone_px
        regions: list[Region] = []
        flame = (
            flame_mask(small, opts.flame_min_red) & zone
            if opts.detect_fire
            else np.zeros(gray.shape, bool)
        )
        self._align(gray, flame)
        if opts.detect_fire:
            regions.extend(self._flame(flame, gray, obs.t))
        if opts.detect_smoke:
            regions.extend(self._smoke(small, gray, flame, obs.t))
        self._prev_flame = flame
        self._prev_gray = gray
        return regions

    def _align(self, gray: np.ndarray, flame: np.ndarray) -> None:
        """Bring the previous sample onto this one: same exposure, same view.

        Auto exposure and passing clouds change every pixel by the same gain; camera shake and
        pans move every pixel by the same shift. Neither is flicker, so the previous sample is
        scaled by the gain measured outside the flames, and shifted by the phase-correlation
        shift when that shift explains the change better than no shift (a moving shadow or a
        large moving object can pull the estimate; then it does not help and is not applied).
        """
        if self._prev_gray is None or self._prev_flame is None:
            return
        prev = self._prev_gray
        outside = ~(flame | self._prev_flame)
        if outside.any():
            num = float(gray[outside].mean()) + 1.0
            den = float(prev[outside].mean()) + 1.0
            gain = min(2.0, max(0.5, num / den))
            if abs(gain - 1.0) > 0.02:
                prev = cv2.convertScaleAbs(prev, alpha=gain)
        if self._hann is None or self._hann.shape != gray.shape:
            self._hann = cv2.createHanningWindow((gray.shape[1], gray.shape[0]), cv2.CV_32F)
        (dx, dy), response = cv2.phaseCorrelate(
            prev.astype(np.float32), gray.astype(np.float32), self._hann
        )
        self.last_shift = (float(dx), float(dy), float(response))
        shift = max(abs(dx), abs(dy))
        if response >= 0.2 and 0.3 <= shift <= gray.shape[1] / 4:
            m = np.array([[1.0, 0.0, dx], [0.0, 1.0, dy]], dtype=np.float32)
            size = (gray.shape[1], gray.shape[0])
            warped = cv2.warpAffine(
                prev, m, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
            )
            before = float(cv2.absdiff(gray, prev).mean())
            after = float(cv2.absdiff(gray, warped).mean())
            if after < 0.9 * before:
                prev = warped
                self._prev_flame = (
                    cv2.warpAffine(
                        self._prev_flame.astype(np.uint8),
                        m,
                        size,
                        flags=cv2.INTER_NEAREST,
                        borderMode=cv2.BORDER_REPLICATE,
                    )
                    > 0
                )
        self._prev_gray = prev

    def _flame(self, flame: np.ndarray, gray: np.ndarray, t: float) -> list[Region]:
        opts = self.options
        grid = self._grid_for("fire", CLASSICAL)
        weight = cell_means(flame, self._grid)
        core = cell_means(flame & (gray >= self.options.flame_hot_level), self._grid)
        solid = cell_means(
            cv2.erode(flame.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0, self._grid
        )
        if self._prev_flame is None or self._prev_gray is None:
            churn = np.zeros_like(weight)
            union = np.zeros_like(weight)
            dy = np.zeros_like(weight)
        else:
            both = flame | self._prev_flame
            churn = cell_means(flame ^ self._prev_flame, self._grid)
            union = cell_means(both, self._grid)
            # brightness flicker inside the flame: pixels that stay flame-coloured but change
            # brightness (a sunset band or a lit wall only moves at its border)
            stay = flame & self._prev_flame
            step = cv2.absdiff(gray, self._prev_gray)
            dy = cell_means(np.where(stay, step, 0).astype(np.float32), self._grid)
            stay_c = cell_means(stay, self._grid)
        present = (weight >= 0.08) & self._zone_cells_bool()
        grid.add(
            Sample(
                t,
                present,
                weight,
                churn,
                union,
                core,
                dy,
                stay_c if self._prev_flame is not None else np.zeros_like(weight),
                solid,
            )
        )
        persistent = grid.persistent(t, opts.persist_ratio)
        out: list[Region] = []
        for cells in components(persistent):
            area = self._region_area(grid, cells)
            if area < opts.fire_min_area:
                continue
            shape_churn = self._ratio(grid, cells)
            flicker = self._level(grid, cells)
            if shape_churn < opts.churn_min or flicker < opts.flicker_min:
                continue
            # a flame is a light source: part of it is near the sensor's top (a flag is not)
            hot = self._window_mean(grid, "score", cells) / max(
                1e-9, self._window_mean(grid, "weight", cells)
            )
            if hot < opts.flame_hot_min:
                continue
            solidity = self._window_mean(grid, "solid", cells) / max(
                1e-9, self._window_mean(grid, "weight", cells)
            )
            if solidity < opts.flame_solid_min:  # a flame is one body, not glitter or sparks
                continue
            score = float(
                min(1.0, 0.5 + 0.5 * min(1.0, flicker / (2 * max(opts.flicker_min, 1e-3))))
            )
            out.append(
                Region(
                    "fire",
                    cells,
                    self._cell_box(cells),
                    float(area),
                    score,
                    CLASSICAL,
                    churn=flicker,
                )
            )
        return out

    def _smoke(
        self, small: np.ndarray, gray: np.ndarray, flame: np.ndarray, t: float
    ) -> list[Region]:
        opts = self.options
        grid = self._grid_for("smoke", CLASSICAL)
        g32 = gray.astype(np.float32)
        edges = edge_strength(g32)
        if self._bg is None or self._bg_edges is None:
            self._bg, self._bg_edges = g32.copy(), edges.copy()
            return []
        zone = self._zone_px
        assert zone is not None
        b, g, r = cv2.split(small)
        brightest = cv2.max(cv2.max(b, g), r)
        chroma = cv2.subtract(brightest, cv2.min(cv2.min(b, g), r))
        # the background at today's exposure (auto exposure, clouds): a global gain is not smoke
        gain = (float(g32.mean()) + 1.0) / (float(self._bg.mean()) + 1.0)
        bg_now = self._bg * min(2.0, max(0.5, gain))
        diff = g32 - bg_now
        # smoke on a dark scene (night, lit by the fire it rises from) is faint against the
        # black but plain to the eye: the difference it takes and the edges it may bring are
        # judged relative to how dark the background is, not by one constant. Where the
        # background is bright, the constants apply unchanged.
        dark = np.clip(1.0 - bg_now / float(opts.smoke_dark_level), 0.0, 1.0)
        min_diff = opts.smoke_min_diff - (opts.smoke_min_diff - opts.smoke_dark_diff) * dark
        changed = (np.abs(diff) >= min_diff) & zone
        # on a dark scene grey is a low *share* of colour too: the dim orange glow a flame
        # casts there has little chroma in grey levels but is as saturated as the flame
        saturation_limit = opts.smoke_max_saturation * brightest + 4.0 + (1.0 - dark) * 255.0
        grey_enough = (chroma <= opts.smoke_max_chroma) & (chroma <= saturation_limit)
        global_share = float(changed.sum()) / self._watched_px()
        dt = (
            1.0 / opts.analysis_fps
            if self._prev_gray is None
            else max(
                1e-3, t - (grid.samples[-1].t if grid.samples else t - 1.0 / opts.analysis_fps)
            )
        )
        if global_share > opts.global_change_max:
            # fade, covered lens, fog, exposure jump: not smoke. Relearn the background fast.
            self.global_changes += 1
            cv2.accumulateWeighted(g32, self._bg, 0.5)
            cv2.accumulateWeighted(edges, self._bg_edges, 0.5)
            grid.reset()
            return []
        # no new edges: veiled or smooth, not an object. On black, a lit plume has edges in
        # proportion to its brightness; there only edges beyond that count
        soft = edges <= self._bg_edges * 1.15 + 6.0 + dark * opts.smoke_dark_soft * np.abs(diff)
        near_flame = cv2.dilate(flame.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
        smoke = changed & grey_enough & soft & ~near_flame
        smoke = (
            cv2.morphologyEx(smoke.astype(np.uint8), cv2.MORPH_OPEN, np.ones((3, 3), np.uint8)) > 0
        )
        weight = cell_means(smoke, self._grid)
        if self._prev_gray is not None:
            moving = (np.abs(g32 - self._prev_gray.astype(np.float32)) >= 4.0) & smoke
            churn = cell_means(moving, self._grid)
        else:
            churn = np.zeros_like(weight)
        present = (weight >= 0.3) & self._zone_cells_bool()
        grid.add(Sample(t, present, weight, churn, weight, weight))
        # the background follows slowly everywhere, so a parked grey object fades into it
        alpha = 1.0 - math.exp(-dt / opts.background_s)
        if opts.smoke_hold_background < 1.0 and smoke.any():
            # a plume that keeps rising from the same place must not fade into the
            # background: where smoke is seen, the background learns that much slower
            rate = np.where(smoke, alpha * opts.smoke_hold_background, alpha).astype(np.float32)
            self._bg += rate * (g32 - self._bg)
            self._bg_edges += rate * (edges - self._bg_edges)
        else:
            cv2.accumulateWeighted(g32, self._bg, alpha)
            cv2.accumulateWeighted(edges, self._bg_edges, alpha)
        persistent = grid.persistent(t, opts.persist_ratio)
        out: list[Region] = []
        for cells in components(persistent):
            area = self._region_area(grid, cells)
            if area < opts.smoke_min_area:
                continue
            turbulence = self._median(grid, cells, "churn", "union", tail=True)
            if turbulence < opts.smoke_turbulence_min:
                continue
            rise = self._rise(grid, cells)
            if rise < opts.smoke_rise_min:
                continue
            score = float(
                min(
                    1.0,
                    0.4
                    + 0.3 * min(1.0, turbulence / (2 * opts.smoke_turbulence_min))
                    + 0.3 * min(1.0, rise / (2 * max(opts.smoke_rise_min, 1e-3))),
                )
            )
            out.append(
                Region(
                    "smoke",
                    cells,
                    self._cell_box(cells),
                    float(area),
                    score,
                    CLASSICAL,
                    churn=turbulence,
                    rise=rise,
                )
            )
        return out

    def _rise(self, grid: Grid, cells: np.ndarray) -> float:
        """How far the evidence in this region's columns rose or spread over the window, in region heights."""
        ys, xs = np.nonzero(cells)
        x1, x2 = xs.min(), xs.max() + 1
        y1, y2 = ys.min(), ys.max() + 1
        height = max(1, y2 - y1)
        pad = max(1, height // 2)
        lo = max(0, y1 - pad)
        stack = grid.stack("present")
        if stack is None:
            return 0.0
        sub = stack[:, lo:y2, x1:x2]
        rows_any = np.any(sub, axis=2)
        tops = np.where(np.any(rows_any, axis=1), lo + np.argmax(rows_any, axis=1), y2).astype(
            float
        )
        counts = sub.sum(axis=(1, 2)).astype(float)
        if len(tops) < 3:
            return 0.0
        k = max(1, len(tops) // 3)
        top_first = float(np.mean(tops[:k]))
        top_last = float(np.mean(tops[-k:]))
        rise = (top_first - top_last) / height
        first_n = max(1.0, float(np.mean(counts[:k])))
        spread = float(np.mean(counts[-k:])) / first_n - 1.0
        return float(max(rise, spread))

    def _region_area(self, grid: Grid, cells: np.ndarray) -> float:
        """Share of the watched area that the region's evidence covered over the window."""
        mean = self._window_mean(grid, "weight", cells)
        return float(mean * cells.sum() * self.options.cell_px**2 / self._watched_px())

    def _zone_cells_bool(self) -> np.ndarray:
        assert self._zone_cells is not None
        return self._zone_cells

    @staticmethod
    def _window_mean(grid: Grid, attr: str, cells: np.ndarray) -> float:
        present, values = grid.stack("present"), grid.stack(attr)
        if present is None or values is None:
            return 0.0
        seen = present[:, cells].any(axis=1)
        return float(values[:, cells][seen].mean()) if seen.any() else 0.0

    @staticmethod
    def _median(grid: Grid, cells: np.ndarray, num: str, den: str, tail: bool = False) -> float:
        """Median over the window's samples of sum(num)/sum(den) in the region.

        The median makes the test *sustained*: one passing object (a car crossing a lamp)
        changes a few samples, a flame or smoke changes them all.
        """
        a, b = grid.stack(num), grid.stack(den)
        if a is None or b is None or len(a) < 2:
            return 0.0
        nums = a[1:, cells].sum(axis=1)
        dens = b[1:, cells].sum(axis=1)
        vals = np.where(dens > 0, nums / np.maximum(dens, 1e-9), 0.0)
        whole = float(np.quantile(vals, FLICKER_QUANTILE))
        tail_q = float(np.quantile(vals[-max(1, len(vals) // 3) :], FLICKER_QUANTILE))
        return min(whole, tail_q) if tail else whole

    def _ratio(self, grid: Grid, cells: np.ndarray) -> float:
        """Churn: changing evidence pixels over evidence pixels, per sample, median over the window."""
        return self._median(grid, cells, "churn", "union")

    def _level(self, grid: Grid, cells: np.ndarray) -> float:
        """Flicker: mean brightness change of pixels that stayed flame-coloured, median over the window."""
        return self._median(grid, cells, "step", "stay")

    # ------------------------------------------------------------------ model path

    def _from_model(self, tracks: list[Track], t: float) -> list[Region]:
        opts = self.options
        assert opts.model is not None
        out: list[Region] = []
        sx = self._work[0] / self._size[0]
        sy = self._work[1] / self._size[1]
        pairs: tuple[tuple[Kind, list[str], bool], ...] = (
            ("fire", opts.fire_classes, opts.detect_fire),
            ("smoke", opts.smoke_classes, opts.detect_smoke),
        )
        for kind, classes, wanted in pairs:
            if not wanted:
                continue
            mask = np.zeros((self._work[1], self._work[0]), np.float32)
            conf = np.zeros_like(mask)
            boxes: list[tuple[Box, tuple[int, int, int, int]]] = []
            for tr in tracks:
                if (
                    tr.class_name not in classes
                    or tr.confidence < opts.model_confidence
                    or tr.lost_s > 0
                ):
                    continue
                x1, y1, x2, y2 = tr.xyxy
                a, b = int(max(0, x1 * sx)), int(max(0, y1 * sy))
                c, d = (
                    int(min(self._work[0], math.ceil(x2 * sx))),
                    int(min(self._work[1], math.ceil(y2 * sy))),
                )
                if c <= a or d <= b:
                    continue
                mask[b:d, a:c] = 1.0
                conf[b:d, a:c] = np.maximum(conf[b:d, a:c], tr.confidence)
                boxes.append((tr.xyxy, (a, b, c, d)))
            assert self._zone_px is not None
            mask *= self._zone_px
            grid = self._grid_for(kind, opts.model)
            weight = cell_means(mask, self._grid)
            score = cell_means(conf, self._grid)
            present = (weight >= 0.25) & self._zone_cells_bool()
            grid.add(Sample(t, present, weight, weight, weight, score))
            persistent = grid.persistent(t, opts.persist_ratio)
            for cells in components(persistent):
                area = float(cells.sum()) * opts.cell_px**2 / self._watched_px()
                vals = [
                    float(s.score[cells & s.present].max())
                    for s in grid.samples
                    if (cells & s.present).any()
                ]
                # the model's own boxes (not the cells) when it saw the region in this sample
                c = opts.cell_px
                mine = [
                    src
                    for src, (a, b, x2, y2) in boxes
                    if cells[b // c : (y2 - 1) // c + 1, a // c : (x2 - 1) // c + 1].any()
                ]
                out.append(
                    Region(
                        kind,
                        cells,
                        union_box(mine) if mine else self._cell_box(cells),
                        min(1.0, area),
                        float(np.median(vals)) if vals else 0.0,
                        opts.model,
                    )
                )
        return out
