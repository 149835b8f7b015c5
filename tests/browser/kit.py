"""A real system for browser tests: mosquitto + ``hub serve`` + users + an MQTT publisher.

Chromium is Debian's ``/usr/bin/chromium`` driven by Playwright's Python package (never a
downloaded browser). ``skip_reason()`` says why browser tests cannot run here, or None.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import urllib.parse
import urllib.request
import zlib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from shaobing.contract import Event, new_event_id
from shaobing.paths import configs_dir
from tests.support.mosquitto import Mosquitto, free_port, mosquitto_binary
from tests.support.processes import ROOT, Proc, start_hub

CHROMIUM = os.environ.get("SHAOBING_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
ARTIFACTS = ROOT / "test-artifacts" / "browser"
API_KEY = "open311-test-key"
PASSWORD = "pass-word-1"


def skip_reason() -> str | None:
    """Why the browser tests cannot run here (None when they can)."""
    if not Path(CHROMIUM).exists():
        return f"{CHROMIUM} not found (apt-get install chromium, or set SHAOBING_CHROMIUM)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright Python package is not installed (pip install playwright)"
    if mosquitto_binary() is None:
        return "mosquitto is not installed"
    return None


def launch(pw: Any) -> Any:
    """Headless Debian Chromium."""
    return pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)


def png_bytes(
    width: int = 64, height: int = 48, rgb: tuple[int, int, int] = (200, 60, 40)
) -> bytes:
    """A valid PNG of one colour (a phone photo stand-in)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    row = b"\x00" + bytes(rgb) * width
    raw = zlib.compress(row * height)
    head = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", head) + chunk(b"IDAT", raw) + chunk(b"IEND", b"")


class Stack:
    """Broker, hub process, users (admin, command centre, grid worker) and a publisher."""

    def __init__(self, tmp: Path) -> None:
        import paho.mqtt.client as paho
        from paho.mqtt.enums import CallbackAPIVersion

        self.tmp = tmp
        self.broker = Mosquitto().start()
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.hub: Proc = start_hub(
            tmp,
            self.broker.url,
            self.port,
            extra={
                "registry": str(configs_dir() / "demo" / "registry.yaml"),
                "open311": {"api_keys": [API_KEY]},
                "sla": {"tick_s": 1.0},
            },
        )
        self.tokens = self._users()
        self.pub = paho.Client(
            callback_api_version=CallbackAPIVersion.VERSION2, client_id=f"edge-{self.port}"
        )
        self.pub.connect("127.0.0.1", self.broker.port)
        self.pub.loop_start()
        ARTIFACTS.mkdir(parents=True, exist_ok=True)

    def _users(self) -> dict[str, str]:
        from hub.registry import load_registry
        from hub.store import Store
        from hub.users import create_user

        store = Store(f"sqlite:///{self.tmp / 'hub.sqlite'}")
        reg = load_registry(configs_dir() / "demo" / "registry.yaml")
        try:
            return {
                "admin": create_user(store, "admin", "admin", password=PASSWORD),
                "cc": create_user(
                    store, "cc-tianfu", "command_centre", "beibei-tianfu", None, PASSWORD, reg
                ),
                "worker": create_user(
                    store, "w-tianfu-01", "grid_worker", "beibei-tianfu-01", None, PASSWORD, reg
                ),
            }
        finally:
            store.close()

    def event(
        self,
        type_: str,
        severity: str,
        summary: str,
        *,
        node: str = "cam-node-1",
        device: str = "cam1",
        **loc: Any,
    ) -> Event:
        """A wire event from an edge camera (``grid_id`` / ``lat``,``lon`` in ``loc``)."""
        now = datetime.now(UTC)
        ev_id = new_event_id()
        return Event.model_validate(
            {
                "id": ev_id,
                "type": type_,
                "severity": severity,
                "incident_key": f"{device}/{ev_id}",
                "occurred_at": now,
                "detected_at": now,
                "source": {"node_id": node, "kind": "camera", "device_id": device, "pipeline": "p"},
                "location": loc or {"grid_id": "beibei-tianfu-01"},
                "confidence": 0.9,
                "summary": summary,
            }
        )

    def publish(self, ev: Event) -> None:
        """Publish on the node's event topic (QoS 1) and wait for the broker's PUBACK."""
        self.pub.publish(
            f"shaobing/v1/{ev.source.node_id}/event", ev.to_bytes(), qos=1
        ).wait_for_publish(5)

    def call(self, method: str, path: str, body: Any = None, who: str | None = None) -> Any:
        """JSON API call (bearer token of ``who``)."""
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base + path, data=data, method=method)  # noqa: S310
        req.add_header("Content-Type", "application/json")
        if who:
            req.add_header("Authorization", f"Bearer {self.tokens[who]}")
        with urllib.request.urlopen(req, timeout=5) as r:  # noqa: S310 - loopback
            return json.loads(r.read())

    def open311(self, form: dict[str, str]) -> Any:
        """POST an Open311 request (form-encoded)."""
        req = urllib.request.Request(  # noqa: S310 - loopback
            self.base + "/open311/v2/requests.json",
            data=urllib.parse.urlencode(form).encode(),
            method="POST",
        )
        req.add_header("Content-Type", "application/x-www-form-urlencoded")
        with urllib.request.urlopen(req, timeout=5) as r:  # noqa: S310 - loopback
            return json.loads(r.read())

    def close(self) -> None:
        """Stop everything."""
        self.pub.loop_stop()
        self.pub.disconnect()
        self.hub.stop()
        self.broker.kill()
        shutil.rmtree(self.broker.workdir, ignore_errors=True)
