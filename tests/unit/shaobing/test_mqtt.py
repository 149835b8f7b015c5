"""Broker URL parsing, credentials and protocol order."""

from __future__ import annotations

import pytest
from paho.mqtt.enums import MQTTProtocolVersion

from shaobing.config import BrokerConfig
from shaobing.mqtt import broker_password, is_unsupported_protocol, parse_broker_url, protocol_order


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
