"""The edge node's HTTP surface: health, Prometheus metrics, report and sensor endpoints."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

from fastapi import FastAPI
from fastapi.responses import JSONResponse, PlainTextResponse

from edge.detector.batching import LATENCY_BUCKETS_MS, BatchingDetector
from edge.node_view import CameraView, NodeView

Sample = tuple[dict[str, str], float]


def _metric(lines: list[str], name: str, help_: str, kind: str, samples: list[Sample]) -> None:
    lines.append(f"# HELP {name} {help_}")
    lines.append(f"# TYPE {name} {kind}")
    for labels, value in samples:
        lab = ",".join(f'{k}="{v}"' for k, v in labels.items())
        lines.append(f"{name}{{{lab}}} {value}" if lab else f"{name} {value}")


# per-camera metrics, in exposition order: (name, help, kind, value of one camera)
CAMERA_METRICS: tuple[tuple[str, str, str, Callable[[CameraView], float]], ...] = (
    (
        "shaobing_frames_in_total",
        "Frames decoded per camera",
        "counter",
        lambda c: c.source.stats.frames_in,
    ),
    (
        "shaobing_frames_processed_total",
        "Frames the engine processed per camera",
        "counter",
        lambda c: c.engine.counters.frames_seen,
    ),
    (
        "shaobing_frames_dropped_total",
        "Decoded frames discarded because the engine was behind",
        "counter",
        lambda c: c.source.stats.frames_dropped,
    ),
    (
        "shaobing_frames_gated_total",
        "Detector samples skipped by the motion gate",
        "counter",
        lambda c: c.engine.counters.frames_gated,
    ),
    (
        "shaobing_frames_detected_total",
        "Frames the detector answered per camera",
        "counter",
        lambda c: c.engine.counters.frames_detected,
    ),
    (
        "shaobing_detect_busy_total",
        "Detector samples skipped while the previous one was in flight",
        "counter",
        lambda c: c.engine.counters.detect_busy,
    ),
    (
        "shaobing_detect_dropped_total",
        "Detector samples refused by the full detector queue",
        "counter",
        lambda c: c.engine.counters.detect_dropped,
    ),
    (
        "shaobing_frames_corrupt_total",
        "Undecodable frames skipped per camera",
        "counter",
        lambda c: c.source.stats.frames_corrupt,
    ),
    (
        "shaobing_source_reconnects_total",
        "Source reconnects per camera",
        "counter",
        lambda c: c.source.stats.reconnects,
    ),
    (
        "shaobing_source_errors_total",
        "Source errors per camera",
        "counter",
        lambda c: c.source.stats.errors,
    ),
    (
        "shaobing_camera_fps_in",
        "Decoded frames per second",
        "gauge",
        lambda c: round(c.source.stats.fps(), 3),
    ),
    (
        "shaobing_camera_fps_detect",
        "Detections per second",
        "gauge",
        lambda c: round(c.engine.counters.detect_fps(), 3),
    ),
    (
        "shaobing_camera_online",
        "1 when the source delivers frames",
        "gauge",
        lambda c: 1 if c.source.stats.state == "online" else 0,
    ),
    (
        "shaobing_camera_healthy",
        "0 while a device_fault is open (source_lost, unreachable, black, frozen, covered, blurred …)",
        "gauge",
        lambda c: 0 if c.fault else 1,
    ),
    (
        "shaobing_reader_queue_depth",
        "Decoded frames waiting for the engine",
        "gauge",
        lambda c: c.reader.depth() if hasattr(c, "reader") else 0,
    ),
    (
        "shaobing_findings_total",
        "Pipeline findings per camera",
        "counter",
        lambda c: c.engine.counters.findings,
    ),
    (
        "shaobing_pipeline_errors_total",
        "Pipeline exceptions per camera",
        "counter",
        lambda c: c.engine.counters.pipeline_errors,
    ),
)


def render_metrics(node: NodeView) -> str:
    """Prometheus text exposition of the node's counters."""
    lines: list[str] = []
    for name, help_, kind, value in CAMERA_METRICS:
        _metric(
            lines, name, help_, kind, [({"camera": c.camera.id}, value(c)) for c in node.cameras]
        )
    _node_metrics(lines, node)
    _sensor_metrics(lines, node)
    if node.batcher is not None:
        _detector_metrics(lines, node.batcher)
    return "\n".join(lines) + "\n"


def _node_metrics(lines: list[str], node: NodeView) -> None:
    """The outbox, the events and what people and the hub said about them."""
    _metric(
        lines,
        "shaobing_outbox_depth",
        "Events not yet acknowledged by the hub",
        "gauge",
        [({}, node.outbox.depth())],
    )
    _metric(
        lines,
        "shaobing_outbox_dropped_total",
        "Events evicted from the full outbox",
        "counter",
        [({}, node.outbox.dropped)],
    )
    _metric(
        lines,
        "shaobing_events_total",
        "Events committed to the outbox",
        "counter",
        [({}, node.events_submitted)],
    )
    _metric(
        lines,
        "shaobing_false_alarm_verdicts_total",
        "Alarms of this node that a person judged false, by camera or sensor, zone and reason",
        "counter",
        [
            ({"device": dev, "zone": zone, "reason": reason}, n)
            for dev, zone, reason, n in node.verdicts.counts()
        ],
    )
    _metric(
        lines,
        "shaobing_acks_rejected_total",
        "Acks ignored: not signed with this node's ack key, or malformed",
        "counter",
        [({}, node.publisher.stats["acks_rejected"])],
    )


