"""Sensor readings into an edge node: MQTT subscriber, CSV replay, HTTP router.

Every input hands each good reading to one callback, ``on_reading(reading,
received_at)`` (normally ``SensorRules.update`` behind the node's lock or queue). Bad
input is counted per reason and logged, never raised into the caller's loop:

- :class:`SensorMessageHandler` — topic + payload → reading (usable on any paho client);
- :class:`MqttSensorSubscriber` — its own paho 2.x client on the node's broker,
  subscribed to ``shaobing/v1/{node}/sensor/+`` (QoS 1, persistent session);
- :func:`read_sensor_csv` / :func:`replay_csv` — ``device,kind,value,unit,ts[,battery]``
  files for tests and demos, as fast as possible or paced in real time;
- :func:`build_sensor_router` — ``POST /api/v1/sensors/readings`` (one reading or a list).
"""

from __future__ import annotations

import csv
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import paho.mqtt.client as paho
from fastapi import APIRouter, Body, HTTPException
from pydantic import TypeAdapter, ValidationError

from shaobing.config import BrokerConfig
from shaobing.contract import ContractError, SensorReading, now_utc
from shaobing.mqtt import Session
from shaobing.topics import PREFIX, sensor_subscription

__all__ = [
    "OnReading",
    "SensorMessageHandler",
    "MqttSensorSubscriber",
    "CsvRow",
    "ReplayStats",
    "read_sensor_csv",
    "replay_csv",
    "build_sensor_router",
    "MAX_PAYLOAD_BYTES",
    "MAX_READINGS_PER_REQUEST",
]

log = logging.getLogger(__name__)

OnReading = Callable[[SensorReading, datetime], None]
"""Callback receiving a good reading and the node time it arrived."""
Clock = Callable[[], datetime]

MAX_PAYLOAD_BYTES = 16 * 1024
"""A sensor reading is small; larger MQTT payloads are refused unread."""
MAX_READINGS_PER_REQUEST = 1000
"""Bound on readings in one HTTP request."""
CSV_COLUMNS = ("device", "kind", "value", "unit", "ts", "battery")


def _log_rate_limited(counter: Counter[str], reason: str, message: str, *args: Any) -> None:
    """Log the first ten of a reason, then every hundredth (counts are in the counters)."""
    n = counter[reason]
    if n <= 10 or n % 100 == 0:
        log.warning("%s (%s #%d)", message % args, reason, n)


