"""The wire contract: every value that crosses a process boundary.

Events (``shaobing.event/1``), node status (``shaobing.status/1``), sensor readings,
hub acknowledgements and dispatch notices. All models are frozen and reject
unknown fields: a new field means a new schema version.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Final, Literal, TypeVar

from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from shaobing.severity import Severity as Severity
from shaobing.taxonomy import default_taxonomy

SCHEMA: Final = "shaobing.event/1"
STATUS_SCHEMA: Final = "shaobing.status/1"
MAX_EVENT_BYTES = 64 * 1024

State = Literal["active", "update", "cleared"]
SourceKind = Literal["camera", "sensor", "report", "citizen", "system"]
EvidenceKind = Literal["image", "clip", "audio", "text"]

_ID_RE = re.compile(r"^[A-Za-z0-9_.:\-]{1,64}$")
# RFC 3339 date-time with offset (the one time format on the wire; no Unix numbers)
_RFC3339_RE = re.compile(
    r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$"
)
EARLIEST_TIME: Final = datetime(2000, 1, 1, tzinfo=UTC)
MAX_FUTURE: Final = timedelta(days=1)
MAX_ATTRIBUTE_DEPTH: Final = 8
_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")


def _rfc3339(value: Any) -> Any:
    """Times arrive as RFC 3339 strings (or datetimes made in-process), nothing else."""
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str):
        raise ValueError(f"expected an RFC 3339 time string, found {type(value).__name__}")
    if not _RFC3339_RE.match(value):
        raise ValueError(f"expected an RFC 3339 time with offset, found {value[:40]!r}")
    # parsed here, so that strict validation of the datetime itself accepts it
    return datetime.fromisoformat(value.replace("z", "Z").replace("t", "T"))


WireTime = Annotated[AwareDatetime, BeforeValidator(_rfc3339)]
NodeId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.\-]+$")]

__all__ = [
    "SCHEMA",
    "STATUS_SCHEMA",
    "MAX_EVENT_BYTES",
    "ContractError",
    "Source",
    "Location",
    "Evidence",
    "Event",
    "CameraStatus",
    "SensorStatus",
    "NodeStatus",
    "SensorReading",
    "DispatchNotice",
    "new_event_id",
    "encode_ack",
    "decode_ack",
    "now_utc",
    "describe_validation_error",
    "check_time_range",
    "ack_key_for",
    "sign_ack",
    "verify_ack",
    "AckError",
    "sign_worker_token",
    "Verdict",
    "FALSE_ALARM_REASONS",
    "verify_worker_token",
]


_M = TypeVar("_M", bound=BaseModel)


class ContractError(ValueError):
    """A payload that does not satisfy the wire contract."""


class _Wire(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=False)


class Source(_Wire):
    """Who saw it."""

    node_id: NodeId = Field(description="edge node id, or 'hub' for reports arriving at the hub")
    kind: SourceKind = Field(description="camera, sensor, report, citizen or system")
    device_id: str = Field(
        min_length=1, max_length=128, description="camera id, sensor id, worker id …"
    )
    pipeline: str = Field(
        min_length=1, max_length=64, description="pipeline that produced the event"
    )
    model: str | None = Field(
        default=None, max_length=128, description="model name, when a model was used"
    )


class Location(_Wire):
    """Where it happened; at least one of grid_id, address, lat/lon."""

    grid_id: str | None = Field(default=None, max_length=128)
    address: str | None = Field(default=None, max_length=512)
    lat: float | None = Field(default=None, ge=-90, le=90, description="WGS-84 latitude")
    lon: float | None = Field(default=None, ge=-180, le=180, description="WGS-84 longitude")
    zone: str | None = Field(default=None, max_length=128)
    floor: int | None = Field(default=None, ge=-10, le=300)
    column: int | None = Field(default=None, ge=1, le=1000)

    @model_validator(mode="after")
    def _somewhere(self) -> Location:
        if (self.lat is None) != (self.lon is None):
            raise ValueError("lat and lon: expected both or neither, found only one")
        if not (self.grid_id or self.address or self.lat is not None):
            raise ValueError(
                "location: expected at least one of grid_id, address, lat/lon; found none"
            )
        return self


class Evidence(_Wire):
    """Media referenced by an event and sent separately."""

    id: str = Field(min_length=1, max_length=64, pattern=_ID_RE.pattern)
    kind: EvidenceKind
    content_type: str = Field(min_length=3, max_length=128, pattern=r"^[\w.+\-]+/[\w.+\-]+$")
    sha256: str = Field(pattern=_SHA256_RE.pattern, description="lowercase hex sha256 of the bytes")
    bytes: int = Field(ge=0, description="size in bytes")


class Event(_Wire):
    """One observation of a real-world situation (``shaobing.event/1``)."""

    schema_: Literal["shaobing.event/1"] = Field(default=SCHEMA, alias="schema")
    id: str = Field(
        min_length=1,
        max_length=64,
        pattern=_ID_RE.pattern,
        description="UUID or ULID; idempotency key",
    )
    type: str = Field(description="taxonomy code")
    severity: Severity
    state: State = "active"
    incident_key: str = Field(min_length=1, max_length=256)
    occurred_at: WireTime
    detected_at: WireTime
    source: Source
    location: Location
    confidence: float = Field(ge=0.0, le=1.0)
    summary: str = Field(min_length=1, max_length=500)
    attributes: dict[str, Any] = Field(default_factory=dict)
    evidence: list[Evidence] = Field(default_factory=list, max_length=32)
    related: list[str] = Field(default_factory=list, max_length=64)

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    @field_validator("type")
    @classmethod
    def _known_type(cls, value: str) -> str:
        taxonomy = default_taxonomy()
        if value not in taxonomy:
            raise ValueError(
                f"expected a taxonomy code ({', '.join(sorted(taxonomy.types))}), found {value!r}"
            )
        return value

    @field_validator("related")
    @classmethod
    def _related_ids(cls, value: list[str]) -> list[str]:
        for item in value:
            if not _ID_RE.match(item):
                raise ValueError(f"expected event ids, found {item!r}")
        return value

    @field_validator("attributes")
    @classmethod
    def _shallow(cls, value: dict[str, Any]) -> dict[str, Any]:
        depth = _depth(value)
        if depth > MAX_ATTRIBUTE_DEPTH:
            raise ValueError(
                f"expected nesting of at most {MAX_ATTRIBUTE_DEPTH} levels, found {depth}"
            )
        return value

    @model_validator(mode="after")
    def _fits(self) -> Event:
        for name in ("occurred_at", "detected_at"):
            problem = check_time_range(getattr(self, name))
            if problem:
                raise ValueError(f"{name}: {problem}")
        size = len(self.model_dump_json(by_alias=True).encode("utf-8"))
        if size > MAX_EVENT_BYTES:
            raise ValueError(
                f"event: expected at most {MAX_EVENT_BYTES} bytes of JSON, found {size}"
            )
        return self

    def to_json(self) -> str:
        """Serialise for the wire (``schema`` key, RFC 3339 times)."""
        return self.model_dump_json(by_alias=True, exclude_none=False)

    def to_bytes(self) -> bytes:
        """UTF-8 JSON bytes for MQTT."""
        return self.to_json().encode("utf-8")

    @classmethod
    def from_json(cls, payload: bytes | str) -> Event:
        """Parse and validate a wire payload; raises ContractError naming the field."""
        raw = payload.encode("utf-8") if isinstance(payload, str) else payload
        if len(raw) > MAX_EVENT_BYTES:
            raise ContractError(
                f"payload: expected at most {MAX_EVENT_BYTES} bytes, found {len(raw)}"
            )
        try:
            return cls.model_validate_json(raw, strict=True)
        except ValidationError as exc:
            raise ContractError(describe_validation_error(exc)) from None


def _depth(value: Any, level: int = 1) -> int:
    """Nesting depth of a JSON-like value (stops counting past the limit)."""
    if isinstance(value, dict | list):
        if level > MAX_ATTRIBUTE_DEPTH:
            return level
        children = value.values() if isinstance(value, dict) else value
        return max((_depth(v, level + 1) for v in children), default=level)
    return level - 1


def check_time_range(when: datetime, now: datetime | None = None) -> str | None:
    """Why ``when`` cannot be a real event time, or None.

    Not before 2000 and at most a day ahead of the receiver's clock: a wider skew is a
    broken clock or a forged value (a year-9999 time cannot even be converted to UTC).
    Smaller skews are kept and flagged by the hub (``clock_skew``).
    """
    try:
        utc = when.astimezone(UTC)
    except (OverflowError, ValueError):
        return f"expected a time between 2000 and tomorrow, found {when.isoformat()}"
    if utc < EARLIEST_TIME:
        return f"expected a time after {EARLIEST_TIME.date()}, found {when.isoformat()}"
    limit = (now or datetime.now(UTC)) + MAX_FUTURE
    if utc > limit:
        return (
            f"expected a time at most {MAX_FUTURE} ahead of the receiver's clock, "
            f"found {when.isoformat()}"
        )
    return None


def _strict_parse(model: type[_M], payload: bytes | str) -> _M:
    """A wire payload validated strictly (no coercion); ContractError naming the field."""
    try:
        return model.model_validate_json(payload, strict=True)
    except ValidationError as exc:
        raise ContractError(describe_validation_error(exc)) from None


def describe_validation_error(exc: ValidationError) -> str:
    """One line per problem: ``field.path: message``."""
    lines = []
    for err in exc.errors():
        path = ".".join(str(p) for p in err["loc"]) or "payload"
        lines.append(f"{path}: {err['msg']}")
    return "; ".join(lines)


class CameraStatus(_Wire):
    """One camera's state in the node status."""

    id: str
    fps_in: float = 0.0
    fps_detect: float = 0.0
    state: Literal["starting", "online", "reconnecting", "offline", "fault", "stopped"] = "starting"
    reconnects: int = 0
    errors: int = 0
    frames_corrupt: int = 0
    health: str | None = Field(
        default=None, description="black, frozen, covered, blurred … when unhealthy"
    )
    false_alarms: int = Field(
        default=0, ge=0, description="alarms of this camera that people judged false"
    )


