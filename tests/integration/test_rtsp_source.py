"""Network source against a real stream: ffmpeg serves the pedestrians video on loopback.

ffmpeg's RTSP muxer cannot listen for players, so the stream is MPEG-TS over HTTP in
ffmpeg's listen mode — the same OpenCV/FFmpeg network path (demuxer, read timeouts,
reconnect) as an RTSP camera. The server is killed and restarted (reconnect observed)
and frozen with SIGSTOP (a stall: connected but no data).
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from edge.sources.video import Frame, VideoSource
from shaobing.paths import assets_dir

VIDEO = assets_dir() / "video" / "pedestrians_opencv_vtest.avi"

pytestmark = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs ffmpeg")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serve(port: int) -> subprocess.Popen[bytes]:
    cmd = [
        "ffmpeg", "-nostdin", "-loglevel", "error", "-re", "-fflags", "+genpts", "-stream_loop", "-1",
        "-i", str(VIDEO), "-c", "copy", "-f", "mpegts", "-listen", "1", f"http://127.0.0.1:{port}/cam",
    ]  # fmt: skip
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def wait_for(cond: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def server_port() -> Iterator[tuple[int, list[subprocess.Popen[bytes]]]]:
    port = free_port()
    procs: list[subprocess.Popen[bytes]] = []
    yield port, procs
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGCONT)
            p.kill()
            p.wait(timeout=5)


@pytest.mark.timeout(60)
def test_stream_reconnects_after_server_loss_and_stall(
    server_port: tuple[int, list[subprocess.Popen[bytes]]],
) -> None:
    port, procs = server_port
    procs.append(serve(port))
    src = VideoSource(
        f"http://127.0.0.1:{port}/cam",
        stall_timeout_s=2.0,
        backoff_initial_s=0.2,
        backoff_max_s=1.0,
    )
    stop = threading.Event()
    frames: list[Frame] = []
    th = threading.Thread(target=lambda: [frames.append(f) for f in src.frames(stop)], daemon=True)
    th.start()
    try:
        wait_for(lambda: len(frames) >= 10, 12, "first frames")
        assert src.stats.state == "online"
        assert frames[0].image.shape == (360, 480, 3)

        # the server goes away …
        procs[0].kill()
        procs[0].wait(timeout=5)
        wait_for(lambda: src.stats.state == "reconnecting", 6, "loss detected")
        time.sleep(1.0)
        n_lost = len(frames)
        # … and comes back on the same address
        procs.append(serve(port))
        wait_for(
            lambda: len(frames) >= n_lost + 10 and src.stats.state == "online",
            15,
            "frames after restart",
        )
        assert src.stats.reconnects >= 1 and src.stats.errors >= 1

        # a stall: the server is alive but sends nothing
        errors = src.stats.errors
        procs[1].send_signal(signal.SIGSTOP)
        t_stall = time.monotonic()
        wait_for(lambda: src.stats.errors > errors, 8, "stall detected")
        assert 1.5 <= time.monotonic() - t_stall <= 6.0
        assert src.stats.last_error == "stream stalled or closed"
    finally:
        stop.set()
        th.join(timeout=10)
    ts = [f.t for f in frames]
    assert all(b >= a for a, b in zip(ts, ts[1:], strict=False))  # media time never goes back
    assert not th.is_alive()
