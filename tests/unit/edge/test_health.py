"""Camera health: black, frozen, covered, blurred and fading video → one device_fault per episode."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import cv2
import numpy as np
import pytest

from edge.health import CameraHealth, HealthOptions
from edge.motion import downscale_grey
from shaobing.paths import assets_dir

T0 = datetime(2026, 6, 1, tzinfo=UTC)
FPS = 5.0


def real_frames(name: str = "pedestrians_opencv_vtest.avi", n: int = 40) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(assets_dir() / "video" / name))
    frames = []
    while len(frames) < n:
        ok, img = cap.read()
        if not ok:
            break
        frames.append(img)
    cap.release()
    assert frames
    return frames


def feed(
    health: CameraHealth, frames: Iterator[np.ndarray] | list[np.ndarray], t0: float = 0.0
) -> list[tuple[float, str, str]]:
    out = []
    for i, img in enumerate(frames):
        t = t0 + i / FPS
        for f in health.update(downscale_grey(img, 160), t, T0 + timedelta(seconds=t)):
            assert f.type == "device_fault" and f.severity == "normal"
            out.append((t, f.state, f.attributes["condition"]))
    return out


def cycle(frames: list[np.ndarray], n: int) -> list[np.ndarray]:
    return [frames[i % len(frames)] for i in range(n)]


# every frame checked, so the timings below are exact (the default checks 4 frames a second)
OPTS = HealthOptions(raise_after_s=2.0, frozen_after_s=4.0, clear_after_s=1.0, check_every_s=0.0)


def test_normal_video_of_every_asset_raises_nothing() -> None:
    for path in sorted((assets_dir() / "video").glob("*.mp4")) + [
        assets_dir() / "video" / "pedestrians_opencv_vtest.avi"
    ]:
        frames = real_frames(path.name, 30)
        h = CameraHealth("cam", OPTS)
        assert feed(h, frames) == [], path.name
        assert h.state is None


@pytest.mark.parametrize(
    ("condition", "make"),
    [
        ("black", lambda img: np.full_like(img, 8)),
        ("covered", lambda img: np.full_like(img, 120)),
        ("blurred", lambda img: cv2.GaussianBlur(img, (0, 0), img.shape[1] / 40)),
    ],
)
def test_fault_raised_once_per_episode_and_cleared(condition: str, make) -> None:  # type: ignore[no-untyped-def]
    frames = real_frames()
    bad_src = [make(f) for f in frames[:3]]
    bad = [bad_src[i % 3] for i in range(30)]
    # a little sensor noise on the fault frames so they are not also "frozen"
    rng = np.random.default_rng(1)
    bad = [
        np.clip(b.astype(np.int16) + rng.integers(-2, 3, b.shape), 0, 255).astype(np.uint8)
        for b in bad
    ]
    h = CameraHealth("cam7", OPTS)
    events = feed(h, frames[:10] + bad + frames[10:30])
    assert [(s, c) for _, s, c in events] == [("active", condition), ("cleared", condition)]
    t_active = events[0][0]
    assert 2.0 + 2.0 <= t_active <= 2.0 + 2.0 + 0.5  # fault starts at t=2 s, raised after 2 s
    assert h.state is None and h.episodes == 1


def test_frozen_picture_is_reported_after_the_frozen_delay() -> None:
    frames = real_frames()
    h = CameraHealth("cam", OPTS)
    events = feed(h, frames[:5] + [frames[5]] * 40 + frames[6:30])
    assert [(s, c) for _, s, c in events] == [("active", "frozen"), ("cleared", "frozen")]
    assert 1.0 + 4.0 <= events[0][0] <= 1.0 + 4.5


def test_checking_four_frames_a_second_finds_the_same_episodes_at_a_fraction_of_the_cost() -> None:
    frames = real_frames()
    video = frames[:5] + [frames[5]] * 40 + frames[6:30]
    every = CameraHealth("cam", OPTS)
    sampled = CameraHealth("cam", replace(OPTS, check_every_s=0.25))
    calls = 0
    classify = sampled.classify

    def counted(grey: np.ndarray, t: float) -> str | None:
        nonlocal calls
        calls += 1
        return classify(grey, t)

    sampled.classify = counted  # type: ignore[method-assign]
    exact, thinned = feed(every, video), feed(sampled, video)
    assert [(s, c) for _, s, c in thinned] == [(s, c) for _, s, c in exact]
    period = 2 / FPS  # 0.25 s at 5 fps: every second frame
    for (t_exact, _, _), (t_thin, _, _) in zip(exact, thinned, strict=True):
        # each of the three timers (frozen, raise, clear) may start one check late
        assert t_exact <= t_thin <= t_exact + 3 * period + 1e-9
    assert calls <= len(video) // 2 + 1  # 5 fps video: every second frame


def test_fade_to_black_is_one_black_episode() -> None:
    frames = real_frames()
    fade = [
        np.clip(f.astype(np.float32) * (1 - i / 15), 0, 255).astype(np.uint8)
        for i, f in enumerate(frames[:15])
    ]
    rng = np.random.default_rng(2)
    dark = [rng.integers(0, 6, frames[0].shape, dtype=np.uint8) for _ in range(30)]
    h = CameraHealth("cam", OPTS)
    events = feed(h, fade + dark)
    assert [(s, c) for _, s, c in events] == [("active", "black")]
    assert h.state == "black"


def test_night_scene_with_a_light_is_not_black() -> None:
    h = CameraHealth("cam", OPTS)
    assert feed(h, real_frames("fire_smoke_small_flame_night.mp4", 30)) == []


def test_a_short_dark_moment_is_not_a_fault() -> None:
    frames = real_frames()
    h = CameraHealth("cam", OPTS)
    assert feed(h, frames[:10] + [np.zeros_like(frames[0])] * 5 + frames[10:30]) == []


# --------------------------------------------------------------------------- blind sources


def test_source_watch_raises_once_per_blind_episode_and_clears_with_its_duration() -> None:
    from edge.health import SourceWatch

    watch = SourceWatch("cam3", source_lost_s=20.0)
    seen: list[tuple[float, str, str, dict[str, object]]] = []

    def check(now: float, last_frame: float | None, error: str | None = None) -> None:
        for f in watch.check(now, T0 + timedelta(seconds=now), 0.0, last_frame, error):
            assert f.type == "device_fault" and not f.snapshot
            seen.append((now, f.state, f.incident_key, f.attributes))

    for now in range(0, 60):  # frames flow for a minute
        check(float(now), float(now))
    for now in range(60, 100):  # the stream is cut at 60 s: blind from 59 s on
        check(float(now), 59.0, "stream stalled or closed")
    check(100.0, 100.0)  # frames again
    check(101.0, 101.0)
    assert [(t, s) for t, s, _, _ in seen] == [(79.0, "active"), (100.0, "cleared")]
    assert seen[0][2] == seen[1][2]
    assert (
        seen[0][3]["fault"] == "source_lost" and seen[0][3]["error"] == "stream stalled or closed"
    )
    assert seen[1][3]["duration_s"] == 41.0
    assert watch.fault is None and watch.episodes == 1


def test_source_watch_never_opened_is_unreachable() -> None:
    from edge.health import SourceWatch

    watch = SourceWatch("cam9", source_lost_s=5.0)
    found = []
    for now in (1.0, 4.9, 5.0, 6.0, 30.0):
        found += watch.check(now, T0, 0.0, None, "cannot open rtsp://10.0.0.9/live")
    assert [(f.state, f.attributes["fault"]) for f in found] == [("active", "unreachable")]
    assert found[0].attributes["error"] == "cannot open rtsp://10.0.0.9/live"
    assert watch.fault == "unreachable"
