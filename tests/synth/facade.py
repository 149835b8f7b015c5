"""Synthetic façade clips: a building seen from the street, objects falling from windows.

A pinhole camera at street level (or a little above) looks up at a planar façade of
``floors`` × ``columns`` window cells. Objects are released from known windows and move
under gravity in 3-D (some thrown with a small horizontal or outward velocity, some with
a little air drag), so their image paths carry real perspective. Distractors are rendered
in the same scene: birds, drifting leaves and paper, rain, lighting changes, people and
cars at street level, sensor noise and swaying foliage.

Hard conditions (issue 23) are switched on per clip: ``night`` (dark façade, a few lit
windows, strong sensor noise, an infrared look: greyscale with blooming around lights),
``small`` (5–20 cm objects such as a cigarette pack, a bottle cap or a phone, with low
contrast against the wall; sub-pixel objects fade with their area), ``outward`` (objects
thrown outward from a balcony, falling in front of the façade, nearer the camera),
``jpeg_quality`` (compression artefacts of a low-bitrate NVR) and the distractors
:data:`HARD_DISTRACTORS` (heavy rain, snow, insects around the infrared lamp). Their random
draws come from a second generator, so a clip without them renders exactly as before.

Everything is seeded and drawn with numpy and cv2; a 960×540 frame costs a few
milliseconds. ``make_clip(ClipSpec(...))`` returns a :class:`FacadeClip` with the
calibration (façade corners in pixels), the ground truth of each fall and a frame
iterator.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

G = 9.81
DISTRACTORS: tuple[str, ...] = ("birds", "leaves", "rain", "lighting", "people", "noise", "foliage")
HARD_DISTRACTORS: tuple[str, ...] = ("heavy_rain", "snow", "insects")
"""Distractors of the hard conditions (issue 23); ``birds`` above covers birds crossing."""


@dataclass(frozen=True)
class FallTruth:
    """Ground truth of one falling object.

    Attributes:
        floor: release floor (1 = ground floor).
        column: release window column (1 = leftmost in the image).
        release_t: media time of the release (s).
        end_t: media time when the object lands or leaves the frame (s).
        thrown: whether it was thrown (non-zero initial velocity) rather than dropped.
    """

    floor: int
    column: int
    release_t: float
    end_t: float
    thrown: bool


@dataclass(frozen=True)
class ClipSpec:
    """What to render.

    Attributes:
        seed: random seed; everything else random is drawn from it.
        width, height, fps, duration_s: video format.
        falls: number of falling objects (released at spread-out times).
        distractors: names from :data:`DISTRACTORS`.
        floors, columns: façade grid (random when None).
        object_scale: multiplies the object size (small objects < 1).
        min_release_floor: lowest release floor.
        corner_jitter_px: noise added to the reported corners (a hand-drawn calibration).
        night: infrared night view (dark façade, a few lit windows with blooming, greyscale,
            strong sensor noise).
        small: 5–20 cm objects with low contrast against the wall behind them.
        outward: objects thrown outward (towards the street) from a balcony edge, so they
            fall in front of the façade, nearer the camera.
        jpeg_quality: when set, every frame goes through JPEG at this quality (an NVR's
            low-bitrate compression: blocks, ringing, lost faint detail).
        fresh_noise: every frame draws its own sensor noise, as a real sensor does, instead
            of taking one of four stored patterns (the default, kept so that the scenes of
            every seed stay as they were). The scene itself is the same either way.
        exposure_s: shutter time. A mover is smeared along the way it travelled while the
            shutter was open (at night a camera exposes for 1/50–1/25 s: a body falling at
            15 m/s moves 30–60 cm meanwhile). 0 draws each mover sharp at the frame's time.
    """

    seed: int
    width: int = 960
    height: int = 540
    fps: float = 25.0
    duration_s: float = 6.0
    falls: int = 1
    distractors: tuple[str, ...] = ()
    floors: int | None = None
    columns: int | None = None
    object_scale: float = 1.0
    min_release_floor: int = 2
    corner_jitter_px: float = 0.0
    night: bool = False
    small: bool = False
    outward: bool = False
    jpeg_quality: int | None = None
    fresh_noise: bool = False
    exposure_s: float = 0.0


class _Camera:
    """Pinhole camera: world X right along the façade, Y up, Z out of the façade."""

    def __init__(self, pos: np.ndarray, yaw: float, pitch: float, roll: float) -> None:
        fwd = np.array(
            [math.sin(yaw) * math.cos(pitch), math.sin(pitch), -math.cos(yaw) * math.cos(pitch)]
        )
        right = np.array([-fwd[2], 0.0, fwd[0]])
        right /= np.linalg.norm(right)
        down = np.cross(fwd, right)
        c, s = math.cos(roll), math.sin(roll)
        self.right = c * right + s * down
        self.down = -s * right + c * down
        self.fwd = fwd
        self.pos = pos
        self.f = 1.0
        self.cx = 0.0
        self.cy = 0.0

    def project(self, pts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """World points (N,3) → image points (N,2) and depth (N,)."""
        p = np.atleast_2d(pts) - self.pos
        z = p @ self.fwd
        zs = np.where(z > 1e-3, z, 1e-3)
        u = self.f * (p @ self.right) / zs + self.cx
        v = self.f * (p @ self.down) / zs + self.cy
        return np.stack([u, v], axis=1), z


@dataclass
class _Mover:
    """A thing drawn every frame from a position function."""

    kind: str
    start_t: float
    pos: Any  # callable t -> (3,) world position, or None after it ends
    size_m: float
    color: tuple[int, int, int]
    aspect: float = 1.0
    spin: float = 0.0
    phase: float = 0.0
    flap: float = 0.0
    end_t: float = 1e9
    fade: bool = False  # smaller than a pixel or two: fade with the true area (hard scenes)


@dataclass
class FacadeClip:
    """A rendered scene: calibration, truth and frames."""

    spec: ClipSpec
    corners: list[list[float]]
    floors: int
    columns: int
    floor_height_m: float
    truths: list[FallTruth]
    n_frames: int
    _base: np.ndarray = field(repr=False)
    _cam: _Camera = field(repr=False)
    _movers: list[_Mover] = field(repr=False)
    _extras: dict[str, Any] = field(repr=False)

    def options(self, building: str | None = "1栋") -> dict[str, Any]:
        """Pipeline options (``falling_object`` config) for this clip."""
        out: dict[str, Any] = {
            "facade": {
                "corners": self.corners,
                "floors": self.floors,
                "columns": self.columns,
                "floor_height_m": self.floor_height_m,
            }
        }
        if building:
            out["building"] = building
        return out

    def frames(self) -> Iterator[np.ndarray]:
        """BGR frames, one per 1/fps seconds."""
        return _render(self)

    def plain(self, sigmas: float = 2.5) -> list[bool]:
        """Per fall: does the camera show the body plainly, differing from the still scene
        by ``sigmas`` times the sensor noise (before rain, snow, insects and compression)
        in at least half of its frames, 8 or more? A dark body at night or a small one
        against a wall of its own shade may pass unseen through much of its fall."""
        sigma = max(2.0, float(self._extras.get("noise_sigma", 2.0)))
        fps = self.spec.fps
        out = []
        for truth in self.truths:
            body = next(
                m
                for m in self._movers
                if m.kind == "object" and abs(m.start_t - truth.release_t) < 1e-6
            )
            ks = range(int(math.ceil(truth.release_t * fps)), int(truth.end_t * fps) + 1)
            seen = 0
            for k in ks:
                frame = self._base.copy()
                _draw_exposed(frame, self._cam, body, k / fps, self.spec.exposure_s)
                seen += int(cv2.absdiff(frame, self._base).max() >= sigmas * sigma)
            out.append(seen >= max(8, 0.5 * len(ks)))
        return out


def make_clip(spec: ClipSpec) -> FacadeClip:
    """Build the scene for ``spec`` (camera, façade texture, movers, truth)."""
    rng = np.random.default_rng(spec.seed)
    w, h = spec.width, spec.height
    floors = spec.floors or int(rng.integers(6, 26))
    columns = spec.columns or int(rng.integers(3, 9))
    fh = float(rng.uniform(2.8, 3.4))
    pitch_m = float(rng.uniform(3.0, 4.5))
    fw = columns * pitch_m
    hb = floors * fh
    hard_scene = (
        spec.night
        or spec.small
        or spec.outward
        or spec.jpeg_quality is not None
        or any(d in HARD_DISTRACTORS for d in spec.distractors)
    )
    # hard scenes use an uncropped camera (principal point at the image centre), as a real
    # one; the older scenes keep their shifted framing so their seeds render as before
    cam = _fit_camera(rng, fw, hb, w, h, floors, centred=hard_scene)
    corners_w = np.array([[0, hb, 0], [fw, hb, 0], [fw, 0, 0], [0, 0, 0]], float)
    corners_px, _ = cam.project(corners_w)
    base = _draw_background(rng, w, h, corners_px)
    tex, ppm = _facade_texture(rng, fw, hb, floors, columns, fh, pitch_m)
    th, tw = tex.shape[:2]
    src = np.float32([[0, 0], [tw, 0], [tw, th], [0, th]])
    hmat = cv2.getPerspectiveTransform(src, corners_px.astype(np.float32))
    warped = cv2.warpPerspective(tex, hmat, (w, h), flags=cv2.INTER_AREA)
    mask = cv2.warpPerspective(np.full((th, tw), 255, np.uint8), hmat, (w, h))
    base[mask > 127] = warped[mask > 127]
    extras: dict[str, Any] = {"hmat": hmat, "ppm": ppm, "tex_shape": (th, tw)}
    # the hard conditions draw from their own generator: clips without them stay as they were
    hard = np.random.default_rng([spec.seed, 23])
    if spec.night:
        base = _night_base(hard, base, hmat, ppm, floors, columns, fh, pitch_m, hb, w)

    duration = spec.duration_s
    movers: list[_Mover] = []
    truths: list[FallTruth] = []
    slots = _release_times(rng, spec.falls, duration)
    for t0 in slots:
        mover, truth = _make_fall(
            rng, cam, spec, t0, floors, columns, fh, pitch_m, w, h, hard, base
        )
        movers.append(mover)
        truths.append(truth)
    for name in spec.distractors:
        if name in HARD_DISTRACTORS:
            _make_hard_distractor(hard, name, extras, w, h, spec.night)
            continue
        if name not in DISTRACTORS:
            raise ValueError(
                f"distractor: expected one of {DISTRACTORS + HARD_DISTRACTORS}, found {name!r}"
            )
        movers.extend(
            _make_distractor(
                rng, name, cam, fw, hb, duration, extras, w, h, columns, floors, fh, pitch_m
            )
        )
    jitter = (
        rng.normal(0.0, spec.corner_jitter_px, size=(4, 2))
        if spec.corner_jitter_px > 0
        else np.zeros((4, 2))
    )
    corners = [[round(float(x), 1), round(float(y), 1)] for x, y in corners_px + jitter]
    extras["noise_sigma"] = (
        float(rng.uniform(1.5, 4.0))
        if "noise" not in spec.distractors
        else float(rng.uniform(7.0, 11.0))
    )
    extras["seed"] = int(rng.integers(0, 2**31 - 1))
    if spec.night:
        # a small sensor pushed to high gain: strong luminance noise
        extras["noise_sigma"] = float(hard.uniform(6.0, 11.0))
        extras["night"] = True
    if spec.jpeg_quality is not None:
        extras["jpeg_quality"] = int(spec.jpeg_quality)
    return FacadeClip(
        spec=spec,
        corners=corners,
        floors=floors,
        columns=columns,
        floor_height_m=round(fh, 3),
        truths=truths,
        n_frames=int(round(duration * spec.fps)),
        _base=base,
        _cam=cam,
        _movers=movers,
        _extras=extras,
    )


# --------------------------------------------------------------------------- scene


def _fit_camera(
    rng: np.random.Generator,
    fw: float,
    hb: float,
    w: int,
    h: int,
    floors: int,
    centred: bool = False,
) -> _Camera:
    for _ in range(200):
        dist = float(rng.uniform(0.45, 1.3)) * hb
        cam_y = float(rng.uniform(1.5, 8.0))
        cam_x = fw / 2 + float(rng.uniform(-0.5, 0.5)) * fw
        aim_y = float(rng.uniform(0.35, 0.6)) * hb
        pitch = math.atan2(aim_y - cam_y, dist) * float(rng.uniform(0.8, 1.1))
        yaw = math.atan2(fw / 2 - cam_x, dist) * float(rng.uniform(0.6, 1.0))
        roll = float(rng.normal(0.0, 0.02))
        cam = _Camera(np.array([cam_x, cam_y, dist]), yaw, pitch, roll)
        corners = np.array([[0, hb, 0], [fw, hb, 0], [fw, 0, 0], [0, 0, 0]], float)
        pts, z = cam.project(corners)
        if np.any(z < 1.0):
            continue
        x0, y0 = pts.min(axis=0)
        x1, y1 = pts.max(axis=0)
        frac = float(rng.uniform(0.7, 0.94))
        if centred:
            s = min(
                0.46 * w / max(abs(x0), abs(x1)),
                0.47 * h / max(-y0, 1e-6),
                0.485 * h / max(y1, 1e-6),
            )
            if s * (y1 - y0) < 0.55 * h or s < 0.5 * w:
                continue  # aimed off the building, or a fish-eye: not a façade camera
            cam.f = s
            cam.cx = w / 2.0
            cam.cy = h / 2.0
        else:
            s = min(frac * h / (y1 - y0), 0.9 * w / (x1 - x0))
            cam.f = s
            bottom = float(rng.uniform(0.92, 0.985)) * h
            cam.cy = bottom - s * y1
            span = s * (x1 - x0)
            left = float(rng.uniform(0.04 * w, max(0.04 * w, 0.96 * w - span)))
            cam.cx = left - s * x0
        pts, _ = cam.project(corners)
        # the top floor must stay resolvable (≥ 5 px tall)
        top_floor = np.array([[fw / 2, hb, 0], [fw / 2, hb - hb / floors, 0]])
        tf, _ = cam.project(top_floor)
        if abs(tf[1, 1] - tf[0, 1]) < 5.0:
            continue
        return cam
    raise RuntimeError("could not place a camera for this façade")


def _draw_background(rng: np.random.Generator, w: int, h: int, corners: np.ndarray) -> np.ndarray:
    top = rng.uniform(150, 245, 3)
    bottom = np.clip(top + rng.uniform(-30, 15, 3), 0, 255)
    ramp = np.linspace(0.0, 1.0, h)[:, None, None]
    img = (top[None, None, :] * (1 - ramp) + bottom[None, None, :] * ramp).astype(np.uint8)
    img = np.ascontiguousarray(np.broadcast_to(img, (h, w, 3)))
    bl, br = corners[3], corners[2]
    dx = br[0] - bl[0]
    slope = (br[1] - bl[1]) / dx if abs(dx) > 1e-6 else 0.0
    yl = bl[1] + slope * (0 - bl[0])
    yr = bl[1] + slope * (w - bl[0])
    ground = np.array([[0, yl], [w, yr], [w, h + 5], [0, h + 5]], np.int32)
    street = tuple(int(v) for v in rng.uniform(60, 140, 3))
    cv2.fillPoly(img, [ground], street)
    return img


def _night_base(
    rng: np.random.Generator,
    base: np.ndarray,
    hmat: np.ndarray,
    ppm: float,
    floors: int,
    columns: int,
    fh: float,
    pitch_m: float,
    hb: float,
    w: int,
) -> np.ndarray:
    """The scene after dark, through an infrared camera: grey, dim, a few lit windows that bloom."""
    grey = cv2.cvtColor(base, cv2.COLOR_BGR2GRAY).astype(np.float32)
    dark = grey * float(rng.uniform(0.12, 0.3)) + float(rng.uniform(4.0, 14.0))
    n_lit = max(1, int(round(floors * columns * float(rng.uniform(0.03, 0.1)))))
    for _ in range(n_lit):
        c = int(rng.integers(0, columns))
        k = int(rng.integers(0, floors))
        x0, x1 = (c + 0.2) * pitch_m * ppm, (c + 0.8) * pitch_m * ppm
        y1 = (hb - k * fh - 0.9) * ppm
        y0 = y1 - 0.55 * fh * ppm
        quad = cv2.perspectiveTransform(
            np.float32([[[x0, y0], [x1, y0], [x1, y1], [x0, y1]]]), hmat
        )[0]
        cv2.fillConvexPoly(dark, quad.astype(np.int32), float(rng.uniform(150.0, 255.0)))
    # blooming: bright areas spill into their surroundings (lens glare, IR cut filter off)
    bright = np.where(dark > 120.0, dark, 0.0).astype(np.float32)
    sigma = max(2.0, 0.01 * w)
    dark += float(rng.uniform(0.6, 1.0)) * cv2.GaussianBlur(bright, (0, 0), sigma)
    out = np.clip(dark, 0, 255).astype(np.uint8)
    return cv2.cvtColor(out, cv2.COLOR_GRAY2BGR)


def _facade_texture(
    rng: np.random.Generator,
    fw: float,
    hb: float,
    floors: int,
    columns: int,
    fh: float,
    pitch_m: float,
) -> tuple[np.ndarray, float]:
    ppm = float(min(14.0, 1400.0 / hb))
    tw, th = int(round(fw * ppm)), int(round(hb * ppm))
    wall = rng.uniform(70, 225, 3)
    small = rng.normal(0, 10, (max(2, th // 24), max(2, tw // 24), 1)).astype(np.float32)
    tex = (
        wall[None, None, :] + cv2.resize(small, (tw, th), interpolation=cv2.INTER_CUBIC)[:, :, None]
    )
    tex = np.clip(tex, 0, 255).astype(np.uint8)
    slab = tuple(int(v) for v in np.clip(wall + rng.uniform(-50, 30, 3), 0, 255))
    win_w = float(rng.uniform(0.45, 0.75)) * pitch_m
    win_h = float(rng.uniform(0.45, 0.65)) * fh
    for k in range(floors):
        y_floor = hb - k * fh  # bottom of floor k+1 in metres from the top
        cv2.rectangle(tex, (0, int((y_floor - 0.25) * ppm)), (tw, int(y_floor * ppm)), slab, -1)
        for c in range(columns):
            x0 = (c + 0.5) * pitch_m - win_w / 2
            y0 = y_floor - 0.9 - win_h
            glass = rng.uniform(20, 90, 3)
            if rng.random() < 0.12:
                glass = rng.uniform(150, 240, 3)  # lit or curtained
            p0 = (int(x0 * ppm), int(y0 * ppm))
            p1 = (int((x0 + win_w) * ppm), int((y0 + win_h) * ppm))
            cv2.rectangle(tex, p0, p1, tuple(int(v) for v in glass), -1)
            cv2.rectangle(tex, p0, p1, slab, 1)
            if rng.random() < 0.5:
                xm = (p0[0] + p1[0]) // 2
                cv2.line(tex, (xm, p0[1]), (xm, p1[1]), slab, 1)
    return tex, ppm


def _release_times(rng: np.random.Generator, n: int, duration: float) -> list[float]:
    if n <= 0:
        return []
    span = duration / n
    return [i * span + float(rng.uniform(0.3, max(0.31, min(1.0, span * 0.25)))) for i in range(n)]


_OBJECT_COLOURS = [
    (245, 245, 245),
    (30, 30, 200),
    (200, 60, 30),
    (40, 160, 40),
    (20, 20, 20),
    (40, 90, 140),
    (30, 200, 230),
    (150, 150, 150),
]


def _make_fall(
    rng: np.random.Generator,
    cam: _Camera,
    spec: ClipSpec,
    t0: float,
    floors: int,
    columns: int,
    fh: float,
    pitch_m: float,
    w: int,
    h: int,
    hard: np.random.Generator,
    base: np.ndarray,
) -> tuple[_Mover, FallTruth]:
    floor = int(rng.integers(max(2, spec.min_release_floor), floors + 1))
    column = int(rng.integers(1, columns + 1))
    p0 = np.array(
        [
            (column - 1 + rng.uniform(0.3, 0.7)) * pitch_m,
            (floor - 1) * fh + rng.uniform(0.9, 1.6),
            rng.uniform(0.15, 0.6),
        ]
    )
    thrown = bool(rng.random() < 0.5)
    v0 = np.zeros(3)
    if thrown:
        v0 = np.array(
            [
                rng.choice([-1, 1]) * rng.uniform(0.3, 2.0),
                rng.uniform(-0.5, 1.5),
                rng.uniform(0.0, 2.0),
            ]
        )
    drag = float(rng.choice([0.0, rng.uniform(0.005, 0.03)]))
    size = float(rng.uniform(0.18, 0.45)) * spec.object_scale
    if spec.outward:
        # from a balcony edge, thrown outward towards the street: falls in front of the façade
        p0[2] = float(hard.uniform(0.8, 2.0))
        v0 = np.array([hard.uniform(-1.0, 1.0), hard.uniform(0.0, 2.0), hard.uniform(2.5, 6.0)])
        thrown = True
    if spec.small:
        # cigarette pack, bottle cap, phone: 5–20 cm
        size = float(hard.uniform(0.05, 0.2))
    # integrate once at 1 ms and sample by interpolation
    dt = 0.001
    ts, ps = [0.0], [p0.copy()]
    p, v = p0.copy(), v0.copy()
    t = 0.0
    step = 0
    while p[1] > size / 2 and t < 12.0:
        a = np.array([0.0, -G, 0.0]) - drag * v * np.abs(v)
        v = v + a * dt
        p = p + v * dt
        t += dt
        step += 1
        if step % 5 == 0:
            ts.append(t)
            ps.append(p.copy())
    ts.append(t)
    ps.append(p.copy())
    t_arr = np.array(ts)
    p_arr = np.array(ps)
    land_t = t0 + t
    img, _ = cam.project(p_arr)
    out = (img[:, 0] < 0) | (img[:, 0] >= w) | (img[:, 1] < 0) | (img[:, 1] >= h)
    end_t = land_t
    if np.any(out):
        end_t = min(end_t, t0 + float(t_arr[int(np.argmax(out))]))

    def pos(
        tt: float, t_arr: np.ndarray = t_arr, p_arr: np.ndarray = p_arr, t0: float = t0
    ) -> np.ndarray:
        rel = min(max(tt - t0, 0.0), float(t_arr[-1]))
        return np.array([np.interp(rel, t_arr, p_arr[:, i]) for i in range(3)])

    colour = _OBJECT_COLOURS[int(rng.integers(0, len(_OBJECT_COLOURS)))]
    if spec.small or spec.night:
        colour = _low_contrast(hard, base, img[0], spec.night)
    mover = _Mover(
        kind="object",
        start_t=t0,
        pos=pos,
        size_m=size,
        color=colour,
        aspect=float(rng.uniform(1.0, 2.8)),
        spin=float(rng.uniform(-12, 12)),
        phase=float(rng.uniform(0, math.pi)),
        end_t=land_t + 3.0,
        fade=spec.small or spec.night,
    )
    return mover, FallTruth(floor=floor, column=column, release_t=t0, end_t=end_t, thrown=thrown)


def _low_contrast(
    rng: np.random.Generator, base: np.ndarray, at: np.ndarray, night: bool
) -> tuple[int, int, int]:
    """An object colour a little off the wall around its release point."""
    h, w = base.shape[:2]
    x = int(min(max(at[0], 0), w - 1))
    y = int(min(max(at[1], 0), h - 1))
    patch = base[max(0, y - 6) : y + 7, max(0, x - 6) : x + 7].reshape(-1, 3).astype(np.float64)
    wall = np.median(patch, axis=0)
    if night:
        # grey in infrared; far from the lamp, only a little brighter (or darker) than the wall
        delta = float(rng.uniform(18.0, 45.0)) * (1.0 if rng.random() < 0.75 else -1.0)
        v = float(np.clip(wall.mean() + delta, 0, 255))
        if abs(v - wall.mean()) < 12.0:
            v = float(wall.mean() + 18.0)
        return (int(v), int(v), int(v))
    delta = float(rng.uniform(25.0, 55.0)) * (1.0 if rng.random() < 0.5 else -1.0)
    tint = rng.normal(0.0, 8.0, 3)
    col = wall + delta + tint
    if np.any(col > 255) or np.any(col < 0):
        col = wall - delta + tint
    return tuple(int(v) for v in np.clip(col, 0, 255))  # type: ignore[return-value]


def _make_hard_distractor(
    rng: np.random.Generator, name: str, extras: dict[str, Any], w: int, h: int, night: bool
) -> None:
    """Particles drawn in image space: heavy rain, snow, insects around the infrared lamp."""
    k = h / 540.0
    if name == "heavy_rain":
        # many long streaks, each only partly opaque (a drop is small and out of focus)
        extras["heavy_rain"] = (
            int(rng.integers(250, 700)),
            float(rng.uniform(-0.3, 0.3)),
            float(rng.uniform(0.03, 0.08)),
            (150, 230) if night else (170, 225),
            float(rng.uniform(0.25, 0.55)),
        )
    elif name == "snow":
        n = int(rng.integers(150, 500))
        depth = rng.uniform(0.2, 1.0, n)
        extras["snow"] = np.column_stack(
            [
                rng.uniform(0, w, n),  # x0
                rng.uniform(0, h, n),  # y0
                (10.0 + 70.0 * depth) * k,  # fall speed px/s (near flakes look faster)
                rng.uniform(2.0, 15.0, n) * depth * k,  # sway amplitude px
                rng.uniform(0.5, 2.5, n),  # sway rad/s
                rng.uniform(0, 2 * math.pi, n),  # phase
                rng.uniform(-10.0, 10.0, n) * k,  # wind drift px/s
                np.maximum(1.0, 3.5 * depth * k),  # radius px
                rng.uniform(190, 250, n),  # shade
            ]
        )
    elif name == "insects":
        n = int(rng.integers(3, 10))
        extras["insects"] = np.column_stack(
            [
                rng.uniform(0.1, 0.9, n) * w,
                rng.uniform(0.1, 0.9, n) * h,
                rng.uniform(-120.0, 120.0, n) * k,  # drift px/s
                rng.uniform(-120.0, 120.0, n) * k,
                rng.uniform(15.0, 90.0, n) * k,  # wander amplitude px
                rng.uniform(3.0, 14.0, n),  # wander rad/s (fast, erratic)
                rng.uniform(0, 2 * math.pi, n),
                rng.uniform(0, 2 * math.pi, n),
                rng.uniform(1.0, 4.0, n) * k,  # radius px (near the lamp, out of focus)
                rng.uniform(150, 255, n),  # lit by the infrared lamp
            ]
        )


def _make_distractor(
    rng: np.random.Generator,
    name: str,
    cam: _Camera,
    fw: float,
    hb: float,
    duration: float,
    extras: dict[str, Any],
    w: int,
    h: int,
    columns: int,
    floors: int,
    fh: float,
    pitch_m: float,
) -> list[_Mover]:
    out: list[_Mover] = []
    if name == "birds":
        for _ in range(int(rng.integers(2, 5))):
            mode = str(rng.choice(["horizontal", "up", "erratic", "glide"]))
            p0 = np.array(
                [rng.uniform(-0.2, 1.2) * fw, rng.uniform(0.3, 0.95) * hb, rng.uniform(2.0, 20.0)]
            )
            if mode == "horizontal":
                v = np.array(
                    [
                        rng.choice([-1, 1]) * rng.uniform(4, 10),
                        rng.uniform(-0.5, 0.5),
                        rng.uniform(-1, 1),
                    ]
                )
            elif mode == "up":
                v = np.array([rng.uniform(-4, 4), rng.uniform(1.5, 4.0), rng.uniform(-1, 1)])
            elif mode == "glide":
                v = np.array(
                    [
                        rng.choice([-1, 1]) * rng.uniform(2, 7),
                        -rng.uniform(1.0, 4.0),
                        rng.uniform(-1, 1),
                    ]
                )
            else:
                v = np.array([rng.uniform(-5, 5), rng.uniform(-2, 2), 0.0])
            if v[0] > 0:
                p0[0] = min(p0[0], 0.5 * fw)
            else:
                p0[0] = max(p0[0], 0.5 * fw)
            wig = rng.uniform(0, 2 * math.pi, 6)
            amp = rng.uniform(0.5, 2.5) if mode == "erratic" else rng.uniform(0.0, 0.4)
            t0 = float(rng.uniform(0, duration * 0.5))

            def pos(
                tt: float,
                p0: np.ndarray = p0,
                v: np.ndarray = v,
                t0: float = t0,
                wig: np.ndarray = wig,
                amp: float = amp,
            ) -> np.ndarray:
                r = tt - t0
                d = np.array(
                    [
                        amp * math.sin(2.1 * r + wig[0]) + amp * 0.5 * math.sin(5.3 * r + wig[1]),
                        amp * math.sin(1.7 * r + wig[2]) + amp * 0.6 * math.sin(4.1 * r + wig[3]),
                        0.0,
                    ]
                )
                return p0 + v * r + d

            out.append(
                _Mover(
                    "bird",
                    t0,
                    pos,
                    float(rng.uniform(0.25, 0.5)),
                    (40, 40, 50),
                    aspect=2.5,
                    flap=float(rng.uniform(4, 8)),
                )
            )
    elif name == "leaves":
        for _ in range(int(rng.integers(2, 6))):
            p0 = np.array(
                [rng.uniform(0.0, 1.0) * fw, rng.uniform(0.4, 1.0) * hb, rng.uniform(0.3, 8.0)]
            )
            vt = float(rng.uniform(0.4, 2.2))
            amp = float(rng.uniform(0.2, 1.2))
            om = float(rng.uniform(1.5, 5.0))
            vx = float(rng.uniform(-1.0, 1.0))
            t0 = float(rng.uniform(0, duration * 0.4))

            def pos(
                tt: float,
                p0: np.ndarray = p0,
                vt: float = vt,
                amp: float = amp,
                om: float = om,
                vx: float = vx,
                t0: float = t0,
            ) -> np.ndarray:
                r = max(tt - t0, 0.0)
                fall = vt * (r - 0.15 * (1 - math.exp(-r / 0.15)))
                return p0 + np.array(
                    [vx * r + amp * math.sin(om * r), -fall, 0.3 * amp * math.sin(0.7 * om * r)]
                )

            colour = [(40, 140, 60), (30, 90, 150), (235, 235, 235), (60, 60, 140)][
                int(rng.integers(0, 4))
            ]
            out.append(
                _Mover(
                    "leaf",
                    t0,
                    pos,
                    float(rng.uniform(0.12, 0.35)),
                    colour,
                    aspect=float(rng.uniform(1, 2.5)),
                    spin=float(rng.uniform(-6, 6)),
                )
            )
    elif name == "people":
        for _ in range(int(rng.integers(2, 6))):
            car = rng.random() < 0.3
            speed = float(rng.uniform(5, 12) if car else rng.uniform(0.8, 1.8)) * float(
                rng.choice([-1, 1])
            )
            best = None
            for _try in range(20):
                p0 = np.array([rng.uniform(-0.2, 1.2) * fw, 0.0, rng.uniform(1.0, 12.0)])
                pts, z = cam.project(np.array([p0 + [0, 1.7, 0], p0]))
                if z.min() > 0.5 and 0 <= pts[0, 1] < h:
                    best = p0
                    break
            if best is None:
                continue
            t0 = float(rng.uniform(0, duration * 0.5))

            def pos(
                tt: float, p0: np.ndarray = best, sp: float = speed, t0: float = t0
            ) -> np.ndarray:
                return p0 + np.array([sp * (tt - t0), 0.0, 0.0])

            colour = tuple(int(v) for v in rng.uniform(20, 230, 3))
            out.append(
                _Mover(
                    "car" if car else "person",
                    t0,
                    pos,
                    1.5 if car else 1.7,
                    colour,
                    aspect=2.7 if car else 0.35,
                )
            )  # type: ignore[arg-type]
    elif name == "rain":
        extras["rain"] = (
            int(rng.integers(40, 160)),
            float(rng.uniform(-0.25, 0.25)),
            float(rng.uniform(0.015, 0.05)),
        )
    elif name == "lighting":
        mode = str(rng.choice(["step", "ramp", "flicker"]))
        t1 = float(rng.uniform(0.2, 0.6)) * duration
        gain = float(rng.choice([rng.uniform(0.55, 0.8), rng.uniform(1.2, 1.45)]))
        extras["lighting"] = (mode, t1, gain, float(rng.uniform(0.3, 1.5)))
        # and one window switching its light on
        hmat, ppm = extras["hmat"], extras["ppm"]
        c = int(rng.integers(0, columns))
        k = int(rng.integers(0, floors))
        x0, x1 = (c + 0.25) * pitch_m * ppm, (c + 0.75) * pitch_m * ppm
        y1 = (hb - k * fh - 0.9) * ppm
        y0 = y1 - 0.5 * fh * ppm
        quad = cv2.perspectiveTransform(
            np.float32([[[x0, y0], [x1, y0], [x1, y1], [x0, y1]]]), hmat
        )[0]
        extras["window_light"] = (quad.astype(np.int32), float(rng.uniform(0.1, 0.9)) * duration)
    elif name == "foliage":
        side = int(rng.choice([0, 1]))
        cx = float(rng.uniform(0.0, 0.2) if side == 0 else rng.uniform(0.8, 1.0)) * w
        cy = float(rng.uniform(0.75, 0.95)) * h
        r = float(rng.uniform(0.08, 0.18)) * h
        n = int(rng.integers(40, 90))
        leaves = np.column_stack(
            [
                cx + rng.normal(0, r * 0.6, n),
                cy + rng.normal(0, r * 0.5, n),
                rng.uniform(0.02, 0.05, n) * h,
                rng.uniform(0.01, 0.03, n) * h,
                rng.uniform(0, 180, n),
                rng.uniform(0, 2 * math.pi, n),
            ]
        )
        greens = rng.uniform([10, 50, 10], [60, 140, 60], (n, 3))
        extras["foliage"] = (
            leaves,
            greens,
            float(rng.uniform(0.01, 0.03)) * h,
            float(rng.uniform(0.3, 1.2)),
            (int(cx), int(cy)),
        )
    elif name == "noise":
        extras["salt"] = True
    return out


# --------------------------------------------------------------------------- render


def _noise_bank(
    rng: np.random.Generator, sigma: float, h: int, w: int, n: int = 4
) -> list[tuple[np.ndarray, np.ndarray]]:
    bank = []
    for _ in range(n):
        noise = rng.standard_normal((h, w, 1), dtype=np.float32) * sigma
        noise = noise + rng.standard_normal((h, w, 3), dtype=np.float32) * (sigma * 0.3)
        pos = np.clip(noise, 0, 255).astype(np.uint8)
        neg = np.clip(-noise, 0, 255).astype(np.uint8)
        bank.append((pos, neg))
    return bank


def _render(clip: FacadeClip) -> Iterator[np.ndarray]:
    spec = clip.spec
    ex = clip._extras
    rng = np.random.default_rng(ex["seed"])
    h, w = spec.height, spec.width
    bank = _noise_bank(rng, ex["noise_sigma"], h, w)
    fresh = np.random.default_rng([ex["seed"], 1]) if spec.fresh_noise else None
    cam = clip._cam
    for i in range(clip.n_frames):
        t = i / spec.fps
        frame = clip._base.copy()
        if "window_light" in ex and t >= ex["window_light"][1]:
            cv2.fillConvexPoly(frame, ex["window_light"][0], (190, 230, 250))
        for m in clip._movers:
            if t < m.start_t or t > m.end_t:
                continue
            _draw_exposed(frame, cam, m, t, spec.exposure_s)
        if "foliage" in ex:
            _draw_foliage(frame, ex["foliage"], t)
        if "rain" in ex:
            _draw_rain(frame, rng, ex["rain"], w, h)
        if "heavy_rain" in ex:
            n, slant, length, shades, alpha = ex["heavy_rain"]
            wet = frame.copy()
            _draw_rain(wet, rng, (n, slant, length), w, h, shades)
            cv2.addWeighted(wet, alpha, frame, 1.0 - alpha, 0.0, dst=frame)
        if "snow" in ex:
            _draw_particles(frame, ex["snow"], t, w, h, snow=True)
        if "insects" in ex:
            _draw_particles(frame, ex["insects"], t, w, h, snow=False)
        if "lighting" in ex:
            gain, bias = _lighting(ex["lighting"], t)
            if abs(gain - 1.0) > 1e-3 or abs(bias) > 1e-3:
                frame = cv2.convertScaleAbs(frame, alpha=gain, beta=bias)
        pos, neg = bank[int(rng.integers(0, len(bank)))]
        if fresh is not None:
            pos, neg = _noise_bank(fresh, ex["noise_sigma"], h, w, n=1)[0]
        frame = cv2.subtract(cv2.add(frame, pos), neg)
        if ex.get("salt"):
            n = int(w * h * 0.00005)
            ys = rng.integers(0, h, n)
            xs = rng.integers(0, w, n)
            frame[ys, xs] = rng.integers(0, 256, (n, 1)).astype(np.uint8)
        if ex.get("night"):
            frame = cv2.cvtColor(cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR)
        if "jpeg_quality" in ex:
            ok, buf = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, ex["jpeg_quality"]])
            if ok:
                frame = cv2.imdecode(buf, cv2.IMREAD_COLOR)
        yield frame


def _draw_exposed(frame: np.ndarray, cam: _Camera, m: _Mover, t: float, exposure: float) -> None:
    """``m`` as the sensor saw it while the shutter was open (the ``exposure`` seconds up to
    ``t``): the mean of the mover drawn at moments a pixel or less apart along its way.
    With no exposure, or a way shorter than a pixel, the mover drawn sharp at ``t``."""
    if exposure <= 0.0:
        _draw_mover(frame, cam, m, t)
        return
    t0 = max(m.start_t, t - exposure)
    ends, z = cam.project(np.array([m.pos(t0), m.pos(t)]))
    if m.kind in ("person", "car") or z.min() < 0.5:
        _draw_mover(frame, cam, m, t)
        return
    steps = int(min(32, math.ceil(float(np.hypot(*(ends[1] - ends[0]))))))
    if steps <= 1:
        _draw_mover(frame, cam, m, t)
        return
    size = cam.f * m.size_m * max(m.aspect, 1.0) / float(z.min())
    pad = int(math.ceil(2.0 * max(size, 1.6))) + 6
    x0 = int(max(0, math.floor(ends[:, 0].min()) - pad))
    y0 = int(max(0, math.floor(ends[:, 1].min()) - pad))
    x1 = int(min(frame.shape[1], math.ceil(ends[:, 0].max()) + pad))
    y1 = int(min(frame.shape[0], math.ceil(ends[:, 1].max()) + pad))
    if x1 <= x0 or y1 <= y0:
        return
    still = frame[y0:y1, x0:x1].copy()
    acc = np.zeros(still.shape, np.float32)
    for j in range(steps):
        frame[y0:y1, x0:x1] = still
        _draw_mover(frame, cam, m, t0 + (t - t0) * (j + 0.5) / steps)
        acc += frame[y0:y1, x0:x1]
    frame[y0:y1, x0:x1] = np.clip(acc / steps + 0.5, 0, 255).astype(np.uint8)


def _draw_mover(frame: np.ndarray, cam: _Camera, m: _Mover, t: float) -> None:
    p = m.pos(t)
    if m.kind in ("person", "car"):
        half = m.size_m * m.aspect / 2
        quad = np.array(
            [p + [-half, 0, 0], p + [half, 0, 0], p + [half, m.size_m, 0], p + [-half, m.size_m, 0]]
        )
        pts, z = cam.project(quad)
        if z.min() < 0.5:
            return
        cv2.fillConvexPoly(frame, np.round(pts * 16).astype(np.int32), m.color, cv2.LINE_AA, 4)
        if m.kind == "person":
            head, _ = cam.project(p + np.array([0, m.size_m + 0.12, 0]))
            r = max(1, int(cam.f * 0.12 / max(z.min(), 0.5)))
            cv2.circle(frame, (int(head[0, 0]), int(head[0, 1])), r, (60, 80, 110), -1, cv2.LINE_AA)
        return
    pts, z = cam.project(p)
    if z[0] < 0.5:
        return
    cx, cy = float(pts[0, 0]), float(pts[0, 1])
    if not (-50 < cx < frame.shape[1] + 50 and -50 < cy < frame.shape[0] + 50):
        return
    size = max(1.6, cam.f * m.size_m / z[0])
    ang = m.phase + m.spin * (t - m.start_t)
    length = size * math.sqrt(m.aspect)
    width = size / math.sqrt(m.aspect)
    if m.flap > 0:
        width = max(1.0, width * (0.5 + 0.5 * abs(math.sin(2 * math.pi * m.flap * t))))
        ang = 0.0
    c, s = math.cos(ang), math.sin(ang)
    ax = np.array([c, s]) * length / 2
    ay = np.array([-s, c]) * width / 2
    ctr = np.array([cx, cy])
    poly = np.array([ctr - ax - ay, ctr + ax - ay, ctr + ax + ay, ctr - ax + ay])
    true_size = cam.f * m.size_m / z[0]
    if m.fade and true_size < size:
        # drawn at the smallest visible size, blended by the true area (a sub-pixel object
        # only shifts a pixel's value a little)
        alpha = (true_size / size) ** 2
        x0 = int(max(0, math.floor(poly[:, 0].min()) - 1))
        y0 = int(max(0, math.floor(poly[:, 1].min()) - 1))
        x1 = int(min(frame.shape[1], math.ceil(poly[:, 0].max()) + 2))
        y1 = int(min(frame.shape[0], math.ceil(poly[:, 1].max()) + 2))
        if x1 <= x0 or y1 <= y0:
            return
        roi = frame[y0:y1, x0:x1]
        patch = roi.copy()
        local = (poly - [x0, y0]) * 16
        cv2.fillConvexPoly(patch, np.round(local).astype(np.int32), m.color, cv2.LINE_AA, 4)
        cv2.addWeighted(patch, alpha, roi, 1.0 - alpha, 0.0, dst=roi)
        return
    cv2.fillConvexPoly(frame, np.round(poly * 16).astype(np.int32), m.color, cv2.LINE_AA, 4)


def _draw_foliage(frame: np.ndarray, fol: tuple[Any, ...], t: float) -> None:
    leaves, greens, amp, freq, base = fol
    gust = 1.0 + 0.6 * math.sin(2 * math.pi * 0.17 * t)
    cv2.line(frame, (base[0], frame.shape[0]), base, (30, 50, 70), max(2, frame.shape[0] // 60))
    for (x, y, a, b, ang, ph), col in zip(leaves, greens, strict=True):
        dx = amp * gust * math.sin(2 * math.pi * freq * t + ph)
        dy = 0.4 * amp * math.sin(2 * math.pi * freq * 1.3 * t + ph * 1.7)
        cv2.ellipse(
            frame,
            (int(x + dx), int(y + dy)),
            (int(a), int(b)),
            float(ang),
            0,
            360,
            tuple(int(v) for v in col),
            -1,
        )


def _draw_particles(
    frame: np.ndarray, parts: np.ndarray, t: float, w: int, h: int, snow: bool
) -> None:
    """Snowflakes (slow, swaying, falling at constant speed) or insects (erratic flight)."""
    if snow:
        x0, y0, vy, amp, om, ph, drift, rad, shade = parts.T
        y = np.mod(y0 + vy * t, h + 20.0) - 10.0
        x = np.mod(x0 + drift * t + amp * np.sin(om * t + ph), w)
    else:
        x0, y0, vx, vy, amp, om, ph1, ph2, rad, shade = parts.T
        x = np.mod(x0 + vx * t + amp * (np.sin(om * t + ph1) + 0.5 * np.sin(2.3 * om * t + ph2)), w)
        y = np.mod(y0 + vy * t + amp * (np.cos(0.8 * om * t + ph2) + 0.5 * np.sin(1.7 * om * t)), h)
    for i in range(parts.shape[0]):
        v = int(shade[i])
        cv2.circle(
            frame,
            (int(x[i] * 4), int(y[i] * 4)),
            int(rad[i] * 4),
            (v, v, v),
            -1,
            cv2.LINE_AA,
            2,
        )


def _draw_rain(
    frame: np.ndarray,
    rng: np.random.Generator,
    rain: tuple[int, float, float],
    w: int,
    h: int,
    shades: tuple[int, int] = (170, 220),
) -> None:
    n, slant, length = rain
    k = int(n * rng.uniform(0.8, 1.2))
    x = rng.uniform(0, w, k)
    y = rng.uniform(0, h, k)
    ln = rng.uniform(0.5, 1.5, k) * length * h
    shade = int(rng.uniform(*shades))
    for i in range(k):
        p0 = (int(x[i]), int(y[i]))
        p1 = (int(x[i] + slant * ln[i]), int(y[i] + ln[i]))
        cv2.line(frame, p0, p1, (shade, shade, shade), 1, cv2.LINE_AA)


def _lighting(light: tuple[str, float, float, float], t: float) -> tuple[float, float]:
    mode, t1, gain, span = light
    if mode == "step":
        return (gain, 0.0) if t >= t1 else (1.0, 0.0)
    if mode == "ramp":
        f = min(max((t - t1) / span, 0.0), 1.0)
        return (1.0 + (gain - 1.0) * f, 0.0)
    # flicker: a few bright/dark frames, like a flash or an auto-exposure hunt
    if t1 <= t < t1 + 0.3:
        return (gain, 20.0 * math.sin(40 * t))
    return (1.0, 0.0)
