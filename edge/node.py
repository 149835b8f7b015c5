"""``shaobing edge run``: the edge node — cameras, sensors, reports → durable outbox → MQTT."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from edge.engine import CameraEngine
from edge.events import EventFactory
from edge.evidence import EvidenceStore
from edge.pipeline_runner import emitted_to_event
from edge.sources.video import VideoSource
from shaobing import __version__
from shaobing.config import CameraConfig, ConfigError, EdgeConfig, load_edge_config, split_hostport
from shaobing.contract import CameraStatus, Event, NodeStatus
from shaobing.taxonomy import Taxonomy, default_taxonomy, load_taxonomy

log = logging.getLogger(__name__)


class CameraWorker:
    """One camera: its source and engine on their own thread."""

    def __init__(self, node: EdgeNode, camera: CameraConfig, engine: CameraEngine) -> None:
        self.node = node
        self.camera = camera
        self.engine = engine
        url = camera.url
        if "://" not in url:
            url = str(node.config.resolve(url))
        self.source = VideoSource(
            url, loop=camera.loop, realtime=camera.realtime, stall_timeout_s=camera.stall_timeout_s
        )
        self.thread = threading.Thread(target=self._run, name=f"camera-{camera.id}", daemon=True)
        self.failed: str | None = None

    def start(self) -> None:
        """Start reading."""
        self.thread.start()

    def _run(self) -> None:
        last_t = 0.0
        try:
            for frame in self.source.frames(self.node.stop_event):
                last_t = frame.t
                for em in self.engine.process(frame):
                    event, blobs = emitted_to_event(
                        em, self.camera, self.node.factory, self.node.evidence
                    )
                    self.node.submit(event, blobs)
        except Exception as exc:
            self.failed = str(exc)
            log.exception("camera %s stopped", self.camera.id)
        for em in self.engine.flush(last_t):
            event, blobs = emitted_to_event(em, self.camera, self.node.factory, self.node.evidence)
            self.node.submit(event, blobs)

    def status(self) -> CameraStatus:
        """This camera's entry in the node status."""
        st = self.source.stats
        state = (
            st.state
            if st.state in ("starting", "online", "reconnecting", "offline", "fault", "stopped")
            else "fault"
        )
        if self.failed:
            state = "fault"
        walls = self.engine.counters
        return CameraStatus(
            id=self.camera.id,
            fps_in=round(st.fps(), 2),
            fps_detect=round(st.fps() * (walls.frames_detected / max(1, walls.frames_seen)), 2),
            state=state,  # type: ignore[arg-type]
            reconnects=st.reconnects,
            errors=st.errors,
            frames_corrupt=st.frames_corrupt,
        )


