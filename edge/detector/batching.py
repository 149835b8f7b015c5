"""Dynamic batching in front of one shared detector.

Cameras submit frames; a single worker thread takes up to ``batch`` frames, waiting at
most ``max_wait_ms`` for the batch to fill, runs one inference and hands each camera its
result. The submit queue is bounded: when the detector cannot keep up, the newest
submission is refused (counted) instead of building a backlog — a camera then simply
skips detection on that frame. Each submission may carry its own confidence and class
filter (cameras watch different things through the same model).

When images are already waiting (the detector is the bottleneck) and ``pack`` is on, wide
frames are stacked two to an input (``OnnxDetector.infer_packed``): one inference then
serves two cameras at 89 % of the scale, instead of each camera waiting twice as long.
An idle detector always runs a frame alone at full scale.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Collection
from concurrent.futures import Future
from dataclasses import dataclass, field, replace

import numpy as np

from edge.detector.protocol import Detector, PackingDetector
from edge.detector.runtime import Detections, filter_classes

log = logging.getLogger(__name__)

LATENCY_BUCKETS_MS = (5, 10, 20, 40, 80, 160, 320, 640, 1280)


@dataclass
class BatchStats:
    """Counters for metrics."""

    submitted: int = 0
    refused: int = 0
    batches: int = 0
    images: int = 0
    errors: int = 0
    infer_seconds: float = 0.0
    batch_sizes: dict[int, int] = field(default_factory=dict)
    latencies_ms: deque[float] = field(default_factory=lambda: deque(maxlen=2048))
    latency_buckets: list[int] = field(default_factory=lambda: [0] * (len(LATENCY_BUCKETS_MS) + 1))
    latency_sum_ms: float = 0.0
    wait_ms: deque[float] = field(default_factory=lambda: deque(maxlen=2048))
    packed: int = 0  # images that shared an input with another

    def record(self, size: int, seconds: float) -> None:
        """Count one batch."""
        self.batches += 1
        self.images += size
        self.infer_seconds += seconds
        self.batch_sizes[size] = self.batch_sizes.get(size, 0) + 1
        per_image = seconds * 1000.0 / max(1, size)
        self.latencies_ms.append(per_image)
        self.latency_sum_ms += per_image * size
        i = 0
        while i < len(LATENCY_BUCKETS_MS) and per_image > LATENCY_BUCKETS_MS[i]:
            i += 1
        self.latency_buckets[i] += size


@dataclass
class _Item:
    image: np.ndarray
    future: Future[Detections]
    confidence: float | None
    classes: Collection[str] | None
    queued: float


class BatchingDetector:
    """Share one ``Detector`` (e.g. an OnnxDetector) between cameras with bounded, dynamic batching.

    Args:
        detector: the model.
        batch: largest batch (CPU: 1 is usually fastest; accelerators gain from more).
        max_wait_ms: how long a batch waits to fill.
        queue_size: bound on waiting images (beyond it submissions are refused).
        confidence: default score threshold of every submission.
        pack: stack waiting wide frames two to an input when the detector is behind.
        workers: inference threads taking from the queue (at most the detector's
            ``parallel`` run at once).
    """

    def __init__(
        self,
        detector: Detector,
        batch: int = 1,
        max_wait_ms: float = 4.0,
        queue_size: int = 64,
        confidence: float | None = None,
        pack: bool = True,
        workers: int = 1,
    ) -> None:
        self.detector = detector
        self.batch = max(1, batch)
        self._packer = detector if pack and isinstance(detector, PackingDetector) else None
        self.pack = self._packer is not None
        self.max_wait_s = max_wait_ms / 1000.0
        self.confidence = confidence
        self.stats = BatchStats()
        self._queue: queue.Queue[_Item] = queue.Queue(maxsize=queue_size)
        self._stop = threading.Event()
        self._stats_lock = threading.Lock()
        self._busy_since: dict[int, float] = {}  # worker → start of its inference in progress
        self.workers = max(1, workers)
        self._threads = [
            threading.Thread(target=self._run, args=(k,), name=f"detector-{k}", daemon=True)
            for k in range(self.workers)
        ]
        for t in self._threads:
            t.start()

    def submit(
        self,
        image: np.ndarray,
        confidence: float | None = None,
        classes: Collection[str] | None = None,
    ) -> Future[Detections] | None:
        """Queue an image; returns a future, or None when the queue is full (frame dropped)."""
        fut: Future[Detections] = Future()
        conf = self.confidence if confidence is None else confidence
        try:
            self._queue.put_nowait(_Item(image, fut, conf, classes, time.monotonic()))
        except queue.Full:
            with self._stats_lock:
                self.stats.refused += 1
            return None
        with self._stats_lock:
            self.stats.submitted += 1
        return fut

    def infer(
        self,
        image: np.ndarray,
        timeout: float = 30.0,
        confidence: float | None = None,
        classes: Collection[str] | None = None,
    ) -> Detections | None:
        """Submit and wait; None when dropped."""
        fut = self.submit(image, confidence, classes)
        if fut is None:
            return None
        return fut.result(timeout=timeout)

    def snapshot(self) -> BatchStats:
        """A consistent copy of the counters (workers update them while metrics are read)."""
        with self._stats_lock:
            st = self.stats
            return replace(
                st,
                batch_sizes=dict(st.batch_sizes),
                latency_buckets=list(st.latency_buckets),
                latencies_ms=deque(st.latencies_ms, maxlen=st.latencies_ms.maxlen),
                wait_ms=deque(st.wait_ms, maxlen=st.wait_ms.maxlen),
            )

    def queue_depth(self) -> int:
        """Images waiting."""
        return self._queue.qsize()

    def busy_seconds(self) -> float:
        """Worker-seconds spent inferring so far (utilisation: over elapsed × ``workers``)."""
        now = time.perf_counter()
        with self._stats_lock:
            extra = sum(now - t for t in self._busy_since.values())
            return self.stats.infer_seconds + extra

    def _run(self, worker: int = 0) -> None:
        while not self._stop.is_set():
            try:
                first = self._queue.get(timeout=0.2)
            except queue.Empty:
                continue
            items = [first]
            deadline = time.monotonic() + self.max_wait_s
            while len(items) < self.batch:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                try:
                    items.append(self._queue.get(timeout=remaining))
                except queue.Empty:
                    break
            if self.pack:
                # the detector is behind: pair up what is already waiting (never wait for it)
                while len(items) < 2 * self.batch:
                    try:
                        items.append(self._queue.get_nowait())
                    except queue.Empty:
                        break
            now = time.monotonic()
            lowest = min((it.confidence for it in items if it.confidence is not None), default=None)
            t0 = time.perf_counter()
            with self._stats_lock:
                for it in items:
                    self.stats.wait_ms.append((now - it.queued) * 1000.0)
                self._busy_since[worker] = t0
            try:
                images = [it.image for it in items]
                if self._packer is not None and len(items) > 1:
                    results = self._packer.infer_packed(images, confidence=lowest)
                    packed = len(items) - len(items) % 2
                else:
                    results = self.detector.infer(images, confidence=lowest)
                    packed = 0
            except Exception as exc:  # surface to every waiting camera, keep serving
                with self._stats_lock:
                    self._busy_since.pop(worker, None)
                    self.stats.errors += 1
                log.exception("detector failed on a batch of %d", len(items))
                for it in items:
                    it.future.set_exception(exc)
                continue
            with self._stats_lock:
                self._busy_since.pop(worker, None)
                self.stats.packed += packed
                self.stats.record(len(items), time.perf_counter() - t0)
            for it, res in zip(items, results, strict=True):
                if (
                    it.confidence is not None
                    and lowest is not None
                    and it.confidence > lowest
                    and len(res)
                ):
                    res = res.filter(res.confidence >= it.confidence)
                if it.classes:
                    res = filter_classes(res, it.classes)
                it.future.set_result(res)

    def close(self) -> None:
        """Stop the worker; waiting submissions are cancelled."""
        self._stop.set()
        for t in self._threads:
            t.join(timeout=5)
        while True:
            try:
                it = self._queue.get_nowait()
            except queue.Empty:
                break
            it.future.cancel()
