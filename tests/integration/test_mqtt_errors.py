"""One MQTT layer: a bad password, a refused port and an unknown host read the same on the
edge's publisher, the hub's ingest and the hub's notifier, naming the config file and key."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from edge.outbox import Outbox
from edge.publisher import Publisher
from hub.ingest import Ingest
from hub.notify import MqttNotifier
from hub.store import Store
from shaobing.config import load_edge_config, load_hub_config
from tests.support.mosquitto import Mosquitto, free_port, make_passwd

PW_ENV = "SHAOBING_TEST_MQTT_PASSWORD"


@pytest.fixture(scope="module")
def locked_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mosquitto]:
    tmp = tmp_path_factory.mktemp("locked")
    passwd = make_passwd(tmp / "passwd", {"n1": "n1-secret"})
    with Mosquitto(passwd_file=passwd, workdir=tmp / "broker") as broker:
        yield broker


def broker_yaml(url: str) -> str:
    return f"broker:\n  url: {url}\n  username: n1\n  password_env: {PW_ENV}\n"


def problems(caplog: pytest.LogCaptureFixture, names: dict[str, str]) -> dict[str, str]:
    """The last warning of each connection, by its owner, without the connection's name."""
    found: dict[str, str] = {}
    for rec in caplog.records:
        if rec.levelno < logging.WARNING:
            continue
        text = rec.getMessage()
        for prefix, owner in names.items():
            if text.startswith(prefix + ": "):
                found[owner] = text[len(prefix) + 2 :]
    return found


@pytest.mark.parametrize("case", ["bad_password", "refused_port", "unknown_host"])
def test_connection_errors_read_the_same_everywhere(
    case: str,
    locked_broker: Mosquitto,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url = {
        "bad_password": locked_broker.url,
        "refused_port": f"mqtt://127.0.0.1:{free_port()}",
        "unknown_host": "mqtt://no-such-host.invalid:1883",
    }[case]
    monkeypatch.setenv(PW_ENV, "wrong")
    hub_file = tmp_path / "hub.yaml"
    hub_file.write_text(f"kind: hub\ndb: sqlite:///hub.sqlite\n{broker_yaml(url)}")
    edge_file = tmp_path / "edge.yaml"
    edge_file.write_text(f"kind: edge\nnode_id: n1\n{broker_yaml(url)}")
    hub_cfg, edge_cfg = load_hub_config(hub_file), load_edge_config(edge_file)
    caplog.set_level(logging.WARNING)
    store = Store(hub_cfg.db_url())
    store.migrate()
    outbox = Outbox(tmp_path / "outbox.sqlite")
    ingest = Ingest(hub_cfg, store)
    publisher = Publisher(
        "n1", edge_cfg.broker, outbox, source=edge_cfg.config_file, backoff_max_s=1.0
    )
    names = {"hub ingest": "ingest", "hub notify": "notify", "n1": "edge"}
    ingest.start()
    notifier = MqttNotifier(hub_cfg)
    publisher.start()
    try:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and len(problems(caplog, names)) < 3:
            time.sleep(0.1)
        found = problems(caplog, names)
    finally:
        publisher.stop()
        notifier.close()
        ingest.stop()
        outbox.close()
        store.close()
    assert set(found) == {"ingest", "notify", "edge"}, [r.getMessage() for r in caplog.records]
    hub_text = found["ingest"]
    assert found["notify"] == hub_text
    assert found["edge"] == hub_text.replace(str(hub_file), str(edge_file))
    expected = {
        "bad_password": f"MQTT broker {url} refused the connection (Not authorized): user 'n1' "
        f"and the password are not accepted; check {hub_file} broker.username and "
        f"{hub_file} broker.password_env (${PW_ENV})",
        "refused_port": f"MQTT broker {url}: connection refused, nothing listens on "
        f"{url.removeprefix('mqtt://')}; check {hub_file} broker.url or start the broker",
        "unknown_host": f"MQTT broker {url}: unknown host 'no-such-host.invalid' "
        f"(Name or service not known); check {hub_file} broker.url",
    }[case]
    if case == "unknown_host":  # the resolver's own words vary between systems
        head, _, _ = expected.partition("(")
        assert hub_text.startswith(head + "(") and hub_text.endswith(
            f"; check {hub_file} broker.url"
        )
    else:
        assert hub_text == expected
