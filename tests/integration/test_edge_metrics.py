"""``shaobing edge run`` with three cameras, a real mosquitto and the node's Prometheus endpoint.

Two cameras read real videos (looped, paced to their frame rate) through the shared detector;
a third points at a loopback HTTP port where nothing listens, so its source keeps failing and
reconnecting. ``/metrics`` is scraped twice a few seconds apart and read with a small parser
of the Prometheus text format.
"""

from __future__ import annotations

import math
import os
import re
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from shaobing.paths import assets_dir
from tests.support.mosquitto import Mosquitto, free_port
from tests.support.processes import Proc, http_json, wait_for, write_yaml

VIDEOS = assets_dir() / "video"
LIVE = ("cam-street", "cam-indoor")
BROKEN = "cam-dead"
CAMERAS = (*LIVE, BROKEN)
GAP_S = 5.0  # between the two scrapes; well over the motion gate's 3 s keep-alive

PER_CAMERA_COUNTERS = (
    "shaobing_frames_in_total",
    "shaobing_frames_processed_total",
    "shaobing_frames_dropped_total",
    "shaobing_frames_gated_total",
    "shaobing_frames_detected_total",
    "shaobing_detect_busy_total",
    "shaobing_detect_dropped_total",
    "shaobing_frames_corrupt_total",
    "shaobing_source_reconnects_total",
    "shaobing_source_errors_total",
    "shaobing_findings_total",
    "shaobing_pipeline_errors_total",
)
PER_CAMERA_GAUGES = (
    "shaobing_camera_fps_in",
    "shaobing_camera_fps_detect",
    "shaobing_camera_online",
    "shaobing_camera_healthy",
    "shaobing_reader_queue_depth",
)
NODE_GAUGES = (
    "shaobing_outbox_depth",
    "shaobing_detector_queue_depth",
    "shaobing_detector_workers",
)

_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)$")
_LABEL = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*(?:,|$)')
_HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")


@dataclass
class Scrape:
    """One parsed exposition: metric family types and samples in the order they came."""

    types: dict[str, str] = field(default_factory=dict)
    helps: dict[str, str] = field(default_factory=dict)
    samples: list[tuple[str, dict[str, str], float]] = field(default_factory=list)

    def value(self, name: str, **labels: str) -> float:
        """The one sample of ``name`` with exactly these labels."""
        found = [v for n, lab, v in self.samples if n == name and lab == labels]
        assert len(found) == 1, f"{name}{labels}: expected one sample, found {len(found)}"
        return found[0]

    def series(self, name: str) -> list[tuple[dict[str, str], float]]:
        """Every sample of ``name``."""
        return [(lab, v) for n, lab, v in self.samples if n == name]


def _family(sample_name: str, types: dict[str, str]) -> str | None:
    if sample_name in types:
        return sample_name
    for suffix in _HISTOGRAM_SUFFIXES:
        base = sample_name.removesuffix(suffix)
        if base != sample_name and types.get(base) in ("histogram", "summary"):
            return base
    return None


def parse_prometheus(text: str) -> Scrape:
    """Parse the Prometheus text format (0.0.4), checking that it is well formed.

    Every sample must belong to a family whose ``# TYPE`` line came before it, a family is
    typed once, and no series (name and labels) appears twice.
    """
    out = Scrape()
    seen: set[tuple[str, tuple[tuple[str, str], ...]]] = set()
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        if line.startswith("#"):
            parts = line.split(None, 3)
            if len(parts) >= 3 and parts[1] == "TYPE":
                name, kind = parts[2], parts[3] if len(parts) > 3 else ""
                assert kind in ("counter", "gauge", "histogram", "summary", "untyped"), (
                    f"line {number}: expected a metric type, found {line!r}"
                )
                assert name not in out.types, f"line {number}: {name} typed twice"
                out.types[name] = kind
            elif len(parts) >= 3 and parts[1] == "HELP":
                out.helps[parts[2]] = parts[3] if len(parts) > 3 else ""
            continue
        m = _SAMPLE.match(line)
        assert m, f"line {number}: expected `name{{labels}} value`, found {line!r}"
        name, raw_labels, raw_value = m.groups()
        assert _family(name, out.types) is not None, (
            f"line {number}: expected a # TYPE line before {name}, found none"
        )
        labels: dict[str, str] = {}
        if raw_labels:
            pos = 0
            while pos < len(raw_labels):
                lm = _LABEL.match(raw_labels, pos)
                assert lm, f"line {number}: malformed labels {raw_labels!r}"
                labels[lm.group(1)] = lm.group(2)
                pos = lm.end()
        value = float(raw_value)  # also accepts +Inf, -Inf, NaN
        key = (name, tuple(sorted(labels.items())))
        assert key not in seen, f"line {number}: series {name}{labels} appears twice"
        seen.add(key)
        out.samples.append((name, labels, value))
    return out


def scrape(base: str) -> Scrape:
    """GET /metrics and parse it."""
    with urllib.request.urlopen(base + "/metrics", timeout=5) as resp:  # noqa: S310 - loopback
        assert resp.status == 200
        ctype = resp.headers.get("Content-Type", "")
        assert ctype.startswith("text/plain") and "version=0.0.4" in ctype, ctype
        return parse_prometheus(resp.read().decode("utf-8"))


