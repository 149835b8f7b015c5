"""Configuration: YAML → pydantic models, with errors that name file, line and key path.

Every config file may carry a top-level ``kind: edge|hub|registry``; relative
paths inside a config resolve against the config file's folder.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import date
from pathlib import Path
from typing import Any, Literal, Protocol, TypeVar

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from shaobing.severity import Severity

__all__ = [
    "ConfigError",
    "ConfigIssue",
    "BrokerConfig",
    "TlsConfig",
    "DetectorConfig",
    "ExtraModelConfig",
    "CameraConfig",
    "SensorConfig",
    "OutboxConfig",
    "EvidenceConfig",
    "EdgeConfig",
    "AuthConfig",
    "IngestConfig",
    "HubConfig",
    "RoutingRule",
    "RoutingConfig",
    "CalendarConfig",
    "SlaRule",
    "SlaConfig",
    "IncidentsConfig",
    "WebhookConfig",
    "NotifyConfig",
    "load_edge_config",
    "load_hub_config",
    "load_yaml_with_lines",
    "detect_kind",
    "validate_file",
    "split_hostport",
]


class ConfigIssue(BaseModel):
    """One problem in a config file."""

    file: str
    line: int | None
    path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where} {self.path}: {self.message}" if self.path else f"{where}: {self.message}"


class ConfigError(Exception):
    """A config that cannot be used; ``issues`` lists each problem with its line."""

    def __init__(self, issues: list[ConfigIssue]) -> None:
        self.issues = issues
        super().__init__("\n".join(str(i) for i in issues))


def secret_value(env: str | None, inline: str | None) -> str | None:
    """A secret from the environment variable ``env`` when it is set, else ``inline``."""
    import os

    if env and os.environ.get(env):
        return os.environ[env]
    return inline or None


class _Cfg(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --------------------------------------------------------------------------- shared parts


class TlsConfig(_Cfg):
    """TLS to the broker."""

    ca_file: str | None = Field(
        default=None, description="CA certificate (PEM) that signed the broker's cert"
    )
    cert_file: str | None = Field(
        default=None, description="client certificate (PEM), for mutual TLS"
    )
    key_file: str | None = Field(default=None, description="client key (PEM)")
    insecure: bool = Field(default=False, description="skip hostname verification (tests only)")


class BrokerConfig(_Cfg):
    """Where the MQTT broker is and how to log in."""

    url: str = Field(
        default="mqtt://127.0.0.1:1883", description="mqtt://host:port or mqtts://host:port"
    )
    username: str | None = Field(default=None, description="MQTT username (per node)")
    password_env: str | None = Field(
        default=None, description="environment variable holding the password"
    )
    password: str | None = Field(
        default=None, description="password in clear (prefer password_env)"
    )
    client_id: str | None = Field(
        default=None, description="MQTT client id; default derived from node/hub id"
    )
    keepalive_s: int = Field(default=30, ge=5, le=3600, description="MQTT keepalive")
    protocol: Literal["auto", "5", "3.1.1"] = Field(
        default="auto", description="MQTT version; auto tries 5 first"
    )
    tls: TlsConfig | None = Field(default=None, description="TLS settings (mqtts://)")

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not value.startswith(("mqtt://", "mqtts://", "tcp://", "ssl://")):
            raise ValueError(f"expected mqtt://host:port or mqtts://host:port, found {value!r}")
        return value


# --------------------------------------------------------------------------- edge


class ExtraModelConfig(_Cfg):
    """An additional detector model run through the same batched runtime."""

    name: str = Field(description="name used by pipelines (e.g. fire_smoke)")
    model: str = Field(description="path to a YOLO ONNX file, or a manifest name")
    classes: list[str] = Field(default_factory=list, description="class names, in model order")
    confidence: float = Field(default=0.35, ge=0.0, le=1.0, description="minimum confidence")


class DetectorConfig(_Cfg):
    """The ONNX detector shared by all cameras of the node."""

    model: str = Field(default="yolov5n", description="manifest name or path to a YOLO ONNX file")
    input_size: int = Field(
        default=640,
        ge=64,
        le=2048,
        description="letterbox size: the longer side of the input (the square of a fixed model)",
    )
    rectangular: bool = Field(
        default=True,
        description="pad inputs only to a multiple of 32 (640×384 for 16:9) when the model allows",
    )
    batch: int = Field(default=1, ge=1, le=64, description="maximum dynamic batch")
    confidence: float = Field(
        default=0.35, ge=0.0, le=1.0, description="minimum detection confidence"
    )
    iou: float = Field(default=0.45, gt=0.0, le=1.0, description="NMS IoU threshold")
    max_wait_ms: float = Field(
        default=4.0, ge=0.0, le=1000.0, description="how long a batch waits to fill"
    )
    threads: int | None = Field(
        default=None,
        ge=1,
        le=256,
        description="onnxruntime intra-op threads per inference (default: CPU cores / workers)",
    )
    workers: int | None = Field(
        default=None,
        ge=1,
        le=16,
        description="inferences run side by side (default: 2 on a CPU with ≥ 2 cores serving "
        "≥ 2 cameras, else 1)",
    )
    provider: Literal["cpu", "openvino", "cuda", "auto"] = Field(
        default="cpu", description="execution provider"
    )
    runtime: Literal["auto", "onnxruntime", "openvino"] = Field(
        default="auto",
        description="inference runtime: onnxruntime, the openvino package's own runtime, or "
        "auto (both timed for a few seconds at start, the faster kept; onnxruntime when "
        "openvino is not installed)",
    )
    extra_models: list[ExtraModelConfig] = Field(
        default_factory=list, description="further models (fire/smoke …)"
    )


Point = tuple[float, float]


class SamplingConfig(_Cfg):
    """Detector sampling savings of one camera (each off by default; see README)."""

    crop: bool = Field(
        default=False,
        description="detect only in the moving region (at the whole frame's scale) while it "
        "covers at most crop_max_area of the frame",
    )
    crop_max_area: float = Field(default=0.35, gt=0.0, le=1.0, description="see crop")
    skip_still_keepalive: bool = Field(
        default=False,
        description="skip keep-alive detections while the motion gate is quiet and every "
        "track stands still (one at least every still_keepalive_s)",
    )
    still_keepalive_s: float = Field(
        default=15.0, gt=0.0, le=3600.0, description="see skip_still_keepalive"
    )
    rate_from_pipelines: bool = Field(
        default=False,
        description="without detect_fps set, sample as fast as the camera's most demanding "
        "pipeline needs (fire lane 1/s, zone intrusion and water safety 5/s)",
    )


class CameraConfig(_Cfg):
    """One camera of the node."""

    id: str = Field(
        min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.\-]+$", description="camera id"
    )
    url: str = Field(min_length=1, description="rtsp://…, http://…, or a video file path")
    detect_fps: float = Field(default=5.0, gt=0.0, le=60.0, description="detector sampling rate")
    zones: dict[str, list[Point]] = Field(default_factory=dict, description="name → pixel polygon")
    pipelines: dict[str, dict[str, Any]] = Field(description="pipeline name → options")
    loop: bool = Field(default=False, description="loop a file source")
    realtime: bool = Field(default=True, description="pace a file source to its frame rate")
    grid_id: str | None = Field(
        default=None, description="grid of this camera (default: the node's)"
    )
    address: str | None = Field(default=None, description="address shown in events")
    lat: float | None = Field(default=None, ge=-90, le=90)
    lon: float | None = Field(default=None, ge=-180, le=180)
    stall_timeout_s: float = Field(
        default=10.0, gt=0, description="no frame for this long → reconnect"
    )
    enabled: bool = Field(default=True, description="read this camera")
    motion_gate: bool = Field(
        default=True, description="run the detector only on motion (plus keep-alives)"
    )
    keepalive_s: float = Field(
        default=3.0, gt=0, le=600, description="a detection at least this often without motion"
    )
    hangover_s: float = Field(
        default=1.0, ge=0, le=60, description="keep detecting this long after motion stops"
    )
    health: bool = Field(
        default=True, description="watch for black, frozen, covered or blurred video"
    )
    clips: bool = Field(default=True, description="attach a short clip around each event")
    source_lost_s: float | None = Field(
        default=None,
        gt=0,
        le=3600,
        description="no frame for this long (or never opened) → device_fault source_lost / unreachable; "
        "default: the node's source_lost_s",
    )
    max_detect_fps: float | None = Field(
        default=None,
        gt=0.0,
        le=60.0,
        description="ceiling of detector samples per second, extra samples at zone edges included "
        "(default: twice detect_fps)",
    )
    sampling: SamplingConfig = Field(
        default_factory=SamplingConfig, description="detector sampling savings"
    )

    # pipeline name → (its options as written, the same validated into the pipeline's model):
    # kept by load_edge_config so that the edge builds pipelines from typed options without
    # validating them again; an entry whose written options were replaced (model_copy) is stale
    _typed_pipelines: dict[str, tuple[dict[str, Any], BaseModel]] = PrivateAttr(
        default_factory=dict
    )

    def keep_typed_options(self, name: str, options: BaseModel) -> None:
        """Keep the validated options of pipeline ``name`` (``load_edge_config`` does)."""
        self._typed_pipelines[name] = (self.pipelines[name], options)

    def typed_options(self, name: str) -> BaseModel | None:
        """The options of pipeline ``name`` as validated at load; None when not validated
        then, or when this copy's options are not the ones that were validated."""
        kept = self._typed_pipelines.get(name)
        if kept is None or kept[0] is not self.pipelines.get(name):
            return None
        return kept[1]

    @model_validator(mode="after")
    def _detect_rates(self) -> CameraConfig:
        if self.max_detect_fps is not None and self.max_detect_fps < self.detect_fps:
            raise ValueError(
                f"max_detect_fps: expected at least detect_fps ({self.detect_fps}), found {self.max_detect_fps}"
            )
        return self

    @field_validator("zones")
    @classmethod
    def _zones(cls, value: dict[str, list[Point]]) -> dict[str, list[Point]]:
        for name, poly in value.items():
            if len(poly) < 3:
                raise ValueError(
                    f"zone {name!r}: expected a polygon of at least 3 points, found {len(poly)}"
                )
        return value


