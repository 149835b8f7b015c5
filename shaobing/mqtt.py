"""The one MQTT layer of the edge and the hub: broker URL, credentials, TLS, protocol, errors.

Every paho client of the project is made here (``new_client``) and connects with the
arguments made here (``connect_args``), so that ``broker:`` means the same on a node and on
the hub:

- ``protocol: auto`` tries MQTT 5 first and falls back to 3.1.1 (``ProtocolChoice``) when
  the broker refuses the version, closes the link before its CONNACK, or stays silent;
- the password comes from ``password_env`` when that variable is set, else ``password``;
- TLS for ``mqtts://`` (or any ``tls:``), relative files resolved against the config's folder;
- a refused login, a refused port, an unknown host or a TLS failure read the same wherever
  they happen, naming the config file and key to look at (``describe_refusal``,
  ``describe_connect_error``).

``Session`` keeps one client connected from a thread of its own (reconnect with backoff,
protocol fallback); the edge's many-client ``MqttLoop`` (edge/mqtt.py) uses the same parts.
"""

from __future__ import annotations

import logging
import os
import random
import socket
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from shaobing.config import BrokerConfig

__all__ = [
    "Backoff",
    "BrokerAddress",
    "ConnectionLog",
    "ProtocolChoice",
    "Session",
    "Will",
    "broker_password",
    "connect_args",
    "connect_properties",
    "describe_connect_error",
    "describe_refusal",
    "describe_silence",
    "is_unsupported_protocol",
    "new_client",
    "parse_broker_url",
    "protocol_order",
]

log = logging.getLogger(__name__)

_DEFAULT_PORTS = {"mqtt": 1883, "tcp": 1883, "mqtts": 8883, "ssl": 8883}
V5_CONNACK_TIMEOUT_S = 3.0  # some 3.1.1-only brokers never answer an MQTT 5 CONNECT
CONNACK_TIMEOUT_S = 10.0
# CONNACK reason codes (MQTT 5 numbering; paho maps 3.1.1's 4 and 5 onto 134 and 135)
_BAD_LOGIN = 134
_NOT_AUTHORIZED = 135


@dataclass(frozen=True)
class BrokerAddress:
    """Host, port and whether TLS is used."""

    host: str
    port: int
    tls: bool


@dataclass(frozen=True)
class Will:
    """The last will the broker publishes when the client drops without a goodbye."""

    topic: str
    payload: bytes
    qos: int = 1
    retain: bool = True


def _key(source: str, name: str) -> str:
    """``FILE broker.KEY`` (or ``broker.KEY`` when the config has no file)."""
    return f"{source} broker.{name}" if source else f"broker.{name}"


def parse_broker_url(url: str) -> BrokerAddress:
    """Parse ``mqtt://host:port`` / ``mqtts://host:port`` (also ``tcp://``, ``ssl://``).

    Raises:
        ValueError: when the scheme or port is not usable.
    """
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        raise ValueError(
            f"broker url: expected mqtt://host:port or mqtts://host:port, found {url!r}"
        )
    try:
        port = parts.port or _DEFAULT_PORTS[scheme]
    except ValueError:
        raise ValueError(f"broker url: expected a numeric port, found {url!r}") from None
    host = parts.hostname or "127.0.0.1"
    return BrokerAddress(host=host, port=port, tls=scheme in ("mqtts", "ssl"))


def broker_password(broker: BrokerConfig, source: str = "") -> str | None:
    """The password: from ``password_env`` when set (and present), else ``password``."""
    if broker.password_env:
        value = os.environ.get(broker.password_env)
        if value is not None:
            return value
        log.warning(
            "%s: expected environment variable %s, found none",
            _key(source, "password_env"),
            broker.password_env,
        )
    return broker.password


def protocol_order(broker: BrokerConfig) -> list[MQTTProtocolVersion]:
    """Protocols to try in order: ``auto`` tries MQTT 5 first, then 3.1.1."""
    if broker.protocol == "5":
        return [MQTTProtocolVersion.MQTTv5]
    if broker.protocol == "3.1.1":
        return [MQTTProtocolVersion.MQTTv311]
    return [MQTTProtocolVersion.MQTTv5, MQTTProtocolVersion.MQTTv311]