class SensorMessageHandler:
    """Turn one MQTT message into a reading for ``on_reading``; count what it refuses.

    Counters (``counters``): ``received``, ``accepted``, ``malformed`` (not a reading),
    ``too_large``, ``bad_topic`` (not this node's sensor topic), ``topic_mismatch``
    (payload device differs from the topic's), ``unknown_device`` (not in the
    registry), ``callback_errors`` (the callback raised; logged with the device).
    """

    def __init__(
        self,
        node_id: str,
        known_devices: Collection[str],
        on_reading: OnReading,
        clock: Clock = now_utc,
    ) -> None:
        """Set up the handler.

        Args:
            node_id: this node's id (the ``{node}`` of the topic).
            known_devices: registered sensor ids; readings of other devices are refused.
            on_reading: called with each good reading and its receive time.
            clock: the node's clock (aware datetimes).
        """
        self.node_id = node_id
        self.known_devices = frozenset(known_devices)
        self.on_reading = on_reading
        self.clock = clock
        self.counters: Counter[str] = Counter()
        self.rejected_by_sensor: Counter[tuple[str, str]] = Counter()
        """Refused messages per (sensor id from the topic, reason); ids not in the registry
        are counted as ``unregistered`` (bounded whatever a sender makes up)."""
        self._prefix = f"{PREFIX}/{node_id}/sensor/"
        self._lock = threading.Lock()

    def _count(self, reason: str, device: str | None = None) -> None:
        with self._lock:
            self.counters[reason] += 1
            if device is not None:
                label = device if device in self.known_devices else "unregistered"
                self.rejected_by_sensor[(label, reason)] += 1

    def handle(self, topic: str, payload: bytes) -> SensorReading | None:
        """Parse, check and deliver one message; returns the reading or None when refused."""
        received_at = self.clock()
        self._count("received")
        if not topic.startswith(self._prefix) or "/" in topic[len(self._prefix) :]:
            self._count("bad_topic")
            _log_rate_limited(
                self.counters,
                "bad_topic",
                "sensor input: topic %r is not %s{device}",
                topic,
                self._prefix,
            )
            return None
        topic_device = topic[len(self._prefix) :]
        if len(payload) > MAX_PAYLOAD_BYTES:
            self._count("too_large", topic_device)
            _log_rate_limited(
                self.counters,
                "too_large",
                "sensor input %s: expected at most %d bytes, found %d",
                topic,
                MAX_PAYLOAD_BYTES,
                len(payload),
            )
            return None
        try:
            reading = SensorReading.from_json(payload)
        except (ContractError, UnicodeDecodeError) as exc:
            self._count("malformed", topic_device)
            _log_rate_limited(
                self.counters, "malformed", "sensor input %s: malformed reading: %s", topic, exc
            )
            return None
        if reading.device != topic_device:
            self._count("topic_mismatch", topic_device)
            _log_rate_limited(
                self.counters,
                "topic_mismatch",
                "sensor input %s: expected device %r, found %r",
                topic,
                topic_device,
                reading.device,
            )
            return None
        if reading.device not in self.known_devices:
            self._count("unknown_device", reading.device)
            _log_rate_limited(
                self.counters,
                "unknown_device",
                "sensor input: device %r is not in the registry",
                reading.device,
            )
            return None
        try:
            self.on_reading(reading, received_at)
        except Exception:
            self._count("callback_errors")
            log.exception("sensor input: on_reading failed for device %s", reading.device)
            return None
        self._count("accepted")
        return reading


class MqttSensorSubscriber:
    """Subscribe to this node's sensor topic on its broker and feed ``on_reading``.

    The connection is a ``shaobing.mqtt.Session`` (a thread of its own, reconnect with
    backoff 1 s … 60 s, MQTT 5 first for ``protocol: auto``); the subscription is renewed
    on every connect. The session is persistent (stable client id), so QoS 1 readings
    sent while the subscriber reconnects are delivered afterwards.
    """

    def __init__(
        self,
        node_id: str,
        broker: BrokerConfig,
        known_devices: Collection[str],
        on_reading: OnReading,
        *,
        clock: Clock = now_utc,
        qos: int = 1,
        client_id: str | None = None,
        base_dir: str | None = None,
        source: str = "",
    ) -> None:
        """Set up (nothing connects before :meth:`start`).

        Args:
            node_id: this node's id.
            broker: the node's broker settings.
            known_devices: registered sensor ids.
            on_reading: called on the network thread with each good reading.
            clock: the node's clock.
            qos: subscription QoS (0 or 1).
            client_id: MQTT client id; default ``{broker.client_id or node_id}-sensors``.
            base_dir: folder that relative TLS paths resolve against.
            source: the config file the broker settings came from (named in messages).
        """
        self.handler = SensorMessageHandler(node_id, known_devices, on_reading, clock)
        self.topic = sensor_subscription(node_id)
        self.broker = broker
        self.qos = qos
        self.client_id = client_id or f"{broker.client_id or node_id}-sensors"
        self._subscribed = threading.Event()
        self._session = Session(
            broker,
            self.client_id,
            name=f"sensor input {node_id}",
            source=source,
            base_dir=base_dir,
            persistent=True,
            session_expiry_s=3600,
            setup=self._setup,
            on_connected=self._on_connected,
            on_disconnected=lambda client: self._subscribed.clear(),
            backoff_max_s=60.0,
        )
        self._started = False

    @property
    def counters(self) -> Counter[str]:
        """Message counters (see :class:`SensorMessageHandler`) plus ``connects``."""
        return self.handler.counters

    @property
    def subscribed(self) -> bool:
        """True once the broker has granted the subscription on the current connection."""
        return self._subscribed.is_set()

    def start(self) -> None:
        """Connect in the background (returns at once; the broker may be down)."""
        if self._started:
            return
        self._session.start()
        self._started = True

    def wait_subscribed(self, timeout_s: float) -> bool:
        """Block until subscribed (True) or ``timeout_s`` passed (False)."""
        return self._subscribed.wait(timeout_s)

    def stop(self) -> None:
        """Disconnect and stop the network thread."""
        if not self._started:
            return
        self._session.stop()
        self._subscribed.clear()
        self._started = False

    # network thread
    def _setup(self, client: paho.Client) -> None:
        client.on_subscribe = self._on_subscribe
        client.on_message = self._on_message

    def _on_connected(self, client: paho.Client, session_present: bool) -> None:
        self._subscribed.clear()
        self.handler.counters["connects"] += 1
        client.subscribe(self.topic, qos=self.qos)

    def _on_subscribe(
        self,
        client: paho.Client,
        userdata: Any,
        mid: int,
        reason_codes: Any,
        properties: Any = None,
    ) -> None:
        if all(not getattr(rc, "is_failure", False) for rc in reason_codes):
            self._subscribed.set()
        else:
            log.error(
                "sensor input: broker refused the subscription to %s: %s", self.topic, reason_codes
            )

    def _on_message(self, client: paho.Client, userdata: Any, message: paho.MQTTMessage) -> None:
        self.handler.handle(message.topic, bytes(message.payload))


