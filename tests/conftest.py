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
from pathlib import Path

import pytest


def _pg_bindir() -> Path | None:
    env = os.environ.get("SHAOBING_PG_BINDIR")
    candidates = [env] if env else []
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(p.split("/")[-2]) if p.split("/")[-2].isdigit() else 0, reverse=True)
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
        pytest.skip("PostgreSQL server binaries not found (apt-get install postgresql, or set SHAOBING_PG_BINDIR)")
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
        subprocess.run(_as_pg_user([str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync"]), check=True, capture_output=True, timeout=120)
        opts = f"-p {port} -k {sock} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=60"
        subprocess.run(_as_pg_user([str(bindir / "pg_ctl"), "-D", str(data), "-l", str(log), "-o", opts, "-w", "-t", "60", "start"]), check=True, capture_output=True, timeout=90)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
        out = getattr(exc, "stderr", b"") or b""
        shutil.rmtree(tmp, ignore_errors=True)
        pytest.skip(f"could not start PostgreSQL: {out.decode(errors='replace')[-500:]}")
    try:
        import psycopg

        deadline = time.monotonic() + 30
        while True:
            try:
                with psycopg.connect(f"host=127.0.0.1 port={port} user=postgres dbname=postgres", autocommit=True) as conn:
                    conn.execute("CREATE DATABASE shaobing")
                break
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        yield f"postgresql://postgres@127.0.0.1:{port}/shaobing"
    finally:
        subprocess.run(_as_pg_user([str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"]), capture_output=True, timeout=60)
        shutil.rmtree(tmp, ignore_errors=True)