def _le(labels: dict[str, str]) -> float:
    return math.inf if labels["le"] == "+Inf" else float(labels["le"])


def check_histogram(s: Scrape, name: str) -> None:
    """Buckets cumulative in ``le`` order, ending with +Inf equal to ``_count``."""
    assert s.types.get(name) == "histogram"
    buckets = s.series(name + "_bucket")
    assert buckets, f"{name}: no buckets"
    les = [_le(lab) for lab, _ in buckets]
    assert les == sorted(les) and len(set(les)) == len(les), f"{name}: le out of order {les}"
    assert les[-1] == math.inf, f"{name}: expected the last bucket le=+Inf, found {les[-1]}"
    counts = [v for _, v in buckets]
    assert all(a <= b for a, b in zip(counts, counts[1:], strict=False)), (
        f"{name}: buckets not cumulative: {counts}"
    )
    assert counts[-1] == s.value(name + "_count")
    assert s.value(name + "_sum") >= 0


def _edge_config(tmp: Path, broker_url: str, http_port: int, dead_port: int) -> Path:
    street_zone = [[200, 170], [480, 190], [480, 300], [330, 270], [200, 200]]
    indoor_zone = [[0, 0], [767, 0], [767, 431], [0, 431]]
    return write_yaml(
        tmp / "edge.yaml",
        {
            "node_id": "metrics-01",
            "grid_id": "beibei-tianfu-03",
            "broker": {"url": broker_url},
            "http": f"127.0.0.1:{http_port}",
            "detector": {"threads": 1},
            "outbox": {"path": str(tmp / "outbox.sqlite"), "ack_timeout_s": 3},
            "evidence": {"dir": str(tmp / "evidence")},
            "state_path": str(tmp / "state.json"),
            "status_interval_s": 2,
            "cameras": [
                {
                    "id": "cam-street",
                    "url": str(VIDEOS / "pedestrians_opencv_vtest.avi"),
                    "loop": True,
                    "realtime": True,
                    "detect_fps": 5,
                    "zones": {"path": street_zone},
                    "pipelines": {
                        "zone_intrusion": {
                            "zone": "path",
                            "classes": ["person"],
                            "type": "water_danger_intrusion",
                        }
                    },
                },
                {
                    "id": "cam-indoor",
                    "url": str(VIDEOS / "people_indoor_intel_one_by_one.mp4"),
                    "loop": True,
                    "realtime": True,
                    "detect_fps": 5,
                    "zones": {"room": indoor_zone},
                    "pipelines": {
                        "zone_intrusion": {
                            "zone": "room",
                            "classes": ["person"],
                            "type": "public_security",
                        }
                    },
                },
                {
                    "id": BROKEN,
                    "url": f"http://127.0.0.1:{dead_port}/x",
                    "detect_fps": 5,
                    "zones": {"any": indoor_zone},
                    "pipelines": {"zone_intrusion": {"zone": "any", "classes": ["person"]}},
                },
            ],
        },
    )


