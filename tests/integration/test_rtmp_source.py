"""Network source against a real RTMP stream: ffmpeg publishes the pedestrians video on loopback.

ffmpeg's RTMP protocol listens for one player per process (``-listen 1``), so the server
is an ffmpeg process that re-encodes the video to H.264 in FLV; a restart of the camera
is a new process on the same port. The stream is read through OpenCV's FFmpeg backend,
the same path as a real RTMP camera or relay.
"""

from __future__ import annotations

import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.sources.video import Frame, FrameReader, VideoSource
from shaobing.paths import assets_dir
from tests.support.mosquitto import free_port
from tests.support.processes import wait_for

VIDEO = assets_dir() / "video" / "pedestrians_opencv_vtest.avi"
WIDTH = 320  # the server scales the 480×360 video down to keep the encoder cheap

pytestmark = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs ffmpeg")


def url(port: int) -> str:
    return f"rtmp://127.0.0.1:{port}/live/cam"


def listening(port: int) -> bool:
    """Whether a socket listens on ``port``, read from /proc (a probe connection would be
    the server's one player)."""
    rows = Path("/proc/net/tcp").read_text().splitlines()[1:]
    return any(r.split()[1].endswith(f":{port:04X}") and r.split()[3] == "0A" for r in rows)


@pytest.fixture
def rtmp_server(tmp_path: Path) -> Iterator[tuple[int, Callable[[], subprocess.Popen[bytes]]]]:
    """A free port and a function that starts an RTMP server on it; every server is killed."""
    port = free_port()
    procs: list[subprocess.Popen[bytes]] = []

    def start() -> subprocess.Popen[bytes]:
        cmd = [
            "ffmpeg", "-nostdin", "-loglevel", "error", "-re", "-stream_loop", "-1",
            "-i", str(VIDEO), "-vf", f"scale={WIDTH}:-2", "-c:v", "libx264",
            "-preset", "ultrafast", "-tune", "zerolatency", "-g", "10", "-an",
            "-f", "flv", "-listen", "1", url(port),
        ]  # fmt: skip
        log = tmp_path / f"ffmpeg-{len(procs)}.log"
        with log.open("wb") as err:
            p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err)
        procs.append(p)
        wait_for(lambda: listening(port) or p.poll() is not None, 10, f"ffmpeg on {port}", 0.05)
        assert p.poll() is None, f"ffmpeg exited with {p.returncode}: {log.read_text()[-500:]}"
        return p

    yield port, start
    for p in procs:
        if p.poll() is None:
            p.kill()
        p.wait(timeout=5)


def first_file_frame() -> np.ndarray:
    cap = cv2.VideoCapture(str(VIDEO))
    ok, image = cap.read()
    cap.release()
    assert ok, f"cannot read {VIDEO}"
    h = round(image.shape[0] * WIDTH / image.shape[1] / 2) * 2
    return cv2.resize(image, (WIDTH, h), interpolation=cv2.INTER_AREA)


@pytest.mark.timeout(40)
def test_reads_frames_from_rtmp_stream(
    rtmp_server: tuple[int, Callable[[], subprocess.Popen[bytes]]],
) -> None:
    port, start = rtmp_server
    start()
    src = VideoSource(url(port), stall_timeout_s=3.0, backoff_initial_s=0.2, backoff_max_s=1.0)
    stop = threading.Event()
    deadline = threading.Timer(25.0, stop.set)  # a dead stream ends the loop, not the test run
    deadline.start()
    frames: list[Frame] = []
    try:
        for frame in FrameReader(src, stop, maxsize=8, drop=False):
            frames.append(frame)
            if len(frames) >= 80:  # past the probe's backlog into live-paced frames
                break
    finally:
        stop.set()
        deadline.cancel()
    assert len(frames) >= 80, f"expected 80 frames, found {len(frames)} ({src.stats})"
    assert src.stats.reconnects == 0 and src.stats.errors == 0, src.stats
    assert src.stats.fps_nominal == pytest.approx(10.0, abs=0.5)
    assert {f.image.shape for f in frames} == {(240, WIDTH, 3)}
    assert [f.index for f in frames] == list(range(len(frames)))
    ts = [f.t for f in frames]
    assert ts[0] == 0.0 and all(b >= a for a, b in zip(ts, ts[1:], strict=False))
    assert ts[-1] >= 1.0  # the tail arrived at the sender's pace, not in one burst
    # the picture is the video, not a grey or garbled frame: the server starts at frame 0
    diff = np.abs(frames[0].image.astype(np.int16) - first_file_frame().astype(np.int16))
    assert float(diff.mean()) < 6.0, f"first frame differs from the file by {diff.mean():.1f}"


@pytest.mark.timeout(60)
def test_reconnects_after_rtmp_server_restart(
    rtmp_server: tuple[int, Callable[[], subprocess.Popen[bytes]]],
) -> None:
    port, start = rtmp_server
    first = start()
    src = VideoSource(url(port), stall_timeout_s=5.0, backoff_initial_s=0.2, backoff_max_s=1.0)
    stop = threading.Event()
    frames: list[Frame] = []
    escaped: list[BaseException] = []

    def read() -> None:
        try:
            frames.extend(src.frames(stop))
        except BaseException as exc:
            escaped.append(exc)

    th = threading.Thread(target=read, daemon=True)
    th.start()
    try:
        wait_for(lambda: len(frames) >= 10, 20, "first frames", interval=0.05)
        assert src.stats.state == "online"

        first.kill()  # the camera goes away mid-stream …
        first.wait(timeout=5)
        t_down = time.monotonic()
        wait_for(lambda: src.stats.state == "reconnecting", 8, "loss detected", interval=0.05)
        assert time.monotonic() - t_down < 3.0  # a closed connection is seen before the stall
        time.sleep(3.0)
        n_lost = len(frames)
        t_lost = frames[-1].t
        # the loss plus the opens refused while the port is closed
        assert src.stats.reconnects >= 2 and src.stats.errors >= 2, src.stats
        assert src.stats.last_error == f"cannot open {url(port)}"

        start()  # … and comes back on the same address
        wait_for(
            lambda: len(frames) >= n_lost + 10 and src.stats.state == "online",
            20,
            "frames after restart",
            interval=0.05,
        )
        assert escaped == [] and th.is_alive()
    finally:
        stop.set()
        th.join(timeout=10)
    assert escaped == [], escaped
    assert not th.is_alive()
    after = frames[n_lost:]
    assert {f.image.shape for f in after} == {(240, WIDTH, 3)}
    assert [f.index for f in frames] == list(range(len(frames)))
    ts = [f.t for f in frames]
    assert all(b >= a for a, b in zip(ts, ts[1:], strict=False))  # time never goes back
    assert after[0].t - t_lost >= 3.0  # the downtime shows as a gap in stream time