class SensorConfig(_Cfg):
    """One sensor (device registry entry) of a sensor gateway node."""

    id: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.\-]+$")
    kind: Literal[
        "smoke", "gas", "water_level", "temperature", "heart_rate", "humidity", "co", "door"
    ]
    interval_s: float = Field(default=60.0, gt=0, description="expected reporting interval")
    zone: str | None = Field(
        default=None, description="zone this sensor watches (links to a camera's zone)"
    )
    camera: str | None = Field(default=None, description="camera that sees the sensor's area")
    grid_id: str | None = None
    address: str | None = None
    resident_id: str | None = Field(
        default=None, description="wearables: the resident's id (no name on the wire)"
    )
    thresholds: dict[str, float] = Field(
        default_factory=dict, description="rule overrides (e.g. low, high, hold_s)"
    )


class OutboxConfig(_Cfg):
    """The durable SQLite outbox."""

    path: str = Field(
        default="data/outbox.sqlite", description="SQLite file (relative to the config)"
    )
    max_bytes: int = Field(
        default=256 * 1024 * 1024, ge=64 * 1024, description="bound on stored bytes"
    )
    ack_timeout_s: float = Field(
        default=10.0, gt=0, le=600, description="re-send when no hub ack within this"
    )
    max_inflight: int = Field(default=100, ge=1, le=10000, description="bounded in-flight window")


