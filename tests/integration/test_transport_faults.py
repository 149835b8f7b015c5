"""Zero loss under faults: real mosquitto, real hub ingest and store, real outbox, ``kill -9``.

In every case the hub must end with exactly the events the load generator committed to
its outboxes: each node's sequence numbers 0..n-1 once (no loss, no duplicate rows).
The outage length is ``SHAOBING_TEST_OUTAGE_S`` (default 10 s).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from tests.support.mosquitto import Mosquitto, mosquitto_binary
from tests.support.transport import HubProcess, assert_exactly_once, finish, start_loadgen

pytestmark = [
    pytest.mark.skipif(mosquitto_binary() is None, reason="mosquitto is not installed"),
    pytest.mark.timeout(120),
]

OUTAGE_S = float(os.environ.get("SHAOBING_TEST_OUTAGE_S", "10"))


def test_broker_killed_and_restarted_mid_stream(tmp_path: Path) -> None:
    with Mosquitto(persistence=True, workdir=tmp_path / "broker") as broker:
        hub = HubProcess(broker.url, tmp_path).start()
        try:
            lg = start_loadgen(broker.url, tmp_path / "outbox", nodes=3, rate=400, count=2400)
            time.sleep(2.0)
            broker.restart(kill=True, down_s=1.0)
            rc, result, err = finish(lg)
            assert rc == 0, err[-2000:]
            assert result["pending"] == 0 and result["generated"] == 2400
            assert_exactly_once(hub.db_path, 2400)
        finally:
            hub.stop()


def test_hub_killed_and_restarted_mid_stream(tmp_path: Path) -> None:
    with Mosquitto(persistence=True, workdir=tmp_path / "broker") as broker:
        hub = HubProcess(broker.url, tmp_path).start()
        try:
            lg = start_loadgen(broker.url, tmp_path / "outbox", nodes=3, rate=400, count=1600)
            time.sleep(2.0)
            hub.kill()
            time.sleep(1.0)
            hub.start()
            rc, result, err = finish(lg)
            assert rc == 0, err[-2000:]
            assert_exactly_once(hub.db_path, 1600)
        finally:
            hub.stop()


def test_loadgen_killed_and_restarted_on_the_same_outbox(tmp_path: Path) -> None:
    with Mosquitto(persistence=True, workdir=tmp_path / "broker") as broker:
        hub = HubProcess(broker.url, tmp_path).start()
        try:
            outbox = tmp_path / "outbox"
            lg = start_loadgen(broker.url, outbox, nodes=2, rate=400, count=100_000)
            time.sleep(3.0)
            lg.kill()  # SIGKILL mid-stream: whatever was put is in the outbox
            lg.wait()
            rc, result, err = finish(start_loadgen(broker.url, outbox, nodes=2, rate=400, count=0))
            assert rc == 0, err[-2000:]
            total = assert_exactly_once(hub.db_path)
            assert total >= 200, "the first run should have sent a good part before it was killed"
            assert result["pending"] == 0
        finally:
            hub.stop()


def test_broker_restarted_without_persistence_while_hub_is_down(tmp_path: Path) -> None:
    """The broker forgets the hub's queued messages; the end-to-end ack makes nodes re-send."""
    with Mosquitto(persistence=False, workdir=tmp_path / "broker") as broker:
        hub = HubProcess(broker.url, tmp_path).start()
        try:
            lg = start_loadgen(broker.url, tmp_path / "outbox", nodes=2, rate=400, count=2000)
            time.sleep(1.5)
            hub.kill()
            time.sleep(1.5)  # the broker queues for the hub's persistent session …
            broker.restart(kill=True)  # … and loses it all
            hub.start()
            rc, result, err = finish(lg)
            assert rc == 0, err[-2000:]
            assert result["resent"] > 0
            assert_exactly_once(hub.db_path, 2000)
        finally:
            hub.stop()


def test_broker_outage_does_not_block_producers_and_loses_nothing(tmp_path: Path) -> None:
    with Mosquitto(persistence=True, workdir=tmp_path / "broker") as broker:
        hub = HubProcess(broker.url, tmp_path).start()
        try:
            count = int(300 * (OUTAGE_S + 2))
            lg = start_loadgen(
                broker.url,
                tmp_path / "outbox",
                nodes=2,
                rate=300,
                count=count,
                timeout=OUTAGE_S + 60,
            )
            time.sleep(1.5)
            broker.stop()
            time.sleep(OUTAGE_S)
            broker.start()
            t0 = time.monotonic()
            rc, result, err = finish(lg, timeout=OUTAGE_S + 90)
            assert rc == 0, err[-2000:]
            # generation went on during the outage (put never blocks on the broker)
            assert result["rate"] >= 250
            assert_exactly_once(hub.db_path, count)
            assert time.monotonic() - t0 < 45
        finally:
            hub.stop()
