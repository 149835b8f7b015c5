"""A real Mosquitto broker on a free loopback port, for tests.

``Mosquitto`` writes a config into a temporary folder and runs ``/usr/sbin/mosquitto``;
``mosquitto`` is a function-scoped pytest fixture that others import into their conftest::

    from tests.support.mosquitto import mosquitto  # noqa: F401
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

__all__ = [
    "Mosquitto",
    "mosquitto",
    "free_port",
    "mosquitto_binary",
    "make_passwd",
    "make_tls_certs",
]


def mosquitto_binary() -> str | None:
    """Path of the mosquitto executable, or None."""
    for candidate in (
        os.environ.get("MOSQUITTO"),
        "/usr/sbin/mosquitto",
        shutil.which("mosquitto"),
    ):
        if candidate and os.path.exists(candidate):
            return candidate
    return None


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def make_passwd(path: Path, users: Mapping[str, str]) -> Path:
    """Write a mosquitto password file (hashed with ``mosquitto_passwd``)."""
    tool = shutil.which("mosquitto_passwd") or "/usr/bin/mosquitto_passwd"
    path.write_text("")
    for user, password in users.items():
        subprocess.run([tool, "-b", str(path), user, password], check=True, capture_output=True)
    os.chmod(path, 0o600)
    return path


def make_tls_certs(folder: Path, host: str = "127.0.0.1") -> dict[str, Path]:
    """A test CA and a server certificate for ``host`` (openssl CLI); returns the paths."""
    folder.mkdir(parents=True, exist_ok=True)
    ca_key, ca_crt = folder / "ca.key", folder / "ca.crt"
    key, csr, crt = folder / "server.key", folder / "server.csr", folder / "server.crt"
    ext = folder / "ext.cnf"
    ext.write_text(f"subjectAltName=IP:{host},DNS:localhost\nbasicConstraints=CA:FALSE\n")

    def run(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True)

    run(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=shaobing-test-ca",
        "-keyout",
        str(ca_key),
        "-out",
        str(ca_crt),
    )
    run(
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=localhost",
        "-keyout",
        str(key),
        "-out",
        str(csr),
    )
    run(
        "x509",
        "-req",
        "-in",
        str(csr),
        "-CA",
        str(ca_crt),
        "-CAkey",
        str(ca_key),
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        str(ext),
        "-out",
        str(crt),
    )
    return {"ca": ca_crt, "cert": crt, "key": key}


class Mosquitto:
    """One mosquitto process with a generated config.

    Args:
        persistence: keep sessions and queued messages across restarts (on disk).
        passwd_file: a mosquitto password file (then anonymous access is refused).
        acl_file: a mosquitto ACL file.
        tls: ``{"cert": path, "key": path}`` (optional ``"ca"``): the listener speaks TLS.
        max_queued_messages: per-client queue bound (0 = unlimited).
        workdir: folder for config, persistence and log (default: a new temporary one).
        port: fixed port (default: a free one, kept across restarts).
        extra: further config lines.
    """

    def __init__(
        self,
        *,
        persistence: bool = True,
        passwd_file: str | Path | None = None,
        acl_file: str | Path | None = None,
        tls: Mapping[str, str | Path] | None = None,
        max_queued_messages: int = 0,
        workdir: str | Path | None = None,
        port: int | None = None,
        extra: str = "",
    ) -> None:
        binary = mosquitto_binary()
        if binary is None:
            raise RuntimeError(
                "mosquitto: expected /usr/sbin/mosquitto (or $MOSQUITTO), found none"
            )
        self.binary = binary
        self._tmp = None if workdir else tempfile.TemporaryDirectory(prefix="mosquitto-")
        self.workdir = Path(workdir) if workdir else Path(self._tmp.name)  # type: ignore[union-attr]
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.persistence = persistence
        self.passwd_file = passwd_file
        self.acl_file = acl_file
        self.tls = dict(tls) if tls else None
        self.max_queued_messages = max_queued_messages
        self.extra = extra
        self.port = port or free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = self.workdir / "mosquitto.log"

    @property
    def url(self) -> str:
        """``mqtt://127.0.0.1:PORT`` (``mqtts://`` with TLS)."""
        return f"{'mqtts' if self.tls else 'mqtt'}://127.0.0.1:{self.port}"

    def _config(self) -> str:
        lines = [
            f"listener {self.port} 127.0.0.1",
            f"persistence {'true' if self.persistence else 'false'}",
            f"persistence_location {self.workdir}/",
            "autosave_interval 1",
            "autosave_on_changes false",
            f"max_queued_messages {self.max_queued_messages}",
            "max_inflight_messages 0",
            "log_dest stderr",
            "log_type error",
            "log_type warning",
            "log_type notice",
            "log_type information",
            "set_tcp_nodelay true",
        ]
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            lines.append("user root")  # keep read access to the test's private temp files
        if self.passwd_file:
            lines += [f"password_file {self.passwd_file}", "allow_anonymous false"]
        else:
            lines.append("allow_anonymous true")
        if self.acl_file:
            lines.append(f"acl_file {self.acl_file}")
        if self.tls:
            lines += [f"certfile {self.tls['cert']}", f"keyfile {self.tls['key']}"]
            if self.tls.get("ca"):
                lines.append(f"cafile {self.tls['ca']}")
        if self.extra:
            lines.append(self.extra)
        return "\n".join(lines) + "\n"

    def start(self, timeout: float = 10.0) -> Mosquitto:
        """Start the broker and wait until it accepts connections."""
        if self.proc is not None and self.proc.poll() is None:
            return self
        conf = self.workdir / "mosquitto.conf"
        conf.write_text(self._config())
        log = open(self.log_path, "ab")  # noqa: SIM115 - handed to the child
        self.proc = subprocess.Popen(
            [self.binary, "-c", str(conf)], stdout=log, stderr=log, stdin=subprocess.DEVNULL
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"mosquitto exited with {self.proc.returncode}: {self.log_path.read_text()[-2000:]}"
                )
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return self
            except OSError:
                time.sleep(0.02)
        raise RuntimeError(
            f"mosquitto: expected a listener on port {self.port} within {timeout} s, found none"
        )

    def stop(self, timeout: float = 5.0) -> None:
        """Stop gracefully (SIGTERM; persistence is saved)."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def kill(self) -> None:
        """SIGKILL: no goodbye, no final save."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def restart(self, *, kill: bool = False, down_s: float = 0.0) -> Mosquitto:
        """Stop (or kill), wait ``down_s``, start again on the same port and folder."""
        self.kill() if kill else self.stop()
        if down_s:
            time.sleep(down_s)
        return self.start()

    def wipe(self) -> None:
        """Delete the persistence file (a broker that lost its state)."""
        for f in self.workdir.glob("mosquitto.db*"):
            f.unlink()

    def log_text(self) -> str:
        """The broker's log so far."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def __enter__(self) -> Mosquitto:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.kill()
        if self._tmp is not None:
            self._tmp.cleanup()


@pytest.fixture
def mosquitto() -> Iterator[Mosquitto]:
    """A fresh mosquitto (persistence on) on a free port; killed after the test."""
    if mosquitto_binary() is None:
        pytest.skip("mosquitto is not installed")
    with Mosquitto() as broker:
        yield broker
