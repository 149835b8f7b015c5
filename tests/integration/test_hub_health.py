"""``/healthz`` tells the truth: a read-only database or a full disk turns it to 503 within
30 s, it is back to 200 within 30 s of recovery, and no event sent meanwhile is lost.

A full disk is real: the SQLite database and evidence live on a small tmpfs that the test
fills to 100 % (this needs root, as CI and the development machines run; elsewhere the
test is skipped with the reason). A read-only database is real too: PostgreSQL switched
to read-only transactions for every session (``default_transaction_read_only``, reloaded
into the hub's open connections) and back. The hub is a real ``shaobing hub serve`` process behind
a real Mosquitto; the events come from a real edge outbox and publisher.
"""

# ruff: noqa: F811  (the mosquitto fixture is imported and used as a parameter)

from __future__ import annotations

import os
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine

from edge.outbox import Outbox
from edge.publisher import Publisher
from hub.store import Store
from shaobing.config import BrokerConfig
from shaobing_tools.loadgen import synthetic_event
from tests.support.mosquitto import Mosquitto, free_port, mosquitto  # noqa: F401
from tests.support.processes import start_hub

pytestmark = pytest.mark.timeout(180)


def _mount(cmd: list[str]) -> None:
    subprocess.run(["mount", *cmd], check=True, capture_output=True)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 24 MB tmpfs (unmounted afterwards)."""
    if os.geteuid() != 0:
        pytest.skip("needs root to mount a small tmpfs that can be made read-only and full")
    mnt = tmp_path / "disk"
    mnt.mkdir()
    try:
        _mount(["-t", "tmpfs", "-o", "size=24m", "tmpfs", str(mnt)])
    except (subprocess.CalledProcessError, FileNotFoundError) as exc:
        pytest.skip(f"cannot mount a tmpfs here: {exc}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def _health(base: str) -> tuple[int, dict[str, object]]:
    import json

    try:
        with urllib.request.urlopen(base + "/healthz", timeout=3) as resp:  # noqa: S310 - loopback
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def _until_status(base: str, status: int, timeout: float) -> tuple[float, dict[str, object]]:
    t0 = time.monotonic()
    body: dict[str, object] = {}
    while time.monotonic() - t0 < timeout:
        code, body = _health(base)
        if code == status:
            return time.monotonic() - t0, body
        time.sleep(0.25)
    raise AssertionError(f"/healthz did not turn {status} within {timeout} s: {body}")


def _metrics(base: str) -> str:
    with urllib.request.urlopen(base + "/metrics", timeout=3) as resp:  # noqa: S310
        return resp.read().decode()


def _read_only(url: str, on: bool) -> None:
    """Every session of the cluster: read-only transactions from its next statement on."""
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        value = "on" if on else "off"
        conn.exec_driver_sql(f"ALTER SYSTEM SET default_transaction_read_only = {value}")
        conn.exec_driver_sql("SELECT pg_reload_conf()")
    engine.dispose()


@pytest.fixture(params=["read_only", "disk_full"])
def fault(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def test_healthz_turns_503_on_a_broken_database_and_back_with_nothing_lost(
    fault: str, tmp_path: Path, mosquitto: Mosquitto, request: pytest.FixtureRequest
) -> None:
    port = free_port()
    if fault == "read_only":
        pytest.importorskip("psycopg")
        url = request.getfixturevalue("postgres_url")
        fresh = Store(url)
        fresh.migrate()
        fresh.delete_all()
        fresh.close()
        disk = tmp_path
    else:
        disk = request.getfixturevalue("small_disk")
        url = f"sqlite:///{disk / 'hub.sqlite'}"
    hub = start_hub(
        tmp_path,
        mosquitto.url,
        port,
        db=url,
        extra={
            "evidence_dir": str(disk / "evidence"),
            "health": {"commit_fail_s": 5, "probe_interval_s": 1, "disk_min_free_mb": 1},
        },
    )
    base = f"http://127.0.0.1:{port}"
    outbox = Outbox(tmp_path / "node.sqlite")
    pub = Publisher("hn", BrokerConfig(url=mosquitto.url), outbox, ack_timeout_s=3.0)
    pub.start()
    filler = disk / "filler.bin"
    try:
        for i in range(50):
            outbox.put(synthetic_event("hn", i))
        deadline = time.monotonic() + 30
        while outbox.depth() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert outbox.depth() == 0 and _health(base)[0] == 200

        if fault == "read_only":
            _read_only(url, True)
        else:
            with filler.open("wb") as f:
                try:
                    while True:
                        f.write(b"\0" * 2**20)
                        f.flush()
                except OSError:
                    pass  # ENOSPC: the disk is full
        for i in range(50, 100):  # sent while the hub cannot store
            outbox.put(synthetic_event("hn", i))
        took, body = _until_status(base, 503, 30)
        print(f"{fault}: /healthz 503 after {took:.1f} s: {body['reasons']}")
        assert body["status"] == "unavailable" and body["reasons"]
        cause = "write_probe_failing" if fault == "read_only" else "disk_low"
        counted = f'shaobing_hub_unhealthy_total{{cause="{cause}"}} 1'
        deadline = time.monotonic() + 30  # the write probe runs once a second
        while counted not in _metrics(base) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert outbox.depth() > 0, "nothing can have been stored, so nothing may be acked"

        if fault == "read_only":
            _read_only(url, False)
        else:
            filler.unlink()
        took, _ = _until_status(base, 200, 30)
        print(f"{fault}: /healthz 200 again {took:.1f} s after recovery")
        deadline = time.monotonic() + 30
        while outbox.depth() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert outbox.depth() == 0, "events sent during the fault must arrive after it"
        store = Store(url)
        assert store.count_events() == 100
        store.close()
        metrics = _metrics(base)
        assert counted in metrics, metrics
    finally:
        if fault == "read_only":
            _read_only(url, False)
        filler.unlink(missing_ok=True)
        pub.stop()
        outbox.close()
        hub.stop()
