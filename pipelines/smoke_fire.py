"""Smoke and fire on camera: a classical detector that needs no weights, plus a model path.

Config (``cameras[].pipelines``)::

    smoke_fire: {}                       # whole frame, classical detector
    smoke_fire: {zone: yard}             # only inside the camera's zone "yard"
    smoke_fire: {model: fire_smoke}      # also confirm detections of an extra model
    # with, at the node level:
    # detector: {extra_models: [{name: fire_smoke, model: fire_smoke.onnx, classes: [fire, smoke]}]}

Classical detector (on a frame scaled down to ``work_width`` pixels, the previous sample
aligned on it when the whole view moved — camera shake or pan):

* **flame** — pixels with flame colour (R ≥ G > B, R − B ≥ 60, brighter than the frame's mean,
  or a bright, not bluish core near such pixels). A flame region must *flicker* (pixels that
  stay flame-coloured change brightness from sample to sample, ``flicker_min``), change shape
  (``churn_min``), be a light source (part of it near the sensor's top, ``flame_hot_min``)
  and be one solid body (``flame_solid_min``). A sunset, a brick wall, an orange jacket, a
  waving flag, a lamp or glitter on water fails at least one of these.
* **smoke** — grey (low chroma) pixels that differ from a slow background model without
  adding edges (smoke is soft; opaque objects bring sharp silhouettes), keep changing inside
  (turbulence) and rise or spread. Smoke is judged over a longer time (``smoke_confirm_s``).
  A change that covers most of the watched area at once is a global change (fade to black,
  covered lens, fog, exposure jump): camera health reports those; this pipeline ignores them
  and relearns its background.

Evidence is counted on a coarse grid of cells. A cell is *persistent* when it holds evidence
in at least ``persist_ratio`` of the samples of the sliding window (N of M) and the evidence
has lasted at least ``confirm_s``; connected persistent cells form a region. A moving car or
a walking person in red never stays long enough in the same cells. The temporal tests use
the lower quartile of the per-sample values over the window, so they must hold through the
window, not in one lucky sample. A region that passes them is confirmed, and the camera's
situation for that type becomes active.

Model path: with ``model`` set (the name of an entry in ``detector.extra_models``), the node
runs that model for this camera and passes its detections as ``obs.tracks``; tracks whose
class is one of ``fire_classes`` / ``smoke_classes`` (and at least ``model_confidence``)
are painted on their own grid and go through the same persistence confirmation (the model
already judged the appearance, so no flicker test). ``classical: false`` leaves only the model.

Findings: ``fire`` (taxonomy default severity: emergency) and ``smoke`` (urgent), one
situation per type per camera: ``active`` once, ``update`` when the region has grown by
``update_growth`` (at most every ``update_interval_s``), and ``cleared`` when nothing was
confirmed for ``clear_s`` (or at the end of the stream). ``incident_key``:
``{camera}/smoke_fire/{zone or "frame"}/{type}/{start time}``. Attributes: ``region`` (box in
source pixels), ``area_ratio`` (region area over the area when first reported),
``area_fraction`` (of the watched area), ``detector`` (``classical`` or the model name),
``score``, ``media_time_s``, ``zone``. ``boxes`` are the confirmed regions.

Frames: the pipeline wants pixels (``needs_frames``) but not every frame
(``needs_every_frame`` is false): it works on whatever rate the node samples (``detect_fps``,
5 fps by default; tested from 2.5 to 12.5 fps) and analyses at most ``analysis_fps`` frames
per second when fed faster. A gap longer than ``max_gap_s`` restarts the evidence, so the
camera's ``detect_fps`` must be at least ``1 / max_gap_s``.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

import cv2
import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from pipelines.base import Box, CameraContext, Finding, Observation, Track

Kind = Literal["fire", "smoke"]
STATE_VERSION = 1
CLASSICAL = "classical"
FLICKER_QUANTILE = 0.25
"""Temporal tests use this quantile of the per-sample values over the window: a flame or smoke
changes (nearly) every sample; a passing car or a camera that shakes now and then does not."""


class Options(BaseModel):
    """``smoke_fire`` options under ``cameras[].pipelines`` (``smoke_fire: {}`` watches the whole frame)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    zone: str | None = Field(
        default=None,
        description="zone name from cameras[].zones to watch; default: the whole frame",
    )
    detect_fire: bool = Field(default=True, description="raise `fire` events")
    detect_smoke: bool = Field(default=True, description="raise `smoke` events")
    classical: bool = Field(
        default=True, description="run the weight-free colour/flicker/smoke detector"
    )
    model: str | None = Field(
        default=None,
        description="name of a detector.extra_models entry (e.g. fire_smoke) whose fire/smoke detections are confirmed too; "
        "setting it makes the node run detection for this camera",
    )
    fire_classes: list[str] = Field(
        default_factory=lambda: ["fire", "flame"], description="model classes that mean fire"
    )
    smoke_classes: list[str] = Field(
        default_factory=lambda: ["smoke"], description="model classes that mean smoke"
    )
    model_confidence: float = Field(
        default=0.35, ge=0.0, le=1.0, description="ignore weaker model detections"
    )
    work_width: int = Field(
        default=320,
        ge=96,
        le=960,
        description="analysis width in pixels (frames are scaled down to it)",
    )
    cell_px: int = Field(
        default=8, ge=4, le=32, description="evidence grid cell size, in work pixels"
    )
    analysis_fps: float = Field(
        default=5.0, gt=0.0, le=30.0, description="analyse at most this many frames per second"
    )
    confirm_s: float = Field(
        default=2.0, ge=0.5, le=60.0, description="evidence must last this long before an event"
    )
    window_s: float = Field(
        default=3.0, ge=0.5, le=60.0, description="sliding window for the N-of-M persistence test"
    )
    persist_ratio: float = Field(
        default=0.7,
        gt=0.0,
        le=1.0,
        description="share of the window's samples a cell must hold evidence in",
    )
    max_gap_s: float = Field(
        default=1.5,
        gt=0.0,
        le=30.0,
        description="a longer gap between frames restarts the evidence",
    )
    fire_min_area: float = Field(
        default=0.0008,
        gt=0.0,
        le=1.0,
        description="smallest flame region, as a fraction of the watched area",
    )
    flicker_min: float = Field(
        default=10.0,
        ge=0.0,
        le=255.0,
        description="least flicker of a flame region: mean brightness change (grey levels) between samples of pixels that stay flame-coloured",
    )
    churn_min: float = Field(
        default=0.05,
        ge=0.0,
        le=1.0,
        description="least shape churn of a flame region: flame-mask XOR over union between samples",
    )
    flame_min_red: int = Field(
        default=170, ge=0, le=255, description="least red channel value of a flame-coloured pixel"
    )
    flame_hot_level: int = Field(
        default=200, ge=0, le=255, description="luma of a luminous (hot) flame pixel"
    )
    flame_hot_min: float = Field(
        default=0.02,
        ge=0.0,
        le=1.0,
        description="least share of a flame region's pixels that are luminous (a flame is a light source)",
    )
    flame_solid_min: float = Field(
        default=0.3,
        ge=0.0,
        le=1.0,
        description="least share of a flame region's pixels inside a solid body (3×3 erosion); rejects glitter on water",
    )
    smoke_min_area: float = Field(
        default=0.004,
        gt=0.0,
        le=1.0,
        description="smallest smoke region, as a fraction of the watched area",
    )
    smoke_max_chroma: int = Field(
        default=40, ge=0, le=255, description="largest max(RGB)-min(RGB) of a smoke pixel (grey)"
    )
    smoke_max_saturation: float = Field(
        default=0.35,
        gt=0.0,
        le=1.0,
        description="largest chroma share, (max-min)/max of RGB, of a smoke pixel on a dark background "
        "(a flame's dim glow is saturated)",
    )
    smoke_min_diff: int = Field(
        default=14,
        ge=1,
        le=255,
        description="least brightness difference from the background of a smoke pixel",
    )
    smoke_dark_level: float = Field(
        default=40.0,
        gt=0.0,
        le=255.0,
        description="background brightness below which smoke is judged as lit smoke on a dark scene "
        "(thresholds ramp from the dark ones at black to the constants at this level)",
    )
    smoke_dark_diff: int = Field(
        default=5,
        ge=1,
        le=255,
        description="least difference from a black background of a smoke pixel (smoke_min_diff applies on bright ones)",
    )
    smoke_dark_soft: float = Field(
        default=1.5,
        ge=0.0,
        le=10.0,
        description="edges a smoke pixel may bring on a black background, per grey level of its difference",
    )
    smoke_hold_background: float = Field(
        default=0.3,
        ge=0.0,
        le=1.0,
        description="rate at which the background learns pixels that show smoke, relative to the others "
        "(1: a steady plume fades into the background like a parked object)",
    )
    smoke_confirm_s: float = Field(
        default=4.0,
        ge=0.5,
        le=120.0,
        description="classical smoke evidence must last this long (smoke is slower to judge than flame)",
    )
    smoke_window_s: float = Field(
        default=5.0, ge=0.5, le=120.0, description="persistence window of classical smoke evidence"
    )
    smoke_turbulence_min: float = Field(
        default=0.25,
        ge=0.0,
        le=1.0,
        description="least share of a smoke region's pixels changing between samples",
    )
    smoke_rise_min: float = Field(
        default=0.25,
        ge=0.0,
        description="least rise or spread, in region heights over the window, of a smoke region",
    )
    global_change_max: float = Field(
        default=0.45,
        gt=0.0,
        le=1.0,
        description="a change covering more of the watched area is global (not smoke)",
    )
    background_s: float = Field(
        default=20.0, ge=1.0, le=600.0, description="time constant of the background model"
    )
    clear_s: float = Field(
        default=10.0, ge=1.0, le=3600.0, description="nothing confirmed for this long → cleared"
    )
    update_growth: float = Field(
        default=1.5,
        gt=1.0,
        le=100.0,
        description="region area ratio since the last report that sends an update",
    )
    update_interval_s: float = Field(
        default=5.0, ge=0.0, le=3600.0, description="least time between two updates"
    )
    fire_severity: str | None = Field(
        default=None, description="severity of fire events; default: the taxonomy's (emergency)"
    )
    smoke_severity: str | None = Field(
        default=None, description="severity of smoke events; default: the taxonomy's (urgent)"
    )

    @model_validator(mode="after")
    def _check(self) -> Options:
        if not (self.detect_fire or self.detect_smoke):
            raise ValueError("expected detect_fire or detect_smoke (or both), found both false")
        if not self.classical and self.model is None:
            raise ValueError("expected classical: true or a model name, found neither")
        if self.window_s < self.confirm_s:
            raise ValueError(
                f"expected window_s >= confirm_s, found window_s={self.window_s} < confirm_s={self.confirm_s}"
            )
        if self.smoke_window_s < self.smoke_confirm_s:
            raise ValueError(
                f"expected smoke_window_s >= smoke_confirm_s, found {self.smoke_window_s} < {self.smoke_confirm_s}"
            )
        for name in ("fire_severity", "smoke_severity"):
            value = getattr(self, name)
            if value is not None and value not in ("normal", "urgent", "emergency"):
                raise ValueError(f"{name}: expected normal, urgent or emergency, found {value!r}")
        return self