class EvidenceConfig(_Cfg):
    """Local evidence store on the node."""

    dir: str = Field(default="data/evidence", description="folder (relative to the config)")
    max_bytes: int = Field(default=2 * 1024**3, ge=1024 * 1024, description="size retention")
    max_age_days: float = Field(default=30.0, gt=0, description="age retention")
    mqtt_max_bytes: int = Field(
        default=2 * 1024 * 1024, ge=1024, description="larger evidence goes by HTTP"
    )
    clip_pre_s: float = Field(default=3.0, ge=0, le=30)
    clip_post_s: float = Field(default=3.0, ge=0, le=30)


class EdgeConfig(_Cfg):
    """An edge node: cameras and/or sensors, detector, outbox, broker."""

    kind: Literal["edge"] | None = None
    node_id: str = Field(
        min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.\-]+$", description="node id"
    )
    broker: BrokerConfig = Field(default_factory=BrokerConfig)
    grid_id: str = Field(default="unknown", description="default location of this node's events")
    address: str | None = Field(default=None, description="default address of this node's events")
    timezone: str = Field(default="Asia/Shanghai", description="local time zone for hours windows")
    http: str | None = Field(
        default="127.0.0.1:8081", description="HOST:PORT for /metrics and reports"
    )
    detector: DetectorConfig = Field(default_factory=DetectorConfig)
    cameras: list[CameraConfig] = Field(default_factory=list)
    sensors: list[SensorConfig] = Field(default_factory=list)
    outbox: OutboxConfig = Field(default_factory=OutboxConfig)
    evidence: EvidenceConfig = Field(default_factory=EvidenceConfig)
    status_interval_s: float = Field(
        default=15.0, gt=0, description="how often the retained status is refreshed"
    )
    source_lost_s: float = Field(
        default=20.0,
        gt=0,
        le=3600,
        description="a camera without frames for this long is blind: device_fault (per camera: cameras[].source_lost_s)",
    )
    registry: str | None = Field(default=None, description="grid registry file (for report places)")
    taxonomy: str | None = Field(default=None, description="taxonomy file (default: packaged)")
    reports: dict[str, Any] = Field(default_factory=dict, description="report endpoint options")
    state_path: str = Field(
        default="data/pipeline-state.json",
        description="where pipeline state (e.g. parked vehicles) survives restarts (relative to the config)",
    )
    sensor_replay: str | None = Field(
        default=None,
        description="CSV of sensor readings replayed in real time at start (demos, tests)",
    )
    ack_key_env: str | None = Field(
        default=None,
        description="env var holding this node's ack key (`shaobing hub node-key NODE`): "
        "acks without its signature are ignored and counted",
    )
    ack_key: str | None = Field(
        default=None, description="the ack key in clear (prefer ack_key_env)"
    )
    http_token_env: str | None = Field(
        default=None,
        description="env var holding a node-level token for POST /api/v1/reports (Bearer); "
        "worker tokens signed by the hub (shaobing hub worker-token) are checked with ack_key",
    )
    http_token: str | None = Field(
        default=None, description="the node-level report token in clear (prefer http_token_env)"
    )

    def http_token_value(self) -> str | None:
        """The node-level report token (the env var wins), or None."""
        return secret_value(self.http_token_env, self.http_token)

    def ack_key_value(self) -> str | None:
        """This node's ack key (the env var wins), or None when acks are not verified."""
        return secret_value(self.ack_key_env, self.ack_key)

    # set by the loader: folder of the config file, for relative paths
    base_dir: str = Field(default=".", exclude=True, description="internal")
    # set by the loader: the config file, named in messages about its keys
    config_file: str = Field(default="", exclude=True, description="internal")

    def resolve(self, path: str) -> Path:
        """A path from this config, relative to the config file's folder."""
        p = Path(path).expanduser()
        return p if p.is_absolute() else (Path(self.base_dir) / p)

    def camera(self, camera_id: str) -> CameraConfig:
        """The camera with this id (KeyError lists the known ids)."""
        for cam in self.cameras:
            if cam.id == camera_id:
                return cam
        raise KeyError(f"camera {camera_id!r} not in config; known: {[c.id for c in self.cameras]}")


