"""Reports through a real edge node and a real hub, on loopback: filed where they belong, and
sent only by someone the node can name.

- Typed reports about four other districts and a spoken one (shared dev recording about
  荣昌区), from a node whose default grid is 兴隆村第三网格: none is filed in that grid.
- A photo whose GPS lies in 代家沟社区第一网格, sent by a worker of 兴隆村第三网格: filed in
  第一网格.
- The node listens beyond loopback: no token gives 401; a worker token the hub signed gives
  the worker and the grid (the form's made-up ones are ignored); a node that would listen
  beyond loopback without any token refuses to start; a 150 MB body gets 413 before it is
  read.
"""

# ruff: noqa: F811  (the mosquitto fixture is imported and used as a parameter)

from __future__ import annotations

import http.client
import json
import time
import urllib.request
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psutil
import pytest

from shaobing.contract import ack_key_for, sign_worker_token
from shaobing.paths import configs_dir, shared_dir
from tests.support.mosquitto import Mosquitto, free_port, mosquitto  # noqa: F401
from tests.support.processes import Proc, http_json, start_hub, wait_for, write_yaml
from tests.unit.edge.test_reports_photo import jpeg_with_exif

pytestmark = pytest.mark.timeout(240)

SECRET = "district-test-secret"
NODE = "edge-xinglong"
DEFAULT_GRID = "beibei-tianfu-03"
AUDIO = shared_dir() / "data" / "reports" / "audio" / "dev_00.wav"  # 荣昌区…井盖又破了
OTHER_DISTRICTS = [
    "荣昌区昌州街道海棠大道上有个井盖丢了，很危险",
    "江津区几江街道滨江路边垃圾堆了好几天没人清理",
    "大渡口区春晖路街道有人在小区里私搭乱建",
    "巴南区鱼洞街道两户邻居为了楼道堆放杂物吵架",
]


def _multipart(
    fields: dict[str, str], files: list[tuple[str, str, bytes, str]]
) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    out = []
    for k, v in fields.items():
        out.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
        )
    for name, filename, data, ctype in files:
        out.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
            f"Content-Type: {ctype}\r\n\r\n".encode()
            + data
            + b"\r\n"
        )
    out.append(f"--{boundary}--\r\n".encode())
    return b"".join(out), f"multipart/form-data; boundary={boundary}"


def _post(
    url: str,
    fields: dict[str, str],
    files: list[tuple[str, str, bytes, str]] = (),  # type: ignore[assignment]
    token: str | None = None,
) -> tuple[int, dict[str, Any]]:
    body, ctype = _multipart(fields, list(files))
    headers = {"Content-Type": ctype}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    req = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=120) as resp:  # noqa: S310 - loopback
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def _edge_config(tmp: Path, broker_url: str, http: str, **extra: Any) -> Path:
    return write_yaml(
        tmp / f"edge-{http.rsplit(':', 1)[1]}.yaml",
        {
            "kind": "edge",
            "node_id": NODE,
            "grid_id": DEFAULT_GRID,
            "broker": {"url": broker_url},
            "http": http,
            "registry": str(configs_dir() / "demo" / "registry.yaml"),
            "outbox": {"path": str(tmp / "outbox.sqlite"), "ack_timeout_s": 3},
            "evidence": {"dir": str(tmp / "edge-evidence")},
            "status_interval_s": 2,
            **extra,
        },
    )