# --------------------------------------------------------------------------- CSV replay


@dataclass(frozen=True)
class CsvRow:
    """One data row of a sensor CSV: the reading, or why it is not one."""

    line: int
    reading: SensorReading | None
    error: str | None = None


def _parse_row(cells: dict[str, str], line: int) -> CsvRow:
    raw_value = cells.get("value", "").strip()
    raw_battery = cells.get("battery", "").strip()
    data: dict[str, Any] = {
        "device": cells.get("device", "").strip(),
        "kind": cells.get("kind", "").strip(),
        "value": None if raw_value.lower() in ("", "null", "none") else raw_value,
        "unit": cells.get("unit", "").strip() or None,
        "ts": cells.get("ts", "").strip(),
        "battery": raw_battery or None,
    }
    try:
        return CsvRow(line=line, reading=SensorReading.model_validate(data))
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
        )
        return CsvRow(line=line, reading=None, error=problems)


def read_sensor_csv(path: str | Path) -> Iterator[CsvRow]:
    """Rows of a sensor CSV, in file order.

    Columns ``device,kind,value,unit,ts[,battery]``: positional, or in any order when
    the first row is a header naming them. ``value`` empty or ``null`` means no value
    (no pulse); ``ts`` is ISO-8601 with an offset. Blank lines and lines starting with
    ``#`` are skipped. A bad row comes back with ``error`` set (never raises): a line that
    is not UTF-8 (a flipped bit, a stray byte) or holds a NUL is one bad row, the rows
    around it are read as usual.

    Args:
        path: the CSV file (UTF-8, an optional byte-order mark).

    Raises:
        OSError: the file cannot be opened or read.
    """
    with Path(path).open("rb") as fh:
        header: list[str] | None = None
        for line, raw in enumerate(fh, start=1):
            # decoded line by line: one bad byte costs its own row, not the file
            if line == 1 and raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                yield CsvRow(
                    line=line,
                    reading=None,
                    error=f"expected UTF-8 text, found byte 0x{raw[exc.start]:02x} at column {exc.start + 1}",
                )
                continue
            if "\x00" in text:
                yield CsvRow(line=line, reading=None, error="expected text, found a NUL byte")
                continue
            try:
                cells = next(csv.reader([text]), [])
            except csv.Error as exc:
                yield CsvRow(line=line, reading=None, error=f"expected a CSV row: {exc}")
                continue
            if not cells or not "".join(cells).strip() or cells[0].lstrip().startswith("#"):
                continue
            names = [c.strip().lower() for c in cells]
            if header is None and "device" in names and "ts" in names:
                header = names
                continue
            columns = header or list(CSV_COLUMNS)
            if len(cells) > len(columns) or len(cells) < 5:
                yield CsvRow(
                    line=line,
                    reading=None,
                    error=f"expected columns {','.join(columns)}, found {len(cells)} cells",
                )
                continue
            yield _parse_row(dict(zip(columns, cells, strict=False)), line)