def is_unsupported_protocol(reason_code: Any) -> bool:
    """True when a CONNACK says the broker does not speak this protocol version."""
    value = getattr(reason_code, "value", reason_code)
    name = str(getattr(reason_code, "getName", lambda: reason_code)())
    return value in (1, 132) or "protocol version" in name.lower()


class ProtocolChoice:
    """Which MQTT version to try next.

    The version that got a CONNACK is kept for reconnects. A refusal of the version, a
    link closed before the CONNACK or a silent broker moves on to the next version at
    once; past the last one, the next attempt (after the caller's backoff) starts over.
    """

    def __init__(self, broker: BrokerConfig) -> None:
        self.order = protocol_order(broker)
        self.index = 0

    @property
    def current(self) -> MQTTProtocolVersion:
        """The version of the next attempt."""
        return self.order[self.index]

    @property
    def can_fall_back(self) -> bool:
        """True while a later version is left to try."""
        return self.index + 1 < len(self.order)

    @property
    def connack_timeout_s(self) -> float:
        """How long to wait for a CONNACK before giving this version up."""
        return V5_CONNACK_TIMEOUT_S if self.can_fall_back else CONNACK_TIMEOUT_S

    def fall_back(self) -> bool:
        """Move to the next version: True to try it at once, False to back off first."""
        if self.can_fall_back:
            self.index += 1
            return True
        self.index = 0
        return False


def _tls_context(broker: BrokerConfig, base_dir: str | None) -> ssl.SSLContext:
    def path(p: str | None) -> str | None:
        if p is None:
            return None
        p = os.path.expanduser(p)
        if base_dir and not os.path.isabs(p):
            return os.path.join(base_dir, p)
        return p

    tls = broker.tls
    ctx = ssl.create_default_context(cafile=path(tls.ca_file) if tls else None)
    if tls and tls.cert_file:
        ctx.load_cert_chain(path(tls.cert_file) or "", path(tls.key_file))
    if tls and tls.insecure:
        ctx.check_hostname = False
    return ctx


def new_client(
    broker: BrokerConfig,
    client_id: str,
    protocol: MQTTProtocolVersion,
    *,
    persistent: bool,
    manual_ack: bool = False,
    base_dir: str | None = None,
    will: Will | None = None,
    source: str = "",
    reconnect_on_failure: bool = True,
) -> paho.Client:
    """A configured paho client (VERSION2 callbacks): credentials, TLS, session kind, will.

    Args:
        broker: broker settings.
        client_id: stable id (a persistent session needs one).
        protocol: MQTT 5 or 3.1.1.
        persistent: keep the broker session across disconnects (clean_session False /
            clean_start False with a session expiry, see ``connect_args``).
        manual_ack: acknowledge received QoS 1 messages only when ``client.ack`` is called.
        base_dir: folder that relative TLS file paths resolve against.
        will: the last will, if any.
        source: the config file the settings came from (for messages).
        reconnect_on_failure: let paho's own loop reconnect (``Session`` does it itself).

    Raises:
        ValueError: an unusable URL; OSError (ssl.SSLError): unreadable TLS files.
    """
    address = parse_broker_url(broker.url)
    kwargs: dict[str, Any] = {
        "callback_api_version": CallbackAPIVersion.VERSION2,
        "client_id": client_id,
        "protocol": protocol,
        "manual_ack": manual_ack,
        "reconnect_on_failure": reconnect_on_failure,
    }
    if protocol != MQTTProtocolVersion.MQTTv5:
        kwargs["clean_session"] = not persistent
    client = paho.Client(**kwargs)
    if broker.username:
        client.username_pw_set(broker.username, broker_password(broker, source))
    if address.tls or broker.tls is not None:
        try:
            client.tls_set_context(_tls_context(broker, base_dir))
        except (OSError, ValueError) as exc:
            raise type(exc)(f"{_key(source, 'tls')}: cannot use the TLS files: {exc}") from exc
        if broker.tls and broker.tls.insecure:
            client.tls_insecure_set(True)
    if will is not None:
        client.will_set(will.topic, will.payload, qos=will.qos, retain=will.retain)
    return client


