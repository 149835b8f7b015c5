"""Video sources: files fast and paced, looping, truncated files, bad paths, the dropping reader."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.sources.video import FrameReader, VideoSource
from shaobing.paths import assets_dir


def make_clip(path: Path, n: int = 20, fps: float = 10.0) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (160, 120))
    assert writer.isOpened()
    for i in range(n):
        img = np.full((120, 160, 3), 40, np.uint8)
        cv2.putText(img, str(i), (40, 80), cv2.FONT_HERSHEY_SIMPLEX, 1.5, (255, 255, 255), 2)
        writer.write(img)
    writer.release()
    return path


def test_file_as_fast_as_possible(tmp_path: Path) -> None:
    src = VideoSource(str(make_clip(tmp_path / "c.avi", 20)), realtime=False)
    t0 = time.monotonic()
    frames = list(src.frames())
    assert time.monotonic() - t0 < 1.5
    assert [f.index for f in frames] == list(range(20))
    assert frames[-1].t == pytest.approx(1.9)
    assert (
        src.stats.frames_in == 20 and src.stats.state == "stopped" and src.stats.frames_corrupt == 0
    )


def test_file_paced_in_real_time(tmp_path: Path) -> None:
    src = VideoSource(str(make_clip(tmp_path / "c.avi", 8, fps=10.0)), realtime=True)
    t0 = time.monotonic()
    assert len(list(src.frames())) == 8
    assert time.monotonic() - t0 >= 0.65  # 8 frames at 10 fps: the last is due at 0.7 s


def test_loop_keeps_media_time_increasing(tmp_path: Path) -> None:
    src = VideoSource(str(make_clip(tmp_path / "c.avi", 10)), loop=True, realtime=False)
    stop = threading.Event()
    ts = []
    for f in src.frames(stop):
        ts.append(f.t)
        if len(ts) == 25:
            stop.set()
    assert len(ts) == 25 and all(b > a for a, b in zip(ts, ts[1:], strict=False))
    assert ts[12] == pytest.approx(1.2)


@pytest.mark.parametrize(
    "name", ["pedestrians_opencv_vtest.avi", "people_indoor_intel_one_by_one.mp4"]
)
def test_truncated_file_yields_what_it_has_without_crashing(tmp_path: Path, name: str) -> None:
    data = (assets_dir() / "video" / name).read_bytes()
    cut = tmp_path / name
    cut.write_bytes(data[: int(len(data) * 0.6)])
    src = VideoSource(str(cut), realtime=False)
    n = 0
    for f in src.frames():
        assert f.image.ndim == 3
        n += 1
    assert n > 50
    assert src.stats.state == "stopped"


def test_missing_and_unreadable_files_fail_clearly(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no file"):
        VideoSource(str(tmp_path / "none.mp4"))
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"\x00not a video" * 100)
    src = VideoSource(str(junk))
    with pytest.raises(OSError, match="cannot open"):
        list(src.frames())
    assert src.stats.state == "fault" and src.stats.errors == 1


def test_a_missing_file_on_a_node_is_a_camera_fault_not_a_crash(tmp_path: Path) -> None:
    src = VideoSource(str(tmp_path / "gone.mp4"), missing_ok=True)
    assert src.stats.state == "fault" and src.stats.errors == 1
    assert "no file" in src.stats.last_error
    with pytest.raises(OSError, match="cannot open"):
        list(src.frames())
    assert src.stats.state == "fault"


def test_reader_drops_oldest_frames_for_a_slow_consumer(tmp_path: Path) -> None:
    src = VideoSource(str(make_clip(tmp_path / "c.avi", 30, fps=50.0)), realtime=True)
    reader = FrameReader(src, maxsize=2, drop=True)
    got = []
    for f in reader:
        got.append(f.index)
        assert reader.depth() <= 2
        time.sleep(0.06)  # three source frames per consumed frame
    assert src.stats.frames_dropped > 10
    assert len(got) + src.stats.frames_dropped == 30
    assert got == sorted(got) and got[-1] == 29  # the newest frame is never the one dropped


def test_offline_reader_loses_nothing(tmp_path: Path) -> None:
    src = VideoSource(str(make_clip(tmp_path / "c.avi", 30)), realtime=False)
    got = []
    for f in FrameReader(src, maxsize=2, drop=False):
        got.append(f.index)
        time.sleep(0.002)
    assert got == list(range(30)) and src.stats.frames_dropped == 0


def test_unreachable_stream_backs_off_and_stops_promptly() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    src = VideoSource(
        f"http://127.0.0.1:{port}/cam",
        stall_timeout_s=1.0,
        backoff_initial_s=0.1,
        backoff_max_s=0.4,
    )
    stop = threading.Event()
    frames: list[object] = []
    th = threading.Thread(target=lambda: frames.extend(src.frames(stop)), daemon=True)
    th.start()
    time.sleep(2.0)
    assert src.stats.state == "reconnecting"
    assert (
        3 <= src.stats.reconnects <= 12
    )  # 0.1, 0.2, 0.4, 0.4 … (ceiling) plus the connect attempts
    stop.set()
    th.join(timeout=3.0)
    assert not th.is_alive() and frames == []
    assert src.stats.state == "stopped"


def test_one_decoding_thread_per_camera_reads_the_same_frames(tmp_path: Path) -> None:
    clip = str(assets_dir() / "video" / "pedestrians_opencv_vtest.avi")
    stop = threading.Event()

    def first(src: VideoSource, n: int = 12) -> list[np.ndarray]:
        out = []
        for f in src.frames(stop):
            out.append(f.image)
            if len(out) == n:
                break
        return out

    pooled = first(VideoSource(clip, realtime=False))
    single = first(VideoSource(clip, realtime=False, decode_threads=1))
    assert len(single) == len(pooled) == 12
    assert all(np.array_equal(a, b) for a, b in zip(single, pooled, strict=True))
    # a file FFmpeg cannot open with the thread option still falls back to any backend
    mjpg = VideoSource(str(make_clip(tmp_path / "c.avi", 5)), realtime=False, decode_threads=1)
    assert len(list(mjpg.frames())) == 5


def test_cameras_beyond_the_cores_get_one_thread_each() -> None:
    from edge.pipeline_runner import camera_threads

    assert camera_threads(48, cores=2) == 1
    assert camera_threads(3, cores=2) == 1
    assert camera_threads(2, cores=2) is None  # as many cameras as cores: the libraries decide
    assert camera_threads(1, cores=16) is None
