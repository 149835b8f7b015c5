"""Broker URL parsing, credentials and protocol order."""

from __future__ import annotations

import logging
import socket
import time

import pytest
from paho.mqtt.enums import MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.reasoncodes import ReasonCode

from shaobing.config import BrokerConfig
from shaobing.mqtt import (
    Backoff,
    ProtocolChoice,
    Session,
    broker_password,
    connect_args,
    describe_connect_error,
    describe_refusal,
    describe_silence,
    is_unsupported_protocol,
    parse_broker_url,
    protocol_order,
)


def test_parse_broker_url() -> None:
    assert parse_broker_url("mqtt://10.0.0.5:1884") == parse_broker_url("tcp://10.0.0.5:1884")
    a = parse_broker_url("mqtts://broker.example")
    assert (a.host, a.port, a.tls) == ("broker.example", 8883, True)
    b = parse_broker_url("mqtt://127.0.0.1")
    assert (b.port, b.tls) == (1883, False)
    with pytest.raises(ValueError, match="expected mqtt://host:port"):
        parse_broker_url("http://x:1")


def test_password_from_environment_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = BrokerConfig(username="n1", password="clear", password_env="SHAOBING_TEST_MQTT_PW")
    monkeypatch.delenv("SHAOBING_TEST_MQTT_PW", raising=False)
    assert broker_password(cfg) == "clear"
    monkeypatch.setenv("SHAOBING_TEST_MQTT_PW", "from-env")
    assert broker_password(cfg) == "from-env"


def test_protocol_order_and_fallback_signal() -> None:
    assert protocol_order(BrokerConfig()) == [
        MQTTProtocolVersion.MQTTv5,
        MQTTProtocolVersion.MQTTv311,
    ]
    assert protocol_order(BrokerConfig(protocol="3.1.1")) == [MQTTProtocolVersion.MQTTv311]
    assert protocol_order(BrokerConfig(protocol="5")) == [MQTTProtocolVersion.MQTTv5]
    assert is_unsupported_protocol(132) and is_unsupported_protocol(1)
    assert not is_unsupported_protocol(135)


def test_protocol_choice_keeps_what_worked_and_starts_over_past_the_last() -> None:
    choice = ProtocolChoice(BrokerConfig())
    assert choice.current == MQTTProtocolVersion.MQTTv5 and choice.connack_timeout_s == 3.0
    assert choice.fall_back() is True  # refused or silent: 3.1.1 at once
    assert choice.current == MQTTProtocolVersion.MQTTv311 and choice.connack_timeout_s == 10.0
    assert choice.fall_back() is False  # past the last: back off, then MQTT 5 again
    assert choice.current == MQTTProtocolVersion.MQTTv5
    only = ProtocolChoice(BrokerConfig(protocol="3.1.1"))
    assert only.fall_back() is False and only.current == MQTTProtocolVersion.MQTTv311


def test_connect_args_for_each_protocol_and_session_kind() -> None:
    broker = BrokerConfig(url="mqtts://b.example:8884", keepalive_s=20)
    v5 = connect_args(broker, MQTTProtocolVersion.MQTTv5, persistent=True, session_expiry_s=60)
    assert (v5["host"], v5["port"], v5["keepalive"], v5["clean_start"]) == (
        "b.example",
        8884,
        20,
        False,
    )
    assert v5["properties"].SessionExpiryInterval == 60
    clean = connect_args(broker, MQTTProtocolVersion.MQTTv5, persistent=False)
    assert clean["clean_start"] is True and "properties" not in clean
    v311 = connect_args(broker, MQTTProtocolVersion.MQTTv311, persistent=True)
    assert set(v311) == {"host", "port", "keepalive"}


def test_refusals_name_the_config_file_and_key() -> None:
    login = BrokerConfig(username="n1", password_env="PW")
    text = describe_refusal(login, ReasonCode(PacketTypes.CONNACK, identifier=134), "edge.yaml")
    assert text == (
        "MQTT broker mqtt://127.0.0.1:1883 refused the connection (Bad user name or password): "
        "user 'n1' and the password are not accepted; check edge.yaml broker.username and "
        "edge.yaml broker.password_env ($PW)"
    )
    anonymous = describe_refusal(BrokerConfig(), ReasonCode(PacketTypes.CONNACK, identifier=135))
    assert anonymous.endswith(
        "anonymous clients are not allowed; set broker.username and broker.password_env"
    )
    clear = describe_refusal(
        BrokerConfig(username="n1", password="x"), ReasonCode(PacketTypes.CONNACK, identifier=135)
    )
    assert clear.endswith("check broker.username and broker.password")


def test_a_refused_port_is_described_from_the_real_error() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, not listening: connections are refused
        with pytest.raises(ConnectionRefusedError) as err:
            socket.create_connection(("127.0.0.1", port), timeout=2)
    broker = BrokerConfig(url=f"mqtt://127.0.0.1:{port}")
    assert describe_connect_error(broker, err.value, "hub.yaml") == (
        f"MQTT broker mqtt://127.0.0.1:{port}: connection refused, nothing listens on "
        f"127.0.0.1:{port}; check hub.yaml broker.url or start the broker"
    )


def test_backoff_doubles_to_its_ceiling_and_resets_after_a_connection() -> None:
    backoff = Backoff(1.0, 5.0)
    delays = [backoff.delay() for _ in range(5)]
    for delay, base in zip(delays, [1.0, 2.0, 4.0, 5.0, 5.0], strict=True):
        assert 0.8 * base <= delay <= min(1.2 * base, 5.0)
    backoff.reset()
    assert 0.8 <= backoff.delay() <= 1.2


def test_a_silent_broker_is_named_and_mqtt_5_gives_way_to_3_1_1(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A listener that takes the connection and never answers (some 3.1.1-only brokers do
    that to an MQTT 5 CONNECT)."""
    caplog.set_level(logging.WARNING)
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        port = server.getsockname()[1]
        broker = BrokerConfig(url=f"mqtt://127.0.0.1:{port}")
        session = Session(broker, "silent-test", name="silent", source="hub.yaml")
        session.start()
        try:
            deadline = time.monotonic() + 8
            while time.monotonic() < deadline and session.protocols.index == 0:
                time.sleep(0.05)
            assert session.protocols.current == MQTTProtocolVersion.MQTTv311
            assert not session.connected
        finally:
            session.stop()
    assert f"silent: {describe_silence(broker, 3.0, 'hub.yaml')}" in caplog.messages
    assert describe_silence(broker, 3.0, "hub.yaml") == (
        f"MQTT broker mqtt://127.0.0.1:{port}: no CONNACK within 3 s; "
        "check hub.yaml broker.url and hub.yaml broker.protocol"
    )