def connect_properties(session_expiry_s: int, receive_maximum: int | None = None) -> Any:
    """MQTT 5 CONNECT properties: session expiry and (optionally) receive maximum."""
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties

    props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    props.SessionExpiryInterval = session_expiry_s
    if receive_maximum:
        props.ReceiveMaximum = min(int(receive_maximum), 65535)
    return props


def connect_args(
    broker: BrokerConfig,
    protocol: MQTTProtocolVersion,
    *,
    persistent: bool,
    session_expiry_s: int = 0,
    receive_maximum: int | None = None,
) -> dict[str, Any]:
    """Keyword arguments for ``client.connect``/``connect_async``: host, port, keepalive
    and, for MQTT 5, the session start and properties."""
    address = parse_broker_url(broker.url)
    args: dict[str, Any] = {
        "host": address.host,
        "port": address.port,
        "keepalive": broker.keepalive_s,
    }
    if protocol == MQTTProtocolVersion.MQTTv5:
        args["clean_start"] = not persistent
        if persistent or receive_maximum:
            args["properties"] = connect_properties(
                session_expiry_s if persistent else 0, receive_maximum
            )
    return args


def describe_refusal(broker: BrokerConfig, reason_code: Any, source: str = "") -> str:
    """Why the broker refused the CONNECT, and which config key to look at."""
    value = getattr(reason_code, "value", reason_code)
    where = f"MQTT broker {broker.url} refused the connection ({reason_code})"
    if value == _BAD_LOGIN or (value == _NOT_AUTHORIZED and broker.username):
        if not broker.username:
            return f"{where}: it wants a login; set {_key(source, 'username')} and {_key(source, 'password_env')}"
        secret = (
            f"{_key(source, 'password_env')} (${broker.password_env})"
            if broker.password_env
            else _key(source, "password")
        )
        return (
            f"{where}: user {broker.username!r} and the password are not accepted; "
            f"check {_key(source, 'username')} and {secret}"
        )
    if value == _NOT_AUTHORIZED:
        return f"{where}: anonymous clients are not allowed; set {_key(source, 'username')} and {_key(source, 'password_env')}"
    if is_unsupported_protocol(reason_code):
        return f"{where}: it does not speak this MQTT version; check {_key(source, 'protocol')}"
    if value in (2, 133):  # client identifier not valid
        return f"{where}: the client id is not accepted; check {_key(source, 'client_id')}"
    return where


def describe_connect_error(broker: BrokerConfig, exc: BaseException, source: str = "") -> str:
    """Why no connection to the broker could be made (host, port, TLS), naming the key."""
    try:
        address = parse_broker_url(broker.url)
    except ValueError as bad:
        return f"{_key(source, 'url')}: {bad}"
    where = f"MQTT broker {broker.url}"
    url_key = _key(source, "url")
    if isinstance(exc, socket.gaierror):
        return f"{where}: unknown host {address.host!r} ({exc.strerror or exc}); check {url_key}"
    if isinstance(exc, ConnectionRefusedError):
        return (
            f"{where}: connection refused, nothing listens on {address.host}:{address.port}; "
            f"check {url_key} or start the broker"
        )
    if isinstance(exc, ssl.SSLError | ssl.CertificateError):
        return f"{where}: TLS failed ({exc}); check {url_key} and {_key(source, 'tls')}"
    if isinstance(exc, TimeoutError | socket.timeout):
        return f"{where}: no answer from {address.host}:{address.port} (timed out); check {url_key}"
    return f"{where}: cannot connect ({type(exc).__name__}: {exc}); check {url_key}"


def describe_silence(broker: BrokerConfig, waited_s: float, source: str = "") -> str:
    """The broker took the connection but never answered the CONNECT."""
    return (
        f"MQTT broker {broker.url}: no CONNACK within {waited_s:.0f} s; "
        f"check {_key(source, 'url')} and {_key(source, 'protocol')}"
    )