# --------------------------------------------------------------------------- hub


class AuthConfig(_Cfg):
    """Who may read and act."""

    anonymous_read: bool = Field(
        default=False, description="read-only access without a token (viewer role, no scope)"
    )
    session_ttl_h: float = Field(
        default=12.0, gt=0, description="lifetime of a web-login session token, hours"
    )
    token_ttl_days: float | None = Field(
        default=365.0,
        gt=0,
        description="lifetime of a user's bearer token from its issue, days (null: no expiry); "
        "`shaobing hub user token NAME` issues a new one",
    )
    login_max_failures: int = Field(
        default=5, ge=1, le=1000, description="failed logins per name or address before backoff"
    )
    login_window_s: float = Field(
        default=300.0, gt=0, description="window in which failed logins are counted"
    )
    login_backoff_s: float = Field(
        default=30.0, gt=0, description="first lockout; doubles with each further failure"
    )
    secure_cookies: bool | None = Field(
        default=None,
        description="mark the session cookie Secure: null = when the request came over HTTPS "
        "(directly or as X-Forwarded-Proto from a trusted proxy)",
    )


class Open311Config(_Cfg):
    """Open311 GeoReport v2 intake of citizen requests."""

    api_keys: list[str] = Field(
        default_factory=list,
        description="api_key values accepted on POST /open311/v2/requests.json (none: posting is off)",
    )
    api_keys_env: str | None = Field(
        default=None, description="env var holding more api keys, comma-separated"
    )
    jurisdiction_id: str | None = Field(
        default=None, description="jurisdiction_id this hub answers for (any when unset)"
    )

    def keys(self) -> set[str]:
        """Every accepted api key (config list and the env var)."""
        import os

        extra = os.environ.get(self.api_keys_env, "") if self.api_keys_env else ""
        return {k for k in self.api_keys if k} | {k.strip() for k in extra.split(",") if k.strip()}


class IngestConfig(_Cfg):
    """MQTT ingest of edge events."""

    shared_group: str | None = Field(
        default=None, description="$share group when several hub workers run"
    )
    batch_size: int = Field(default=200, ge=1, le=10000, description="events per commit at most")
    batch_ms: float = Field(
        default=20.0, ge=0, le=5000, description="longest wait to fill a commit batch"
    )
    client_id: str | None = Field(
        default=None, description="MQTT client id (stable → persistent session)"
    )
    max_payload_bytes: int = Field(
        default=64 * 1024, ge=1024, description="larger payloads are dead-lettered"
    )
    clock_skew_s: float = Field(
        default=5.0, gt=0, description="flag events whose edge time is off by more"
    )
    ack_secret_env: str | None = Field(
        default=None,
        description="env var holding the hub's ack secret: acks are then signed per node "
        "(HMAC-SHA256 with the key `shaobing hub node-key NODE` prints for that node)",
    )
    ack_secret: str | None = Field(
        default=None, description="the ack secret in clear (prefer ack_secret_env)"
    )
    dead_letter_max_age_days: float = Field(
        default=30.0, gt=0, description="dead letters older than this are pruned"
    )
    dead_letter_max_mb: float = Field(
        default=256.0, gt=0, description="oldest dead letters are pruned beyond this many MB"
    )

    def ack_secret_value(self) -> str | None:
        """The ack secret (the env var wins), or None when acks are unsigned."""
        return secret_value(self.ack_secret_env, self.ack_secret)


class HealthConfig(_Cfg):
    """When ``/healthz`` turns to 503."""

    commit_fail_s: float = Field(
        default=10.0, gt=0, description="commits (or the write probe) failing for longer"
    )
    stuck_s: float = Field(
        default=30.0, gt=0, description="the ingest worker has not turned for longer"
    )
    disk_min_free_mb: float = Field(
        default=200.0, ge=0, description="free space under the database or evidence below this"
    )
    probe_interval_s: float = Field(
        default=5.0, gt=0, le=60, description="how often a tiny write proves the database writes"
    )


_LEVEL = Literal["grid", "community", "town", "district"]