class SensorStatus(_Wire):
    """One sensor's state in the node status."""

    id: str
    kind: str
    state: Literal["ok", "alarm", "stale", "fault"] = "ok"
    last_seen: AwareDatetime | None = None
    battery: float | None = None


class NodeStatus(_Wire):
    """Retained node status (``shaobing.status/1``); the LWT carries ``online: false``."""

    schema_: Literal["shaobing.status/1"] = Field(default=STATUS_SCHEMA, alias="schema")
    node_id: NodeId
    online: bool
    version: str = ""
    cameras: list[CameraStatus] = Field(default_factory=list)
    sensors: list[SensorStatus] = Field(default_factory=list)
    outbox_depth: int = 0
    outbox_dropped: int = 0
    ts: WireTime

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    def to_bytes(self) -> bytes:
        """UTF-8 JSON bytes for MQTT."""
        return self.model_dump_json(by_alias=True).encode("utf-8")

    @classmethod
    def from_json(cls, payload: bytes | str) -> NodeStatus:
        """Parse a status payload; raises ContractError naming the field."""
        return _strict_parse(cls, payload)


class SensorReading(_Wire):
    """A sensor gateway reading (``shaobing/v1/{node}/sensor/{device}``)."""

    device: str = Field(min_length=1, max_length=128)
    kind: str = Field(min_length=1, max_length=32)
    value: float | None = Field(description="null means no reading (e.g. no pulse detected)")
    unit: str | None = Field(default=None, max_length=16)
    ts: AwareDatetime
    battery: float | None = Field(default=None, ge=0, le=100)

    @classmethod
    def from_json(cls, payload: bytes | str) -> SensorReading:
        """Parse a reading; raises ContractError naming the field."""
        try:
            return cls.model_validate_json(payload)
        except ValidationError as exc:
            raise ContractError(describe_validation_error(exc)) from None


