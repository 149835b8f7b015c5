"""Shared fixtures: a throwaway PostgreSQL cluster (``postgres_url``).

``postgres_url`` (session-scoped) initialises a cluster in a temporary folder owned by the
``postgres`` user (PostgreSQL refuses to run as root), starts it on a free loopback port with
trust authentication, creates the database ``shaobing`` and yields its URL; it stops the
server at the end. Without the server binaries it skips with the reason.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from tests.support.mosquitto import mosquitto  # noqa: F401 - a fixture for every test


def _pg_bindir() -> Path | None:
    env = os.environ.get("SHAOBING_PG_BINDIR")
    candidates = [env] if env else []
    candidates += sorted(
        glob.glob("/usr/lib/postgresql/*/bin"),
        key=lambda p: int(p.split("/")[-2]) if p.split("/")[-2].isdigit() else 0,
        reverse=True,
    )
    for c in candidates:
        if c and (Path(c) / "initdb").exists() and (Path(c) / "pg_ctl").exists():
            return Path(c)
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb and shutil.which("pg_ctl") else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _as_pg_user(argv: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return argv
    return ["runuser", "-u", "postgres", "--", *argv]


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """URL of a fresh PostgreSQL database on a free loopback port (skips without PostgreSQL)."""
    bindir = _pg_bindir()
    if bindir is None:
        pytest.skip(
            "PostgreSQL server binaries not found (apt-get install postgresql, or set SHAOBING_PG_BINDIR)"
        )
    if os.geteuid() == 0:
        try:
            pg = pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root and no 'postgres' user to run the server as")
        if shutil.which("runuser") is None:
            pytest.skip("running as root and no runuser to switch to the 'postgres' user")
    tmp = Path(tempfile.mkdtemp(prefix="shaobing-pg-"))
    data = tmp / "data"
    sock = tmp / "sock"
    sock.mkdir()
    if os.geteuid() == 0:
        for p in (tmp, sock):
            os.chown(p, pg.pw_uid, pg.pw_gid)
    port = _free_port()
    log = tmp / "server.log"
    try:
        subprocess.run(
            _as_pg_user(
                [
                    str(bindir / "initdb"),
                    "-D",
                    str(data),
                    "-U",
                    "postgres",
                    "-A",
                    "trust",
                    "-E",
                    "UTF8",
                    "--no-sync",
                ]
            ),
            check=True,
            capture_output=True,
            timeout=120,
        )
        opts = f"-p {port} -k {sock} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=60"
        subprocess.run(
            _as_pg_user(
                [
                    str(bindir / "pg_ctl"),
                    "-D",
                    str(data),
                    "-l",
                    str(log),
                    "-o",
                    opts,
                    "-w",
                    "-t",
                    "60",
                    "start",
                ]
            ),
            check=True,
            capture_output=True,
            timeout=90,
        )
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
        out = getattr(exc, "stderr", b"") or b""
        shutil.rmtree(tmp, ignore_errors=True)
        pytest.skip(f"could not start PostgreSQL: {out.decode(errors='replace')[-500:]}")
    try:
        import psycopg

        deadline = time.monotonic() + 30
        while True:
            try:
                with psycopg.connect(
                    f"host=127.0.0.1 port={port} user=postgres dbname=postgres", autocommit=True
                ) as conn:
                    conn.execute("CREATE DATABASE shaobing")
                break
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        yield f"postgresql://postgres@127.0.0.1:{port}/shaobing"
    finally:
        subprocess.run(
            _as_pg_user([str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"]),
            capture_output=True,
            timeout=60,
        )
        shutil.rmtree(tmp, ignore_errors=True)


# --------------------------------------------------------------------------- hub test kit
# A real hub core (store, registry, routing, work orders, incidents) on SQLite or on the
# throwaway PostgreSQL, with a controllable clock.

T0 = __import__("datetime").datetime(
    2026, 3, 2, 1, 0, tzinfo=__import__("datetime").UTC
)  # Monday 09:00 Asia/Shanghai


class HubKit:
    """Store + core + clock for hub tests; ``event()`` makes wire events, ``feed()`` ingests them."""

    def __init__(self, url: str, tmp: Path, start_worker: bool = True, **overrides: object) -> None:
        from hub.app import build_core
        from hub.incidents import IncidentWorker
        from hub.store import ManualClock, Store
        from shaobing.config import HubConfig
        from shaobing.paths import configs_dir

        data: dict[str, object] = {
            "db": url,
            "registry": str(configs_dir() / "demo" / "registry.yaml"),
            "evidence_dir": str(tmp / "evidence"),
            "auth": {"anonymous_read": True},
        }
        data.update(overrides)
        self.config = HubConfig.model_validate(data)
        self.clock = ManualClock(T0)
        self.store = Store(url, clock=self.clock)
        self.store.migrate()
        self.core = build_core(self.config, self.store)
        # the production way into incident processing, turned by hand instead of a thread
        self.incident_worker = IncidentWorker(self.core.incidents)
        if start_worker:
            self.incident_worker.run_once()  # a worker's start: recovers what is pending
        self._n = 0

    def event(self, type_: str = "fire_lane_blocked", **kw: object):  # type: ignore[no-untyped-def]
        """A wire Event; keyword arguments override fields (location keys flat)."""
        from shaobing.contract import Event, new_event_id

        self._n += 1
        at = kw.pop("at", self.clock.now())
        loc = {
            k: kw.pop(k) for k in ("grid_id", "address", "lat", "lon", "zone", "floor") if k in kw
        }
        if not any(k in loc for k in ("grid_id", "address", "lat")):
            loc["grid_id"] = "beibei-tianfu-01"
        src = {
            "node_id": kw.pop("node_id", "node-a"),
            "kind": kw.pop("kind", "camera"),
            "device_id": kw.pop("device_id", "cam1"),
            "pipeline": kw.pop("pipeline", "fire_lane"),
        }
        body = {
            "id": kw.pop("id", new_event_id()),
            "type": type_,
            "severity": kw.pop("severity", "normal"),
            "state": kw.pop("state", "active"),
            "incident_key": kw.pop("incident_key", f"k{self._n}"),
            "occurred_at": at,
            "detected_at": at + timedelta(seconds=1),  # type: ignore[operator]
            "source": src,
            "location": loc,
            "confidence": 0.9,
            "summary": kw.pop("summary", f"测试事件 {self._n}"),
            **kw,
        }
        return Event.model_validate(body)

    def feed(self, *events):  # type: ignore[no-untyped-def]
        """Insert like ingest does, then hand the new ones to the incident worker as ingest's
        ``on_committed`` does and let it turn once; returns the new ids."""
        keys = set(self.store.insert_events([(e, self.clock.now()) for e in events]))
        fresh = [e for e in events if (e.source.node_id, e.id) in keys]
        self.hand(*fresh)
        return [e.id for e in fresh]

    def hand(self, *events) -> int:  # type: ignore[no-untyped-def]
        """Hand committed events to the incident worker (``on_committed``) and turn it once."""
        self.incident_worker.on_committed(list(events))
        return self.incident_worker.run_once()

    def orders(self) -> list[dict]:  # type: ignore[type-arg]
        from hub.users import SYSTEM

        return self.core.orders.list(SYSTEM, limit=500)[0]

    def incidents(self) -> list[dict]:  # type: ignore[type-arg]
        from hub.users import SYSTEM

        return self.core.incidents.list(SYSTEM, limit=500)[0]

    def close(self) -> None:
        """Release connections."""
        self.store.close()


def _fresh_pg(url: str) -> str:
    from hub.store import Store

    s = Store(url)
    s.migrate()
    s.delete_all()
    s.close()
    return url


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def hub_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A migrated, empty hub database: SQLite file, then the throwaway PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'hub.sqlite'}"
    return _fresh_pg(request.getfixturevalue("postgres_url"))


@pytest.fixture
def hubkit(hub_url: str, tmp_path: Path) -> Iterator[HubKit]:
    """A hub core on each database, with a manual clock."""
    kit = HubKit(hub_url, tmp_path)
    yield kit
    kit.close()


@pytest.fixture
def sqlite_hubkit(tmp_path: Path) -> Iterator[HubKit]:
    """A hub core on SQLite only (fast tests)."""
    kit = HubKit(f"sqlite:///{tmp_path / 'hub.sqlite'}", tmp_path)
    yield kit
    kit.close()
