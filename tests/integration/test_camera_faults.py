"""A blind camera is a fault, not an all-clear (issue 19, item 1).

* A live HTTP stream of a fire (ffmpeg on loopback, as in test_rtsp_source.py) is cut for
  35 s and restored: one ``device_fault`` (``source_lost``) raised and cleared, the fire goes
  on under its incident key, nothing ``cleared``. Events are read from a real mosquitto.
* A camera whose URL never opens: a ``device_fault`` (``unreachable``) reaches the hub
  within ``source_lost_s`` + 10 s.
* Two vehicles parked at a kerb, then a 3-minute outage: the media clock of the real clip
  jumps by 180 s (a 3-minute wall-clock wait would cost the suite 3 minutes): no ``left``.
* A node restart is a gap: pipeline state saved and loaded (JSON, as the node does), a
  burning fire and the parked vehicles go on under their keys.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest

from edge.engine import CameraEngine, EngineOptions
from edge.http import render_metrics
from edge.node import EdgeNode
from edge.pipeline_runner import build_detector
from edge.sources.video import Frame, VideoSource
from pipelines.base import Finding
from pipelines.registry import options_models
from shaobing import topics
from shaobing.config import CameraConfig, EdgeConfig, load_edge_config
from shaobing.paths import assets_dir, project_root
from shaobing.taxonomy import default_taxonomy
from tests.support.mosquitto import Mosquitto, free_port
from tests.support.processes import Proc, http_json, start_hub, wait_for, write_yaml

VIDEOS = assets_dir() / "video"
FIRE = VIDEOS / "fire_indoor_room.mp4"
T0 = datetime(2026, 7, 1, 3, 0, tzinfo=UTC)

needs_ffmpeg = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs ffmpeg")


# --------------------------------------------------------------------------- live stream cut


def serve(video: Path, port: int) -> subprocess.Popen[bytes]:
    """ffmpeg serving ``video`` in a loop as MPEG-TS over HTTP (one player) on loopback."""
    cmd = [
        "ffmpeg", "-nostdin", "-loglevel", "error", "-re", "-fflags", "+genpts", "-stream_loop", "-1",
        "-i", str(video), "-c", "copy", "-f", "mpegts", "-listen", "1", f"http://127.0.0.1:{port}/cam",
    ]  # fmt: skip
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


class EventLog:
    """Events a node publishes, read from the broker (de-duplicated by id: no hub acks them)."""

    def __init__(self, broker: Mosquitto, node_id: str) -> None:
        self.events: dict[str, dict[str, Any]] = {}
        self.arrived: dict[str, float] = {}
        self._lock = threading.Lock()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"watch-{node_id}")
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", broker.port)
        self.client.subscribe(topics.event_topic(node_id), qos=1)
        self.client.loop_start()

    def _on_message(self, _c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
        event = json.loads(msg.payload)
        with self._lock:
            if event["id"] not in self.events:
                self.events[event["id"]] = event
                self.arrived[event["id"]] = time.monotonic()

    def of(self, type_: str, state: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            found = sorted(self.events.values(), key=lambda e: self.arrived[e["id"]])
        return [e for e in found if e["type"] == type_ and (state is None or e["state"] == state)]

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def _summary(log: EventLog) -> list[str]:
    return [
        f"{e['type']}/{e['state']} {e['incident_key']} {e['summary']}"
        for e in sorted(log.events.values(), key=lambda e: log.arrived[e["id"]])
    ]


@needs_ffmpeg
@pytest.mark.timeout(150)
def test_live_fire_stream_cut_for_35s_is_one_fault_and_the_same_fire(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    port = free_port()
    servers: list[subprocess.Popen[bytes]] = [serve(FIRE, port)]
    path = write_yaml(
        tmp_path / "edge.yaml",
        {
            "node_id": "outage-01",
            "broker": {"url": mosquitto.url},
            "http": None,
            "outbox": {"path": str(tmp_path / "outbox.sqlite"), "ack_timeout_s": 30},
            "evidence": {"dir": str(tmp_path / "evidence")},
            "state_path": str(tmp_path / "state.json"),
            "cameras": [  # source_lost_s: the default, 20 s
                {
                    "id": "cam-fire",
                    "url": f"http://127.0.0.1:{port}/cam",
                    "detect_fps": 5,
                    "stall_timeout_s": 5,
                    "clips": False,
                    "pipelines": {"smoke_fire": {}},
                }
            ],
        },
    )
    cfg = load_edge_config(path, options_models())
    log = EventLog(mosquitto, cfg.node_id)
    node = EdgeNode(cfg)
    runner = threading.Thread(target=node.run, daemon=True)
    runner.start()
    cam = node.cameras[0]
    try:
        wait_for(lambda: log.of("fire", "active"), 40, "the fire on the live stream", 0.2)
        assert log.of("device_fault") == [], _summary(log)

        servers[0].kill()  # the camera's stream is cut mid-fire …
        servers[0].wait(5)
        t_cut = time.monotonic()
        fault = wait_for(lambda: log.of("device_fault", "active"), 30, "the blind camera's fault")
        assert time.monotonic() - t_cut >= 19.0  # not before source_lost_s
        assert fault[0]["attributes"]["fault"] == "source_lost"
        assert fault[0]["source"]["device_id"] == "cam-fire"
        assert fault[0]["attributes"]["error"]
        # status and metrics agree with the fault while the camera is blind
        assert cam.status().health == "source_lost"
        assert 'shaobing_camera_healthy{camera="cam-fire"} 0' in render_metrics(node)
        time.sleep(max(0.0, 35.0 - (time.monotonic() - t_cut)))

        servers.append(serve(FIRE, port))  # … and restored after 35 s
        t_back = time.monotonic()
        cleared = wait_for(
            lambda: log.of("device_fault", "cleared"), 25, "the fault cleared after the return"
        )
        assert cleared[0]["incident_key"] == fault[0]["incident_key"]
        assert cleared[0]["attributes"]["duration_s"] >= 34.0
        assert cam.status().health is None
        assert 'shaobing_camera_healthy{camera="cam-fire"} 1' in render_metrics(node)
        # past the fire's clear window (10 s) counted from the first frame back
        time.sleep(max(0.0, 14.0 - (time.monotonic() - t_back)))
    finally:
        node.stop_event.set()
        runner.join(30)
        log.close()
        for p in servers:
            if p.poll() is None:
                p.send_signal(signal.SIGKILL)
            p.wait(5)
    summary = _summary(log)
    assert len(log.of("device_fault", "active")) == 1, summary
    assert len(log.of("device_fault", "cleared")) == 1, summary
    assert log.of("fire", "cleared") == [] and log.of("smoke", "cleared") == [], summary
    fire_keys = {e["incident_key"] for e in log.of("fire")}
    assert len(fire_keys) == 1, summary  # one fire, one incident
    assert node.cameras[0].engine.counters.gaps >= 1


# --------------------------------------------------------------------------- dead camera


@pytest.mark.timeout(120)
def test_camera_that_never_opens_reaches_the_hub_as_a_fault(tmp_path: Path) -> None:
    with Mosquitto(workdir=tmp_path / "broker") as broker:
        hub_port = free_port()
        hub = start_hub(tmp_path, broker.url, hub_port)
        dead = free_port()  # nothing listens here
        cfg = write_yaml(
            tmp_path / "edge.yaml",
            {
                "node_id": "dead-cam-01",
                "grid_id": "beibei-tianfu-03",
                "broker": {"url": broker.url},
                "http": None,
                "outbox": {"path": str(tmp_path / "outbox.sqlite"), "ack_timeout_s": 3},
                "evidence": {"dir": str(tmp_path / "evidence")},
                "state_path": str(tmp_path / "state.json"),
                "cameras": [
                    {
                        "id": "cam-gone",
                        "url": f"http://127.0.0.1:{dead}/cam",
                        "source_lost_s": 5,
                        "pipelines": {"smoke_fire": {}},
                    }
                ],
            },
        )
        node = Proc(["edge", "run", "-c", str(cfg)], tmp_path / "edge.log")
        base = f"http://127.0.0.1:{hub_port}"
        try:
            wait_for(lambda: "running" in node.output(), 30, "the node to start")
            t_start = time.monotonic()

            def faults() -> list[dict[str, Any]]:
                items = http_json(base + "/api/v1/events?type=device_fault")["items"]
                return [e for e in items if e["type"] == "device_fault"]

            found = wait_for(faults, 5 + 10 + 5, "device_fault at the hub", 0.25)
            elapsed = time.monotonic() - t_start
        finally:
            node.stop()
            hub.stop()
        assert elapsed <= 5 + 10, f"device_fault at the hub after {elapsed:.1f}s"
        event = found[0]
        assert event["state"] == "active"
        assert event["source"]["device_id"] == "cam-gone"
        assert event["attributes"]["fault"] == "unreachable"
        assert f"127.0.0.1:{dead}" in (event["attributes"]["error"] or "")


# --------------------------------------------------------------------------- parked vehicles


def _kerb_camera(leave_s: float = 120.0) -> tuple[EdgeConfig, CameraConfig]:
    cfg = load_edge_config(project_root() / "configs" / "demo" / "fire_lane.yaml", options_models())
    kerb = cfg.camera("campus-kerb")
    opts = {**kerb.pipelines["fire_lane"], "leave_s": leave_s}
    return cfg, kerb.model_copy(update={"pipelines": {"fire_lane": opts}})


def _engine(cfg: EdgeConfig, camera: CameraConfig, detect: Callable[..., Any]) -> CameraEngine:
    return CameraEngine(
        cfg,
        camera,
        detect,
        default_taxonomy(),
        T0,
        cfg.detector.confidence,
        options=EngineOptions(motion_gate=False, zone_band=0.0, clips=False, health=False),
    )


def _frames(video: Path, start_s: float, end_s: float, shift_s: float = 0.0) -> Iterator[Frame]:
    """Frames of ``video`` between two media times, their clock moved on by ``shift_s``."""
    for frame in VideoSource(str(video), loop=False, realtime=False).frames():
        if frame.t < start_s:
            continue
        if frame.t >= end_s:
            return
        yield dataclasses.replace(frame, t=frame.t + shift_s)


def _run(engine: CameraEngine, frames: Iterator[Frame]) -> list[tuple[float, Finding]]:
    return [(em.media_t, em.finding) for f in frames for em in engine.process(f)]


def _empty_kerb(image: Any) -> Any:
    out = image.copy()
    out[10:80, 380:480] = (118, 118, 118)
    return out


def _lines(found: list[tuple[float, Finding]]) -> list[str]:
    return [
        f"{t:.1f}s {f.type}/{f.state} {f.incident_key} {f.attributes.get('reason', '')}"
        for t, f in found
    ]


@pytest.fixture(scope="module")
def detect() -> Callable[..., Any]:
    cfg, _ = _kerb_camera()
    detector = build_detector(cfg, cameras=1)
    low = max(0.05, cfg.detector.confidence * 0.4)
    return lambda _cam, image: detector.infer([image], confidence=low)[0]


def test_parked_vehicles_survive_a_three_minute_outage(detect: Callable[..., Any]) -> None:
    cfg, camera = _kerb_camera(leave_s=120.0)
    video = VIDEOS / "pedestrians_opencv_vtest.avi"
    engine = _engine(cfg, camera, detect)
    before = _run(engine, _frames(video, 38.0, 50.0))
    actives = [f for _, f in before if f.state == "active"]
    assert len(actives) == 2, _lines(before)
    # the stream is lost for 3 minutes: media time jumps by 180 s, then 10 s of video
    after = _run(engine, _frames(video, 50.0, 60.0, shift_s=180.0))
    assert engine.counters.gaps == 1
    assert [f for _, f in after if f.state == "cleared"] == [], _lines(after)
    assert [f for _, f in after if f.state == "active"] == [], _lines(after)  # not alerted again
    # the vehicles are still followed: at the end of the stream each is cleared once
    ends = engine.flush(70.0 + 180.0)
    assert sorted(em.finding.incident_key for em in ends) == sorted(f.incident_key for f in actives)
    assert {em.finding.attributes["reason"] for em in ends} == {"stream_end"}


def test_vehicle_really_gone_after_an_outage_is_cleared_from_the_first_frame_back(
    detect: Callable[..., Any],
) -> None:
    cfg, camera = _kerb_camera(leave_s=20.0)
    video = VIDEOS / "pedestrians_opencv_vtest.avi"
    engine = _engine(cfg, camera, detect)
    before = _run(engine, _frames(video, 38.0, 46.0))
    assert len([f for _, f in before if f.state == "active"]) == 2, _lines(before)
    # during the outage both vehicles drove away: the kerb is painted over with road grey
    gone = (
        dataclasses.replace(f, image=_empty_kerb(f.image))
        for f in _frames(video, 46.0, 72.0, 180.0)
    )
    after = _run(engine, gone)
    cleared = [(t, f) for t, f in after if f.state == "cleared"]
    assert len(cleared) == 2, _lines(after)
    back = 46.0 + 180.0
    for t, f in cleared:
        assert f.attributes["reason"] == "left"
        assert back + 20.0 - 1.0 <= t <= back + 20.0 + 2.0, _lines(after)


# --------------------------------------------------------------------------- restart


def test_node_restart_is_a_gap_for_a_burning_fire() -> None:
    cam = CameraConfig(id="cam-fire", url=str(FIRE), pipelines={"smoke_fire": {}}, detect_fps=5)
    cfg = EdgeConfig(node_id="restart-01", cameras=[cam])
    first = _engine(cfg, cam, lambda *_: None)
    found = _run(first, _frames(FIRE, 0.0, 6.0))
    actives = [f for _, f in found if f.type == "fire" and f.state == "active"]
    assert len(actives) == 1, _lines(found)
    saved = json.loads(json.dumps(first.state(), default=str))  # as the node writes it

    # the node is down for 40 s; the new process starts a new media clock at 0
    restart = T0 + timedelta(seconds=46.0)
    second = CameraEngine(
        cfg,
        cam,
        None,
        default_taxonomy(),
        restart - timedelta(seconds=6.0),
        options=EngineOptions(motion_gate=False, clips=False, health=False),
    )
    second.load_state(saved, saved_at=T0 + timedelta(seconds=6.0))
    after = _run(second, _frames(FIRE, 6.0, 16.5))
    assert second.counters.gaps == 1
    assert [f for _, f in after if f.state in ("active", "cleared")] == [], _lines(after)
    ends = second.flush(16.5)
    assert [em.finding.incident_key for em in ends if em.finding.type == "fire"] == [
        actives[0].incident_key
    ]


@pytest.mark.timeout(90)
def test_edge_node_restart_mid_fire_is_a_gap_not_an_all_clear(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    # the node reads the fire clip as fast as it decodes (looped), so a clear window of 10 s
    # of media time passes in about a second of wall time; the second node loads the state
    # the first one saved when it stopped
    path = write_yaml(
        tmp_path / "edge.yaml",
        {
            "node_id": "restart-02",
            "broker": {"url": mosquitto.url},
            "http": None,
            "outbox": {"path": str(tmp_path / "outbox.sqlite"), "ack_timeout_s": 30},
            "evidence": {"dir": str(tmp_path / "evidence")},
            "state_path": str(tmp_path / "state.json"),
            "cameras": [
                {
                    "id": "cam-fire",
                    "url": str(FIRE),
                    "loop": True,
                    "realtime": False,
                    "clips": False,
                    "pipelines": {"smoke_fire": {}},
                }
            ],
        },
    )
    cfg = load_edge_config(path, options_models())
    log = EventLog(mosquitto, cfg.node_id)
    try:
        first = EdgeNode(cfg)
        runner = threading.Thread(target=first.run, daemon=True)
        runner.start()
        wait_for(lambda: log.of("fire", "active"), 30, "the fire before the restart", 0.1)
        first.stop_event.set()
        runner.join(30)
        saved = json.loads((tmp_path / "state.json").read_text(encoding="utf-8"))
        assert saved["cameras"]["cam-fire"]["smoke_fire"]["situations"], saved
        time.sleep(3.0)  # the node is down

        second = EdgeNode(cfg)
        runner = threading.Thread(target=second.run, daemon=True)
        runner.start()
        cam = second.cameras[0]
        # well past the clear window in media time after the restart
        wait_for(lambda: cam.engine.counters.frames_seen >= 24 * 30, 60, "30 s of media", 0.2)
        second.stop_event.set()
        runner.join(30)
        time.sleep(1.0)  # the last events reach the broker
    finally:
        log.close()
    summary = _summary(log)
    assert second.cameras[0].engine.counters.gaps == 1, summary
    assert log.of("fire", "cleared") == [], summary
    assert len(log.of("fire", "active")) == 1, summary  # one fire, one incident
    assert len({e["incident_key"] for e in log.of("fire")}) == 1, summary