class DispatchNotice(_Wire):
    """Hub → worker device: a work order needs you (``shaobing/v1/hub/dispatch/{assignee}``)."""

    work_order_id: str
    incident_id: str
    type: str
    severity: Severity
    summary: str
    level: str
    board: str
    due_at: AwareDatetime | None = None
    ts: AwareDatetime


FALSE_ALARM_REASONS: Final = ("鸟", "树影", "光照", "水面反光", "人员正常活动", "设备故障", "其他")


class Verdict(_Wire):
    """Hub → node (``shaobing/v1/{node}/verdict``): a person judged the node's alarm.

    The node keeps these per camera and zone, so an installer sees which zone raises
    false alarms and why.
    """

    schema_: Literal["shaobing.verdict/1"] = Field(default="shaobing.verdict/1", alias="schema")
    incident_id: str = Field(max_length=64)
    work_order_id: str | None = Field(default=None, max_length=64)
    node_id: NodeId
    device_id: str = Field(max_length=128, description="camera or sensor id")
    pipeline: str = Field(max_length=64)
    zone: str | None = Field(default=None, max_length=128)
    incident_keys: list[str] = Field(default_factory=list, max_length=200)
    verdict: Literal["false_alarm"] = "false_alarm"
    reason: str = Field(max_length=32, description="one of FALSE_ALARM_REASONS")
    note: str = Field(default="", max_length=1000)
    actor: str = Field(max_length=64)
    ts: WireTime

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    def to_bytes(self) -> bytes:
        """UTF-8 JSON bytes for MQTT."""
        return self.model_dump_json(by_alias=True).encode("utf-8")

    @classmethod
    def from_json(cls, payload: bytes | str) -> Verdict:
        """Parse a verdict; raises ContractError naming the field."""
        return _strict_parse(cls, payload)


