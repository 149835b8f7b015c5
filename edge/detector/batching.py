"""Dynamic batching in front of one shared detector.

Cameras submit frames; a single worker thread takes up to ``batch`` frames, waiting at
most ``max_wait_ms`` for the batch to fill, runs one inference and hands each camera its
result. The submit queue is bounded: when the detector cannot keep up, the newest
submission is refused (counted) instead of building a backlog — a camera then simply
skips detection on that frame.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field

import numpy as np

from edge.detector.runtime import Detections, OnnxDetector

log = logging.getLogger(__name__)


@dataclass
class BatchStats:
    """Counters for metrics."""

    submitted: int = 0
    refused: int = 0
    batches: int = 0
    images: int = 0
    infer_seconds: float = 0.0
    batch_sizes: dict[int, int] = field(default_factory=dict)
    latencies_ms: list[float] = field(default_factory=list)

    def record(self, size: int, seconds: float) -> None:
        """Count one batch."""
        self.batches += 1
        self.images += size
        self.infer_seconds += seconds
        self.batch_sizes[size] = self.batch_sizes.get(size, 0) + 1
        self.latencies_ms.append(seconds * 1000.0 / max(1, size))
        if len(self.latencies_ms) > 2048:
            del self.latencies_ms[:1024]


class BatchingDetector:
    """Share one OnnxDetector between cameras with bounded, dynamic batching."""

    def __init__(self, detector: OnnxDetector, batch: int = 1, max_wait_ms: float = 4.0, queue_size: int = 64, confidence: float | None = None) -> None:
        self.detector = detector
        self.batch = max(1, batch)
        self.max_wait_s = max_wait_ms / 1000.0
        self.confidence = confidence
        self.stats = BatchStats()
        self._queue: queue.Queue[tuple[np.ndarray, Future[Detections]]] = queue.Queue(maxsize=queue_size)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="detector", daemon=True)
        self._thread.start()

    def submit(self, image: np.ndarray) -> Future[Detections] | None:
        """Queue an image; returns a future, or None when the queue is full (frame dropped)."""
        fut: Future[Detections] = Future()
        try:
            self._queue.put_nowait((image, fut))
        except queue.Full:
            self.stats.refused += 1
            return None
        self.stats.submitted += 1
        return fut

    def infer(self, image: np.ndarray, timeout: float = 30.0) -> Detections | None:
        """Submit and wait; None when dropped."""
        fut = self.submit(image)
        if fut is None:
            return None
        return fut.result(timeout=timeout)

    def queue_depth(self) -> int:
        """Images waiting."""
        return self._queue.qsize()

    def _run(self) -> None:
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
            t0 = time.perf_counter()
            try:
                results = self.detector.infer([img for img, _ in items], confidence=self.confidence)
            except Exception as exc:  # surface to every waiting camera, keep serving
                log.exception("detector failed on a batch of %d", len(items))
                for _, fut in items:
                    fut.set_exception(exc)
                continue
            self.stats.record(len(items), time.perf_counter() - t0)
            for (_, fut), res in zip(items, results, strict=True):
                fut.set_result(res)

    def close(self) -> None:
        """Stop the worker."""
        self._stop.set()
        self._thread.join(timeout=5)
