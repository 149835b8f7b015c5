"""A real ``shaobing hub serve`` at its edges: 100 MB bodies, a taken port, bad config files, file modes.

Loopback only; the hub runs as a child process (``python -m shaobing.cli hub serve``).
"""

from __future__ import annotations

import json
import os
import select
import socket
import stat
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import psutil
import pytest

from shaobing.paths import configs_dir
from tests.support.mosquitto import Mosquitto, free_port
from tests.support.processes import ROOT, Proc, http_json, start_hub, wait_for, write_yaml

MiB = 1024 * 1024
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


def _read_response(sock: socket.socket, timeout: float = 5.0) -> bytes:
    """Whatever the server answered, up to the end of its headers and a little body."""
    data = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([sock], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            break
        try:
            part = sock.recv(65536)
        except ConnectionResetError:
            break
        if not part:
            break
        data += part
        head, sep, body = data.partition(b"\r\n\r\n")
        if sep and len(body) >= 64:
            break
    return data


def _post_100mb(
    port: int, path: str, declared: bool, ctype: str, token: str = ""
) -> tuple[int, int, bytes]:
    """Stream a 100 MB body (declared Content-Length, or chunked without one).

    Sends 64 KiB pieces from a generator and stops when the hub answers or shuts the
    connection; returns (status, body bytes the socket took, response).
    """
    total = 100 * MiB
    piece = b"a" * (64 * 1024)

    def body() -> Any:
        for _ in range(total // len(piece)):
            yield piece if declared else b"%x\r\n%b\r\n" % (len(piece), piece)

    head = f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: {ctype}\r\n"
    head += f"Content-Length: {total}\r\n" if declared else "Transfer-Encoding: chunked\r\n"
    if token:
        head += f"Authorization: Bearer {token}\r\n"
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    sent = 0
    response = b""
    try:
        sock.sendall((head + "\r\n").encode())
        for framed in body():
            if response:
                break
            ready, _, _ = select.select([sock], [], [], 0)
            if ready:
                response = _read_response(sock)
                break
            try:
                sock.sendall(framed)
            except (BrokenPipeError, ConnectionResetError, TimeoutError):
                break
            sent += len(piece)
        if not response:
            response = _read_response(sock)
    finally:
        sock.close()
    status_line = response.split(b"\r\n", 1)[0].split()
    status = int(status_line[1]) if len(status_line) >= 2 else 0
    return status, sent, response


class RssSampler:
    """The peak resident memory of a process, sampled every 10 ms while running."""

    def __init__(self, pid: int) -> None:
        self.proc = psutil.Process(pid)
        self.peak = self.proc.memory_info().rss
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.proc.memory_info().rss)
            time.sleep(0.01)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(2)


def _cli(*args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "shaobing.cli", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_100mb_bodies_are_refused_with_little_memory(tmp_path: Path, mosquitto: Mosquitto) -> None:
    port = free_port()
    hub = start_hub(tmp_path, mosquitto.url, port)
    try:
        pid = hub.proc.pid
        rss = psutil.Process(pid)
        r = _cli(
            "hub", "user", "add", "big", "--role", "admin", "-c", str(tmp_path / f"hub-{port}.yaml")
        )
        assert r.returncode == 0, r.stderr
        token = r.stdout.strip().splitlines()[-1]  # uploads read the body only for a user
        targets = [
            ("/api/v1/login", "application/json"),
            ("/open311/v2/requests.json", "application/x-www-form-urlencoded"),
            ("/api/v1/uploads", "image/png"),
            ("/no/such/path", "application/octet-stream"),
        ]
        cold = rss.memory_info().rss
        # warm up every path once (imports, buffers), so that growth below is the body's
        for path, ctype in targets[:3]:
            assert _post_100mb(port, path, False, ctype, token)[0] == 413
        for path, ctype in targets:
            assert _post_100mb(port, path, True, ctype, token)[0] == 413
        before = rss.memory_info().rss
        results = []
        with RssSampler(pid) as sampler:
            for path, ctype in targets:
                results.append((path, "declared", *_post_100mb(port, path, True, ctype, token)))
            for path, ctype in targets[:3]:  # the unknown path never reads a body
                results.append((path, "chunked", *_post_100mb(port, path, False, ctype, token)))
            # and without a token: refused (401) before the body is read
            results.append(
                (
                    "/api/v1/uploads",
                    "anon",
                    *_post_100mb(port, "/api/v1/uploads", False, "image/png"),
                )
            )
        after = rss.memory_info().rss
        growth = (after - before) / MiB
        peak = (max(sampler.peak, after) - before) / MiB
        print(
            f"\nRSS before {before / MiB:.1f} MB, after {after / MiB:.1f} MB: growth "
            f"{growth:.1f} MB, peak growth {peak:.1f} MB"
        )
        for path, how, status, sent, response in results:
            print(f"  {how:8s} {path:28s} -> {status} after {sent / MiB:.2f} MB taken")
            expected = 401 if how == "anon" else 413
            assert status == expected, (path, how, response[:300])
            assert how == "anon" or b'"too_large"' in response, (path, how, response[:300])
            # refused long before 100 MB: at the path's limit plus what socket buffers hold
            limit = 10 * MiB + 64 * 1024 if path == "/api/v1/uploads" else MiB
            assert sent < limit + 8 * MiB, (path, how, sent)
        cold_growth = (after - cold) / MiB  # all 15 refusals, the first of each kind included
        print(f"  from cold (before any big body): {cold_growth:.1f} MB")
        assert growth < 20 and peak < 20 and cold_growth < 20
        # the hub stays up and answers
        assert http_json(f"http://127.0.0.1:{port}/healthz")["status"] == "ok"
        assert hub.proc.poll() is None
        # serve runs with umask 077
        umask = [
            line.split()[1]
            for line in Path(f"/proc/{pid}/status").read_text().splitlines()
            if line.startswith("Umask:")
        ]
        assert umask == ["0077"], umask
    finally:
        assert hub.stop() == 0, hub.output()[-2000:]


def test_serve_on_a_taken_port_exits_1_quickly(tmp_path: Path) -> None:
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen(1)
    port = holder.getsockname()[1]
    cfg = write_yaml(
        tmp_path / "hub.yaml",
        {
            "kind": "hub",
            "db": f"sqlite:///{tmp_path / 'hub.sqlite'}",
            "broker": {"url": f"mqtt://127.0.0.1:{free_port()}"},
            "http": f"127.0.0.1:{port}",
            "evidence_dir": str(tmp_path / "ev"),
        },
    )
    try:
        t0 = time.monotonic()
        hub = Proc(["hub", "serve", "-c", str(cfg)], tmp_path / "hub.log")
        try:
            rc = hub.proc.wait(15)
        except subprocess.TimeoutExpired:
            hub.stop()
            raise AssertionError(f"serve kept running on a taken port:\n{hub.output()}") from None
        took = time.monotonic() - t0
        hub.stop()
        out = hub.output()
        print(f"\nserve on a taken port: exit {rc} after {took:.1f} s")
        assert rc == 1, out
        assert f"cannot listen on 127.0.0.1:{port}" in out
        assert "Traceback" not in out
        assert took < 10
    finally:
        holder.close()


def _hub_cfg(folder: Path, broker_port: int, **over: Any) -> dict[str, Any]:
    folder.mkdir(parents=True, exist_ok=True)
    return {
        "kind": "hub",
        "db": f"sqlite:///{folder / 'data' / 'hub.sqlite'}",
        "broker": {"url": f"mqtt://127.0.0.1:{broker_port}"},
        "http": f"127.0.0.1:{free_port()}",
        "registry": str(configs_dir() / "demo" / "registry.yaml"),
        "evidence_dir": str(folder / "evidence"),
        "auth": {"anonymous_read": True},
        **over,
    }


def test_validate_and_serve_refuse_the_same_files(tmp_path: Path) -> None:
    broker = free_port()
    plain = tmp_path / "plain.txt"
    plain.write_text("a regular file, not a folder\n")
    cases: dict[str, tuple[str | dict[str, Any], str | None]] = {
        "empty": ("", None),
        "no-registry": (
            _hub_cfg(tmp_path / "r", broker, registry=str(tmp_path / "nope" / "registry.yaml")),
            "registry",
        ),
        "db-under-file": (
            _hub_cfg(tmp_path / "d", broker, db=f"sqlite:///{plain}/hub.sqlite"),
            "db",
        ),
        "http-no-port": (_hub_cfg(tmp_path / "h1", broker, http="localhost"), "http"),
        "http-port-too-big": (_hub_cfg(tmp_path / "h2", broker, http="127.0.0.1:99999"), "http"),
        "http-not-a-string": (_hub_cfg(tmp_path / "h3", broker, http=["a", "b"]), "http"),
    }
    procs: dict[str, tuple[subprocess.Popen[str], subprocess.Popen[str]]] = {}
    for name, (content, _) in cases.items():
        path = tmp_path / f"{name}.yaml"
        if isinstance(content, str):
            path.write_text(content)
        else:
            write_yaml(path, content)

        def spawn(*args: str) -> subprocess.Popen[str]:
            return subprocess.Popen(
                [sys.executable, "-m", "shaobing.cli", *args],
                cwd=ROOT,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                stdin=subprocess.DEVNULL,
                text=True,
            )

        procs[name] = (
            spawn("config", "validate", str(path)),
            spawn("hub", "serve", "-c", str(path), "--duration", "3"),
        )
    problems = []
    for name, (validate, serve) in procs.items():
        key = cases[name][1]
        v_out = validate.communicate(timeout=30)[1]
        s_out = serve.communicate(timeout=30)[1]
        print(f"\n{name}: validate {validate.returncode}, serve {serve.returncode}")
        print(f"  validate: {v_out.strip()[-300:]}\n  serve:    {s_out.strip()[-300:]}")
        if validate.returncode != 2 or serve.returncode != 2:
            problems.append(f"{name}: validate {validate.returncode}, serve {serve.returncode}")
        if key is not None:
            for who, out in (("validate", v_out), ("serve", s_out)):
                if f" {key}: " not in out:
                    problems.append(f"{name}: {who} does not name `{key}`: {out.strip()[-300:]}")
        for who, out in (("validate", v_out), ("serve", s_out)):
            if "Traceback" in out:
                problems.append(f"{name}: {who} crashed: {out.strip()[-300:]}")
    assert not problems, "\n".join(problems)
    # serve refused before it created anything
    for sub in ("r", "h1", "h2", "h3"):
        assert not (tmp_path / sub / "data").exists(), sub


def test_a_good_file_is_accepted_by_both_and_serve_makes_private_files(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    folder = tmp_path / "good"
    cfg = _hub_cfg(folder, mosquitto.port)
    cfg["broker"] = {"url": mosquitto.url}
    path = write_yaml(tmp_path / "good.yaml", cfg)
    v = _cli("config", "validate", str(path))
    assert v.returncode == 0 and "valid hub config" in v.stderr, v.stderr
    old = os.umask(0o022)  # a usual umask in the parent: serve must tighten it itself
    try:
        t0 = time.monotonic()
        s = _cli("hub", "serve", "-c", str(path), "--duration", "3", timeout=40)
    finally:
        os.umask(old)
    took = time.monotonic() - t0
    assert s.returncode == 0, s.stderr[-2000:]
    assert "serving http://" in s.stderr
    assert 3 <= took < 30
    db = folder / "data" / "hub.sqlite"
    assert db.is_file()
    modes = {p.name: oct(_mode(p)) for p in folder.rglob("*")}
    print(f"\nfiles made by serve: {modes}")
    assert _mode(db) == 0o600
    for extra in ("hub.sqlite-wal", "hub.sqlite-shm"):
        if (db.parent / extra).exists():
            assert _mode(db.parent / extra) == 0o600, extra
    assert _mode(db.parent) == 0o700
    made = [p for p in (folder / "evidence").rglob("*")] + [folder / "evidence"]
    for p in made:
        if p.exists():
            assert _mode(p) == (0o700 if p.is_dir() else 0o600), (p, oct(_mode(p)))


def test_uploads_written_by_serve_are_private(tmp_path: Path, mosquitto: Mosquitto) -> None:
    port = free_port()
    hub = start_hub(tmp_path, mosquitto.url, port)
    try:
        cfg = tmp_path / f"hub-{port}.yaml"
        r = _cli("hub", "user", "add", "up", "--role", "admin", "-c", str(cfg))
        assert r.returncode == 0, r.stderr
        token = r.stdout.strip().splitlines()[-1]
        req = urllib.request.Request(
            f"http://127.0.0.1:{port}/api/v1/uploads",
            data=PNG,
            headers={"Authorization": f"Bearer {token}", "Content-Type": "image/png"},
            method="POST",
        )
        with urllib.request.urlopen(req, timeout=5) as resp:  # noqa: S310 - loopback
            assert resp.status == 201
            up = json.loads(resp.read())["id"]
        uploads = tmp_path / "hub-evidence" / "uploads"
        files = wait_for(lambda: [p for p in uploads.rglob("*") if p.is_file()], 5, "upload file")
        assert any(p.read_bytes() == PNG for p in files), up
        for p in files:
            assert _mode(p) == 0o600, (p, oct(_mode(p)))
        for d in (uploads, tmp_path / "hub-evidence"):
            assert _mode(d) == 0o700, (d, oct(_mode(d)))
        assert _mode(tmp_path / "hub.sqlite") == 0o600
    finally:
        assert hub.stop() == 0, hub.output()[-2000:]


@pytest.fixture(autouse=True)
def _no_stray_children() -> Any:
    yield
    for child in psutil.Process().children(recursive=True):
        if "shaobing.cli" in " ".join(child.cmdline()):
            child.kill()