def new_event_id() -> str:
    """A UUIDv7 string: time-ordered, unique, made once where the event is born."""
    ms = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(10), "big")
    value = (ms & ((1 << 48) - 1)) << 80
    value |= 0x7 << 76
    value |= ((rand >> 62) & 0xFFF) << 64
    value |= 0b10 << 62
    value |= rand & ((1 << 62) - 1)
    return str(uuid.UUID(int=value))


class AckError(ContractError):
    """An acknowledgement that does not prove it comes from the hub."""


_ACK_KEY_LABEL = b"shaobing.ack-key/1\n"
_ACK_MAC_LABEL = "shaobing.ack/1"


def ack_key_for(secret: str | bytes, node_id: str) -> str:
    """The per-node ack key (hex) derived from the hub's ack secret.

    The hub keeps one secret; each node is provisioned with its own derived key
    (``shaobing hub node-key NODE``), so a node's key proves nothing about another node's
    acks and every hub worker that shares the secret can sign.
    """
    raw = secret.encode("utf-8") if isinstance(secret, str) else secret
    return hmac.new(raw, _ACK_KEY_LABEL + node_id.encode("utf-8"), hashlib.sha256).hexdigest()


def _ack_mac(key: str, node_id: str, ids_json: str) -> str:
    message = f"{_ACK_MAC_LABEL}\n{node_id}\n{ids_json}".encode()
    return hmac.new(key.encode("utf-8"), message, hashlib.sha256).hexdigest()


def encode_ack(ids: list[str]) -> bytes:
    """Hub → node acknowledgement payload, unsigned: a JSON list of committed event ids.

    Only for deployments without an ack secret; a node with an ``ack_key`` ignores it.
    """
    return json.dumps(ids, separators=(",", ":")).encode("utf-8")


