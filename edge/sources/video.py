"""Video source: a file (looping, paced or as fast as possible) or a network stream with reconnect.

A stream that fails to open or stalls (no frame for ``stall_timeout_s``) is reopened with
exponential backoff up to a ceiling; a frame that cannot be decoded is skipped and
counted. The state of each source feeds the node status and metrics.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

NETWORK_SCHEMES = (
    "rtsp://",
    "rtsps://",
    "rtmp://",
    "http://",
    "https://",
    "udp://",
    "tcp://",
    "srt://",
)


@dataclass(frozen=True)
class Frame:
    """One decoded frame."""

    index: int
    t: float  # media time in seconds from the source's start (files) or from connect (streams)
    image: np.ndarray  # BGR uint8 H×W×3
    wall: float  # time.time() when decoded
    gap_s: float = 0.0  # seconds without frames before this one (a stream that came back), else 0


@dataclass
class SourceStats:
    """Counters of one source (read by status and metrics)."""

    state: str = "starting"
    frames_in: int = 0
    frames_corrupt: int = 0
    reconnects: int = 0
    errors: int = 0
    frames_dropped: int = 0  # decoded but discarded because the consumer was behind
    last_error: str | None = None
    fps_nominal: float = 0.0
    last_frame_mono: float | None = None  # time.monotonic() of the latest frame; None: none yet
    started_mono: float = field(default_factory=time.monotonic)  # when reading began
    _window: list[float] = field(default_factory=list, repr=False)

    def mark_frame(self, wall: float) -> None:
        """Count one decoded frame for the fps estimate."""
        self.frames_in += 1
        self.last_frame_mono = time.monotonic()
        self._window.append(wall)
        if len(self._window) > 120:
            del self._window[:60]

    def fps(self) -> float:
        """Decoded frames per second over the last few seconds."""
        w = [x for x in self._window if x > time.time() - 5.0]
        if len(w) < 2:
            return 0.0
        return (len(w) - 1) / max(1e-6, w[-1] - w[0])


class VideoSource:
    """Frames from a file or stream.

    Args:
        url: file path or rtsp/http/… URL.
        loop: restart a file at its end.
        realtime: pace a file to its frame rate (streams are paced by the sender).
        stall_timeout_s: reconnect a stream that delivers nothing for this long.
        backoff_initial_s: first reconnect delay; doubles up to ``backoff_max_s``.
        max_corrupt_run: consecutive undecodable frames after which a file is considered ended.
        open_timeout_s: longest connect + stream probe of a network source (the probe reads
            a second or two of video, so this must exceed that).
        missing_ok: a file that does not exist puts the source in ``fault`` (reading raises)
            instead of raising here, so a node's other cameras still start.
        decode_threads: FFmpeg decoding threads (None: FFmpeg's own choice, one per core).
            A node with more cameras than cores decodes each on one thread: the cameras
            already keep every core busy, and a thread pool per camera only adds switching.
    """

    def __init__(
        self,
        url: str,
        loop: bool = False,
        realtime: bool = True,
        stall_timeout_s: float = 10.0,
        backoff_initial_s: float = 0.5,
        backoff_max_s: float = 30.0,
        max_corrupt_run: int = 25,
        open_timeout_s: float = 10.0,
        missing_ok: bool = False,
        decode_threads: int | None = None,
    ) -> None:
        self.url = url
        self.decode_threads = decode_threads
        self.is_network = url.startswith(NETWORK_SCHEMES)
        self.loop = loop
        self.realtime = realtime
        self.stall_timeout_s = stall_timeout_s
        self.backoff_initial_s = backoff_initial_s
        self.backoff_max_s = backoff_max_s
        self.max_corrupt_run = max_corrupt_run
        self.open_timeout_s = open_timeout_s
        self.stats = SourceStats()
        if not self.is_network and not Path(url).exists():
            message = f"video source: expected a file or stream URL, found no file at {url!r}"
            if not missing_ok:
                raise FileNotFoundError(message)
            self.stats.state = "fault"
            self.stats.errors += 1
            self.stats.last_error = message

    def _open(self) -> Any:
        import cv2

        if self.is_network:
            # bounded open/read timeouts so a dead server cannot hang the reader forever
            params = [
                cv2.CAP_PROP_OPEN_TIMEOUT_MSEC,
                int(max(self.open_timeout_s, self.stall_timeout_s) * 1000),
                cv2.CAP_PROP_READ_TIMEOUT_MSEC,
                int(self.stall_timeout_s * 1000),
            ]
            if self.decode_threads:
                params += [cv2.CAP_PROP_N_THREADS, self.decode_threads]
            cap = cv2.VideoCapture(self.url, cv2.CAP_FFMPEG, params)
        elif self.decode_threads:
            cap = cv2.VideoCapture(
                self.url, cv2.CAP_FFMPEG, [cv2.CAP_PROP_N_THREADS, self.decode_threads]
            )
            if not cap.isOpened():  # not a container FFmpeg reads: whatever backend can
                cap = cv2.VideoCapture(self.url)
        else:
            cap = cv2.VideoCapture(self.url)
        return cap

    def frames(self, stop: threading.Event | None = None) -> Iterator[Frame]:
        """Yield frames until the file ends (no loop), ``stop`` is set, or forever for streams."""
        stop = stop or threading.Event()
        backoff = self.backoff_initial_s
        index = 0
        t_offset = 0.0
        stream_t0: float | None = None
        last_yield: float | None = None  # monotonic time of the latest frame handed out
        self.stats.started_mono = time.monotonic()
        while not stop.is_set():
            cap = self._open()
            if not cap.isOpened():
                self.stats.errors += 1
                self.stats.last_error = f"cannot open {self.url}"
                if not self.is_network:
                    self.stats.state = "fault"
                    raise OSError(f"video source: cannot open {self.url!r} (not a readable video)")
                self.stats.state = "reconnecting"
                log.warning("camera source %s: cannot open; retry in %.1fs", self.url, backoff)
                stop.wait(backoff)
                backoff = min(backoff * 2, self.backoff_max_s)
                self.stats.reconnects += 1
                continue
            fps = cap.get(5) or 0.0  # CAP_PROP_FPS
            if not (0.5 < fps < 240):
                fps = 25.0
            self.stats.fps_nominal = fps
            self.stats.state = "online"
            start_wall = time.monotonic()
            local_index = 0
            corrupt_run = 0
            last_frame_wall = time.monotonic()
            ended_cleanly = False
            try:
                while not stop.is_set():
                    ok, image = cap.read()
                    now = time.monotonic()
                    if not ok or image is None or image.size == 0:
                        if self.is_network:
                            if now - last_frame_wall > self.stall_timeout_s or not ok:
                                self.stats.errors += 1
                                self.stats.last_error = "stream stalled or closed"
                                break
                            continue
                        # a file: undecodable frame or the end
                        total = cap.get(7) or 0  # CAP_PROP_FRAME_COUNT
                        if total and local_index < total - 1 and corrupt_run < self.max_corrupt_run:
                            corrupt_run += 1
                            local_index += 1
                            self.stats.frames_corrupt += 1
                            continue
                        ended_cleanly = True
                        break
                    corrupt_run = 0
                    last_frame_wall = now
                    backoff = self.backoff_initial_s
                    if self.is_network:
                        # wall time since the first connect: monotonic across reconnects
                        if stream_t0 is None:
                            stream_t0 = now
                        t = now - stream_t0
                    else:
                        t = t_offset + local_index / fps
                    if self.realtime and not self.is_network:
                        delay = (start_wall + local_index / fps) - now
                        if delay > 0:
                            stop.wait(delay)
                    # a stream that came back after a loss: the consumer is told how long it
                    # was blind (its media clock shows the same gap)
                    gap = 0.0
                    if self.is_network and local_index == 0 and last_yield is not None:
                        gap = max(0.0, now - last_yield)
                    last_yield = now
                    self.stats.mark_frame(time.time())
                    yield Frame(index=index, t=t, image=image, wall=time.time(), gap_s=gap)
                    index += 1
                    local_index += 1
            finally:
                cap.release()
            if stop.is_set():
                break
            if not self.is_network:
                if ended_cleanly and self.loop and local_index > 0:
                    t_offset += local_index / fps
                    continue
                self.stats.state = "stopped"
                return
            self.stats.state = "reconnecting"
            self.stats.reconnects += 1
            log.warning("camera source %s: stream lost; reconnecting in %.1fs", self.url, backoff)
            stop.wait(backoff)
            backoff = min(backoff * 2, self.backoff_max_s)
        self.stats.state = "stopped"


class FrameReader:
    """Decode a source on its own thread into a small bounded buffer.

    A live camera cannot wait for a slow consumer: when the buffer is full the oldest
    frame is discarded and counted in ``source.stats.frames_dropped``, so memory stays
    bounded and the consumer always works on recent pictures. With ``drop=False``
    (offline runs) the reader waits instead and no frame is lost.

    Args:
        source: the video source.
        stop: stops reading when set.
        maxsize: frames buffered at most.
        drop: discard the oldest frame when full (live) instead of waiting (offline).
    """

    def __init__(
        self,
        source: VideoSource,
        stop: threading.Event | None = None,
        maxsize: int = 4,
        drop: bool = True,
    ) -> None:
        self.source = source
        self.stop = stop or threading.Event()
        self.maxsize = max(1, maxsize)
        self.drop = drop
        self.error: BaseException | None = None
        self._buf: deque[Frame] = deque()
        self._cond = threading.Condition()
        self._done = False
        self._thread = threading.Thread(
            target=self._run, name=f"reader-{source.url[-24:]}", daemon=True
        )

    def _run(self) -> None:
        try:
            for frame in self.source.frames(self.stop):
                with self._cond:
                    while (
                        not self.drop and len(self._buf) >= self.maxsize and not self.stop.is_set()
                    ):
                        self._cond.wait(0.2)
                    if len(self._buf) >= self.maxsize:
                        self._buf.popleft()
                        self.source.stats.frames_dropped += 1
                    self._buf.append(frame)
                    self._cond.notify_all()
        except BaseException as exc:  # handed to the consumer, which decides
            self.error = exc
        finally:
            with self._cond:
                self._done = True
                self._cond.notify_all()

    def __iter__(self) -> Iterator[Frame]:
        """Frames in order (with gaps where frames were dropped); re-raises a source error."""
        self._thread.start()
        while True:
            with self._cond:
                while not self._buf and not self._done:
                    self._cond.wait(0.5)
                if self._buf:
                    frame = self._buf.popleft()
                    self._cond.notify_all()
                elif self._done:
                    break
                else:
                    continue
            yield frame
        if self.error is not None:
            raise self.error

    def depth(self) -> int:
        """Frames waiting for the consumer."""
        return len(self._buf)

    def join(self, timeout: float | None = None) -> None:
        """Wait for the reader thread."""
        if self._thread.is_alive():
            self._thread.join(timeout)
