"""Per-node accounts, the deploy ACL (a node writes only under its own id) and TLS, on a real mosquitto."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from pathlib import Path

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from edge.outbox import Outbox
from edge.publisher import Publisher
from hub.ingest import Ingest
from hub.store import Store
from shaobing import topics
from shaobing.config import BrokerConfig, HubConfig, TlsConfig
from shaobing.contract import Event
from shaobing_tools.loadgen import synthetic_event
from tests.support.mosquitto import Mosquitto, make_passwd, make_tls_certs, mosquitto_binary
from tests.support.transport import ROOT

pytestmark = [
    pytest.mark.skipif(mosquitto_binary() is None, reason="mosquitto is not installed"),
    pytest.mark.timeout(90),
]

ACL = ROOT / "configs" / "deploy" / "mosquitto-acl.conf"
USERS = {"hub": "hub-secret", "n1": "n1-secret", "n2": "n2-secret"}


def wait_for(cond: Callable[[], bool], timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.02)
    return False


def start_hub(tmp_path: Path, broker: BrokerConfig) -> tuple[Ingest, Store]:
    store = Store(f"sqlite:///{tmp_path / 'hub.sqlite'}")
    store.migrate()
    ingest = Ingest(HubConfig(broker=broker, base_dir=str(tmp_path)), store)
    ingest.start()
    assert ingest.wait_ready(10), "hub subscription must be allowed by the ACL"
    return ingest, store


def raw_client(
    port: int,
    user: str | None,
    password: str | None,
    protocol: MQTTProtocolVersion,
    name: str = "raw",
) -> tuple[paho.Client, list[str]]:
    seen: list[str] = []
    kwargs = {} if protocol == MQTTProtocolVersion.MQTTv5 else {"clean_session": True}
    c = paho.Client(
        CallbackAPIVersion.VERSION2,
        client_id=f"{name}-{user}-{protocol}",
        protocol=protocol,
        **kwargs,
    )
    if user:
        c.username_pw_set(user, password)
    c.on_connect = lambda cl, u, f, rc, p: seen.append(str(rc))
    c.on_disconnect = lambda cl, u, f, rc, p: seen.append(f"disconnected: {rc}")
    c.connect("127.0.0.1", port)
    c.loop_start()
    wait_for(lambda: bool(seen), 5)
    return c, seen


@pytest.mark.parametrize("protocol", [MQTTProtocolVersion.MQTTv5, MQTTProtocolVersion.MQTTv311])
def test_node_may_publish_only_under_its_own_id(
    tmp_path: Path, protocol: MQTTProtocolVersion
) -> None:
    passwd = make_passwd(tmp_path / "passwd", USERS)
    with Mosquitto(passwd_file=passwd, acl_file=ACL, workdir=tmp_path / "broker") as broker:
        ingest, store = start_hub(
            tmp_path, BrokerConfig(url=broker.url, username="hub", password="hub-secret")
        )
        outbox = Outbox(tmp_path / "n1.sqlite")
        pub = Publisher(
            "n1",
            BrokerConfig(url=broker.url, username="n1", password="n1-secret"),
            outbox,
            ack_timeout_s=5.0,
        )
        client, seen = raw_client(broker.port, "n1", "n1-secret", protocol)
        try:
            # the real publisher under its own id: delivered, and the hub's ack reaches it
            outbox.put_many([(synthetic_event("n1", i), None) for i in range(10)])
            pub.start()
            assert wait_for(lambda: outbox.depth() == 0), (
                "own-topic events must be acked end to end"
            )
            # n1 pretending to be n2: refused by the broker, never reaches the hub
            # (with MQTT 5 the broker answers "not authorised" and paho drops that link)
            forged = synthetic_event("n2", 0)
            client.publish(topics.event_topic("n2"), forged.to_bytes(), qos=1).wait_for_publish(5)
            forger, _ = raw_client(broker.port, "n1", "n1-secret", protocol, "forger2")
            forger.publish(
                topics.status_topic("n2"), b'{"online": true}', qos=1, retain=True
            ).wait_for_publish(5)
            # a marker after the forgeries, on n1's own topic, proves the hub has caught up
            marker = synthetic_event("n1", 99)
            checker, _ = raw_client(broker.port, "n1", "n1-secret", protocol, "checker")
            checker.publish(topics.event_topic("n1"), marker.to_bytes(), qos=1).wait_for_publish(5)
            checker.loop_stop()
            forger.loop_stop()
            assert wait_for(lambda: store.get_event(marker.id) is not None)
            assert store.get_event(forged.id) is None
            assert store.count_events() == 11
            assert store.count_dead_letters() == 0
            assert all(n["node_id"] != "n2" for n in store.list_nodes())
        finally:
            client.loop_stop()
            client.disconnect()
            pub.stop()
            outbox.close()
            ingest.stop()
            store.close()


def test_wrong_password_and_anonymous_are_refused(tmp_path: Path) -> None:
    passwd = make_passwd(tmp_path / "passwd", USERS)
    with Mosquitto(passwd_file=passwd, acl_file=ACL, workdir=tmp_path / "broker") as broker:
        outbox = Outbox(tmp_path / "n1.sqlite")
        pub = Publisher(
            "n1",
            BrokerConfig(url=broker.url, username="n1", password="wrong"),
            outbox,
            backoff_max_s=1.0,
        )
        outbox.put(synthetic_event("n1", 0))
        pub.start()
        try:
            assert wait_for(lambda: pub.stats["connect_failures"] >= 1, 10)
            assert not pub.connected and outbox.depth() == 1
            anon, seen = raw_client(broker.port, None, None, MQTTProtocolVersion.MQTTv311)
            assert wait_for(lambda: bool(seen), 5)
            assert seen[0] != "Success"
            anon.loop_stop()
        finally:
            pub.stop(timeout=2.0)
            outbox.close()


def test_tls_with_generated_certificates(tmp_path: Path) -> None:
    certs = make_tls_certs(tmp_path / "certs")
    with Mosquitto(
        tls={"cert": certs["cert"], "key": certs["key"]}, workdir=tmp_path / "broker"
    ) as broker:
        assert broker.url.startswith("mqtts://")
        tls = TlsConfig(ca_file=str(certs["ca"]))
        ingest, store = start_hub(tmp_path, BrokerConfig(url=broker.url, tls=tls))
        outbox = Outbox(tmp_path / "n1.sqlite")
        pub = Publisher("n1", BrokerConfig(url=broker.url, tls=tls), outbox, ack_timeout_s=5.0)
        blob = b"\x89PNG" + bytes(range(256)) * 20
        data = json.loads(synthetic_event("n1", 0).to_bytes())
        data["evidence"] = [
            {
                "id": "snap-1",
                "kind": "image",
                "content_type": "image/png",
                "sha256": hashlib.sha256(blob).hexdigest(),
                "bytes": len(blob),
            }
        ]
        ev = Event.model_validate(data)
        outbox.put(ev, {"snap-1": blob})
        outbox.put_many([(synthetic_event("n1", i), None) for i in range(1, 20)])
        pub.start()
        # a node that does not trust the broker's CA must not connect
        untrusting_box = Outbox(tmp_path / "n2.sqlite")
        untrusting = Publisher(
            "n2", BrokerConfig(url=broker.url), untrusting_box, backoff_max_s=1.0
        )
        untrusting_box.put(synthetic_event("n2", 0))
        untrusting.start()
        try:
            assert wait_for(lambda: outbox.depth() == 0), "events must flow over TLS"
            assert store.count_events() == 20
            assert store.get_evidence("n1", "snap-1") is not None
            assert wait_for(lambda: untrusting.stats["connect_failures"] >= 1, 10)
            assert not untrusting.connected and untrusting_box.depth() == 1
        finally:
            untrusting.stop(timeout=2.0)
            untrusting_box.close()
            pub.stop()
            outbox.close()
            ingest.stop()
            store.close()
