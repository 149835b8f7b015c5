"""``shaobing edge run``: the edge node — cameras, sensors, reports → durable outbox → MQTT."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn

from edge.assembly import CameraParts, DetectorHooks, assemble_camera
from edge.detector.batching import BatchingDetector
from edge.detector.protocol import Detector
from edge.detector.runtime import Detections
from edge.events import EventFactory
from edge.evidence import EvidenceStore, save_clip
from edge.extra_models import ExtraModels
from edge.health import SourceWatch
from edge.pipeline_runner import apply_camera_threads, build_detector, emitted_to_event
from edge.sources.video import FrameReader, VideoSource
from shaobing import __version__
from shaobing.config import (
    CameraConfig,
    ConfigError,
    ConfigIssue,
    EdgeConfig,
    load_edge_config,
    split_hostport,
)
from shaobing.contract import CameraStatus, Event, NodeStatus, new_event_id
from shaobing.taxonomy import Taxonomy, default_taxonomy, load_taxonomy

log = logging.getLogger(__name__)


class CameraWorker:
    """One camera: its source (decoded on a reader thread) and engine on their own thread.

    Live sources go through a small dropping buffer (``FrameReader``): when the engine is
    behind, the oldest frames are discarded and counted instead of queueing up. Detection
    goes through the node's shared batching detector asynchronously when there is one.
    Evidence clips finished after an event are sent as an ``update`` of the same incident.
    The engine is built whole from the camera's assembled parts, once the source says
    whether it is live.
    """

    def __init__(self, node: EdgeNode, parts: CameraParts, start: datetime) -> None:
        camera = parts.camera
        self.node = node
        self.camera = camera
        url = camera.url
        if "://" not in url:
            url = str(node.config.resolve(url))
        source_lost_s = camera.source_lost_s or node.config.source_lost_s
        # a misplaced file darkens its own camera (state fault), never the node's other cameras;
        # a lost stream is retried at least twice within source_lost_s, so that a camera back
        # on the network is read again soon after (not after a long backoff)
        self.source = VideoSource(
            url,
            loop=camera.loop,
            realtime=camera.realtime,
            stall_timeout_s=camera.stall_timeout_s,
            backoff_max_s=min(30.0, max(1.0, source_lost_s / 2.0)),
            missing_ok=True,
            decode_threads=node.decode_threads,
        )
        self.watch = SourceWatch(camera.id, source_lost_s)
        if self.source.stats.state == "fault":
            log.error("camera %s: %s", camera.id, self.source.stats.last_error)
        # live: detect asynchronously and skip samples while busy (never fall behind);
        # an unpaced file waits for every sample instead, so nothing is skipped
        self.live = self.source.is_network or camera.realtime
        self.engine = parts.build(start, node.detector_hooks(self.live))
        self.reader = FrameReader(self.source, node.stop_event, maxsize=4, drop=self.live)
        self.thread = threading.Thread(target=self._run, name=f"camera-{camera.id}", daemon=True)
        self.failed: str | None = None
        self._clip_events: dict[int, Event] = {}
        self._swap = threading.Lock()  # the engine is replaced only between two frames

    def start(self) -> None:
        """Start reading."""
        self.thread.start()

    def _emit(self, ems: list[Any]) -> None:
        for em in ems:
            event, blobs = emitted_to_event(em, self.camera, self.node.factory, self.node.evidence)
            self.node.submit(event, blobs)
            if em.clip is not None:
                self._clip_events[em.clip] = event
                while len(self._clip_events) > 32:
                    self._clip_events.pop(next(iter(self._clip_events)))
        for clip in self.engine.finished_clips():
            original = self._clip_events.pop(clip.tag, None)
            if original is None or self.node.evidence is None:
                continue
            try:
                ev, data = save_clip(self.node.evidence, clip, self.engine.options.clip_fps)
            except (OSError, ValueError) as exc:
                log.warning("camera %s: clip not saved: %s", self.camera.id, exc)
                continue
            update = original.model_copy(
                update={
                    "id": new_event_id(),
                    "state": "update",
                    "evidence": [ev],
                    "related": [original.id],
                    "detected_at": datetime.now(UTC),
                }
            )
            self.node.submit(update, {ev.id: data})

    def check_source(self) -> None:
        """Raise or clear the camera's ``source_lost`` / ``unreachable`` fault (node loop)."""
        st = self.source.stats
        if st.state == "stopped" and self.failed is None:
            return  # a file that ended, or the node stopping: not blind
        findings = self.watch.check(
            time.monotonic(),
            datetime.now(UTC),
            st.started_mono,
            st.last_frame_mono,
            self.failed or st.last_error,
        )
        for finding in findings:
            event = self.node.factory.build(finding, camera=self.camera, pipeline="source_watch")
            self.node.submit(event, {})

    @property
    def fault(self) -> str | None:
        """The camera's open fault: the source's (blind) first, else camera health's."""
        return self.watch.fault or self.engine.health_state

    def reconfigure(self, camera: CameraConfig) -> None:
        """New zones or pipeline options for this camera, in effect from the next frame.

        A new engine is assembled from ``camera``, with the same detector hooks, and takes
        over the running one's state (``CameraEngine.adopt``); the swap happens between two
        frames.
        """
        node = self.node
        engine = node.assemble(camera).build(self.engine.start, node.detector_hooks(self.live))
        with self._swap:
            engine.adopt(self.engine)
            self.engine = engine
            self.camera = camera

    def _run(self) -> None:
        last_t = 0.0
        try:
            for frame in self.reader:
                last_t = frame.t
                with self._swap:
                    found = self.engine.process(frame)
                self._emit(found)
        except Exception as exc:
            self.failed = str(exc)
            log.exception("camera %s stopped", self.camera.id)
        if not self.node.stop_event.is_set():
            # the source ended by itself (a file without loop): close what is open. A node that
            # is merely stopping keeps its situations open; their state is saved for the restart.
            self._emit(self.engine.flush(last_t))

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
        return CameraStatus(
            id=self.camera.id,
            fps_in=round(st.fps(), 2),
            fps_detect=round(self.engine.counters.detect_fps(), 2),
            state=state,  # type: ignore[arg-type]
            reconnects=st.reconnects,
            errors=st.errors,
            frames_corrupt=st.frames_corrupt,
            health=self.fault,
        )