def _detector_metrics(lines: list[str], b: BatchingDetector) -> None:
    """The shared detector: queue, refusals, batches, utilisation and latency."""
    st = b.snapshot()
    singles: list[tuple[str, str, str, float]] = [
        (
            "shaobing_detector_queue_depth",
            "Images waiting for the detector",
            "gauge",
            b.queue_depth(),
        ),
        (
            "shaobing_detector_dropped_total",
            "Frames refused because the detector was busy",
            "counter",
            st.refused,
        ),
        ("shaobing_detector_errors_total", "Failed inference batches", "counter", st.errors),
        ("shaobing_detector_images_total", "Images inferred", "counter", st.images),
        ("shaobing_detector_batches_total", "Batches inferred", "counter", st.batches),
        (
            "shaobing_detector_workers",
            "Inferences the detector runs side by side",
            "gauge",
            b.workers,
        ),
        (
            "shaobing_detector_packed_images_total",
            "Images that shared an input with another camera's",
            "counter",
            st.packed,
        ),
        (
            "shaobing_detector_busy_seconds_total",
            "Worker-seconds spent inferring (utilisation = rate of this / workers)",
            "counter",
            round(b.busy_seconds(), 3),
        ),
    ]
    for name, help_, kind, value in singles:
        _metric(lines, name, help_, kind, [({}, value)])
    _runtime_metric(lines, b.detector)
    _metric(
        lines,
        "shaobing_detector_batch_size_total",
        "Batches by size",
        "counter",
        [({"size": str(k)}, v) for k, v in sorted(st.batch_sizes.items())],
    )
    lines.append("# HELP shaobing_inference_ms Inference latency per image")
    lines.append("# TYPE shaobing_inference_ms histogram")
    cumulative = 0
    for le, n in zip(LATENCY_BUCKETS_MS, st.latency_buckets, strict=False):
        cumulative += n
        lines.append(f'shaobing_inference_ms_bucket{{le="{le}"}} {cumulative}')
    lines.append(f'shaobing_inference_ms_bucket{{le="+Inf"}} {sum(st.latency_buckets)}')
    lines.append(f"shaobing_inference_ms_sum {st.latency_sum_ms:.3f}")
    lines.append(f"shaobing_inference_ms_count {sum(st.latency_buckets)}")


def _runtime_metric(lines: list[str], detector: object) -> None:
    """Which runtime the detector runs on, how it was chosen, and what ``auto`` measured."""
    choice = getattr(detector, "runtime_choice", None) or {}
    runtime = str(choice.get("chosen") or getattr(detector, "runtime", "onnxruntime"))
    labels = {
        "runtime": runtime,
        "requested": str(choice.get("requested", runtime)),
        "reason": str(choice.get("reason", "configured")),
        "model": str(getattr(detector, "name", "")),
    }
    _metric(
        lines,
        "shaobing_detector_runtime_info",
        "The detector's inference runtime (1 for the one in use)",
        "gauge",
        [(labels, 1)],
    )
    _metric(
        lines,
        "shaobing_detector_runtime_probe_ms",
        "Milliseconds per frame each runtime took when detector.runtime auto chose",
        "gauge",
        [({"runtime": n}, ms) for n, ms in sorted((choice.get("ms") or {}).items())],
    )


def _sensor_metrics(lines: list[str], node: NodeView) -> None:
    """Readings and rejects per sensor, and what each input refused before any sensor."""
    rules = getattr(node, "sensor_rules", None)
    if rules is None:
        return
    _metric(
        lines,
        "shaobing_sensor_readings_total",
        "Readings accepted per sensor",
        "counter",
        [({"sensor": sid}, rules.accepted_by_sensor[sid]) for sid in sorted(rules.sensor_ids)],
    )
    rejects: Counter[tuple[str, str]] = Counter(rules.rejected_by_sensor)
    if node.sensor_input is not None:
        rejects.update(node.sensor_input.handler.rejected_by_sensor)
    _metric(
        lines,
        "shaobing_sensor_rejects_total",
        "Readings rejected per sensor and reason (ids not in the registry: unregistered)",
        "counter",
        [({"sensor": sid, "reason": reason}, n) for (sid, reason), n in sorted(rejects.items())],
    )
    inputs: list[Sample] = []
    replay = node.replay_stats
    inputs += [
        ({"input": "replay", "reason": "bad_row"}, replay.bad_rows),
        ({"input": "replay", "reason": "future"}, replay.future_rows),
    ]
    if node.sensor_input is not None:
        counters = node.sensor_input.handler.counters
        inputs += [
            ({"input": "mqtt", "reason": r}, counters[r])
            for r in ("bad_topic", "malformed", "too_large", "topic_mismatch", "unknown_device")
        ]
    inputs += [
        ({"input": "http", "reason": r}, node.http_sensor_refused[r])
        for r in ("invalid", "too_many", "unknown_device")
    ]
    _metric(
        lines,
        "shaobing_sensor_input_rejects_total",
        "Lines, messages and requests the sensor inputs refused, by input and reason",
        "counter",
        inputs,
    )


def create_edge_app(node: NodeView) -> FastAPI:
    """FastAPI app of the node."""
    app = FastAPI(title="Shaobing edge node (哨兵)")

    @app.get("/healthz")
    def healthz() -> JSONResponse:
        return JSONResponse(
            {
                "node_id": node.config.node_id,
                "mqtt_connected": node.publisher.connected,
                "outbox_depth": node.outbox.depth(),
            }
        )

    @app.get("/metrics", response_class=PlainTextResponse)
    def metrics() -> PlainTextResponse:
        return PlainTextResponse(render_metrics(node), media_type="text/plain; version=0.0.4")

    @app.get("/api/v1/verdicts")
    def verdicts() -> JSONResponse:
        return JSONResponse({"items": node.verdicts.snapshot()})

    @app.get("/api/v1/status")
    def status() -> JSONResponse:
        return JSONResponse(node.status().model_dump(mode="json", by_alias=True))

    return app