def sign_ack(ids: list[str], key: str, node_id: str) -> bytes:
    """Signed acknowledgement: ``{"ids": [...], "mac": HMAC-SHA256 hex}`` for one node."""
    ids_json = json.dumps(ids, separators=(",", ":"))
    mac = _ack_mac(key, node_id, ids_json)
    return ('{"ids":' + ids_json + ',"mac":"' + mac + '"}').encode("utf-8")


def _parse_ack(payload: bytes) -> tuple[list[str], str | None]:
    try:
        data = json.loads(payload)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise ContractError(
            f"ack: expected a JSON list of event ids, found invalid JSON ({exc})"
        ) from None
    mac: str | None = None
    if isinstance(data, dict):
        mac = data.get("mac") if isinstance(data.get("mac"), str) else None
        data = data.get("ids")
    if not isinstance(data, list) or not all(isinstance(i, str) for i in data):
        raise ContractError("ack: expected a JSON list of event ids")
    return data, mac


def decode_ack(payload: bytes) -> list[str]:
    """The ids of an acknowledgement, signed or not, without checking its proof.

    Raises ContractError when it is not a list of ids.
    """
    return _parse_ack(payload)[0]


def verify_ack(payload: bytes, key: str, node_id: str) -> list[str]:
    """The ids of an acknowledgement signed for ``node_id`` with ``key``.

    Raises AckError when the proof is missing or wrong (a forged or foreign ack).
    """
    ids, mac = _parse_ack(payload)
    if mac is None:
        raise AckError("ack: expected a signed ack (mac), found none")
    expected = _ack_mac(key, node_id, json.dumps(ids, separators=(",", ":")))
    if not hmac.compare_digest(mac, expected):
        raise AckError("ack: the mac does not match this node's key")
    return ids


_WORKER_PREFIX = "sbw1"
_WORKER_LABEL = b"shaobing.worker/1\n"


def _b64(data: bytes) -> str:
    import base64

    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    import base64

    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign_worker_token(key: str, worker_id: str, grid_id: str, expires: datetime) -> str:
    """A grid worker's report token for one node, signed with that node's key.

    ``sbw1.PAYLOAD.MAC``: the payload names the worker and the grid; the node checks it
    offline with its key (``ack_key``) and takes the worker and grid from it, never from
    the form. Issued by ``shaobing hub worker-token``.
    """
    payload = _b64(
        json.dumps(
            {"w": worker_id, "g": grid_id, "exp": int(expires.timestamp())},
            separators=(",", ":"),
            ensure_ascii=False,
        ).encode("utf-8")
    )
    mac = hmac.new(key.encode(), _WORKER_LABEL + payload.encode(), hashlib.sha256).digest()
    return f"{_WORKER_PREFIX}.{payload}.{_b64(mac)}"


def verify_worker_token(token: str, key: str, now: datetime | None = None) -> tuple[str, str]:
    """(worker id, grid id) of a valid, unexpired worker token; raises ContractError."""
    parts = token.split(".")
    if len(parts) != 3 or parts[0] != _WORKER_PREFIX:
        raise ContractError("token: expected a worker token sbw1.PAYLOAD.MAC")
    expected = hmac.new(key.encode(), _WORKER_LABEL + parts[1].encode(), hashlib.sha256).digest()
    try:
        mac = _unb64(parts[2])
        data = json.loads(_unb64(parts[1]))
    except (ValueError, UnicodeDecodeError):
        raise ContractError("token: unreadable") from None
    if not hmac.compare_digest(mac, expected):
        raise ContractError("token: not signed for this node")
    if not isinstance(data, dict) or not all(isinstance(data.get(k), str) for k in ("w", "g")):
        raise ContractError("token: expected a worker and a grid")
    exp = data.get("exp")
    if not isinstance(exp, int) or exp <= (now or datetime.now(UTC)).timestamp():
        raise ContractError("token: expired")
    return data["w"], data["g"]


def now_utc() -> datetime:
    """Aware current time (UTC)."""
    from datetime import UTC

    return datetime.now(UTC)