@dataclass
class ReplayStats:
    """What a replay did."""

    delivered: int = 0
    bad_rows: int = 0
    future_rows: int = 0
    """Rows stamped after the node's clock (+ ``max_future_s``): logged and dropped, not waited for."""
    callback_errors: int = 0
    errors: list[str] = field(default_factory=list)
    """First bad rows, as ``LINE: message`` (at most 20)."""


def replay_csv(
    path: str | Path,
    on_reading: OnReading,
    *,
    realtime: bool = False,
    speed: float = 1.0,
    rebase: bool | None = None,
    clock: Clock = now_utc,
    sleep: Callable[[float], None] = time.sleep,
    stop: threading.Event | None = None,
    max_future_s: float = 300.0,
    stats: ReplayStats | None = None,
) -> ReplayStats:
    """Feed a sensor CSV to ``on_reading``.

    As fast as possible (default), each reading is delivered with ``received_at`` equal
    to its own ``ts``: the rules see a consistent virtual clock. With ``realtime``,
    readings are paced by their timestamps (divided by ``speed``) and ``received_at`` is
    ``clock()``.

    Args:
        path: the CSV file.
        on_reading: the callback (exceptions are counted and logged, the replay goes on).
        realtime: pace by the timestamps.
        speed: pacing factor (2.0 plays twice as fast); also compresses rebased times.
        rebase: shift timestamps so that the first reading is stamped ``clock()`` at
            the start (default: when ``realtime``), so that an old recording is not
            rejected as stale.
        clock: the node's clock.
        sleep: how to wait (tests may pass a no-op).
        stop: set it to end the replay early.
        max_future_s: a row stamped more than this after ``clock()`` at the start (a typo in
            the year, a gateway with a wrong clock) is logged and dropped: paced replay would
            otherwise wait for it and hold back every row after it.
        stats: counters to update while replaying (read live by the node's metrics).

    Returns:
        Counts of delivered readings, bad and future rows.
    """
    if speed <= 0:
        raise ValueError(f"speed: expected a positive factor, found {speed!r}")
    do_rebase = realtime if rebase is None else rebase
    stats = stats if stats is not None else ReplayStats()
    first_ts: datetime | None = None
    start_at = clock()
    start_mono = time.monotonic()
    for row in read_sensor_csv(path):
        if stop is not None and stop.is_set():
            break
        if row.reading is None:
            stats.bad_rows += 1
            if len(stats.errors) < 20:
                stats.errors.append(f"{row.line}: {row.error}")
            log.warning("sensor csv %s:%d: %s", path, row.line, row.error)
            continue
        reading = row.reading
        if reading.ts - start_at > timedelta(seconds=max_future_s):
            stats.future_rows += 1
            if len(stats.errors) < 20:
                stats.errors.append(f"{row.line}: stamped in the future ({reading.ts.isoformat()})")
            log.warning(
                "sensor csv %s:%d: expected a time before %s, found %s; row dropped",
                path,
                row.line,
                (start_at + timedelta(seconds=max_future_s)).isoformat(),
                reading.ts.isoformat(),
            )
            continue
        if first_ts is None:
            first_ts = reading.ts
        offset_s = (reading.ts - first_ts).total_seconds() / speed
        if do_rebase:
            reading = reading.model_copy(update={"ts": start_at + timedelta(seconds=offset_s)})
        if realtime:
            wait = offset_s - (time.monotonic() - start_mono)
            while wait > 0 and not (stop is not None and stop.is_set()):
                sleep(min(wait, 0.5))
                wait = offset_s - (time.monotonic() - start_mono)
            if stop is not None and stop.is_set():
                break
        received_at = clock() if realtime else reading.ts
        try:
            on_reading(reading, received_at)
        except Exception:
            stats.callback_errors += 1
            log.exception(
                "sensor csv %s:%d: on_reading failed for device %s", path, row.line, reading.device
            )
            continue
        stats.delivered += 1
    return stats