class Backoff:
    """Reconnect delays: doubling from ``min_s`` up to ``max_s``, each with ±20 % jitter."""

    def __init__(self, min_s: float, max_s: float) -> None:
        self.min_s = max(0.05, min_s)
        self.max_s = max(self.min_s, max_s)
        self._next = self.min_s

    def delay(self) -> float:
        """The wait before the next attempt (and the one after it doubles)."""
        delay = min(self._next * random.uniform(0.8, 1.2), self.max_s)
        self._next = min(self._next * 2, self.max_s)
        return delay

    def reset(self) -> None:
        """A good connection: the next wait is the shortest again."""
        self._next = self.min_s


class ConnectionLog:
    """Logs a connection problem once (a warning) until it changes or a connection succeeds."""

    def __init__(self, logger: logging.Logger, name: str) -> None:
        self._log = logger
        self._name = name
        self._last = ""

    def problem(self, message: str) -> None:
        """A failed attempt: warn when the reason is new, else note it quietly."""
        level = logging.DEBUG if message == self._last else logging.WARNING
        self._last = message
        self._log.log(level, "%s: %s", self._name, message)

    def connected(self, message: str) -> None:
        """A good connection: say so and forget the last problem."""
        self._last = ""
        self._log.info("%s: %s", self._name, message)


OnConnected = Callable[[paho.Client, bool], None]
OnDisconnected = Callable[[paho.Client], None]


