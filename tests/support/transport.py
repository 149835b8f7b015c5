"""Processes for transport tests: the hub's ingest and the load generator, killable with SIGKILL."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

__all__ = ["HubProcess", "start_loadgen", "finish", "hub_seqs", "assert_exactly_once", "ROOT"]


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + (
        os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else ""
    )
    return env


class HubProcess:
    """``tests.support.hub_runner`` in a child process (real Store on SQLite, real Ingest)."""

    def __init__(self, broker_url: str, workdir: Path, *extra: str) -> None:
        self.broker_url = broker_url
        self.workdir = workdir
        self.db_path = workdir / "hub.sqlite"
        self.extra = list(extra)
        self.proc: subprocess.Popen[str] | None = None
        self.log = workdir / "hub.log"

    @property
    def db_url(self) -> str:
        """SQLAlchemy URL of the hub database."""
        return f"sqlite:///{self.db_path}"

    def start(self, wait_ready: bool = True, timeout: float = 30.0) -> HubProcess:
        """Start and (by default) wait until the subscription is acknowledged."""
        with open(self.log, "a") as log:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "tests.support.hub_runner",
                    "--broker",
                    self.broker_url,
                    "--db",
                    self.db_url,
                    "--dir",
                    str(self.workdir),
                    *self.extra,
                ],
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
                cwd=ROOT,
                env=_env(),
            )
        if wait_ready:
            assert self.proc.stdout is not None
            deadline = time.monotonic() + timeout
            line = ""
            while time.monotonic() < deadline and not line:
                line = self.proc.stdout.readline().strip()
                if self.proc.poll() is not None:
                    break
            assert line == "READY", f"hub did not become ready: {self.log.read_text()[-2000:]}"
        return self

    def kill(self) -> None:
        """SIGKILL."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()
        self.proc = None

    def stop(self) -> None:
        """SIGTERM and wait."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


def start_loadgen(
    broker_url: str,
    outbox: Path,
    *,
    nodes: int,
    rate: float,
    count: int,
    timeout: float = 60.0,
    ack_timeout: float = 2.0,
    backoff_max: float = 1.0,
    extra: list[str] | None = None,
) -> subprocess.Popen[str]:
    """``python -m shaobing_tools.loadgen … --json`` with short transport timeouts."""
    args = [
        sys.executable, "-m", "shaobing_tools.loadgen", "--broker", broker_url, "--nodes", str(nodes), "--rate", str(rate),
        "--count", str(count), "--outbox", str(outbox), "--timeout", str(timeout), "--ack-timeout", str(ack_timeout),
        "--backoff-max", str(backoff_max), "--json", *(extra or []),
    ]  # fmt: skip
    return subprocess.Popen(
        args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT, env=_env()
    )


def finish(proc: subprocess.Popen[str], timeout: float = 90.0) -> tuple[int, dict, str]:  # type: ignore[type-arg]
    """Wait for a loadgen; returns (exit status, result object, stderr)."""
    out, err = proc.communicate(timeout=timeout)
    lines = [ln for ln in out.splitlines() if ln.strip()]
    result = json.loads(lines[-1]) if lines else {}
    return proc.returncode, result, err


def hub_seqs(db_path: Path) -> tuple[int, dict[str, list[int]]]:
    """(row count, node → sorted loadgen seq numbers) from the hub database."""
    con = sqlite3.connect(str(db_path))
    try:
        # a node killed mid-run leaves a device_fault event (its will) besides its load
        total = con.execute("SELECT COUNT(*) FROM events WHERE type != 'device_fault'").fetchone()[
            0
        ]
        seqs: dict[str, list[int]] = {}
        for node, seq in con.execute(
            "SELECT node_id, json_extract(payload, '$.attributes.seq') FROM events"
            " WHERE type != 'device_fault'"
        ):
            seqs.setdefault(node, []).append(int(seq))
    finally:
        con.close()
    return total, {k: sorted(v) for k, v in seqs.items()}


def assert_exactly_once(db_path: Path, expected_total: int | None = None) -> int:
    """Every node's seq numbers are 0..n-1 exactly once (no loss, no duplicate rows)."""
    total, seqs = hub_seqs(db_path)
    n = 0
    for node, values in seqs.items():
        assert values == list(range(len(values))), (
            f"{node}: missing or duplicate seqs {sorted(set(range(max(values) + 1)) - set(values))[:10]}"
        )
        n += len(values)
    assert n == total
    if expected_total is not None:
        assert total == expected_total, (
            f"expected {expected_total} events at the hub, found {total}"
        )
    return total
