"""Seeded synthetic camera scenes for the smoke/fire pipeline: flames, smoke and their look-alikes.

Every scene is a list of small BGR frames (default 192×108 at 5 fps, a few seconds), made
from a textured background (buildings, windows, road lines) so that smoke has edges to veil.
``POSITIVES`` name the scenes with a real flame or smoke (with the second it appears);
``DISTRACTORS`` name look-alikes that must raise nothing: red/orange clothing and cars, a
sunset with camera shake, blinking lights, headlights at night, steam puffs, fog, a moving
shadow, a fade to black, a covered lens, rain on the lens, a waving red flag, a rotating
amber beacon, sun glitter on water, rain and snow falling, and a
shaking camera with auto exposure hunting in front of an orange brick wall.
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np

Frames = list[np.ndarray]
SIZE = (192, 108)
FPS = 5.0


def background(
    rng: np.random.Generator, size: tuple[int, int] = SIZE, night: bool = False
) -> np.ndarray:
    """A textured street-like background: sky, building blocks with windows, road and lines."""
    w, h = size
    img = np.zeros((h, w, 3), np.float32)
    sky = np.linspace(200, 150, h // 3)[:, None, None] * np.array([1.0, 0.95, 0.85])
    img[: h // 3] = sky
    img[h // 3 :] = (90, 95, 100)
    x = 0
    while x < w:
        bw = int(rng.integers(18, 40))
        top = int(rng.integers(h // 6, h // 2))
        colour = rng.uniform(80, 170, 3)
        img[top : h * 3 // 4, x : x + bw] = colour
        for wy in range(top + 4, h * 3 // 4 - 4, 8):
            for wx in range(x + 3, x + bw - 4, 7):
                img[wy : wy + 4, wx : wx + 3] = colour * 0.45
        x += bw + int(rng.integers(0, 6))
    img[h * 3 // 4 :] = (70, 72, 75)
    for lx in range(0, w, 24):
        img[h * 7 // 8 : h * 7 // 8 + 2, lx : lx + 12] = (220, 220, 220)
    img += rng.normal(0, 4, img.shape)
    if night:
        img *= 0.18
    return np.clip(img, 0, 255).astype(np.uint8)


def _noise(frame: np.ndarray, rng: np.random.Generator, sigma: float = 2.0) -> np.ndarray:
    out = frame.astype(np.float32) + rng.normal(0, sigma, frame.shape)
    return np.clip(out, 0, 255).astype(np.uint8)


def _n(seconds: float, fps: float) -> int:
    return max(1, round(seconds * fps))


def _flame_sprite(
    rng: np.random.Generator, width: int, height: int
) -> tuple[np.ndarray, np.ndarray]:
    """One random flame shape: colour image and alpha, white-yellow core to red tips."""
    h, w = height, width
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    cx = w / 2 + rng.normal(0, w * 0.08)
    u = (h - ys) / h  # 0 at the base, 1 at the top
    sway = np.sin(u * rng.uniform(3, 7) + rng.uniform(0, 6.28)) * w * 0.12 * u
    half = (w / 2) * (1 - u) ** 0.7 * rng.uniform(0.75, 1.05)
    dist = np.abs(xs - cx - sway) / np.maximum(half, 1e-3)
    tongue = rng.uniform(0.55, 1.0)
    alpha = np.clip(1.2 - dist, 0, 1) * (u < tongue)
    alpha = cv2.GaussianBlur(alpha, (3, 3), 0)
    heat = np.clip((1 - dist) * (1 - u * 0.8), 0, 1)
    b = 40 + 200 * np.clip(heat - 0.6, 0, 1) * 2.5
    g = 70 + 185 * np.clip(heat * 1.3, 0, 1)
    r = np.full_like(g, 255.0)
    img = np.stack([np.clip(b, 0, 255), np.clip(g, 0, 255), r], axis=-1)
    return img, alpha


def _paste(frame: np.ndarray, img: np.ndarray, alpha: np.ndarray, x: int, y: int) -> None:
    h, w = alpha.shape
    H, W = frame.shape[:2]
    x0, y0, x1, y1 = max(0, x), max(0, y), min(W, x + w), min(H, y + h)
    if x1 <= x0 or y1 <= y0:
        return
    a = alpha[y0 - y : y1 - y, x0 - x : x1 - x, None]
    roi = frame[y0:y1, x0:x1].astype(np.float32)
    frame[y0:y1, x0:x1] = np.clip(
        roi * (1 - a) + img[y0 - y : y1 - y, x0 - x : x1 - x] * a, 0, 255
    ).astype(np.uint8)


# --------------------------------------------------------------------------- positives


def flame(
    seed: int = 0, seconds: float = 6.0, fps: float = FPS, night: bool = False, onset_s: float = 1.0
) -> Frames:
    """A flickering flame that appears at ``onset_s`` and grows slowly."""
    rng = np.random.default_rng(seed)
    bg = background(rng, night=night)
    frames: Frames = []
    x = int(SIZE[0] * rng.uniform(0.3, 0.6))
    for i in range(_n(seconds, fps)):
        t = i / fps
        f = bg.copy()
        if t >= onset_s:
            grow = min(1.0, 0.6 + 0.1 * (t - onset_s))
            w = int(22 * grow * rng.uniform(0.85, 1.15))
            h = int(38 * grow * rng.uniform(0.7, 1.25))
            img, alpha = _flame_sprite(rng, w, h)
            _paste(f, img, alpha, x - w // 2, int(SIZE[1] * 0.82) - h)
        frames.append(_noise(f, rng))
    return frames


def smoke(
    seed: int = 0,
    seconds: float = 8.0,
    fps: float = FPS,
    onset_s: float = 1.0,
    shade: float = 185.0,
    source_y: float = 0.8,
) -> Frames:
    """Smoke rising from a point and spreading: turbulent puffs drifting upward.

    ``shade`` is the smoke's grey level (185 light grey, 50 black smoke); ``source_y`` the
    height of its source as a fraction of the frame (0.3: a rooftop against the sky).
    """
    rng = np.random.default_rng(seed)
    bg = background(rng)
    w, h = SIZE
    src = (int(w * rng.uniform(0.35, 0.65)), int(h * source_y))
    puffs: list[list[float]] = []  # x, y, r, born_t, vx
    frames: Frames = []
    for i in range(_n(seconds, fps)):
        t = i / fps
        if t >= onset_s:
            for _ in range(3):
                puffs.append(
                    [
                        src[0] + rng.normal(0, 2),
                        float(src[1]),
                        rng.uniform(3, 5),
                        t,
                        rng.normal(0, 2),
                    ]
                )
        density = np.zeros((h, w), np.float32)
        for p in puffs:
            age = t - p[3]
            cy = p[1] - age * rng.uniform(9, 13)  # rises ~11 px/s
            cx = p[0] + p[4] * age + rng.normal(0, 1.2)
            r = p[2] + age * 3.0  # spreads
            cv2.circle(density, (int(cx), int(cy)), max(1, int(r)), 1.0 / (1 + 0.25 * age), -1)
        puffs = [p for p in puffs if t - p[3] < 6.0]
        density = cv2.GaussianBlur(density, (0, 0), 2.5)
        density *= 1 + 0.35 * rng.standard_normal(density.shape).astype(np.float32)  # turbulence
        density = cv2.GaussianBlur(density, (0, 0), 1.0)
        a = np.clip(density * 0.8, 0, 0.85)[..., None]
        veiled = cv2.GaussianBlur(bg, (0, 0), 2.0).astype(
            np.float32
        )  # smoke blurs what is behind it
        grey = np.full_like(veiled, shade)
        f = bg.astype(np.float32) * (1 - np.clip(a * 1.6, 0, 1)) + veiled * np.clip(a * 1.6, 0, 1)
        f = f * (1 - a) + grey * a
        frames.append(_noise(np.clip(f, 0, 255).astype(np.uint8), rng))
    return frames


# --------------------------------------------------------------------------- distractors


def red_car(seed: int = 0, seconds: float = 6.0, fps: float = FPS) -> Frames:
    """A bright red-orange car crossing the frame, then another parking (still)."""
    rng = np.random.default_rng(seed)
    bg = background(rng)
    frames: Frames = []
    for i in range(_n(seconds, fps)):
        t = i / fps
        f = bg.copy()
        x = int(-40 + t * 45)
        cv2.rectangle(f, (x, 70), (x + 40, 88), (20, 90, 235), -1)
        cv2.rectangle(f, (x + 8, 62), (x + 30, 72), (40, 120, 250), -1)
        cv2.rectangle(f, (150, 74), (185, 90), (30, 140, 250), -1)  # parked orange car
        frames.append(_noise(f, rng))
    return frames


def orange_person(seed: int = 0, seconds: float = 6.0, fps: float = FPS) -> Frames:
    """A person in a bright orange jacket walks in and stands, swaying a little."""
    rng = np.random.default_rng(seed)
    bg = background(rng)
    frames: Frames = []
    for i in range(_n(seconds, fps)):
        t = i / fps
        f = bg.copy()
        x = int(min(90, 10 + t * 40) + rng.normal(0, 1.0))
        cv2.rectangle(f, (x, 50), (x + 12, 75), (0, 110, 250), -1)  # jacket
        cv2.circle(f, (x + 6, 45), 5, (120, 150, 200), -1)  # head
        cv2.rectangle(f, (x + 1, 75), (x + 11, 92), (60, 50, 40), -1)  # trousers
        frames.append(_noise(f, rng))
    return frames


def sunset(seed: int = 0, seconds: float = 6.0, fps: float = FPS) -> Frames:
    """An orange-red sky behind a skyline, slowly changing, with camera shake."""
    rng = np.random.default_rng(seed)
    bg = background(rng).astype(np.float32)
    w, h = SIZE
    frames: Frames = []
    for i in range(_n(seconds, fps)):
        t = i / fps
        f = bg.copy()
        rows = np.linspace(1.0, 0.0, h // 2)[:, None]
        glow = np.stack([40 + 30 * rows, 110 + 100 * rows + 5 * t, 230 + 25 * rows], -1)
        sky_mask = f[: h // 2].mean(axis=2, keepdims=True) > 140
        f[: h // 2] = np.where(sky_mask, np.broadcast_to(glow, (h // 2, w, 3)), f[: h // 2])
        dx, dy = rng.normal(0, 1.2, 2)
        m = np.float32([[1, 0, dx], [0, 1, dy]])
        f = cv2.warpAffine(
            np.clip(f, 0, 255).astype(np.uint8), m, (w, h), borderMode=cv2.BORDER_REPLICATE
        )
        frames.append(_noise(f, rng))
    return frames


def blinking_light(seed: int = 0, seconds: float = 6.0, fps: float = FPS) -> Frames:
    """Orange warning lamps: one blinking at 1 Hz, one at an irregular rate, one steady."""
    rng = np.random.default_rng(seed)
    bg = background(rng, night=True)
    frames: Frames = []
    for i in range(_n(seconds, fps)):
        t = i / fps
        f = bg.copy()
        if int(t * 2) % 2 == 0:
            cv2.circle(f, (50, 60), 6, (40, 160, 255), -1)
        if rng.random() < 0.5:
            cv2.circle(f, (100, 60), 6, (30, 140, 255), -1)
        cv2.circle(f, (150, 60), 6, (60, 180, 255), -1)
        f = cv2.GaussianBlur(f, (3, 3), 0)
        frames.append(_noise(f, rng))
    return frames


def headlights(seed: int = 0, seconds: float = 6.0, fps: float = FPS) -> Frames:
    """Night street: a car with yellowish headlights drives across; another waits, lights on."""
    rng = np.random.default_rng(seed)
    bg = background(rng, night=True)
    frames: Frames = []
    for i in range(_n(seconds, fps)):
        t = i / fps
        f = bg.copy()
        x = int(200 - t * 40)
        for cx in (x, x + 20):
            cv2.circle(f, (cx, 80), 5, (170, 230, 255), -1)
            cv2.circle(f, (cx, 80), 2, (255, 255, 255), -1)
        for cx in (30, 46):
            cv2.circle(f, (cx, 84), 4, (150, 220, 255), -1)
        f = cv2.GaussianBlur(f, (5, 5), 0)
        frames.append(_noise(f, rng))
    return frames


def steam(seed: int = 0, seconds: float = 6.0, fps: float = FPS) -> Frames:
    """White steam puffs that vanish within a second (vents, kettles), in random places."""
    rng = np.random.default_rng(seed)
    bg = background(rng).astype(np.float32)
    w, h = SIZE
    frames: Frames = []
    puff: tuple[int, int, float] | None = None
    for i in range(_n(seconds, fps)):
        t = i / fps
        if puff is None or t - puff[2] > 0.8:
            puff = (int(rng.integers(20, w - 20)), int(rng.integers(20, h - 20)), t)
        age = t - puff[2]
        density = np.zeros((h, w), np.float32)
        cv2.circle(density, (puff[0], int(puff[1] - 8 * age)), int(6 + 6 * age), 1.0, -1)
        density = cv2.GaussianBlur(density, (0, 0), 3.0) * max(0.0, 1 - age / 0.8) * 0.8
        f = bg * (1 - density[..., None]) + 240 * density[..., None]
        frames.append(_noise(np.clip(f, 0, 255).astype(np.uint8), rng))
    return frames


def fog(seed: int = 0, seconds: float = 6.0, fps: float = FPS) -> Frames:
    """Fog rolling in over the whole view within two seconds."""
    rng = np.random.default_rng(seed)
    bg = background(rng).astype(np.float32)
    frames: Frames = []
    for i in range(_n(seconds, fps)):
        t = i / fps
        a = float(np.clip((t - 1.0) / 2.0, 0, 0.75))
        f = cv2.GaussianBlur(bg, (0, 0), 1 + 3 * a) * (1 - a) + 200 * a
        frames.append(_noise(np.clip(f, 0, 255).astype(np.uint8), rng))
    return frames


def moving_shadow(seed: int = 0, seconds: float = 6.0, fps: float = FPS) -> Frames:
    """A cloud or tree shadow sliding slowly over the scene."""
    rng = np.random.default_rng(seed)
    bg = background(rng).astype(np.float32)
    w, h = SIZE
    frames: Frames = []
    for i in range(_n(seconds, fps)):
        t = i / fps
        mask = np.zeros((h, w), np.float32)
        cv2.ellipse(mask, (int(20 + 12 * t), int(60 - 3 * t)), (30, 18), 0, 0, 360, 1.0, -1)
        mask = cv2.GaussianBlur(mask, (0, 0), 2.0)
        f = bg * (1 - 0.45 * mask[..., None])
        frames.append(_noise(np.clip(f, 0, 255).astype(np.uint8), rng))
    return frames


def fade_to_black(seed: int = 0, seconds: float = 6.0, fps: float = FPS) -> Frames:
    """The picture fades to black over two seconds and stays black (power, iris, night switch)."""
    rng = np.random.default_rng(seed)
    bg = background(rng).astype(np.float32)
    frames: Frames = []
    for i in range(_n(seconds, fps)):
        t = i / fps
        k = float(np.clip(1 - (t - 1.0) / 2.0, 0.02, 1.0))
        frames.append(_noise(np.clip(bg * k, 0, 255).astype(np.uint8), rng, 1.0))
    return frames


def covered_lens(seed: int = 0, seconds: float = 6.0, fps: float = FPS) -> Frames:
    """A hand (blurred, skin-coloured) closes over the lens and stays there."""
    rng = np.random.default_rng(seed)
    bg = background(rng).astype(np.float32)
    w, h = SIZE
    frames: Frames = []
    for i in range(_n(seconds, fps)):
        t = i / fps
        k = float(np.clip((t - 1.0) / 1.2, 0, 1))
        mask = np.zeros((h, w), np.float32)
        cv2.circle(mask, (w // 2, h + 20), int(20 + k * 160), 1.0, -1)
        mask = cv2.GaussianBlur(mask, (0, 0), 8.0)[..., None]
        skin = np.array([105, 140, 190], np.float32) * (1 - 0.6 * k)
        f = bg * (1 - mask) + skin * mask
        frames.append(_noise(np.clip(f, 0, 255).astype(np.uint8), rng))
    return frames


def rain_on_lens(seed: int = 0, seconds: float = 6.0, fps: float = FPS) -> Frames:
    """Raindrops land on the lens (local blur and glare), stay, and slide down slowly."""
    rng = np.random.default_rng(seed)
    bg = background(rng)
    w, h = SIZE
    blurred = cv2.GaussianBlur(bg, (0, 0), 3.0).astype(np.float32) + 15
    drops: list[list[float]] = []
    frames: Frames = []
    for i in range(_n(seconds, fps)):
        t = i / fps
        if t >= 1.0 and rng.random() < 0.6:
            drops.append(
                [float(rng.integers(0, w)), float(rng.integers(0, h)), float(rng.integers(3, 8))]
            )
        mask = np.zeros((h, w), np.float32)
        for d in drops:
            d[1] += rng.uniform(0, 1.5)
            cv2.circle(mask, (int(d[0]), int(d[1])), int(d[2]), 1.0, -1)
        mask = cv2.GaussianBlur(mask, (0, 0), 1.0)[..., None]
        f = bg.astype(np.float32) * (1 - mask) + blurred * mask
        frames.append(_noise(np.clip(f, 0, 255).astype(np.uint8), rng))
    return frames


def waving_flag(seed: int = 0, seconds: float = 6.0, fps: float = FPS) -> Frames:
    """A red-orange flag or tarp flapping in the wind: folds move, shading changes, it stays put."""
    rng = np.random.default_rng(seed)
    bg = background(rng)
    frames: Frames = []
    ys, xs = np.mgrid[0:24, 0:36].astype(np.float32)
    for i in range(_n(seconds, fps)):
        t = i / fps
        phase = rng.uniform(0, 6.28)
        shade = 0.75 + 0.25 * np.sin(xs / 4.0 + phase + 3 * t)
        cloth = np.stack([30 * shade, 120 * shade, 250 * shade], -1)
        f = bg.copy()
        wave = (3 * np.sin(np.arange(36) / 5.0 + phase)).astype(int)
        for x in range(36):
            y0 = 30 + wave[x]
            f[y0 : y0 + 24, 100 + x] = np.clip(cloth[:, x], 0, 255).astype(np.uint8)
        f[26:80, 98:100] = (90, 90, 90)  # pole
        frames.append(_noise(f, rng))
    return frames


def beacon(seed: int = 0, seconds: float = 6.0, fps: float = FPS) -> Frames:
    """A rotating amber beacon on a parked service vehicle at dusk: sweeping glare, fixed place."""
    rng = np.random.default_rng(seed)
    bg = (background(rng).astype(np.float32) * 0.5).astype(np.uint8)
    frames: Frames = []
    for i in range(_n(seconds, fps)):
        t = i / fps
        f = bg.copy()
        cv2.rectangle(f, (80, 70), (130, 90), (140, 140, 140), -1)
        level = 0.5 + 0.5 * np.cos(2 * np.pi * 1.3 * t + rng.normal(0, 0.3))
        glow = np.zeros(f.shape[:2], np.float32)
        cv2.circle(glow, (105, 64), 5, 1.0, -1)
        glow = cv2.GaussianBlur(glow, (0, 0), 2.0 + 3.0 * level)[..., None] * (0.4 + 0.6 * level)
        lamp = np.array([20, 170, 255], np.float32)
        f = np.clip(f.astype(np.float32) * (1 - glow) + lamp * glow * 1.4, 0, 255).astype(np.uint8)
        frames.append(_noise(f, rng))
    return frames


def sun_glitter(seed: int = 0, seconds: float = 6.0, fps: float = FPS) -> Frames:
    """Low sun on rippling water: many tiny warm, bright specks twinkling in the same place."""
    rng = np.random.default_rng(seed)
    bg = background(rng)
    w, h = SIZE
    frames: Frames = []
    for _ in range(_n(seconds, fps)):
        f = bg.copy()
        f[h * 3 // 5 :] = (95, 70, 50)  # water
        n = 140
        xs = rng.normal(w / 2, w / 8, n).astype(int)
        ys = rng.integers(h * 3 // 5 + 2, h - 2, n)
        for x, y in zip(xs, ys, strict=True):
            if 0 <= x < w - 2:
                f[y : y + 1, x : x + 2] = (120, 215, 255) if rng.random() < 0.5 else (40, 150, 255)
        frames.append(_noise(f, rng))
    return frames


def rain_and_snow(seed: int = 0, seconds: float = 8.0, fps: float = FPS) -> Frames:
    """Heavy rain streaks and snowflakes falling through the whole view (not on the lens)."""
    rng = np.random.default_rng(seed)
    bg = background(rng)
    w, h = SIZE
    frames: Frames = []
    for _ in range(_n(seconds, fps)):
        f = bg.astype(np.float32)
        layer = np.zeros((h, w), np.float32)
        for _ in range(160):
            x, y = int(rng.integers(0, w)), int(rng.integers(0, h))
            cv2.line(layer, (x, y), (x + 1, y + int(rng.integers(4, 9))), 1.0, 1)
        for _ in range(60):
            cv2.circle(layer, (int(rng.integers(0, w)), int(rng.integers(0, h))), 1, 1.0, -1)
        layer = cv2.GaussianBlur(layer, (3, 3), 0)[..., None] * 0.6
        f = f * (1 - layer) + 220 * layer
        frames.append(_noise(np.clip(f, 0, 255).astype(np.uint8), rng))
    return frames


def shaky_brick_wall(seed: int = 0, seconds: float = 8.0, fps: float = FPS) -> Frames:
    """A sunlit orange brick facade on a camera shaking in the wind, with auto exposure hunting."""
    rng = np.random.default_rng(seed)
    bg = background(rng)
    w, h = SIZE
    wall = bg.copy()
    wall[10:70, 60:140] = (60, 140, 235)
    for y in range(10, 70, 4):
        wall[y, 60:140] = (40, 90, 170)  # mortar lines
        off = 0 if (y // 4) % 2 else 5
        for x in range(60 + off, 140, 10):
            wall[y : y + 4, x] = (40, 90, 170)
    wall[20:30, 70:80] = (200, 235, 255)  # glare on a window
    frames: Frames = []
    for i in range(_n(seconds, fps)):
        t = i / fps
        dx, dy = rng.normal(0, 1.5, 2)
        m = np.float32([[1, 0, dx], [0, 1, dy]])
        f = cv2.warpAffine(wall, m, (w, h), borderMode=cv2.BORDER_REPLICATE)
        gain = 1.0 + 0.2 * np.sin(2 * np.pi * 0.6 * t)
        frames.append(_noise(np.clip(f.astype(np.float32) * gain, 0, 255).astype(np.uint8), rng))
    return frames


SceneFn = Callable[..., Frames]

POSITIVES: dict[str, tuple[SceneFn, str, float]] = {
    "flame": (flame, "fire", 1.0),
    "flame_night": (lambda **kw: flame(night=True, **kw), "fire", 1.0),
    "smoke": (smoke, "smoke", 1.0),
    "black_smoke_rooftop": (lambda **kw: smoke(shade=50.0, source_y=0.45, **kw), "smoke", 1.0),
}
"""name → (scene, expected type, second it appears)."""

DISTRACTORS: dict[str, SceneFn] = {
    "red_car": red_car,
    "orange_person": orange_person,
    "sunset": sunset,
    "blinking_light": blinking_light,
    "headlights": headlights,
    "steam": steam,
    "fog": fog,
    "moving_shadow": moving_shadow,
    "fade_to_black": fade_to_black,
    "covered_lens": covered_lens,
    "rain_on_lens": rain_on_lens,
    "waving_flag": waving_flag,
    "beacon": beacon,
    "sun_glitter": sun_glitter,
    "rain_and_snow": rain_and_snow,
    "shaky_brick_wall": shaky_brick_wall,
}