class Session:
    """One paho client kept connected by a thread of its own.

    The thread connects (blocking, so a refused port or an unknown host is seen and
    reported), runs paho's network loop, falls back from MQTT 5 to 3.1.1 when needed and,
    after a lost link, builds a fresh client and reconnects with exponential backoff.

    Args:
        broker: broker settings.
        client_id: MQTT client id.
        name: how log lines name this connection.
        source: the config file the settings came from (for messages).
        base_dir: folder that relative TLS file paths resolve against.
        persistent: keep the broker session (clean start off, ``session_expiry_s``).
        session_expiry_s: MQTT 5 session expiry of a persistent session.
        receive_maximum: MQTT 5 receive maximum.
        manual_ack: acknowledge received QoS 1 messages only when ``client.ack`` is called.
        will: the last will, if any.
        setup: called with each new client before it connects (callbacks, inflight window).
        on_connected: called on the network thread after a good CONNACK
            (client, session present).
        on_disconnected: called on the network thread when a connected link is lost.
        backoff_min_s: first reconnect delay.
        backoff_max_s: reconnect delay ceiling.
    """

    def __init__(
        self,
        broker: BrokerConfig,
        client_id: str,
        *,
        name: str,
        source: str = "",
        base_dir: str | None = None,
        persistent: bool = True,
        session_expiry_s: int = 7 * 24 * 3600,
        receive_maximum: int | None = None,
        manual_ack: bool = False,
        will: Will | None = None,
        setup: Callable[[paho.Client], None] | None = None,
        on_connected: OnConnected | None = None,
        on_disconnected: OnDisconnected | None = None,
        backoff_min_s: float = 1.0,
        backoff_max_s: float = 10.0,
    ) -> None:
        parse_broker_url(broker.url)  # an unusable URL is refused now
        self.broker = broker
        self.client_id = client_id
        self.name = name
        self.source = source
        self._base_dir = base_dir
        self._persistent = persistent
        self._session_expiry_s = session_expiry_s
        self._receive_maximum = receive_maximum
        self._manual_ack = manual_ack
        self._will = will
        self._setup = setup
        self._on_connected = on_connected
        self._on_disconnected = on_disconnected
        self._backoff = Backoff(backoff_min_s, backoff_max_s)
        self.protocols = ProtocolChoice(broker)
        self._log = ConnectionLog(log, name)
        self._client: paho.Client | None = None
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._connected = threading.Event()
        self._connack: Any = None  # the CONNACK reason code of the current attempt
        self._lost = False
        self._thread: threading.Thread | None = None
        self.connects = 0

    @property
    def client(self) -> paho.Client | None:
        """The current client (None between attempts)."""
        return self._client

    @property
    def connected(self) -> bool:
        """True while connected (CONNACK received, link up)."""
        return self._connected.is_set()

    def wait_connected(self, timeout: float) -> bool:
        """Block until connected (or the timeout); returns ``connected``."""
        return self._connected.wait(timeout)

    def start(self) -> None:
        """Connect in the background (returns at once; the broker may be down)."""
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Disconnect cleanly and end the thread."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self._thread = None

    # ----------------------------------------------------------------- the thread

    def _run(self) -> None:
        while not self._stop.is_set():
            outcome = self._attempt()
            if outcome == "again":
                continue
            if outcome == "lost":
                self._backoff.reset()
            if self._stop.wait(self._backoff.delay()):
                break

    def _attempt(self) -> str:
        """One connection: ``again`` (try the next version now), ``failed`` or ``lost``."""
        protocol = self.protocols.current
        try:
            client = new_client(
                self.broker,
                self.client_id,
                protocol,
                persistent=self._persistent,
                manual_ack=self._manual_ack,
                base_dir=self._base_dir,
                will=self._will,
                source=self.source,
                reconnect_on_failure=False,
            )
        except (OSError, ValueError) as exc:
            self._log.problem(f"cannot set up the MQTT client: {exc}")
            return "failed"
        if self._setup is not None:
            self._setup(client)
        client.on_connect = self._handle_connect
        client.on_disconnect = self._handle_disconnect
        self._connack = None
        self._lost = False
        self._wake.clear()
        self._client = client
        try:
            client.connect(
                **connect_args(
                    self.broker,
                    protocol,
                    persistent=self._persistent,
                    session_expiry_s=self._session_expiry_s,
                    receive_maximum=self._receive_maximum,
                )
            )
        except (OSError, ValueError) as exc:
            self._log.problem(describe_connect_error(self.broker, exc, self.source))
            self._close(client, graceful=False)
            return "failed"
        client.loop_start()
        return self._await(client)

    def _await(self, client: paho.Client) -> str:
        self._wake.wait(self.protocols.connack_timeout_s)
        if self._stop.is_set():
            self._close(client, graceful=True)
            return "failed"
        code = self._connack
        if code is None or getattr(code, "is_failure", False):
            self._close(client, graceful=False)
            if code is None and not self._lost:
                self._log.problem(
                    describe_silence(self.broker, self.protocols.connack_timeout_s, self.source)
                )
            elif code is not None and not is_unsupported_protocol(code):
                self._log.problem(describe_refusal(self.broker, code, self.source))
                return "failed"
            return "again" if self.protocols.fall_back() else "failed"
        self.connects += 1
        version = "5" if self.protocols.current == MQTTProtocolVersion.MQTTv5 else "3.1.1"
        self._log.connected(f"connected to {self.broker.url} (MQTT {version})")
        while not self._stop.is_set() and not self._lost:
            self._wake.wait()
            self._wake.clear()
        self._close(client, graceful=self._stop.is_set())
        return "lost"

    def _close(self, client: paho.Client, *, graceful: bool) -> None:
        self._connected.clear()
        try:
            if graceful:
                client.disconnect()
                client.loop_stop()
            else:
                client.on_disconnect = None
                client.loop_stop()
                if client.socket() is not None:
                    client._sock_close()  # a lost link, not a clean goodbye
        except Exception:  # a half-open client must not stop the reconnects
            log.debug("%s: closing the client failed", self.name, exc_info=True)
        self._client = None

    # ----------------------------------------------------------------- paho callbacks

    def _handle_connect(
        self, client: paho.Client, userdata: Any, flags: Any, reason_code: Any, properties: Any
    ) -> None:
        if client is not self._client:
            return
        self._connack = reason_code
        if not reason_code.is_failure:
            self._connected.set()
            if self._on_connected is not None:
                self._on_connected(client, bool(getattr(flags, "session_present", False)))
        self._wake.set()

    def _handle_disconnect(
        self, client: paho.Client, userdata: Any, flags: Any, reason_code: Any, properties: Any
    ) -> None:
        if client is not self._client:
            return
        was_connected = self._connected.is_set()
        self._connected.clear()
        self._lost = True
        if was_connected:
            if self._on_disconnected is not None:
                self._on_disconnected(client)
            if not self._stop.is_set():
                self._log.problem(
                    f"disconnected from {self.broker.url} ({reason_code}); reconnecting"
                )
        self._wake.set()