class RoutingRule(_Cfg):
    """One routing override: events matching every given selector get this board/level."""

    type: str | None = Field(default=None, description="event type code to match (any when empty)")
    family: str | None = Field(
        default=None, description="taxonomy family to match (any when empty)"
    )
    severity: Severity | None = Field(
        default=None, description="severity to match (any when empty)"
    )
    board: str | None = Field(
        default=None, description="board to route to (default: the taxonomy's)"
    )
    level: _LEVEL | None = Field(
        default=None, description="level to route to (default: the taxonomy's)"
    )


class RoutingConfig(_Cfg):
    """Type → board and level; grid → owner. The first matching rule wins over the taxonomy."""

    rules: list[RoutingRule] = Field(
        default_factory=list, description="overrides, first match wins"
    )
    emergency_min_level: _LEVEL = Field(
        default="town", description="emergencies are owned at least at this level"
    )
    auto_screen: bool = Field(
        default=True, description="a tracked order is screened and dispatched by the rules at once"
    )
    screening_town: str | None = Field(
        default=None,
        description="town whose command centre screens events the registry cannot place (default: the first town)",
    )


class CalendarConfig(_Cfg):
    """Working calendar for SLA deadlines (in the hub's time zone)."""

    work_hours: list[tuple[str, str]] = Field(
        default_factory=lambda: [("09:00", "12:00"), ("13:30", "18:00")],
        description="working periods of a working day, HH:MM pairs",
    )
    weekend: list[int] = Field(
        default_factory=lambda: [5, 6], description="weekdays off (0 = Monday)"
    )
    holidays: list[date] = Field(default_factory=list, description="public holidays (days off)")
    workdays: list[date] = Field(
        default_factory=list, description="make-up working days (调休) that fall on a weekend"
    )

    @field_validator("work_hours")
    @classmethod
    def _hours(cls, value: list[tuple[str, str]]) -> list[tuple[str, str]]:
        for start, end in value:
            for t in (start, end):
                hh, sep, mm = t.partition(":")
                if not sep or not hh.isdigit() or not mm.isdigit() or int(hh) > 24 or int(mm) > 59:
                    raise ValueError(f"expected HH:MM, found {t!r}")
            if start >= end:
                raise ValueError(f"expected start before end, found {start}-{end}")
        return value


class SlaRule(_Cfg):
    """Deadlines for orders matching every given selector (most specific match wins)."""

    type: str | None = Field(default=None, description="event type code (any when empty)")
    severity: Severity | None = Field(default=None, description="severity (any when empty)")
    level: _LEVEL | None = Field(default=None, description="level (any when empty)")
    accept_min: float = Field(
        gt=0, description="minutes from dispatch until the handler must accept"
    )
    handle_min: float = Field(gt=0, description="minutes from dispatch until it must be handled")
    working_time: bool = Field(
        default=True, description="count working time (calendar) rather than wall-clock time"
    )


def _default_sla_rules() -> list[SlaRule]:
    return [
        SlaRule(severity="emergency", accept_min=5, handle_min=120, working_time=False),
        SlaRule(severity="urgent", accept_min=30, handle_min=480, working_time=False),
        SlaRule(severity="normal", accept_min=240, handle_min=2880, working_time=True),
    ]


class SlaConfig(_Cfg):
    """SLA deadlines, escalation and the scheduler."""

    rules: list[SlaRule] = Field(
        default_factory=_default_sla_rules, description="deadlines per type × severity × level"
    )
    calendar: CalendarConfig = Field(default_factory=CalendarConfig, description="working calendar")
    ack_min: float = Field(
        default=5.0, gt=0, description="an emergency not acknowledged within this escalates"
    )
    rating_window_h: float = Field(
        default=72.0, gt=0, description="a verified order without a rating closes after this"
    )
    satisfied_min: int = Field(
        default=3, ge=1, le=5, description="a rating at least this closes; lower reopens"
    )
    tick_s: float = Field(
        default=5.0, gt=0, le=3600, description="how often the scheduler looks for late orders"
    )
    lease_s: float = Field(
        default=30.0, gt=0, description="scheduler lease among several hub workers"
    )
    reassign_first: bool = Field(
        default=True,
        description="not accepted in time: reassign to the backup on duty first, then escalate",
    )


class IncidentsConfig(_Cfg):
    """How events merge into incidents, hotspots and false-alarm suppression."""

    merge_window_s: float = Field(
        default=1800.0, gt=0, description="events this close in time may merge"
    )
    merge_distance_m: float = Field(
        default=150.0, gt=0, description="events with coordinates this close may merge"
    )
    floor_tolerance: int = Field(
        default=1, ge=0, description="floors that may differ within one incident"
    )
    hotspot_period_days: float = Field(
        default=30.0, gt=0, description="period over which repeats count"
    )
    hotspot_min_count: int = Field(
        default=3, ge=2, description="incidents of one type at one place that make a hotspot"
    )
    false_alarm_min_count: int = Field(
        default=5, ge=1, description="orders of a source before its false-alarm rate counts"
    )
    false_alarm_rate: float = Field(
        default=0.8, gt=0, le=1, description="rate at which a source is suppressed"
    )
    suppress_h: float = Field(
        default=24.0, ge=0, description="how long a noisy source is suppressed (0: never)"
    )