class EdgeNode:
    """An edge node built from its config; ``run`` blocks until stopped."""

    def __init__(self, config: EdgeConfig) -> None:
        from edge.outbox import Outbox
        from edge.publisher import Publisher

        self.config = config
        self.config_path: Path | None = None  # the YAML /setup writes back to (edge run sets it)
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
        from edge.verdicts import VerdictBook

        self.verdicts = VerdictBook()
        self.publisher = Publisher(
            config.node_id,
            config.broker,
            self.outbox,
            status=self.status,
            max_inflight=config.outbox.max_inflight,
            ack_timeout_s=config.outbox.ack_timeout_s,
            status_interval_s=config.status_interval_s,
            evidence_max_bytes=config.evidence.mqtt_max_bytes,
            ack_key=_ack_key(config),
            on_verdict=self._on_verdict,
            base_dir=config.base_dir,
            source=config.config_file,
        )
        _check_report_auth(config)
        self.batcher: BatchingDetector | None = None
        self._own_detector: Detector | None = None  # report photos on a node without cameras
        self._own_detector_tried = False
        # camera + sensor fusion links every finding when the node has sensors
        self.factory = EventFactory(
            config, model_name=config.detector.model, linker=self._link if config.sensors else None
        )
        self._fusion_lock = threading.Lock()
        self.sensor_rules: Any = None
        self.fusion: Any = None
        self.sensor_input: Any = None
        from edge.sensors.inputs import ReplayStats

        self.replay_stats = ReplayStats()  # live counters of the sensor replay (metrics)
        self.http_sensor_refused: Counter[str] = Counter()
        if config.sensors:
            from pipelines.fusion import Fusion
            from pipelines.sensor_rules import SensorRules

            self.sensor_rules = SensorRules(
                config.sensors, grid_id=config.grid_id, address=config.address
            )
            self.fusion = Fusion(config.sensors, window_s=120)
            self._sensor_lock = threading.Lock()
        self.events_submitted = 0
        self._submit_lock = threading.Lock()
        start = datetime.now(UTC)
        self.extra_models = ExtraModels(config)
        # every camera is assembled first: the shared detector starts only if one needs it
        parts = [self.assemble(cam) for cam in config.cameras if cam.enabled]
        self.decode_threads = apply_camera_threads(len(parts))
        if any(p.needs_detections for p in parts):
            self.batcher = self._shared_detector(parts)
        self.cameras = [CameraWorker(self, p, start) for p in parts]
        self.state_path = config.resolve(config.state_path)
        self._load_state()
        self.http_server: Any = None

    def assemble(self, camera: CameraConfig) -> CameraParts:
        """Everything ``camera``'s engine is made of (its extra models shared node-wide)."""
        return assemble_camera(
            self.config, camera, self.taxonomy, offline=False, extra_models=self.extra_models
        )

    def _shared_detector(self, parts: list[CameraParts]) -> BatchingDetector:
        """The detector the cameras share, batching what they submit."""
        config = self.config
        detector: Detector = build_detector(config)
        return BatchingDetector(
            detector,
            config.detector.batch,
            config.detector.max_wait_ms,
            confidence=min(p.detect_confidence for p in parts),
            queue_size=len(parts) + 4,
            workers=detector.parallel,
        )

    def detector_hooks(self, live: bool) -> DetectorHooks:
        """How a camera's engine reaches the shared detector: waiting for each answer, and
        for a live source also without waiting (``submit``); none without a detector."""
        batcher = self.batcher
        if batcher is None:
            return DetectorHooks()

        def detect(_camera_id: str, image: Any) -> Detections:
            result = batcher.infer(image)
            return result if result is not None else Detections.empty()

        if not live:
            return DetectorHooks(detect=detect)
        return DetectorHooks(detect=detect, submit=lambda _cam, image: batcher.submit(image))

    def _photo_detector(self) -> Detector | None:
        """The object detector for report photos: the cameras' one, else built on first use."""
        if self.batcher is not None:
            return self.batcher.detector
        if not self._own_detector_tried:
            self._own_detector_tried = True
            try:
                self._own_detector = build_detector(self.config, cameras=1)
            except (OSError, ValueError) as exc:
                log.warning("report photos: no detector (%s); photo hints use colour only", exc)
        return self._own_detector

    def _load_state(self) -> None:
        """Restore pipeline state (parked vehicles …) saved by a previous run."""
        import json

        try:
            saved = json.loads(self.state_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return
        except (OSError, ValueError) as exc:
            log.warning("pipeline state %s unreadable, starting fresh: %s", self.state_path, exc)
            return
        try:
            saved_at: datetime | None = datetime.fromisoformat(saved["saved_at"])
        except (KeyError, TypeError, ValueError):
            saved_at = None
        for cam in self.cameras:
            state = saved.get("cameras", {}).get(cam.camera.id)
            if state:
                try:
                    # the downtime is a gap the pipelines are told about, not an all-clear
                    cam.engine.load_state(state, saved_at)
                except (KeyError, TypeError, ValueError) as exc:
                    log.warning(
                        "camera %s: saved pipeline state not usable: %s", cam.camera.id, exc
                    )
        if self.sensor_rules is not None and saved.get("sensors"):
            try:
                self.sensor_rules.load_state(saved["sensors"])
            except (KeyError, TypeError, ValueError) as exc:
                log.warning("saved sensor state not usable: %s", exc)
        self.verdicts.load_state(saved.get("verdicts"))

    def apply_camera(self, camera: CameraConfig) -> None:
        """Put a changed camera config (from ``/setup``) into effect without a restart."""
        worker = next((w for w in self.cameras if w.camera.id == camera.id), None)
        if worker is None:
            raise KeyError(f"camera {camera.id!r} is not running on this node")
        worker.reconfigure(camera)
        cameras = [camera if c.id == camera.id else c for c in self.config.cameras]
        self.config = self.config.model_copy(update={"cameras": cameras})

    def _on_verdict(self, verdict: Any) -> None:
        """A person's verdict on one of this node's alarms (kept per camera and zone)."""
        self.verdicts.record(verdict)
        log.info(
            "%s/%s: alarm judged false (%s)%s",
            verdict.device_id,
            verdict.zone or "-",
            verdict.reason,
            f": {verdict.note}" if verdict.note else "",
        )
        self.save_state()

    def save_state(self) -> None:
        """Write pipeline state atomically (called periodically and at stop)."""
        import json

        data: dict[str, Any] = {"cameras": {}, "saved_at": datetime.now(UTC).isoformat()}
        for cam in self.cameras:
            try:
                state = cam.engine.state()
            except Exception:  # a pipeline's state must never stop the node
                log.exception("camera %s: pipeline state not saved", cam.camera.id)
                continue
            if state:
                data["cameras"][cam.camera.id] = state
        if self.sensor_rules is not None:
            with self._sensor_lock:
                data["sensors"] = self.sensor_rules.state()
        verdicts = self.verdicts.state()
        if verdicts:
            data["verdicts"] = verdicts
        if not data["cameras"] and "sensors" not in data and not verdicts:
            return
        try:
            self.state_path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.state_path.with_suffix(".tmp")
            tmp.write_text(json.dumps(data, ensure_ascii=False, default=str), encoding="utf-8")
            tmp.replace(self.state_path)
        except OSError as exc:
            log.warning("pipeline state not saved to %s: %s", self.state_path, exc)

    def _link(self, finding: Any, camera_id: str | None) -> tuple[tuple[str, ...], str]:
        with self._fusion_lock:
            related, severity = self.fusion.link(finding, camera_id, finding.occurred_at)
        return related, severity

    def on_reading(self, reading: Any, received_at: datetime) -> None:
        """A sensor reading from MQTT, HTTP or a replay: run the rules, emit what they find."""
        with self._sensor_lock:
            findings = self.sensor_rules.update(reading, received_at)
        self._emit_sensor_findings(findings)

    def _emit_sensor_findings(self, findings: list[Any]) -> None:
        for finding in findings:
            event = self.factory.build(finding, camera=None, pipeline="sensor_rules")
            self.submit(event, {})

    def _sensor_loop(self) -> None:
        while not self.stop_event.wait(2.0):
            with self._sensor_lock:
                findings = self.sensor_rules.tick(datetime.now(UTC))
            self._emit_sensor_findings(findings)

    def _replay(self, path: Path) -> None:
        from edge.sensors.inputs import replay_csv

        try:
            stats = replay_csv(
                path, self.on_reading, realtime=True, stop=self.stop_event, stats=self.replay_stats
            )
            log.info("sensor replay %s finished: %s", path, stats)
        except (OSError, ValueError) as exc:
            log.error("sensor replay %s failed: %s", path, exc)

    def _start_sensors(self) -> None:
        if self.sensor_rules is None:
            return
        from edge.sensors.inputs import MqttSensorSubscriber

        self.sensor_input = MqttSensorSubscriber(
            self.config.node_id,
            self.config.broker,
            self.sensor_rules.sensor_ids,
            self.on_reading,
            base_dir=self.config.base_dir,
            source=self.config.config_file,
        )
        self.sensor_input.start()
        threading.Thread(target=self._sensor_loop, name="sensor-rules", daemon=True).start()
        if self.config.sensor_replay:
            path = self.config.resolve(self.config.sensor_replay)
            threading.Thread(
                target=self._replay, args=(path,), name="sensor-replay", daemon=True
            ).start()

    def submit(self, event: Event, blobs: dict[str, bytes]) -> None:
        """Commit an event (and its evidence) to the outbox, then nudge the publisher."""
        with self._submit_lock:
            self.outbox.put(event, blobs)
            self.events_submitted += 1
        if self.fusion is not None:
            with self._fusion_lock:
                self.fusion.note_event(event)
        log.info("event %s %s %s: %s", event.id, event.type, event.severity, event.summary)
        self.publisher.wake()

    def status(self) -> NodeStatus:
        """The node's status message."""
        judged = self.verdicts.per_device()
        return NodeStatus(
            node_id=self.config.node_id,
            online=True,
            version=__version__,
            cameras=[
                c.status().model_copy(update={"false_alarms": judged.get(c.camera.id, 0)})
                for c in self.cameras
            ],
            sensors=self.sensor_rules.sensor_statuses() if self.sensor_rules is not None else [],
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
        try:
            from edge.reports.endpoint import build_router, report_body_limit

            app.include_router(
                build_router(self.config, self.submit, detector=self._photo_detector)
            )
            from shaobing.http_limits import BodyLimit

            # bodies refused from their Content-Length, or while they stream, not after
            app.add_middleware(
                BodyLimit,
                default_limit=64 * 1024,
                path_limits=[("/api/v1/reports", report_body_limit(self.config))],
            )
        except ImportError as exc:  # the voice extra is not installed: no report endpoint
            log.warning("report endpoint disabled: %s (install the voice extra)", exc)
        from edge.setup import build_setup_router

        app.include_router(build_setup_router(self))
        if self.sensor_rules is not None:
            from edge.sensors.inputs import build_sensor_router

            app.include_router(
                build_sensor_router(
                    self.on_reading,
                    known_devices=self.sensor_rules.sensor_ids,
                    counters=self.http_sensor_refused,
                )
            )
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
        self._start_sensors()
        for cam in self.cameras:
            cam.start()
        print(
            f"shaobing edge: node {self.config.node_id} running {len(self.cameras)} camera(s), broker {self.config.broker.url}",
            file=sys.stderr,
            flush=True,
        )
        deadline = time.monotonic() + duration if duration else None
        last_save = time.monotonic()
        try:
            while not self.stop_event.is_set():
                if deadline and time.monotonic() >= deadline:
                    break
                if (
                    self.cameras
                    # a camera that failed (a file that cannot be read) is a fault to report,
                    # not the end of the node's work
                    and all(not c.thread.is_alive() and c.failed is None for c in self.cameras)
                    and not self.config.sensors
                ):
                    # every source ended (files without loop): give the outbox time to drain
                    if self.outbox.depth() == 0:
                        break
                self.stop_event.wait(0.5)
                for cam in self.cameras:
                    try:
                        cam.check_source()
                    except Exception:  # the watch must never stop the node; logged, goes on
                        log.exception("camera %s: source check failed", cam.camera.id)
                if time.monotonic() - last_save >= 10.0:
                    last_save = time.monotonic()
                    self.save_state()
        finally:
            self.stop()

    def stop(self) -> None:
        """Stop cameras, flush, publish offline status, close."""
        self.stop_event.set()
        for cam in self.cameras:
            cam.thread.join(timeout=10)
        self.save_state()
        if self.http_server is not None:
            self.http_server.should_exit = True
        if self.sensor_input is not None:
            self.sensor_input.stop()
        self.publisher.stop()
        if self.batcher is not None:
            self.batcher.close()
        self.outbox.close()


def run_command(args: argparse.Namespace) -> int:
    """``shaobing edge run -c FILE``."""
    try:
        from pipelines.registry import options_models
        from pipelines.sensor_rules import threshold_issues

        cfg = load_edge_config(
            Path(args.config), options_models(), [lambda c: threshold_issues(c.sensors)]
        )
    except ConfigError as exc:
        for issue in exc.issues:
            print(str(issue), file=sys.stderr)
        return 2
    from edge.memory import limit_malloc_arenas

    limit_malloc_arenas()  # before the camera threads start (see edge/memory.py)
    try:
        node = EdgeNode(cfg)
    except ConfigError as exc:
        for issue in exc.issues:
            print(str(issue), file=sys.stderr)
        return 2
    except (OSError, ValueError) as exc:
        print(f"shaobing edge run: cannot start: {exc}", file=sys.stderr)
        return 1
    node.config_path = Path(args.config)
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: node.stop_event.set())
    node.run(args.duration)
    return 0


def _ack_key(config: EdgeConfig) -> str | None:
    """The node's ack key; a named env var that is unset is a config error, not 'no key'."""
    if config.ack_key_env and not os.environ.get(config.ack_key_env) and not config.ack_key:
        _config_error(
            config,
            "ack_key_env",
            f"expected the environment variable {config.ack_key_env} to hold this node's "
            "ack key (shaobing hub node-key NODE), found it unset",
        )
    key = config.ack_key_value()
    if key is None:
        log.warning(
            "%s: acks are not verified (no ack_key): anyone who may publish on this "
            "node's ack topic can delete its outbox",
            config.node_id,
        )
    return key


def _check_report_auth(config: EdgeConfig) -> None:
    """A node that takes reports beyond loopback must be able to tell who is talking."""
    if not config.http:
        return
    host, _port = split_hostport(config.http, "http")
    loopback = host in ("localhost", "::1") or host.startswith("127.")
    if config.http_token_env and not config.http_token_value():
        _config_error(
            config,
            "http_token_env",
            f"expected the environment variable {config.http_token_env} to hold the node's "
            "report token, found it unset",
        )
    if loopback or config.http_token_value() or config.ack_key_value():
        return
    _config_error(
        config,
        "http",
        f"expected a token for reports on {config.http} (beyond loopback): set "
        "http_token_env (a node-level token) or ack_key_env (checks worker tokens from "
        "`shaobing hub worker-token`), or listen on 127.0.0.1",
    )


def _config_error(config: EdgeConfig, path: str, message: str) -> NoReturn:
    """Stop with a config error naming the key (found after the file was loaded)."""
    raise ConfigError(
        [
            ConfigIssue(
                file=str(config.resolve("edge config")), line=None, path=path, message=message
            )
        ]
    )
