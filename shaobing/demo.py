"""``shaobing demo``: embedded broker + hub + edge node replaying the demo inputs.

Everything runs on this machine, on loopback, as child processes of this one; Ctrl-C or
``--duration`` stops all of them cleanly (children also die with this process).
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import yaml

from shaobing.config import split_hostport
from shaobing.contract import ack_key_for
from shaobing.paths import assets_dir, configs_dir, shared_dir


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def port_open(host: str, port: int) -> bool:
    """True when something accepts connections on host:port."""
    with socket.socket() as s:
        s.settimeout(0.3)
        return s.connect_ex((host, port)) == 0


def _die_with_parent() -> None:  # pragma: no cover - runs in the child
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


class Child:
    """A child process of the demo."""

    def __init__(self, name: str, argv: list[str], log_path: Path) -> None:
        self.name = name
        self.log_path = log_path
        self.log = log_path.open("ab")
        self.proc = subprocess.Popen(
            argv,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            preexec_fn=_die_with_parent,
        )

    def alive(self) -> bool:
        """Still running."""
        return self.proc.poll() is None

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM, then SIGKILL after ``timeout``."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.log.close()

    def tail(self, n: int = 15) -> str:
        """Last lines of its log."""
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""


def _wait(predicate: Any, timeout: float, what: str, child: Child | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        if child is not None and not child.alive():
            raise RuntimeError(f"{what}: the {child.name} exited early:\n{child.tail()}")
        time.sleep(0.2)
    raise RuntimeError(
        f"{what}: not ready after {timeout:.0f}s" + (f"\n{child.tail()}" if child else "")
    )


def _http_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=2) as resp:  # noqa: S310 - loopback only
        return json.loads(resp.read())


def _healthy(url: str) -> bool:
    try:
        return bool(_http_json(url + "healthz").get("status") == "ok")
    except OSError:
        return False
    except ValueError:
        return False


def post_report(
    url: str,
    audio: Path,
    text: str = "",
    worker_id: str = "w-tianfu-03",
    grid_id: str = "beibei-tianfu-03",
) -> Any:
    """Submit a voice report to an edge node's ``POST /api/v1/reports`` (multipart)."""
    boundary = "shaobing-demo-" + os.urandom(8).hex()
    parts: list[bytes] = []
    for name, value in (("worker_id", worker_id), ("grid_id", grid_id), ("text", text)):
        if value:
            parts.append(
                f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
            )
    parts.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="audio"; filename="{audio.name}"\r\n'
        "Content-Type: audio/wav\r\n\r\n".encode()
        + audio.read_bytes()
        + b"\r\n"
    )
    parts.append(f"--{boundary}--\r\n".encode())
    req = urllib.request.Request(  # noqa: S310 - loopback only
        url,
        data=b"".join(parts),
        method="POST",
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    with urllib.request.urlopen(req, timeout=120) as resp:  # noqa: S310
        return json.loads(resp.read())


def write_configs(workdir: Path, broker_url: str, http: str, edge_http: str) -> tuple[Path, Path]:
    """Demo hub and edge configs in ``workdir`` (absolute paths, this run's ports)."""
    demo = configs_dir() / "demo"
    # acks signed as in production: a fresh secret for this run, a derived key per node
    ack_secret = secrets.token_urlsafe(32)
    hub = yaml.safe_load((demo / "hub.yaml").read_text(encoding="utf-8"))
    hub.setdefault("ingest", {})["ack_secret"] = ack_secret
    hub.update(
        {
            "db": f"sqlite:///{workdir / 'hub.sqlite'}",
            "broker": {"url": broker_url, "protocol": "3.1.1"},
            "http": http,
            "registry": str(demo / "registry.yaml"),
            "evidence_dir": str(workdir / "hub-evidence"),
        }
    )
    edge = yaml.safe_load((demo / "edge.yaml").read_text(encoding="utf-8"))
    edge["broker"] = {
        "url": broker_url,
        "protocol": "3.1.1",
    }  # the embedded broker speaks MQTT 3.1.1
    edge["outbox"] = {"path": str(workdir / "edge-outbox.sqlite"), "ack_timeout_s": 5}
    edge["evidence"] = {"dir": str(workdir / "edge-evidence")}
    edge["http"] = edge_http
    edge["status_interval_s"] = 5
    edge["ack_key"] = ack_key_for(ack_secret, edge["node_id"])
    for cam in edge.get("cameras", []):
        url = cam["url"]
        if "://" not in url and not Path(url).is_absolute():
            cam["url"] = str((demo / url).resolve())
    gateway = yaml.safe_load((demo / "sensor-gateway.yaml").read_text(encoding="utf-8"))
    gateway["broker"] = {"url": broker_url, "protocol": "3.1.1"}
    gateway["outbox"] = {"path": str(workdir / "gateway-outbox.sqlite"), "ack_timeout_s": 5}
    gateway["evidence"] = {"dir": str(workdir / "gateway-evidence")}
    gateway["http"] = None
    gateway["status_interval_s"] = 5
    gateway["sensor_replay"] = str(demo / "sensors.csv")
    gateway["ack_key"] = ack_key_for(ack_secret, gateway["node_id"])
    (workdir / "gateway.yaml").write_text(
        yaml.safe_dump(gateway, allow_unicode=True, sort_keys=False), encoding="utf-8"
    )
    hub_path, edge_path = workdir / "hub.yaml", workdir / "edge.yaml"
    hub_path.write_text(yaml.safe_dump(hub, allow_unicode=True, sort_keys=False), encoding="utf-8")
    edge_path.write_text(
        yaml.safe_dump(edge, allow_unicode=True, sort_keys=False), encoding="utf-8"
    )
    return hub_path, edge_path


# the people of the demo's work orders: the town's command centre, the safety board's
# handler and the grid workers on duty for the demo camera's and sensors' grids
DEMO_ACCOUNTS: tuple[tuple[str, str, str | None, str | None], ...] = (
    ("command_centre", "cc-tianfu", "beibei-tianfu", None),
    ("board_handler", "h-tianfu-safety", "beibei-tianfu", "safety_law"),
    ("grid_worker", "w-tianfu-03", "beibei-tianfu-03", None),
    ("grid_worker", "w-tianfu-01", "beibei-tianfu-01", None),
)


def create_demo_accounts(hub_cfg: Path) -> list[tuple[str, str, str]]:
    """Accounts with random passwords for every role of the closed loop: (role, name, password)."""
    from hub.registry import load_registry
    from hub.store import Store
    from hub.users import create_user
    from shaobing.config import load_hub_config

    cfg = load_hub_config(hub_cfg)
    registry = load_registry(cfg.resolve(cfg.registry)) if cfg.registry else None
    store = Store(cfg.db_url())
    out = []
    try:
        for role, name, scope, board in DEMO_ACCOUNTS:
            password = secrets.token_urlsafe(9)
            create_user(store, name, role, scope, board, password, registry, actor="demo")
            out.append((role, name, password))
    finally:
        store.close()
    return out


def _submit_voice_report(edge_url: str, audio: Path) -> None:
    """Wait for the edge node's HTTP port, then submit one spoken report (as a grid worker would)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            _http_json(edge_url + "healthz")
            break
        except (OSError, ValueError):
            time.sleep(0.5)
    try:
        answer = post_report(edge_url + "api/v1/reports", audio)
        print(
            f"shaobing demo: voice report {audio.name} accepted as event {answer.get('id')}",
            file=sys.stderr,
            flush=True,
        )
    except (OSError, ValueError) as exc:
        print(f"shaobing demo: voice report not accepted: {exc}", file=sys.stderr, flush=True)


def demo_command(args: argparse.Namespace) -> int:
    """Run the demo until Ctrl-C or ``--duration``."""
    try:
        host, port = split_hostport(args.http)
    except ValueError as exc:
        print(f"shaobing demo: {exc}", file=sys.stderr)
        return 2
    video = assets_dir() / "video" / "pedestrians_opencv_vtest.avi"
    if not video.exists():
        print(
            f"shaobing demo: expected the demo video at {video}, found nothing (is ../shared beside the checkout?)",
            file=sys.stderr,
        )
        return 1
    if port_open(host, port):
        new_port = free_port(host)
        print(f"shaobing demo: {host}:{port} is in use; using {host}:{new_port}", file=sys.stderr)
        port = new_port
    workdir = (
        Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="shaobing-demo-"))
    )
    workdir.mkdir(parents=True, exist_ok=True)
    broker_port = free_port()
    broker_url = f"mqtt://127.0.0.1:{broker_port}"
    http = f"{host}:{port}"
    base_url = f"http://{host}:{port}/"
    edge_http = f"127.0.0.1:{free_port()}"
    hub_cfg, edge_cfg = write_configs(workdir, broker_url, http, edge_http)
    py = [sys.executable, "-m", "shaobing.cli"]
    children: list[Child] = []
    stop = {"flag": False}

    def on_signal(*_: Any) -> None:
        stop["flag"] = True

    old = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    status = 0
    try:
        print("shaobing demo: starting the embedded broker …", file=sys.stderr, flush=True)
        broker = Child(
            "broker", [*py, "broker", "--port", str(broker_port)], workdir / "broker.log"
        )
        children.append(broker)
        _wait(lambda: port_open("127.0.0.1", broker_port), 20, "broker", broker)
        print("shaobing demo: starting the hub …", file=sys.stderr, flush=True)
        hub = Child("hub", [*py, "hub", "serve", "-c", str(hub_cfg)], workdir / "hub.log")
        children.append(hub)
        _wait(lambda: _healthy(base_url), 60, "hub", hub)
        accounts = create_demo_accounts(hub_cfg)
        print(
            "shaobing demo: starting the edge node (pedestrians clip, riverside danger zone) …",
            file=sys.stderr,
            flush=True,
        )
        edge = Child("edge", [*py, "edge", "run", "-c", str(edge_cfg)], workdir / "edge.log")
        children.append(edge)
        print(
            "shaobing demo: starting the sensor gateway (smoke, gas, water level, wristband replay) …",
            file=sys.stderr,
            flush=True,
        )
        gateway = Child(
            "gateway",
            [*py, "edge", "run", "-c", str(workdir / "gateway.yaml")],
            workdir / "gateway.log",
        )
        children.append(gateway)
        voice = shared_dir() / "data" / "reports" / "audio" / "dev_06.wav"
        if voice.exists():
            threading.Thread(
                target=_submit_voice_report,
                args=(f"http://{edge_http}/", voice),
                name="voice-report",
                daemon=True,
            ).start()
        print(
            f"\n  哨兵 Shaobing demo is running.\n  Dashboard: {base_url}\n  Phone page: {base_url}m/\n"
            f"  Events API: {base_url}api/v1/events\n  Logs: {workdir}\n",
            flush=True,
        )
        for role, name, password in accounts:
            print(f"login: {role} {name} {password}", flush=True)
        print(
            "  (log in on the dashboard as the command centre, on the phone page as the grid "
            "worker; the passwords are new each run)\n",
            flush=True,
        )
        deadline = time.monotonic() + args.duration if args.duration else None
        last_count = -1
        while not stop["flag"]:
            if deadline and time.monotonic() >= deadline:
                break
            for child in children:
                if not child.alive():
                    raise RuntimeError(f"the {child.name} exited unexpectedly:\n{child.tail()}")
            try:
                count = int(_http_json(base_url + "api/v1/stats")["events_total"])
            except (OSError, ValueError, KeyError):
                count = last_count
            if count != last_count and count >= 0:
                print(f"shaobing demo: {count} events at the hub", file=sys.stderr, flush=True)
                last_count = count
            time.sleep(1.0)
    except RuntimeError as exc:
        print(f"shaobing demo: {exc}", file=sys.stderr)
        status = 1
    finally:
        print("shaobing demo: stopping …", file=sys.stderr, flush=True)
        for child in reversed(children):
            child.stop()
        for s, h in old.items():
            signal.signal(s, h)
    if status == 0:
        print("shaobing demo: stopped cleanly", file=sys.stderr)
    return status
