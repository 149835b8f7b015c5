"""The edge node's HTTP surface: health, Prometheus metrics, report and sensor endpoints."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import FastAPI
from fastapi.responses import JSONResponse, PlainTextResponse

if TYPE_CHECKING:
    from edge.node import EdgeNode


def _metric(lines: list[str], name: str, help_: str, kind: str, samples: list[tuple[dict[str, str], float]]) -> None:
    lines.append(f"# HELP {name} {help_}")
    lines.append(f"# TYPE {name} {kind}")
    for labels, value in samples:
        lab = ",".join(f'{k}="{v}"' for k, v in labels.items())
        lines.append(f"{name}{{{lab}}} {value}" if lab else f"{name} {value}")


def render_metrics(node: EdgeNode) -> str:
    """Prometheus text exposition of the node's counters."""
    lines: list[str] = []
    cams = node.cameras
    _metric(lines, "shaobing_frames_in_total", "Frames decoded per camera", "counter", [({"camera": c.camera.id}, c.source.stats.frames_in) for c in cams])
    _metric(lines, "shaobing_frames_detected_total", "Frames sent to the detector per camera", "counter", [({"camera": c.camera.id}, c.engine.counters.frames_detected) for c in cams])
    _metric(lines, "shaobing_frames_corrupt_total", "Undecodable frames skipped per camera", "counter", [({"camera": c.camera.id}, c.source.stats.frames_corrupt) for c in cams])
    _metric(lines, "shaobing_source_reconnects_total", "Source reconnects per camera", "counter", [({"camera": c.camera.id}, c.source.stats.reconnects) for c in cams])
    _metric(lines, "shaobing_findings_total", "Pipeline findings per camera", "counter", [({"camera": c.camera.id}, c.engine.counters.findings) for c in cams])
    _metric(lines, "shaobing_outbox_depth", "Events not yet acknowledged by the hub", "gauge", [({}, node.outbox.depth())])
    _metric(lines, "shaobing_outbox_dropped_total", "Events evicted from the full outbox", "counter", [({}, node.outbox.dropped)])
    _metric(lines, "shaobing_events_total", "Events committed to the outbox", "counter", [({}, node.events_submitted)])
    b = node.batcher
    if b is not None:
        _metric(lines, "shaobing_detector_queue_depth", "Images waiting for the detector", "gauge", [({}, b.queue_depth())])
        _metric(lines, "shaobing_detector_dropped_total", "Frames refused because the detector was busy", "counter", [({}, b.stats.refused)])
        _metric(lines, "shaobing_detector_images_total", "Images inferred", "counter", [({}, b.stats.images)])
        _metric(lines, "shaobing_detector_batches_total", "Batches inferred", "counter", [({}, b.stats.batches)])
        buckets = [5, 10, 20, 40, 80, 160, 320, 640]
        lat = list(b.stats.latencies_ms)
        lines.append("# HELP shaobing_inference_ms Inference latency per image (recent window)")
        lines.append("# TYPE shaobing_inference_ms histogram")
        for le in buckets:
            lines.append(f'shaobing_inference_ms_bucket{{le="{le}"}} {sum(1 for x in lat if x <= le)}')
        lines.append(f'shaobing_inference_ms_bucket{{le="+Inf"}} {len(lat)}')
        lines.append(f"shaobing_inference_ms_sum {sum(lat):.3f}")
        lines.append(f"shaobing_inference_ms_count {len(lat)}")
    return "\n".join(lines) + "\n"


def create_edge_app(node: EdgeNode) -> FastAPI:
    """FastAPI app of the node."""
    app = FastAPI(title="Shaobing edge node (哨兵)")

    @app.get("/healthz")
    def healthz() -> JSONResponse:
        return JSONResponse({"node_id": node.config.node_id, "mqtt_connected": node.publisher.connected, "outbox_depth": node.outbox.depth()})

    @app.get("/metrics", response_class=PlainTextResponse)
    def metrics() -> PlainTextResponse:
        return PlainTextResponse(render_metrics(node), media_type="text/plain; version=0.0.4")

    @app.get("/api/v1/status")
    def status() -> JSONResponse:
        return JSONResponse(node.status().model_dump(mode="json", by_alias=True))

    return app