class EdgeNode:
    """An edge node built from its config; ``run`` blocks until stopped."""

    def __init__(self, config: EdgeConfig) -> None:
        from edge.outbox import Outbox
        from edge.publisher import Publisher

        self.config = config
        self.stop_event = threading.Event()
        self.taxonomy: Taxonomy = (
            load_taxonomy(config.resolve(config.taxonomy))
            if config.taxonomy
            else default_taxonomy()
        )
        self.outbox = Outbox(
            config.resolve(config.outbox.path),
            max_bytes=config.outbox.max_bytes,
            ack_timeout_s=config.outbox.ack_timeout_s,
        )
        self.evidence = EvidenceStore(
            config.resolve(config.evidence.dir),
            config.evidence.max_bytes,
            config.evidence.max_age_days,
        )
        self.publisher = Publisher(
            config.node_id,
            config.broker,
            self.outbox,
            status=self.status,
            max_inflight=config.outbox.max_inflight,
            ack_timeout_s=config.outbox.ack_timeout_s,
            status_interval_s=config.status_interval_s,
            evidence_max_bytes=config.evidence.mqtt_max_bytes,
        )
        self.batcher: Any = None
        self.factory = EventFactory(config, model_name=config.detector.model)
        self.cameras: list[CameraWorker] = []
        self.events_submitted = 0
        self._submit_lock = threading.Lock()
        start = datetime.now(UTC)
        enabled = [c for c in config.cameras if c.enabled]
        engines = [
            CameraEngine(config, cam, None, self.taxonomy, start, config.detector.confidence)
            for cam in enabled
        ]
        if any(e.needs_detections for e in engines):
            from edge.detector.batching import BatchingDetector
            from edge.detector.runtime import Detections
            from edge.pipeline_runner import build_detector

            low = max(0.05, config.detector.confidence * 0.4)
            self.batcher = BatchingDetector(
                build_detector(config),
                config.detector.batch,
                config.detector.max_wait_ms,
                confidence=low,
            )
            batcher = self.batcher

            def detect(_camera_id: str, image: Any) -> Detections:
                result = batcher.infer(image)
                return result if result is not None else Detections.empty()

            for e in engines:
                e.detect = detect
        for cam, engine in zip(enabled, engines, strict=True):
            self.cameras.append(CameraWorker(self, cam, engine))
        self.http_server: Any = None

    def submit(self, event: Event, blobs: dict[str, bytes]) -> None:
        """Commit an event (and its evidence) to the outbox, then nudge the publisher."""
        with self._submit_lock:
            self.outbox.put(event, blobs)
            self.events_submitted += 1
        log.info("event %s %s %s: %s", event.id, event.type, event.severity, event.summary)
        self.publisher.wake()

    def status(self) -> NodeStatus:
        """The node's status message."""
        return NodeStatus(
            node_id=self.config.node_id,
            online=True,
            version=__version__,
            cameras=[c.status() for c in self.cameras],
            sensors=[],
            outbox_depth=self.outbox.depth(),
            outbox_dropped=self.outbox.dropped,
            ts=datetime.now(UTC),
        )

    def _start_http(self) -> None:
        if not self.config.http:
            return
        import uvicorn

        from edge.http import create_edge_app

        host, port = split_hostport(self.config.http, "http")
        app = create_edge_app(self)
        server = uvicorn.Server(
            uvicorn.Config(
                app, host=host, port=port, log_level="warning", lifespan="off", access_log=False
            )
        )
        server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
        self.http_server = server
        threading.Thread(target=server.run, name="edge-http", daemon=True).start()

    def run(self, duration: float | None = None) -> None:
        """Start everything; block until ``stop()`` or ``duration`` seconds."""
        self.publisher.start()
        self._start_http()
        for cam in self.cameras:
            cam.start()
        print(
            f"shaobing edge: node {self.config.node_id} running {len(self.cameras)} camera(s), broker {self.config.broker.url}",
            file=sys.stderr,
            flush=True,
        )
        deadline = time.monotonic() + duration if duration else None
        try:
            while not self.stop_event.is_set():
                if deadline and time.monotonic() >= deadline:
                    break
                if (
                    self.cameras
                    and all(not c.thread.is_alive() for c in self.cameras)
                    and not self.config.sensors
                ):
                    # every source ended (files without loop): give the outbox time to drain
                    if self.outbox.depth() == 0:
                        break
                self.stop_event.wait(0.5)
        finally:
            self.stop()

    def stop(self) -> None:
        """Stop cameras, flush, publish offline status, close."""
        self.stop_event.set()
        for cam in self.cameras:
            cam.thread.join(timeout=10)
        if self.http_server is not None:
            self.http_server.should_exit = True
        self.publisher.stop()
        if self.batcher is not None:
            self.batcher.close()
        self.outbox.close()


def run_command(args: argparse.Namespace) -> int:
    """``shaobing edge run -c FILE``."""
    try:
        from pipelines.registry import options_models

        cfg = load_edge_config(Path(args.config), options_models())
    except ConfigError as exc:
        for issue in exc.issues:
            print(str(issue), file=sys.stderr)
        return 2
    try:
        node = EdgeNode(cfg)
    except (OSError, ValueError) as exc:
        print(f"shaobing edge run: cannot start: {exc}", file=sys.stderr)
        return 1
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: node.stop_event.set())
    node.run(args.duration)
    return 0
