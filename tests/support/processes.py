"""Start the project's own processes (hub, edge node) for integration tests, on loopback."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]


def http_json(url: str, timeout: float = 3.0) -> Any:
    """GET a JSON document."""
    with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 - loopback only
        return json.loads(resp.read())


def wait_for(predicate: Any, timeout: float, what: str, interval: float = 0.2) -> Any:
    """Poll until ``predicate()`` is truthy; returns its value or fails with ``what``."""
    deadline = time.monotonic() + timeout
    last_exc: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = predicate()
            if value:
                return value
        except (OSError, ValueError, urllib.error.URLError) as exc:
            last_exc = exc
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last error: {last_exc})")


class Proc:
    """A ``shaobing`` subcommand as a child process with its output in a log file."""

    def __init__(self, args: list[str], log: Path, env: dict[str, str] | None = None) -> None:
        self.log_path = log
        self._log = log.open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "shaobing.cli", *args],
            cwd=ROOT,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, **(env or {})},
        )

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> int:
        """Signal and wait; returns the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._log.close()
        return int(self.proc.returncode)

    def kill(self) -> None:
        """SIGKILL."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)

    def output(self) -> str:
        """Everything it printed so far."""
        return self.log_path.read_text(errors="replace")


def write_yaml(path: Path, data: dict[str, Any]) -> Path:
    """Write a config file."""
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def start_hub(
    tmp: Path,
    broker_url: str,
    http_port: int,
    db: str | None = None,
    extra: dict[str, Any] | None = None,
) -> Proc:
    """``shaobing hub serve`` on a fresh SQLite file (or ``db``)."""
    cfg = {
        "kind": "hub",
        "hub_id": f"test-hub-{http_port}",
        "db": db or f"sqlite:///{tmp / 'hub.sqlite'}",
        "broker": {"url": broker_url},
        "http": f"127.0.0.1:{http_port}",
        "evidence_dir": str(tmp / "hub-evidence"),
        "auth": {"anonymous_read": True},
        **(extra or {}),
    }
    path = write_yaml(tmp / f"hub-{http_port}.yaml", cfg)
    hub = Proc(["hub", "serve", "-c", str(path)], tmp / f"hub-{http_port}.log")
    base = f"http://127.0.0.1:{http_port}"
    try:
        wait_for(lambda: http_json(base + "/healthz").get("status") == "ok", 60, "hub /healthz")
    except AssertionError:
        hub.stop()
        raise AssertionError(f"hub did not become healthy:\n{hub.output()[-3000:]}") from None
    return hub