def _emergency_only() -> list[Severity]:
    return ["emergency"]


class WebhookConfig(_Cfg):
    """A webhook that receives signed work-order notices."""

    url: str = Field(description="http(s) URL; the body is signed with HMAC-SHA256")
    secret_env: str = Field(description="environment variable holding the HMAC secret")
    severities: list[Severity] = Field(
        default_factory=lambda: _emergency_only(), description="which notices are sent"
    )
    timeout_s: float = Field(default=5.0, gt=0, le=60, description="HTTP timeout of one attempt")

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"expected an http:// or https:// URL, found {value!r}")
        return value


class NotifyConfig(_Cfg):
    """How people are told: MQTT dispatch notices and webhooks."""

    mqtt: bool = Field(
        default=True, description="publish DispatchNotice on shaobing/v1/hub/dispatch/{assignee}"
    )
    webhooks: list[WebhookConfig] = Field(default_factory=list, description="signed webhooks")
    max_attempts: int = Field(
        default=8, ge=1, le=100, description="deliveries are retried this often"
    )
    retry_base_s: float = Field(
        default=2.0, gt=0, description="first retry delay (doubles each time)"
    )


class HubConfig(_Cfg):
    """The hub: store, ingest, API."""

    kind: Literal["hub"] | None = Field(default=None, description="config kind marker")
    hub_id: str = Field(
        default="hub", pattern=r"^[A-Za-z0-9_.\-]+$", description="this hub worker's id"
    )
    db: str = Field(
        default="sqlite:///data/hub.sqlite",
        description="SQLAlchemy URL (sqlite:/// relative to config)",
    )
    broker: BrokerConfig = Field(default_factory=BrokerConfig, description="MQTT broker")
    http: str = Field(default="127.0.0.1:8080", description="HOST:PORT of the API and dashboard")
    https_cert_file: str | None = Field(
        default=None,
        description="serve HTTPS with this certificate (PEM); else put a TLS reverse proxy in front",
    )
    https_key_file: str | None = Field(default=None, description="private key of https_cert_file")
    timezone: str = Field(default="Asia/Shanghai", description="time zone of the working calendar")
    auth: AuthConfig = Field(default_factory=AuthConfig, description="authentication")
    open311: Open311Config = Field(
        default_factory=Open311Config, description="Open311 GeoReport v2 citizen requests"
    )
    ingest: IngestConfig = Field(default_factory=IngestConfig, description="MQTT ingest")
    registry: str | None = Field(
        default=None, description="grid registry file (relative to the config)"
    )
    taxonomy: str | None = Field(default=None, description="taxonomy file (default: packaged)")
    evidence_dir: str = Field(
        default="data/evidence", description="where evidence bytes are stored"
    )
    evidence_url: str | None = Field(
        default=None,
        description="S3-compatible storage for evidence: s3://bucket/prefix?endpoint=http://host:9000 "
        "(credentials from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY); default: evidence_dir",
    )
    evidence_max_bytes: int = Field(
        default=50 * 1024 * 1024, ge=1024, description="largest evidence file"
    )
    upload_max_bytes: int = Field(
        default=10 * 1024 * 1024, ge=1024, description="largest photo upload"
    )
    routing: RoutingConfig = Field(default_factory=RoutingConfig, description="routing rules")
    sla: SlaConfig = Field(default_factory=SlaConfig, description="SLA deadlines and escalation")
    incidents: IncidentsConfig = Field(
        default_factory=IncidentsConfig, description="incident merge options"
    )
    notify: NotifyConfig = Field(
        default_factory=NotifyConfig, description="notifiers (mqtt, webhook)"
    )
    health: HealthConfig = Field(
        default_factory=HealthConfig, description="when /healthz reports unavailable"
    )
    max_body_bytes: int = Field(
        default=1024 * 1024,
        ge=1024,
        description="largest JSON or form request body (uploads: upload_max_bytes)",
    )

    base_dir: str = Field(default=".", exclude=True, description="internal")
    # set by the loader: the config file, named in messages about its keys
    config_file: str = Field(default="", exclude=True, description="internal")

    def resolve(self, path: str) -> Path:
        """A path from this config, relative to the config file's folder."""
        p = Path(path).expanduser()
        return p if p.is_absolute() else (Path(self.base_dir) / p)

    def db_url(self) -> str:
        """The database URL with a relative SQLite path resolved against the config folder."""
        prefix = "sqlite:///"
        if (
            self.db.startswith(prefix)
            and not self.db.startswith(prefix + "/")
            and ":memory:" not in self.db
        ):
            return prefix + str(self.resolve(self.db[len(prefix) :]).resolve())
        return self.db


