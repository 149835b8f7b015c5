"""Two hub workers on one PostgreSQL behind one Mosquitto (``$share/hub/...``): one is
killed with SIGKILL mid-run, the other carries on; the database ends with exactly the
events sent (no loss, no duplicate), one incident per incident key, each emergency
escalated exactly once, and a node's will (LWT) raising one ``device_fault`` incident."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from hub import schema
from hub.store import Store
from tests.support.mosquitto import Mosquitto, free_port
from tests.support.processes import ROOT, Proc, start_hub, wait_for

pytestmark = [pytest.mark.postgres, pytest.mark.timeout(60)]

SCALE_HUB = {
    "ingest": {"shared_group": "hub"},
    # an unacknowledged emergency escalates after 3 s; ticks often, short lease
    "sla": {"ack_min": 0.05, "tick_s": 0.5, "lease_s": 2.0},
}


def fresh_pg(url: str) -> str:
    store = Store(url)
    store.migrate()
    store.delete_all()
    store.close()
    return url


def loadgen(
    broker_url: str, outbox: Path, *, nodes: int, rate: float, count: int, prefix: str
) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "shaobing_tools.loadgen",
            "--broker",
            broker_url,
            "--nodes",
            str(nodes),
            "--rate",
            str(rate),
            "--count",
            str(count),
            "--outbox",
            str(outbox),
            "--timeout",
            "35",
            "--ack-timeout",
            "2",
            "--backoff-max",
            "1",
            "--node-prefix",
            prefix,
            "--json",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def scalar(store: Store, stmt: Any) -> int:
    with store.engine.connect() as conn:
        return int(conn.execute(stmt).scalar_one())


def test_one_worker_killed_mid_run_loses_nothing_and_duplicates_nothing(
    postgres_url: str, tmp_path: Path
) -> None:
    url = fresh_pg(postgres_url)
    with Mosquitto(workdir=tmp_path / "broker") as broker:
        ports = [free_port(), free_port()]
        for i in range(2):
            (tmp_path / f"w{i}").mkdir()
        hubs = [
            start_hub(tmp_path / f"w{i}", broker.url, p, db=url, extra=SCALE_HUB)
            for i, p in enumerate(ports)
        ]
        store = Store(url)
        try:
            count = 600
            gen = loadgen(
                broker.url, tmp_path / "outboxes", nodes=20, rate=60, count=count, prefix="fo"
            )
            # both workers take a share before one dies
            wait_for(
                lambda: scalar(store, select(func.count()).select_from(schema.events)) >= 150,
                30,
                "first events in PostgreSQL",
            )
            hubs[0].kill()
            out, err = gen.communicate(timeout=45)
            assert gen.returncode == 0, err[-3000:]
            result = json.loads(out.strip().splitlines()[-1])
            assert result["acked"] == count and result["pending"] == 0, result

            t = schema.events
            assert scalar(store, select(func.count()).select_from(t)) == count
            assert scalar(store, select(func.count(func.distinct(t.c.id)))) == count
            # every event joined an incident; one incident per incident key
            wait_for(
                lambda: (
                    scalar(
                        store,
                        select(func.count()).select_from(t).where(t.c.incident_id.is_(None)),
                    )
                    == 0
                ),
                20,
                "every event in an incident",
            )
            per_key = select(t.c.incident_key, func.count(func.distinct(t.c.incident_id))).group_by(
                t.c.incident_key
            )
            with store.engine.connect() as conn:
                rows = conn.execute(per_key).all()
            assert len(rows) == count and all(n == 1 for _, n in rows)
            # the synthetic events of one type share one place: one situation each, however
            # the two workers interleaved them
            types = scalar(store, select(func.count(func.distinct(t.c.type))))
            assert scalar(store, select(func.count()).select_from(schema.incidents)) == types

            # the emergencies nobody acknowledges escalate once each, whoever ticks
            inc = schema.incidents
            emergencies = scalar(
                store,
                select(func.count()).select_from(inc).where(inc.c.severity == "emergency"),
            )
            assert emergencies > 0
            tl = schema.incident_timeline
            ack_timeouts = select(func.count()).select_from(tl).where(tl.c.kind == "ack_timeout")
            wait_for(
                lambda: scalar(store, ack_timeouts) >= emergencies,
                20,
                "every emergency escalated",
            )
            time.sleep(2.0)  # further ticks by the surviving worker change nothing
            assert scalar(store, ack_timeouts) == emergencies
            per_incident = (
                select(tl.c.incident_id, func.count())
                .where(tl.c.kind == "ack_timeout")
                .group_by(tl.c.incident_id)
            )
            with store.engine.connect() as conn:
                assert all(n == 1 for _, n in conn.execute(per_incident).all())
        finally:
            store.close()
            for h in hubs:
                h.stop()


def test_a_node_dropping_without_disconnect_raises_one_device_fault(
    postgres_url: str, tmp_path: Path
) -> None:
    url = fresh_pg(postgres_url)
    with Mosquitto(workdir=tmp_path / "broker") as broker:
        ports = [free_port(), free_port()]
        for i in range(2):
            (tmp_path / f"w{i}").mkdir()
        hubs = [
            start_hub(tmp_path / f"w{i}", broker.url, p, db=url, extra=SCALE_HUB)
            for i, p in enumerate(ports)
        ]
        store = Store(url)
        node: Proc | None = None
        try:
            # a clean stop publishes a fresh offline status: no fault
            clean = loadgen(broker.url, tmp_path / "clean", nodes=1, rate=20, count=5, prefix="ok")
            _, err = clean.communicate(timeout=40)
            assert clean.returncode == 0, err[-2000:]
            # a node that dies: the broker publishes its will
            node = Proc(
                [
                    "loadgen",
                    "--broker",
                    broker.url,
                    "--nodes",
                    "1",
                    "--rate",
                    "2",
                    "--count",
                    "1000",
                    "--outbox",
                    str(tmp_path / "dying"),
                    "--timeout",
                    "60",
                ],
                tmp_path / "dying.log",
            )
            t = schema.events
            wait_for(
                lambda: (
                    scalar(
                        store,
                        select(func.count()).select_from(t).where(t.c.node_id == "lg0000"),
                    )
                    >= 3
                ),
                30,
                "the node's first events",
            )
            node.kill()  # no DISCONNECT: the TCP connection just ends
            faults = select(func.count()).select_from(t).where(t.c.type == "device_fault")
            wait_for(lambda: scalar(store, faults) >= 1, 20, "a device_fault event")
            time.sleep(1.5)  # the second worker saw the same will
            with store.engine.connect() as conn:
                rows = conn.execute(
                    select(t.c.node_id, t.c.incident_id).where(t.c.type == "device_fault")
                ).all()
            assert [r.node_id for r in rows] == ["lg0000"]
            wait_for(
                lambda: (
                    scalar(
                        store,
                        select(func.count())
                        .select_from(schema.incidents)
                        .where(schema.incidents.c.type == "device_fault"),
                    )
                    == 1
                ),
                15,
                "one device_fault incident",
            )
        finally:
            if node is not None:
                node.stop()
            store.close()
            for h in hubs:
                h.stop()
