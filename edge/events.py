"""Turn pipeline findings into wire events (id, source, location, evidence)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from pipelines.base import Finding
from shaobing.config import CameraConfig, EdgeConfig
from shaobing.contract import Event, Evidence, Location, Source, new_event_id

Linker = Callable[[Finding, str | None], tuple[tuple[str, ...], str]]
"""(finding, camera id or None) → (related event ids, severity): camera + sensor fusion."""


class EventFactory:
    """Build Events for one node (and optionally one camera).

    Args:
        config: the node's config.
        model_name: detector model named in camera events.
        linker: optional fusion hook applied to every finding before it becomes an event.
    """

    def __init__(
        self, config: EdgeConfig, model_name: str | None = None, linker: Linker | None = None
    ) -> None:
        self.config = config
        self.model_name = model_name
        self.linker = linker

    def build(
        self,
        finding: Finding,
        camera: CameraConfig | None = None,
        pipeline: str = "unknown",
        evidence: Sequence[Evidence] = (),
        detected_at: datetime | None = None,
    ) -> Event:
        """A wire Event for a finding seen by ``camera`` (or a sensor/report when None)."""
        cfg = self.config
        if self.linker is not None:
            related, severity = self.linker(finding, camera.id if camera else None)
            if related != finding.related or severity != finding.severity:
                finding = dataclasses.replace(finding, related=related, severity=severity)  # type: ignore[arg-type]
        grid = finding.grid_id or (camera.grid_id if camera else None) or cfg.grid_id
        address = finding.address or (camera.address if camera else None) or cfg.address
        lat = finding.lat if finding.lat is not None else (camera.lat if camera else None)
        lon = finding.lon if finding.lon is not None else (camera.lon if camera else None)
        if lat is None or lon is None:
            lat = lon = None
        kind = finding.kind or ("camera" if camera else "sensor")
        device = finding.device_id or (camera.id if camera else "node")
        return Event(
            id=new_event_id(),
            type=finding.type,
            severity=finding.severity,
            state=finding.state,
            incident_key=f"{cfg.node_id}/{finding.incident_key}",
            occurred_at=finding.occurred_at,
            detected_at=detected_at or datetime.now(UTC),
            source=Source(
                node_id=cfg.node_id,
                kind=kind,
                device_id=device,
                pipeline=pipeline,
                model=self.model_name if (camera is not None and kind == "camera") else None,
            ),
            location=Location(
                grid_id=grid,
                address=address,
                lat=lat,
                lon=lon,
                zone=finding.zone,
                floor=finding.floor,
                column=finding.column,
            ),
            confidence=max(0.0, min(1.0, float(finding.confidence))),
            summary=finding.summary,
            attributes=finding.attributes,
            evidence=list(evidence),
            related=list(finding.related),
        )