# --------------------------------------------------------------------------- per-frame masks


def flame_mask(bgr: np.ndarray, min_red: int = 170) -> np.ndarray:
    """Flame-coloured pixels of a BGR image (bool H×W).

    Rules (RGB): R ≥ ``min_red``, R ≥ G > B, R − B ≥ 60 and brighter than the frame's mean
    luma; plus bright, not bluish cores (luma ≥ 215, R ≥ B) near such pixels.
    """
    b = bgr[..., 0].astype(np.int32)
    g = bgr[..., 1].astype(np.int32)
    r = bgr[..., 2].astype(np.int32)
    y = (r * 77 + g * 150 + b * 29) >> 8
    mean_y = float(y.mean())
    warm = (r >= min_red) & (r >= g) & (g > b) & (r - b >= 60) & (y > mean_y)
    core = (y >= 215) & (r >= b) & (r + 8 >= g)
    near = cv2.dilate(warm.astype(np.uint8), np.ones((9, 9), np.uint8)) > 0
    return np.asarray(warm | (core & near))


def _edges(gray: np.ndarray) -> np.ndarray:
    gx = cv2.Sobel(gray, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(gray, cv2.CV_32F, 0, 1, ksize=3)
    mag = cv2.magnitude(gx, gy)
    return np.asarray(cv2.blur(mag, (5, 5)))


def _cells(mask: np.ndarray, grid: tuple[int, int]) -> np.ndarray:
    """Mean of a mask (or any float map) per grid cell."""
    return np.asarray(cv2.resize(mask.astype(np.float32), grid, interpolation=cv2.INTER_AREA))


# --------------------------------------------------------------------------- evidence grids


@dataclass
class _Sample:
    t: float
    present: np.ndarray  # bool cells
    weight: np.ndarray  # float cells: share of evidence pixels
    churn: np.ndarray  # float cells: changing pixels (XOR for flame, |ΔY| for smoke)
    union: np.ndarray  # float cells: pixels that count for the churn ratio
    score: np.ndarray  # float cells: model confidence (model grids) or evidence share
    step: np.ndarray | None = (
        None  # float cells: brightness change summed over pixels that stayed flame-coloured
    )
    stay: np.ndarray | None = None  # float cells: pixels that stayed flame-coloured
    solid: np.ndarray | None = None  # float cells: flame pixels inside a solid (eroded) flame body


@dataclass
class _Region:
    kind: Kind
    cells: np.ndarray  # bool cells
    box: Box  # source pixels
    area: float  # fraction of the watched area
    score: float
    detector: str
    churn: float = 0.0
    rise: float = 0.0


@dataclass
class _Grid:
    """Sliding-window persistence test for one (type, detector) pair."""

    kind: Kind
    detector: str
    window_s: float
    confirm_s: float
    samples: deque[_Sample] = field(default_factory=deque)
    run_start: np.ndarray | None = None  # per cell: time since which evidence is persistent
    _stacks: dict[str, np.ndarray | None] = field(default_factory=dict)

    def add(self, sample: _Sample) -> None:
        self.samples.append(sample)
        while self.samples and sample.t - self.samples[0].t > self.window_s + 1e-6:
            self.samples.popleft()
        self._stacks.clear()

    def reset(self) -> None:
        self.samples.clear()
        self.run_start = None
        self._stacks.clear()

    def stack(self, attr: str) -> np.ndarray | None:
        """The window's cell maps of one attribute as an (S, gh, gw) array (None when missing)."""
        if attr not in self._stacks:
            maps = [getattr(s, attr) for s in self.samples]
            ok = bool(maps) and all(m is not None for m in maps)
            self._stacks[attr] = np.stack(maps) if ok else None
        return self._stacks[attr]

    def persistent(self, now: float, ratio: float) -> np.ndarray:
        """Cells that held evidence in ≥ ratio of the window and for ≥ confirm_s."""
        confirm_s = self.confirm_s
        if not self.samples:
            return np.zeros((0, 0), bool)
        stack = self.stack("present")
        assert stack is not None
        held = stack.mean(axis=0) >= ratio
        if self.run_start is None or self.run_start.shape != held.shape:
            self.run_start = np.full(held.shape, np.inf)
        # a cell's run starts at its first evidence in the window and ends when it stops holding
        times = np.array([s.t for s in self.samples])
        first = np.where(stack.any(axis=0), times[np.argmax(stack, axis=0)], np.inf)
        self.run_start = np.where(held, np.minimum(self.run_start, first), np.inf)
        return np.asarray(held & (now - self.run_start >= confirm_s - 1e-6))


# --------------------------------------------------------------------------- situation state


@dataclass
class _Situation:
    kind: Kind
    key: str
    started_at: datetime
    first_area: float
    reported_area: float
    last_confirmed_t: float
    last_update_t: float
    detector: str
    box: Box
    score: float


@dataclass
class SmokeFire:
    """Per-camera smoke/fire pipeline (classical detector and/or an extra model's detections)."""

    options: Options
    context: CameraContext
    fire_severity: str = "emergency"
    smoke_severity: str = "urgent"
    name: str = "smoke_fire"
    needs_every_frame: bool = False
    needs_frames: bool = True
    needs_detections: bool = False
    _last_t: float | None = None
    _size: tuple[int, int] = (0, 0)  # source (w, h)
    _work: tuple[int, int] = (0, 0)  # work (w, h)
    _grid: tuple[int, int] = (0, 0)  # cells (gw, gh)
    _zone_cells: np.ndarray | None = None
    _zone_px: np.ndarray | None = None
    _prev_flame: np.ndarray | None = None
    _prev_gray: np.ndarray | None = None
    _bg: np.ndarray | None = None
    _bg_edges: np.ndarray | None = None
    _grids: dict[tuple[str, str], _Grid] = field(default_factory=dict)
    _situations: dict[str, _Situation] = field(default_factory=dict)
    global_changes: int = 0
    last_shift: tuple[float, float, float] = (0.0, 0.0, 0.0)
    _hann: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.needs_detections = self.options.model is not None
        self.needs_frames = self.options.classical

    # ------------------------------------------------------------------ public API

    def update(self, obs: Observation) -> list[Finding]:
        """Analyse one observation; return active/update/cleared findings."""
        opts = self.options
        if self._last_t is not None:
            dt = obs.t - self._last_t
            if 0 <= dt < 0.98 / opts.analysis_fps:
                return []
            if dt > opts.max_gap_s or dt < 0:
                self._restart()
        size = self._frame_size(obs)
        if size is None:
            return self._close_stale(obs)
        self._ensure_geometry(size)
        self._last_t = obs.t
        regions: list[_Region] = []
        if opts.classical and obs.frame is not None:
            regions.extend(self._classical(obs))
        if opts.model is not None and obs.tracks is not None:
            regions.extend(self._from_model(obs.tracks, obs.t))
        return self._report(regions, obs)

    def resume(self, at: datetime, t: float, gap_s: float) -> None:
        """The camera was blind for ``gap_s`` before media time ``t`` (a lost stream, a restart).

        A fire nobody could see is not out: each open situation's clear window restarts at
        ``t``, so it goes on under the same incident key when it is confirmed again within
        ``clear_s`` and is cleared only if it is really gone. The evidence restarts (the
        samples before the gap say nothing about now) but the background is kept: the scene
        is the same, and smoke already standing in it would not differ from a fresh one.
        """
        for sit in self._situations.values():
            # media time may restart after a restart (a new stream): set, never max()
            sit.last_confirmed_t = t
            sit.last_update_t = t
        self._prev_flame = None
        self._prev_gray = None
        for g in self._grids.values():
            g.reset()
        self._last_t = None

    def state_dict(self) -> dict[str, Any]:
        """Open situations, JSON-serialisable: a fire still burning after a node restart goes
        on under the same incident key (the evidence itself is not kept)."""
        return {
            "version": STATE_VERSION,
            "zone": self.options.zone,
            "situations": [
                {
                    "kind": sit.kind,
                    "key": sit.key,
                    "started_at": sit.started_at.isoformat(),
                    "first_area": sit.first_area,
                    "reported_area": sit.reported_area,
                    "detector": sit.detector,
                    "box": list(sit.box),
                    "score": sit.score,
                }
                for sit in self._situations.values()
            ],
        }

    def load_state(self, state: dict[str, Any]) -> None:
        """Restore what ``state_dict()`` saved; the node then calls ``resume`` (a restart is a
        gap), so each situation's clear window starts at the first frame after the restart."""
        if (
            not state
            or state.get("version") != STATE_VERSION
            or state.get("zone") != self.options.zone
        ):
            return
        for item in state.get("situations", []):
            kind = item["kind"]
            if kind not in ("fire", "smoke"):
                continue
            box = tuple(float(v) for v in item["box"])
            self._situations[kind] = _Situation(
                kind=kind,
                key=str(item["key"]),
                started_at=datetime.fromisoformat(item["started_at"]),
                first_area=float(item["first_area"]),
                reported_area=float(item["reported_area"]),
                last_confirmed_t=0.0,
                last_update_t=0.0,
                detector=str(item["detector"]),
                box=(box[0], box[1], box[2], box[3]),
                score=float(item["score"]),
            )

    def flush(self, at: datetime) -> list[Finding]:
        """End of stream: clear every open situation."""
        out = [self._finding(s, "cleared", at, None) for s in self._situations.values()]
        self._situations.clear()
        return out

    # ------------------------------------------------------------------ geometry

    def _frame_size(self, obs: Observation) -> tuple[int, int] | None:
        if obs.frame is not None:
            h, w = obs.frame.shape[:2]
            return (int(w), int(h))
        if obs.frame_size[0] > 0 and obs.frame_size[1] > 0:
            return obs.frame_size
        return None

    def _ensure_geometry(self, size: tuple[int, int]) -> None:
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
        self._zone_cells = _cells(zone_px, self._grid) > 0.25
        self._restart()

    def _restart(self) -> None:
        self._prev_flame = None
        self._prev_gray = None
        self._bg = None
        self._bg_edges = None
        for g in self._grids.values():
            g.reset()

    def _grid_for(self, kind: Kind, detector: str) -> _Grid:
        key = (kind, detector)
        if key not in self._grids:
            opts = self.options
            slow = kind == "smoke" and detector == CLASSICAL
            window = opts.smoke_window_s if slow else opts.window_s
            confirm = opts.smoke_confirm_s if slow else opts.confirm_s
            self._grids[key] = _Grid(
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

    def _classical(self, obs: Observation) -> list[_Region]:
        opts = self.options
        assert self._zone_px is not None and self._zone_cells is not None
        frame = np.asarray(obs.frame)
        if frame.ndim == 2:  # grey (IR night mode): no flame colour, smoke still works
            frame = cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)
        elif frame.shape[2] == 4:
            frame = frame[..., :3]
        small = _shrink(frame, self._work)
        gray = cv2.cvtColor(small, cv2.COLOR_BGR2GRAY)
        zone = self._zone_px
        regions: list[_Region] = []
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

    def _flame(self, flame: np.ndarray, gray: np.ndarray, t: float) -> list[_Region]:
        opts = self.options
        grid = self._grid_for("fire", CLASSICAL)
        weight = _cells(flame, self._grid)
        core = _cells(flame & (gray >= self.options.flame_hot_level), self._grid)
        solid = _cells(cv2.erode(flame.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0, self._grid)
        if self._prev_flame is None or self._prev_gray is None:
            churn = np.zeros_like(weight)
            union = np.zeros_like(weight)
            dy = np.zeros_like(weight)
        else:
            both = flame | self._prev_flame
            churn = _cells(flame ^ self._prev_flame, self._grid)
            union = _cells(both, self._grid)
            # brightness flicker inside the flame: pixels that stay flame-coloured but change
            # brightness (a sunset band or a lit wall only moves at its border)
            stay = flame & self._prev_flame
            step = cv2.absdiff(gray, self._prev_gray)
            dy = _cells(np.where(stay, step, 0).astype(np.float32), self._grid)
            stay_c = _cells(stay, self._grid)
        present = (weight >= 0.08) & self._zone_cells_bool()
        grid.add(
            _Sample(
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
        out: list[_Region] = []
        for cells in _components(persistent):
            area = (
                self._window_mean(grid, "weight", cells)
                * cells.sum()
                * opts.cell_px**2
                / self._watched_px()
            )
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
                _Region(
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
    ) -> list[_Region]:
        opts = self.options
        grid = self._grid_for("smoke", CLASSICAL)
        g32 = gray.astype(np.float32)
        edges = _edges(g32)
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
        weight = _cells(smoke, self._grid)
        if self._prev_gray is not None:
            moving = (np.abs(g32 - self._prev_gray.astype(np.float32)) >= 4.0) & smoke
            churn = _cells(moving, self._grid)
        else:
            churn = np.zeros_like(weight)
        present = (weight >= 0.3) & self._zone_cells_bool()
        grid.add(_Sample(t, present, weight, churn, weight, weight))
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
        out: list[_Region] = []
        for cells in _components(persistent):
            area = (
                self._window_mean(grid, "weight", cells)
                * cells.sum()
                * opts.cell_px**2
                / self._watched_px()
            )
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
                _Region(
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

    def _rise(self, grid: _Grid, cells: np.ndarray) -> float:
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

    def _zone_cells_bool(self) -> np.ndarray:
        assert self._zone_cells is not None
        return self._zone_cells

    @staticmethod
    def _window_mean(grid: _Grid, attr: str, cells: np.ndarray) -> float:
        present, values = grid.stack("present"), grid.stack(attr)
        if present is None or values is None:
            return 0.0
        seen = present[:, cells].any(axis=1)
        return float(values[:, cells][seen].mean()) if seen.any() else 0.0

    @staticmethod
    def _median(grid: _Grid, cells: np.ndarray, num: str, den: str, tail: bool = False) -> float:
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

    def _ratio(self, grid: _Grid, cells: np.ndarray) -> float:
        """Churn: changing evidence pixels over evidence pixels, per sample, median over the window."""
        return self._median(grid, cells, "churn", "union")

    def _level(self, grid: _Grid, cells: np.ndarray) -> float:
        """Flicker: mean brightness change of pixels that stayed flame-coloured, median over the window."""
        return self._median(grid, cells, "step", "stay")

    # ------------------------------------------------------------------ model path

    def _from_model(self, tracks: list[Track], t: float) -> list[_Region]:
        opts = self.options
        assert opts.model is not None
        out: list[_Region] = []
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
            weight = _cells(mask, self._grid)
            score = _cells(conf, self._grid)
            present = (weight >= 0.25) & self._zone_cells_bool()
            grid.add(_Sample(t, present, weight, weight, weight, score))
            persistent = grid.persistent(t, opts.persist_ratio)
            for cells in _components(persistent):
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
                    _Region(
                        kind,
                        cells,
                        _union_box(mine) if mine else self._cell_box(cells),
                        min(1.0, area),
                        float(np.median(vals)) if vals else 0.0,
                        opts.model,
                    )
                )
        return out

    # ------------------------------------------------------------------ findings

    def _report(self, regions: list[_Region], obs: Observation) -> list[Finding]:
        opts = self.options
        out: list[Finding] = []
        kinds: tuple[Kind, ...] = ("fire", "smoke")
        for kind in kinds:
            mine = [r for r in regions if r.kind == kind]
            sit = self._situations.get(kind)
            if mine:
                best = max(mine, key=lambda r: (r.score, r.area))
                area = float(sum(r.area for r in mine))
                box = _union_box([r.box for r in mine])
                if sit is None:
                    zone = opts.zone or "frame"
                    sit = _Situation(
                        kind=kind,
                        key=f"{obs.camera_id}/smoke_fire/{zone}/{kind}/{obs.at:%Y%m%dT%H%M%S}",
                        started_at=obs.at,
                        first_area=max(area, 1e-6),
                        reported_area=max(area, 1e-6),
                        last_confirmed_t=obs.t,
                        last_update_t=obs.t,
                        detector=best.detector,
                        box=box,
                        score=best.score,
                    )
                    self._situations[kind] = sit
                    out.append(
                        self._finding(sit, "active", obs.at, obs, area, [r.box for r in mine])
                    )
                else:
                    sit.last_confirmed_t = obs.t
                    sit.box, sit.score = box, max(sit.score, best.score)
                    if (
                        area >= sit.reported_area * opts.update_growth
                        and obs.t - sit.last_update_t >= opts.update_interval_s
                    ):
                        sit.reported_area = area
                        sit.last_update_t = obs.t
                        sit.detector = best.detector
                        out.append(
                            self._finding(sit, "update", obs.at, obs, area, [r.box for r in mine])
                        )
            elif sit is not None and obs.t - sit.last_confirmed_t >= opts.clear_s:
                out.append(self._finding(sit, "cleared", obs.at, obs))
                del self._situations[kind]
        return out

    def _close_stale(self, obs: Observation) -> list[Finding]:
        return self._report([], obs)

    def _finding(
        self,
        sit: _Situation,
        state: Literal["active", "update", "cleared"],
        at: datetime,
        obs: Observation | None,
        area: float | None = None,
        boxes: list[Box] | None = None,
    ) -> Finding:
        opts = self.options
        severity = self.fire_severity if sit.kind == "fire" else self.smoke_severity
        where = f"{opts.zone}区域" if opts.zone else "画面内"
        word = {"fire": "明火", "smoke": "烟雾"}[sit.kind]
        verb = {"active": "发现", "update": "扩大", "cleared": "已消失"}[state]
        summary = f"{where}{verb}{word}" if state == "active" else f"{where}{word}{verb}"
        attrs: dict[str, Any] = {
            "region": [round(v, 1) for v in sit.box],
            "detector": sit.detector,
            "score": round(sit.score, 3),
        }
        if area is not None:
            attrs["area_fraction"] = round(area, 5)
            attrs["area_ratio"] = round(area / sit.first_area, 3)
        if obs is not None:
            attrs["media_time_s"] = round(obs.t, 3)
        if opts.zone:
            attrs["zone"] = opts.zone
        return Finding(
            type=sit.kind,
            severity=severity,  # type: ignore[arg-type]
            state=state,
            incident_key=sit.key,
            occurred_at=at,
            confidence=round(float(sit.score), 3),
            summary=summary,
            attributes=attrs,
            zone=opts.zone,
            address=self.context.address,
            grid_id=self.context.grid_id,
            boxes=tuple(boxes) if boxes else ((sit.box,) if state != "cleared" else ()),
            snapshot=state != "cleared",
        )


def _shrink(frame: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Scale a frame down to ``size``; large frames first by decimation to twice the size (cheap)."""
    if frame.shape[1] >= 4 * size[0] and frame.shape[0] >= 4 * size[1]:
        frame = cv2.resize(frame, (2 * size[0], 2 * size[1]), interpolation=cv2.INTER_NEAREST)
    return np.asarray(cv2.resize(frame, size, interpolation=cv2.INTER_AREA))


def _components(cells: np.ndarray) -> list[np.ndarray]:
    """8-connected groups of true cells."""
    if cells.size == 0 or not cells.any():
        return []
    n, labels = cv2.connectedComponents(cells.astype(np.uint8), connectivity=8)
    return [labels == i for i in range(1, n)]


def _union_box(boxes: list[Box]) -> Box:
    return (
        min(b[0] for b in boxes),
        min(b[1] for b in boxes),
        max(b[2] for b in boxes),
        max(b[3] for b in boxes),
    )


def _severity(options_value: str | None, context: CameraContext, code: str, fallback: str) -> str:
    if options_value is not None:
        return options_value
    return context.default_severity.get(code, fallback)


def build(options: Options, context: CameraContext) -> SmokeFire:
    """Factory used by the registry."""
    if options.zone is not None and options.zone not in context.zones:
        raise KeyError(
            f"smoke_fire: expected a zone of camera {context.camera_id!r} ({', '.join(sorted(context.zones)) or 'none defined'}), found {options.zone!r}"
        )
    return SmokeFire(
        options=options,
        context=context,
        fire_severity=_severity(options.fire_severity, context, "fire", "emergency"),
        smoke_severity=_severity(options.smoke_severity, context, "smoke", "urgent"),
    )