# --------------------------------------------------------------------------- HTTP

_ONE_OR_MANY: TypeAdapter[SensorReading | list[SensorReading]] = TypeAdapter(
    SensorReading | list[SensorReading]
)
_READING_SCHEMA = SensorReading.model_json_schema()


def build_sensor_router(
    on_reading: OnReading,
    *,
    known_devices: Collection[str] | None = None,
    clock: Clock = now_utc,
    max_items: int = MAX_READINGS_PER_REQUEST,
    counters: Counter[str] | None = None,
) -> APIRouter:
    """An APIRouter with ``POST /api/v1/sensors/readings``.

    The body is one reading or a JSON list of readings. All are checked before any is
    delivered: a bad one gives 422 with FastAPI's ``detail`` list naming the field
    (``["body", index, "value"]``); otherwise 202 ``{"accepted": n}``.

    Args:
        on_reading: called (in FastAPI's thread pool) for each reading.
        known_devices: registered sensor ids; None accepts any device.
        clock: the node's clock for ``received_at``.
        max_items: most readings in one request.
        counters: refused requests are counted here by reason (``too_many``, ``invalid``,
            ``unknown_device``) for the node's metrics.
    """
    router = APIRouter()
    refused: Counter[str] = counters if counters is not None else Counter()
    known = frozenset(known_devices) if known_devices is not None else None
    body_schema = {
        "anyOf": [
            _READING_SCHEMA,
            {"type": "array", "items": _READING_SCHEMA, "maxItems": max_items},
        ]
    }

    @router.post(
        "/api/v1/sensors/readings",
        status_code=202,
        summary="Submit sensor readings",
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": body_schema}},
            }
        },
    )
    def post_readings(payload: Annotated[Any, Body()]) -> dict[str, int]:
        """Accept one reading or a list of readings from a sensor gateway."""
        received_at = clock()
        is_list = isinstance(payload, list)
        if is_list and len(payload) > max_items:
            refused["too_many"] += 1
            raise HTTPException(
                422,
                detail=[
                    {
                        "loc": ["body"],
                        "msg": f"expected at most {max_items} readings, found {len(payload)}",
                        "type": "too_long",
                    }
                ],
            )
        try:
            parsed = _ONE_OR_MANY.validate_python(payload)
        except ValidationError:
            refused["invalid"] += 1
            raise HTTPException(
                422, detail=_item_errors(payload if is_list else [payload], is_list)
            ) from None
        readings = parsed if isinstance(parsed, list) else [parsed]
        if known is not None:
            unknown = [
                {
                    "loc": ["body", i, "device"] if is_list else ["body", "device"],
                    "msg": f"expected a registered sensor id, found {r.device!r}",
                    "type": "value_error",
                }
                for i, r in enumerate(readings)
                if r.device not in known
            ]
            if unknown:
                refused["unknown_device"] += 1
                raise HTTPException(422, detail=unknown)
        for reading in readings:
            on_reading(reading, received_at)
        return {"accepted": len(readings)}

    return router


def _item_errors(items: list[Any], is_list: bool) -> list[dict[str, Any]]:
    """Errors of each item validated as a single reading (clearer than the union's)."""
    out: list[dict[str, Any]] = []
    for i, item in enumerate(items):
        try:
            SensorReading.model_validate(item)
        except ValidationError as exc:
            for err in exc.errors():
                loc: list[str | int] = ["body", i] if is_list else ["body"]
                out.append({"loc": [*loc, *err["loc"]], "msg": err["msg"], "type": err["type"]})
    if not out:
        out.append(
            {
                "loc": ["body"],
                "msg": "expected a reading object or a list of readings",
                "type": "value_error",
            }
        )
    return out
