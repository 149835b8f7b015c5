"""What the node's HTTP surface (``edge.http``, ``edge.setup``) may see of a running node.

The node passes itself to ``create_edge_app`` and ``build_setup_router``; those depend on
these protocols only, never on ``edge.node``, so the node and its HTTP app can be read
(and tested, with a stand-in node) apart.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

from edge.detector.batching import BatchingDetector
from edge.engine import CameraEngine
from edge.outbox import Outbox
from edge.publisher import Publisher
from edge.sensors.inputs import ReplayStats
from edge.sources.video import FrameReader, VideoSource
from edge.verdicts import VerdictBook
from shaobing.config import CameraConfig, EdgeConfig
from shaobing.contract import NodeStatus


class CameraView(Protocol):
    """One running camera: its config, source, reader and engine."""

    @property
    def camera(self) -> CameraConfig:
        """The camera's config as it runs now."""
        ...

    @property
    def source(self) -> VideoSource:
        """The video source (its ``stats``)."""
        ...

    @property
    def reader(self) -> FrameReader:
        """The decoded frames waiting for the engine."""
        ...

    @property
    def engine(self) -> CameraEngine:
        """The camera's engine (counters, last picture)."""
        ...

    @property
    def fault(self) -> str | None:
        """The camera's open fault, or None."""
        ...


class NodeView(Protocol):
    """The running node as its HTTP app sees it."""

    @property
    def config(self) -> EdgeConfig:
        """The node's config (with changes made by ``/setup``)."""
        ...

    @property
    def config_path(self) -> Path | None:
        """The YAML ``/setup`` writes back to (None: not started from a file)."""
        ...

    @property
    def cameras(self) -> Sequence[CameraView]:
        """The running cameras."""
        ...

    @property
    def outbox(self) -> Outbox:
        """The durable outbox."""
        ...

    @property
    def publisher(self) -> Publisher:
        """The MQTT publisher."""
        ...

    @property
    def verdicts(self) -> VerdictBook:
        """People's verdicts on this node's alarms."""
        ...

    @property
    def batcher(self) -> BatchingDetector | None:
        """The shared detector (None when no camera needs one)."""
        ...

    @property
    def events_submitted(self) -> int:
        """Events committed to the outbox since start."""
        ...

    @property
    def sensor_rules(self) -> Any:
        """The sensor rules (None on a node without sensors)."""
        ...

    @property
    def sensor_input(self) -> Any:
        """The MQTT sensor subscriber (None until started, or without sensors)."""
        ...

    @property
    def replay_stats(self) -> ReplayStats:
        """Counters of the sensor replay."""
        ...

    @property
    def http_sensor_refused(self) -> Counter[str]:
        """Sensor requests refused over HTTP, by reason."""
        ...

    def status(self) -> NodeStatus:
        """The node's status message."""
        ...

    def apply_camera(self, camera: CameraConfig) -> None:
        """Put a changed camera config into effect without a restart (KeyError: not running)."""
        ...
