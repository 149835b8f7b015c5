"""Motion gate: motion admits, stillness and lighting changes do not, keep-alive and hangover."""

from __future__ import annotations

import cv2
import numpy as np

from edge.motion import MotionDetector, MotionGate
from shaobing.paths import assets_dir

H, W = 180, 320


def scene(seed: int = 0) -> np.ndarray:
    """A textured still background."""
    rng = np.random.default_rng(seed)
    base = cv2.resize(
        rng.integers(40, 200, (18, 32, 3), dtype=np.uint8), (W, H), interpolation=cv2.INTER_CUBIC
    )
    return base


def noisy(img: np.ndarray, rng: np.random.Generator, sigma: float = 4.0) -> np.ndarray:
    noise = rng.integers(-int(2 * sigma), int(2 * sigma) + 1, img.shape[:2], dtype=np.int16)[
        :, :, None
    ]
    return np.clip(img.astype(np.int16) + noise, 0, 255).astype(np.uint8)


def with_box(img: np.ndarray, x: int, y: int = 75, size: int = 20) -> np.ndarray:
    out = img.copy()
    cv2.rectangle(out, (x, y), (x + size, y + size * 2), (20, 20, 240), -1)
    return out


def test_sensor_noise_is_not_motion() -> None:
    rng = np.random.default_rng(3)
    bg = scene()
    det = MotionDetector()
    results = [det.analyse(noisy(bg, rng)) for _ in range(30)]
    assert not any(r.moving for r in results)


def test_a_moving_object_is_found_where_it_is() -> None:
    rng = np.random.default_rng(4)
    bg = scene()
    det = MotionDetector()
    for _ in range(5):
        det.analyse(noisy(bg, rng))
    r = det.analyse(noisy(with_box(bg, 150), rng))
    assert r.moving and not r.lighting_change
    assert len(r.regions) == 1
    x1, y1, x2, y2 = r.regions[0]
    assert x1 <= 150 + 4 and x2 >= 170 - 4 and y1 <= 79 and y2 >= 111
    assert x2 - x1 <= 40 and y2 - y1 <= 60


def test_global_brightness_changes_do_not_admit() -> None:
    rng = np.random.default_rng(5)
    bg = scene()
    gate = MotionGate(keepalive_s=1000.0, hangover_s=0.0)
    gate.admit(noisy(bg, rng), 0.0)  # first frame: background, keep-alive admits it
    t = 0.1
    admitted = 0
    # a cloud: the whole picture darkens and brightens again, gain and offset
    for k in range(40):
        factor = 1.0 - 0.5 * np.sin(np.pi * k / 40)
        frame = np.clip(bg.astype(np.float32) * factor + 10 * np.sin(k), 0, 255).astype(np.uint8)
        admitted += gate.admit(noisy(frame, rng), t)
        t += 0.1
    # headlights: a sudden strong brightening of the whole view
    admitted += gate.admit(
        noisy(np.clip(bg.astype(np.int16) + 90, 0, 255).astype(np.uint8), rng), t
    )
    assert admitted == 0
    # and a real object afterwards is still seen
    gate.admit(noisy(bg, rng), t + 0.1)
    assert gate.admit(noisy(with_box(bg, 50), rng), t + 0.2)


def test_keepalive_and_hangover() -> None:
    rng = np.random.default_rng(6)
    bg = scene()
    gate = MotionGate(keepalive_s=2.0, hangover_s=0.5)
    decisions = []
    for i in range(60):  # 6 s at 10 fps; an object moves during 1.0–1.5 s
        t = i / 10
        frame = with_box(bg, 50 + 10 * i) if 10 <= i <= 15 else bg
        decisions.append((t, gate.admit(noisy(frame, rng), t)))
    admitted = [t for t, a in decisions if a]
    # t=0 keep-alive; motion 1.0–1.6 (the box also leaves a hole when it vanishes); hangover
    assert admitted[0] == 0.0
    assert all(1.0 <= t <= 2.2 for t in admitted[1:8])
    still = [t for t in admitted if t > 2.3]
    # only keep-alives afterwards, every 2 s
    assert len(still) <= 3
    assert all(b - a >= 2.0 - 1e-9 for a, b in zip(still, still[1:], strict=False))
    assert gate.stats.keepalives >= 2


def test_real_videos_gate_open_on_people_closed_on_a_still_frame() -> None:
    cap = cv2.VideoCapture(str(assets_dir() / "video" / "pedestrians_opencv_vtest.avi"))
    gate = MotionGate(keepalive_s=1000.0)
    frames = []
    for i in range(30):
        ok, img = cap.read()
        assert ok
        frames.append(img)
        gate.observe(img, i / 10)
    cap.release()
    assert gate.stats.motion_frames >= 25
    assert gate.motion_box() is not None
    still = MotionGate(keepalive_s=1000.0)
    rng = np.random.default_rng(7)
    for i in range(30):
        still.observe(noisy(frames[0], rng, 2.0), i / 10)
    assert still.stats.motion_frames == 0