def test_metrics_endpoint_counts_cameras_and_detector(tmp_path: Path) -> None:
    t0 = time.monotonic()
    with Mosquitto(workdir=tmp_path / "broker") as broker:
        http_port, dead_port = free_port(), free_port()
        cfg = _edge_config(tmp_path, broker.url, http_port, dead_port)
        edge = Proc(["edge", "run", "-c", str(cfg)], tmp_path / "edge.log")
        base = f"http://127.0.0.1:{http_port}"
        try:

            def warmed_up() -> Scrape | None:
                assert edge.proc.poll() is None, f"edge exited early:\n{edge.output()[-3000:]}"
                s = scrape(base)
                ready = (
                    all(s.value("shaobing_frames_detected_total", camera=c) >= 1 for c in LIVE)
                    and s.value("shaobing_source_reconnects_total", camera=BROKEN) >= 1
                    and s.value("shaobing_events_total") >= 1
                )
                return s if ready else None

            wait_for(
                warmed_up, 40, "detections on both live cameras, an event, a retry of the dead one"
            )
            health = http_json(base + "/healthz")
            assert health["node_id"] == "metrics-01"
            wait_for(lambda: http_json(base + "/healthz")["mqtt_connected"], 10, "MQTT link")

            first = scrape(base)
            time.sleep(GAP_S)
            second = scrape(base)
            status = http_json(base + "/api/v1/status")
        finally:
            code = edge.stop()
        assert code == 0, f"edge exited with {code} after SIGTERM:\n{edge.output()[-3000:]}"
    elapsed = time.monotonic() - t0

    for s in (first, second):
        # every family is typed; per-camera families carry every camera exactly once
        for name in PER_CAMERA_COUNTERS:
            assert s.types.get(name) == "counter", f"{name}: {s.types.get(name)}"
            assert sorted(lab["camera"] for lab, _ in s.series(name)) == sorted(CAMERAS), name
        for name in PER_CAMERA_GAUGES:
            assert s.types.get(name) == "gauge", f"{name}: {s.types.get(name)}"
            assert sorted(lab["camera"] for lab, _ in s.series(name)) == sorted(CAMERAS), name
        for name in NODE_GAUGES:
            assert s.types.get(name) == "gauge", f"{name}: {s.types.get(name)}"
            assert s.value(name) >= 0
        for name, kind in s.types.items():
            if kind == "counter":
                assert name.endswith("_total"), f"counter {name} should end in _total"
        assert all(v >= 0 for _, _, v in s.samples), "negative sample"
        check_histogram(s, "shaobing_inference_ms")
        assert s.value("shaobing_inference_ms_count") == s.value("shaobing_detector_images_total")

    # counters never go back
    for name, labels, value in first.samples:
        family = _family(name, first.types)
        kind = first.types[family] if family else None
        if kind in ("counter", "histogram"):
            later = second.value(name, **labels)
            assert later >= value, f"{name}{labels} went back from {value} to {later}"

    # the two live cameras decode, detect and are online; their numbers move between scrapes
    for cam in LIVE:
        for name in (
            "shaobing_frames_in_total",
            "shaobing_frames_processed_total",
            "shaobing_frames_detected_total",
        ):
            before, after = first.value(name, camera=cam), second.value(name, camera=cam)
            assert after > before, f"{name}{{camera={cam}}}: {before} → {after} in {GAP_S} s"
        assert second.value("shaobing_camera_online", camera=cam) == 1
        assert second.value("shaobing_camera_fps_in", camera=cam) > 0
        assert second.value("shaobing_source_errors_total", camera=cam) == 0
        assert second.value("shaobing_pipeline_errors_total", camera=cam) == 0
    # paced at 10 and 12.5 fps: GAP_S seconds bring a few dozen frames each, not hundreds
    street_in = second.value("shaobing_frames_in_total", camera="cam-street") - first.value(
        "shaobing_frames_in_total", camera="cam-street"
    )
    assert 10 <= street_in <= 10 * GAP_S * 1.5 + 5, f"cam-street decoded {street_in} frames"

    # the camera whose server is down: never online, failing and retrying
    assert second.value("shaobing_camera_online", camera=BROKEN) == 0
    assert second.value("shaobing_frames_in_total", camera=BROKEN) == 0
    assert second.value("shaobing_frames_detected_total", camera=BROKEN) == 0
    reconnects = second.value("shaobing_source_reconnects_total", camera=BROKEN)
    errors = second.value("shaobing_source_errors_total", camera=BROKEN)
    assert reconnects >= 1 and errors >= reconnects, (reconnects, errors)
    cams = {c["id"]: c for c in status["cameras"]}
    assert cams[BROKEN]["state"] in ("reconnecting", "starting"), cams[BROKEN]
    assert cams[BROKEN]["reconnects"] >= reconnects
    assert all(cams[c]["state"] == "online" for c in LIVE), cams

    # the shared detector: inferences happened, and its side-by-side rule holds
    images = [s.value("shaobing_detector_images_total") for s in (first, second)]
    assert 0 < images[0] < images[1], images
    expected_workers = 2 if (os.cpu_count() or 1) >= 2 else 1
    assert second.value("shaobing_detector_workers") == expected_workers
    assert second.value("shaobing_detector_errors_total") == 0

    # no hub acknowledges anything: every event stays in the outbox
    assert second.value("shaobing_outbox_depth") >= first.value("shaobing_events_total")
    assert second.value("shaobing_outbox_dropped_total") == 0

    assert elapsed < 60, f"test took {elapsed:.1f} s"


def test_parser_rejects_malformed_expositions() -> None:
    good = (
        "# HELP x_total things\n# TYPE x_total counter\n"
        'x_total{camera="a"} 1\nx_total{camera="b"} 2\n'
        "# TYPE h histogram\n"
        'h_bucket{le="1"} 1\nh_bucket{le="+Inf"} 3\nh_sum 4.5\nh_count 3\n'
    )
    s = parse_prometheus(good)
    assert s.value("x_total", camera="b") == 2
    check_histogram(s, "h")
    bad = {
        "untyped sample": 'x_total{camera="a"} 1\n',
        "typed after use": "x_total 1\n# TYPE x_total counter\n",
        "duplicate series": "# TYPE g gauge\ng 1\ng 2\n",
        "bad value": "# TYPE g gauge\ng one\n",
        "bad labels": "# TYPE g gauge\ng{a=1} 1\n",
    }
    for what, text in bad.items():
        with pytest.raises((AssertionError, ValueError)):
            parse_prometheus(text)
            raise RuntimeError(f"accepted {what}")
    for text in (
        good.replace('h_bucket{le="+Inf"} 3', 'h_bucket{le="+Inf"} 0'),  # not cumulative
        good.replace("h_count 3", "h_count 4"),  # +Inf differs from the count
        good.replace('h_bucket{le="+Inf"} 3\n', ""),  # no +Inf bucket
    ):
        with pytest.raises(AssertionError):
            check_histogram(parse_prometheus(text), "h")
