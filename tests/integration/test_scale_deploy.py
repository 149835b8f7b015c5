"""The container deployment (compose.yaml, Dockerfile, configs/deploy) is consistent:
two hub workers with distinct ids share one subscription group and one database, every
referenced config parses, images run as non-root with health checks and without torch,
and the district broker configs actually start a bridged pair that carries traffic."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
import yaml
from paho.mqtt.enums import CallbackAPIVersion

from shaobing.config import load_edge_config, load_hub_config
from shaobing.contract import ack_key_for, sign_ack, verify_ack
from tests.support.mosquitto import Mosquitto
from tests.support.processes import ROOT, wait_for

COMPOSE = ROOT / "compose.yaml"
DOCKERFILE = ROOT / "Dockerfile"
DEPLOY = ROOT / "configs" / "deploy"


def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    return data


def _arg(cmd: list[str], flag: str) -> str | None:
    return cmd[cmd.index(flag) + 1] if flag in cmd else None


def test_compose_runs_two_distinct_hub_workers_on_one_database_and_group() -> None:
    services = compose()["services"]
    assert {"mosquitto", "postgres", "edge-demo"} <= set(services)
    hubs = {k: v for k, v in services.items() if v.get("build", {}).get("target") == "hub"}
    assert len(hubs) >= 2
    ids = {v["environment"]["SHAOBING_HUB_ID"] for v in hubs.values()}
    assert len(ids) == len(hubs)  # distinct MQTT client ids and lease holders
    dbs = {_arg(v["command"], "--db") for v in hubs.values()}
    assert len(dbs) == 1 and next(iter(dbs)).startswith("postgresql://")  # type: ignore[union-attr]
    host_ports = [p.split(":")[0] for v in hubs.values() for p in v.get("ports", [])]
    assert len(host_ports) == len(set(host_ports))
    for v in hubs.values():
        mount = next(m for m in v["volumes"] if m.endswith(":/etc/shaobing/hub.yaml:ro"))
        cfg = load_hub_config(ROOT / mount.split(":")[0])
        assert cfg.ingest.shared_group == "hub"
        assert str(cfg.registry).startswith("/opt/shaobing/")  # inside the image
        assert any(m.endswith(":" + cfg.evidence_dir) for m in v["volumes"])  # shared volume
    edge = services["edge-demo"]
    assert edge["build"]["target"] == "edge"
    mount = next(m for m in edge["volumes"] if m.endswith(":/etc/shaobing/edge.yaml:ro"))
    edge_cfg = load_edge_config(ROOT / mount.split(":")[0])
    assert edge_cfg.broker.url == "mqtt://mosquitto:1883"
    # passwords and signed acks, no anonymous broker
    assert edge_cfg.broker.username and edge_cfg.broker.password_env and edge_cfg.ack_key_env
    assert edge_cfg.ack_key_env in edge["environment"]
    conf = (DEPLOY / "compose-mosquitto.conf").read_text(encoding="utf-8")
    assert "allow_anonymous false" in conf and "acl_file" in conf and "password_file" in conf
    for v in hubs.values():
        mount = next(m for m in v["volumes"] if m.endswith(":/etc/shaobing/hub.yaml:ro"))
        hub_cfg = load_hub_config(ROOT / mount.split(":")[0])
        assert hub_cfg.ingest.ack_secret_env in v["environment"]
        assert "/healthz" in " ".join(v["healthcheck"]["test"])
    assert not services["postgres"].get("ports") and not edge.get("ports")


def test_dockerfile_targets_are_non_root_with_health_checks_and_no_torch() -> None:
    text = DOCKERFILE.read_text(encoding="utf-8")
    stages = dict(re.findall(r"^FROM \S+ AS (\S+)\n(.*?)(?=^FROM |\Z)", text, re.M | re.S))
    for target in ("edge", "hub"):
        body = stages[target]
        assert re.search(r"^USER (?!root)\S+", body, re.M), target
        assert "HEALTHCHECK" in body and "/healthz" in body, target
    assert "torch" not in re.sub(r"#.*", "", text)
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert ".venv" in ignored and ".git" in ignored


def test_bridged_town_and_district_brokers_carry_events_up_and_acks_down(tmp_path: Path) -> None:
    # the bridge stanza of the shipped town config, pointed at a loopback district broker
    town_conf = (DEPLOY / "mosquitto-town.conf").read_text(encoding="utf-8")
    stanza = town_conf[town_conf.index("connection district") :]
    keep = [
        ln
        for ln in stanza.splitlines()
        if ln.strip()
        and not ln.startswith("#")
        and not ln.startswith(("address", "remote_username", "remote_password"))
    ]
    with Mosquitto(workdir=tmp_path / "district") as district:
        extra = "\n".join([keep[0], f"address 127.0.0.1:{district.port}", *keep[1:]])
        with Mosquitto(workdir=tmp_path / "town", extra=extra) as town:
            got: dict[str, list[str]] = {"district": [], "town": []}
            acked: list[str] = []
            key = ack_key_for("district-secret", "n1")

            def on_message(name: str, m: paho.MQTTMessage) -> None:
                got[name].append(m.topic)
                if name == "town":  # the node checks the hub's signature after the bridge
                    acked.extend(verify_ack(bytes(m.payload), key, "n1"))

            def client(port: int, name: str, sub: str) -> paho.Client:
                c = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"t-{name}")
                c.on_message = lambda _c, _u, m: on_message(name, m)
                c.connect("127.0.0.1", port)
                c.subscribe(sub, qos=1)
                c.loop_start()
                return c

            hub = client(district.port, "district", "shaobing/v1/+/event")
            node = client(town.port, "town", "shaobing/v1/n1/ack")
            try:

                def roundtrip() -> bool:
                    node.publish("shaobing/v1/n1/event", b"{}", qos=1)
                    hub.publish("shaobing/v1/n1/ack", sign_ack(["e1"], key, "n1"), qos=1)
                    return bool(got["district"]) and bool(got["town"])

                wait_for(roundtrip, 15, "an event up and an ack down the bridge", interval=0.5)
                assert acked and set(acked) == {"e1"}
            finally:
                for c in (hub, node):
                    c.loop_stop()
                    c.disconnect()