# --------------------------------------------------------------------------- loading

_Line = dict[tuple[str | int, ...], int]


def load_yaml_with_lines(text: str, filename: str) -> tuple[Any, _Line]:
    """Parse YAML and remember the 1-based line of every key and list item."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        raise ConfigError(
            [ConfigIssue(file=filename, line=line, path="", message=f"invalid YAML: {exc}")]
        ) from None
    lines: _Line = {}

    def walk(node: yaml.Node | None, path: tuple[str | int, ...]) -> None:
        if node is None:
            return
        lines.setdefault(path, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                key = key_node.value
                lines[(*path, key)] = key_node.start_mark.line + 1
                walk(value_node, (*path, key))
                lines[(*path, key)] = key_node.start_mark.line + 1
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                walk(item, (*path, i))

    walk(root, ())
    data = yaml.safe_load(text) if root is not None else None
    return data, lines


def _line_for(lines: _Line, loc: tuple[str | int, ...]) -> int | None:
    for n in range(len(loc), -1, -1):
        if loc[:n] in lines:
            return lines[loc[:n]]
    return None


def _found(data: Any, loc: tuple[str | int, ...]) -> str:
    cur = data
    for part in loc:
        try:
            cur = cur[part]
        except (KeyError, IndexError, TypeError):
            return "nothing"
    text = repr(cur)
    return text if len(text) <= 60 else text[:57] + "..."


def _issues_from(
    exc: ValidationError, data: Any, lines: _Line, filename: str, prefix: tuple[str | int, ...] = ()
) -> list[ConfigIssue]:
    issues = []
    for err in exc.errors():
        loc = prefix + tuple(
            p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-"))
        )
        path = ".".join(str(p) for p in loc)
        kind = err["type"]
        if kind == "extra_forbidden":
            msg = f"expected no such key (unknown key {loc[-1]!r}), found {_found(data, loc)}"
        elif kind == "missing":
            msg = "expected a value, found nothing (required key is missing)"
        else:
            text = err["msg"]
            if text.startswith("Value error, "):
                text = text[len("Value error, ") :]
            msg = (
                text
                if "found" in text
                else f"expected {text[0].lower() + text[1:]}, found {_found(data, loc)}"
            )
        issues.append(
            ConfigIssue(file=filename, line=_line_for(lines, loc), path=path, message=msg)
        )
    return issues


T = TypeVar("T", bound=BaseModel)

PipelineCheck = Callable[[str, Mapping[str, Any], "CameraConfig"], None]


def _read(path: str | Path) -> tuple[Path, str]:
    p = Path(path)
    try:
        return p, p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            [
                ConfigIssue(
                    file=str(p), line=None, path="", message="expected a config file, found none"
                )
            ]
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(
            [ConfigIssue(file=str(p), line=None, path="", message=f"cannot read: {exc}")]
        ) from None


def _load(model: type[T], path: str | Path) -> tuple[T, Any, _Line, str]:
    p, text = _read(path)
    filename = str(p)
    data, lines = load_yaml_with_lines(text, filename)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(
            [
                ConfigIssue(
                    file=filename,
                    line=1,
                    path="",
                    message=f"expected a mapping at the top, found {type(data).__name__}",
                )
            ]
        )
    try:
        obj = model.model_validate(
            {**data, "base_dir": str(p.resolve().parent), "config_file": filename}
        )
    except ValidationError as exc:
        raise ConfigError(_issues_from(exc, data, lines, filename)) from None
    return obj, data, lines, filename


class LocatedIssue(Protocol):
    """A problem found by an extra check: its config key path and message."""

    loc: tuple[str | int, ...]
    message: str


EdgeCheck = Callable[["EdgeConfig"], Sequence[LocatedIssue]]


def load_edge_config(
    path: str | Path,
    pipeline_options: Mapping[str, type[BaseModel]] | None = None,
    checks: Sequence[EdgeCheck] = (),
) -> EdgeConfig:
    """Load and validate an edge config.

    Args:
        path: the YAML file.
        pipeline_options: pipeline name → options model; when given, each camera's
            ``pipelines`` entries are validated too (unknown pipeline names are errors).
        checks: further checks (e.g. sensor thresholds); their issues get file and line.
    """
    cfg, data, lines, filename = _load(EdgeConfig, path)
    issues: list[ConfigIssue] = []
    for check in checks:
        for found in check(cfg):
            issues.append(
                ConfigIssue(
                    file=filename,
                    line=_line_for(lines, tuple(found.loc)),
                    path=".".join(str(p) for p in found.loc),
                    message=found.message,
                )
            )
    ids = [c.id for c in cfg.cameras]
    for i, cam in enumerate(cfg.cameras):
        if ids.count(cam.id) > 1:
            issues.append(
                ConfigIssue(
                    file=filename,
                    line=_line_for(lines, ("cameras", i, "id")),
                    path=f"cameras.{i}.id",
                    message=f"expected unique camera ids, found {cam.id!r} twice",
                )
            )
        if pipeline_options is None:
            continue
        for name, options in cam.pipelines.items():
            loc: tuple[str | int, ...] = ("cameras", i, "pipelines", name)
            if name not in pipeline_options:
                issues.append(
                    ConfigIssue(
                        file=filename,
                        line=_line_for(lines, loc),
                        path=".".join(map(str, loc)),
                        message=f"expected a pipeline name ({', '.join(sorted(pipeline_options))}), found {name!r}",
                    )
                )
                continue
            try:
                opts = pipeline_options[name].model_validate(options or {})
            except ValidationError as exc:
                issues.extend(_issues_from(exc, data, lines, filename, loc))
                continue
            cam.keep_typed_options(name, opts)
            for zone_field in ("zone", "water_zone", "bank_zone"):
                zone = getattr(opts, zone_field, None)
                if isinstance(zone, str) and zone not in cam.zones:
                    zl = (*loc, zone_field)
                    issues.append(
                        ConfigIssue(
                            file=filename,
                            line=_line_for(lines, zl),
                            path=".".join(map(str, zl)),
                            message=f"expected a zone of this camera ({', '.join(sorted(cam.zones)) or 'none defined'}), found {zone!r}",
                        )
                    )
    sensor_ids = [s.id for s in cfg.sensors]
    for i, s in enumerate(cfg.sensors):
        if sensor_ids.count(s.id) > 1:
            issues.append(
                ConfigIssue(
                    file=filename,
                    line=_line_for(lines, ("sensors", i, "id")),
                    path=f"sensors.{i}.id",
                    message=f"expected unique sensor ids, found {s.id!r} twice",
                )
            )
        if s.camera is not None and s.camera not in ids:
            issues.append(
                ConfigIssue(
                    file=filename,
                    line=_line_for(lines, ("sensors", i, "camera")),
                    path=f"sensors.{i}.camera",
                    message=f"expected a camera id of this node ({', '.join(ids) or 'none'}), found {s.camera!r}",
                )
            )
    if issues:
        raise ConfigError(issues)
    return cfg


def load_hub_config(path: str | Path) -> HubConfig:
    """Load and validate a hub config (an empty file is refused, as ``validate`` does)."""
    cfg, data, _, filename = _load(HubConfig, path)
    if not data:
        raise ConfigError(
            [
                ConfigIssue(
                    file=filename,
                    line=1,
                    path="",
                    message="expected hub settings (at least `kind: hub`), found an empty file",
                )
            ]
        )
    return cfg


def detect_kind(path: str | Path) -> str:
    """``edge``, ``hub``, ``registry`` or ``taxonomy``: from ``kind:``, else from the keys."""
    p, text = _read(path)
    data, _ = load_yaml_with_lines(text, str(p))
    if not isinstance(data, dict):
        raise ConfigError(
            [
                ConfigIssue(
                    file=str(p),
                    line=1,
                    path="",
                    message=f"expected a mapping at the top, found {type(data).__name__}",
                )
            ]
        )
    kind = data.get("kind")
    if isinstance(kind, str):
        return kind
    if "node_id" in data:
        return "edge"
    if "types" in data and "boards" in data:
        return "taxonomy"
    if "districts" in data or "grids" in data:
        return "registry"
    if any(k in data for k in ("db", "ingest", "auth", "hub_id")):
        return "hub"
    raise ConfigError(
        [
            ConfigIssue(
                file=str(p),
                line=1,
                path="kind",
                message="expected kind: edge|hub|registry (or node_id for an edge config), found neither",
            )
        ]
    )


def validate_file(
    path: str | Path,
    pipeline_options: Mapping[str, type[BaseModel]] | None = None,
    extra_validators: Mapping[str, Callable[[Path], None]] | None = None,
    edge_checks: Sequence[EdgeCheck] = (),
) -> str:
    """Validate any config file by its kind; returns the kind or raises ConfigError."""
    kind = detect_kind(path)
    if kind == "edge":
        load_edge_config(path, pipeline_options, edge_checks)
    elif kind == "hub":
        load_hub_config(path)
        if extra_validators and "hub" in extra_validators:
            extra_validators["hub"](Path(path))
    elif extra_validators and kind in extra_validators:
        extra_validators[kind](Path(path))
    elif kind == "taxonomy":
        from shaobing.taxonomy import load_taxonomy

        try:
            load_taxonomy(path)
        except ValueError as exc:
            raise ConfigError(
                [ConfigIssue(file=str(path), line=None, path="", message=str(exc))]
            ) from None
    else:
        raise ConfigError(
            [
                ConfigIssue(
                    file=str(path),
                    line=1,
                    path="kind",
                    message=f"expected edge, hub, registry or taxonomy, found {kind!r}",
                )
            ]
        )
    return kind


def split_hostport(value: str, what: str = "--http") -> tuple[str, int]:
    """``HOST:PORT`` → (host, port), with a clear error."""
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{what}: expected HOST:PORT, found {value!r}")
    return host or "127.0.0.1", int(port)