def test_a_node_beyond_loopback_without_a_token_refuses_to_start(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    cfg = _edge_config(tmp_path, mosquitto.url, f"0.0.0.0:{free_port()}")
    node = Proc(["edge", "run", "-c", str(cfg)], tmp_path / "edge.log")
    try:
        code = node.proc.wait(60)
    finally:
        node.stop()
    out = node.output()
    assert code == 2, out[-2000:]
    assert "http" in out and "token" in out, out[-2000:]


def test_reports_are_filed_where_they_belong_and_only_from_known_senders(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    hub_port, edge_port = free_port(), free_port()
    hub = start_hub(
        tmp_path,
        mosquitto.url,
        hub_port,
        extra={
            "registry": str(configs_dir() / "demo" / "registry.yaml"),
            "ingest": {"ack_secret": SECRET},
        },
    )
    key = ack_key_for(SECRET, NODE)
    cfg = _edge_config(tmp_path, mosquitto.url, f"0.0.0.0:{edge_port}", ack_key=key)
    node = Proc(["edge", "run", "-c", str(cfg)], tmp_path / "edge.log")
    base = f"http://127.0.0.1:{edge_port}"
    hub_base = f"http://127.0.0.1:{hub_port}"
    try:
        wait_for(lambda: http_json(base + "/healthz")["mqtt_connected"], 60, "edge node")
        url = base + "/api/v1/reports"
        # who is talking
        code, body = _post(url, {"text": "巴南区有人落水了"})
        assert code == 401, body
        code, _ = _post(url, {"text": "巴南区有人落水了"}, token="guessed-token")
        assert code == 401
        expired = sign_worker_token(key, "w-tianfu-03", DEFAULT_GRID, datetime.now(UTC) - timedelta(minutes=1))  # fmt: skip
        assert _post(url, {"text": "垃圾"}, token=expired)[0] == 401
        foreign = sign_worker_token(ack_key_for(SECRET, "another-node"), "w-tianfu-03", DEFAULT_GRID, datetime.now(UTC) + timedelta(days=1))  # fmt: skip
        assert _post(url, {"text": "垃圾"}, token=foreign)[0] == 401
        token = sign_worker_token(key, "w-tianfu-03", DEFAULT_GRID, datetime.now(UTC) + timedelta(days=1))  # fmt: skip
        code, body = _post(url, {"text": "有人乱扔垃圾", "unknown_field": "x"}, token=token)
        assert code == 422 and "unknown_field" in body["detail"], body

        # a 150 MB body is refused from its Content-Length, before it is read
        proc = psutil.Process(node.proc.pid)
        rss0 = proc.memory_info().rss
        conn = http.client.HTTPConnection("127.0.0.1", edge_port, timeout=10)
        conn.putrequest("POST", "/api/v1/reports")
        conn.putheader("Content-Type", "multipart/form-data; boundary=x")
        conn.putheader("Content-Length", str(150 * 2**20))
        conn.putheader("Authorization", f"Bearer {token}")
        conn.endheaders()
        try:
            conn.send(b"\0" * 2**16)  # a start; the node answers before reading more
        except (BrokenPipeError, ConnectionResetError):
            pass  # it already answered and closed
        resp = conn.getresponse()
        assert resp.status == 413, resp.read()[:300]
        conn.close()
        grew = proc.memory_info().rss - rss0
        print(f"150 MB body: 413, node RSS grew {grew / 2**20:.1f} MB")
        assert grew < 20 * 2**20

        ids = []
        for text in OTHER_DISTRICTS:
            code, body = _post(url, {"text": text, "grid_id": "made-up-grid", "worker_id": "nobody"}, token=token)  # fmt: skip
            assert code == 202, body
            ids.append(body["id"])
        code, body = _post(url, {}, [("audio", "dev_00.wav", AUDIO.read_bytes(), "audio/wav")], token=token)  # fmt: skip
        assert code == 202, body
        ids.append(body["id"])
        photo = jpeg_with_exif(lat=29.8552, lon=106.4352)  # inside 代家沟社区第一网格
        code, body = _post(url, {"text": "着火了"}, [("photos", "fire.jpg", photo, "image/jpeg")], token=token)  # fmt: skip
        assert code == 202, body
        photo_id = body["id"]

        def stored() -> list[dict[str, Any]]:
            found = [http_json(f"{hub_base}/api/v1/events/{i}?node_id={NODE}") for i in ids + [photo_id]]  # fmt: skip
            return found if all(e.get("incident_id") for e in found) else []

        events = wait_for(stored, 60, "the reports at the hub, each in an incident")
        for ev in events:
            assert ev["source"]["device_id"] == "w-tianfu-03"  # from the token, not the form
            assert ev["attributes"]["worker_verified"] is True
        placed = {}
        for ev in events:
            inc = http_json(f"{hub_base}/api/v1/incidents/{ev['incident_id']}")
            placed[ev["id"]] = (inc["grid_id"], inc["placed"])
        for i in ids:
            assert placed[i][0] != DEFAULT_GRID, (i, placed[i])
            assert placed[i][1] is False, (i, placed[i])
        assert placed[photo_id][0] == "beibei-tianfu-01", placed[photo_id]
    finally:
        node.stop()
        hub.stop()
        time.sleep(0.1)


def test_provisioning_commands_print_keys_the_node_accepts(tmp_path: Path) -> None:
    import subprocess
    import sys

    from shaobing.contract import verify_worker_token
    from tests.support.processes import ROOT

    cfg = write_yaml(
        tmp_path / "hub.yaml",
        {
            "kind": "hub",
            "db": f"sqlite:///{tmp_path / 'hub.sqlite'}",
            "registry": str(configs_dir() / "demo" / "registry.yaml"),
            "ingest": {"ack_secret_env": "SHAOBING_TEST_ACK_SECRET"},
        },
    )
    env = {**__import__("os").environ, "SHAOBING_TEST_ACK_SECRET": SECRET}

    def run(*args: str, environ: dict[str, str] = env) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "shaobing.cli", "hub", *args, "-c", str(cfg)],
            cwd=ROOT, capture_output=True, text=True, timeout=60, env=environ,
        )  # fmt: skip

    key = run("node-key", NODE)
    assert key.returncode == 0 and key.stdout.strip() == ack_key_for(SECRET, NODE)
    token = run("worker-token", "w-tianfu-03", "--node", NODE)
    assert token.returncode == 0, token.stderr
    assert verify_worker_token(token.stdout.strip(), ack_key_for(SECRET, NODE)) == (
        "w-tianfu-03",
        DEFAULT_GRID,  # the worker's own grid, from the registry
    )
    bad = run("worker-token", "w-tianfu-03", "--node", NODE, "--grid", "no-such-grid")
    assert bad.returncode == 2 and "grid" in bad.stderr
    unset = {k: v for k, v in env.items() if k != "SHAOBING_TEST_ACK_SECRET"}
    missing = run("node-key", NODE, environ=unset)
    assert missing.returncode == 2 and "ack_secret_env" in missing.stderr
