"""``shaobing bench hub``: end-to-end transport + ingest, side by side with the naive design.

Reliable design (what Shaobing runs): SQLite outbox → QoS 1 → mosquitto → hub ingest
(manual ack, small-batch commits) → end-to-end ack → outbox row deleted. Measured:
sustained events/s (all events acked, hub row count checked: zero loss) and latency
from ``Outbox.put`` to the hub's ack at a fixed rate.

Naive design (the baseline): QoS 0 fire-and-forget publish, a hub that commits each
message in its own transaction inside the MQTT callback, no acknowledgement. Measured:
events/s committed, events lost, and latency from creation to commit.

Both hubs run in their own process (``python -m hub.ingest`` and ``python -m hub.ingest
--naive``) on the same store (SQLite) and broker (mosquitto on a free loopback port,
started here); the edge side runs in this process.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from shaobing_tools.loadgen import LoadgenOptions, run_loadgen, synthetic_event

__all__ = ["bench_hub_command", "main"]

ROOT = Path(__file__).resolve().parent.parent


def _say(text: str, *, err: bool = False) -> None:
    stream = sys.stderr if err else sys.stdout
    stream.write(text + "\n")
    stream.flush()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _mosquitto() -> str | None:
    for candidate in (
        os.environ.get("MOSQUITTO"),
        "/usr/sbin/mosquitto",
        shutil.which("mosquitto"),
    ):
        if candidate and os.path.exists(candidate):
            return candidate
    return None


def _wait_port(port: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return True
        except OSError:
            time.sleep(0.05)
    return False


class _Broker:
    """mosquitto with defaults close to a production install (persistence off)."""

    def __init__(self, folder: Path) -> None:
        binary = _mosquitto()
        if binary is None:
            raise RuntimeError(
                "bench hub: expected mosquitto (/usr/sbin/mosquitto or $MOSQUITTO), found none"
            )
        self.port = _free_port()
        conf = folder / "mosquitto.conf"
        lines = [
            f"listener {self.port} 127.0.0.1",
            "allow_anonymous true",
            "persistence false",
            "max_queued_messages 100000",
            "set_tcp_nodelay true",
        ]
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            lines.append("user root")
        conf.write_text("\n".join(lines) + "\n")
        self.proc = subprocess.Popen(
            [binary, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        if not _wait_port(self.port, 10):
            self.proc.kill()
            raise RuntimeError("bench hub: mosquitto did not start")
        self.url = f"mqtt://127.0.0.1:{self.port}"

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + (
        os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else ""
    )
    return env


def _start(cmd: list[str]) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT, env=_env()
    )
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    if line != "READY":
        proc.kill()
        _, err = proc.communicate()
        raise RuntimeError(f"bench hub: hub process did not become ready: {err[-1500:]}")
    return proc


def _stop(proc: subprocess.Popen[str]) -> str:
    proc.send_signal(signal.SIGTERM)
    try:
        out, _ = proc.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
    return out


def _count(db: Path) -> int:
    try:
        con = sqlite3.connect(str(db), timeout=5)
        try:
            return int(con.execute("SELECT COUNT(*) FROM events").fetchone()[0])
        finally:
            con.close()
    except sqlite3.Error:
        return 0


def _pct(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    values = sorted(values)
    return values[min(len(values) - 1, max(0, round(q / 100 * (len(values) - 1))))]


# --------------------------------------------------------------------------- reliable


def _reliable(
    broker: _Broker, folder: Path, count: int, rate: float, latency: bool
) -> dict[str, Any]:
    db = folder / "hub.sqlite"
    hub = _start(
        [
            sys.executable,
            "-m",
            "hub.ingest",
            "--broker",
            broker.url,
            "--db",
            f"sqlite:///{db}",
            "--dir",
            str(folder),
            "--client-id",
            f"bench-hub-{folder.name}",
        ]
    )
    try:
        opts = LoadgenOptions(
            broker=broker.url,
            nodes=10,
            rate=rate,
            count=count,
            outbox=str(folder / "outbox"),
            timeout=max(60.0, count / 200.0),
            ack_timeout_s=10.0,
            max_inflight=200,
            node_prefix=f"{folder.name[:3]}{folder.name[-3:]}-",
            record_latency=latency,
            progress_s=1e9,
        )
        result = run_loadgen(opts)
    finally:
        _stop(hub)
    stored = _count(db)
    out = {
        "events": count,
        "acked": result["acked"],
        "stored": stored,
        "lost": count - stored,
        "throughput": result["throughput"],
        "duration_s": result["duration_s"],
    }
    if latency:
        out["latency_ms"] = result["latency_ms"]
        out["offered_rate"] = rate
    return out


# --------------------------------------------------------------------------- naive


def _naive(broker: _Broker, folder: Path, count: int, rate: float) -> dict[str, Any]:
    import paho.mqtt.client as paho
    from paho.mqtt.enums import CallbackAPIVersion

    from shaobing import topics

    db = folder / "hub.sqlite"
    hub = _start(
        [
            sys.executable,
            "-m",
            "hub.ingest",
            "--naive",
            "--broker",
            broker.url,
            "--db",
            f"sqlite:///{db}",
        ]
    )
    pub = paho.Client(CallbackAPIVersion.VERSION2, client_id="naive-node")
    pub.connect("127.0.0.1", broker.port)
    pub.loop_start()
    nodes = [f"{folder.name[:3]}{folder.name[-3:]}-{i:04d}" for i in range(10)]
    t0 = time.monotonic()
    try:
        for k in range(count):
            node = nodes[k % len(nodes)]
            pub.publish(
                topics.event_topic(node), synthetic_event(node, k // len(nodes)).to_bytes(), qos=0
            )
            if rate > 0:
                ahead = (k + 1) / rate - (time.monotonic() - t0)
                if ahead > 0:
                    time.sleep(ahead)
        # wait until the hub stops making progress
        last, last_change = -1, time.monotonic()
        while time.monotonic() - last_change < 3.0:
            n = _count(db)
            if n != last:
                last, last_change = n, time.monotonic()
            if n >= count:
                break
            time.sleep(0.05)
        t_end = last_change if last < count else time.monotonic()
    finally:
        pub.loop_stop()
        pub.disconnect()
        out = _stop(hub)
    stored = _count(db)
    lat: list[float] = []
    for line in out.splitlines():
        if line.startswith("{"):
            lat = json.loads(line)["latencies"]
    duration = max(1e-6, t_end - t0)
    result: dict[str, Any] = {
        "events": count,
        "acked": 0,
        "stored": stored,
        "lost": count - stored,
        "throughput": round(stored / duration, 1),
        "duration_s": round(duration, 3),
    }
    if rate > 0:
        result["latency_ms"] = {
            "p50": round(_pct(lat, 50) * 1000, 2),
            "p99": round(_pct(lat, 99) * 1000, 2),
            "max": round(max(lat, default=0.0) * 1000, 2),
        }
        result["offered_rate"] = rate
    return result


# --------------------------------------------------------------------------- command


def run_bench(events: int, rate: float) -> dict[str, Any]:
    """Run the four measurements; returns the result object."""
    with tempfile.TemporaryDirectory(prefix="shaobing-bench-hub-") as tmp:
        base = Path(tmp)
        broker = _Broker(base)
        try:
            lat_count = max(200, min(events, int(rate * 10)))
            parts: dict[str, Any] = {}
            runs: tuple[tuple[str, Callable[[Path], dict[str, Any]]], ...] = (
                ("reliable_throughput", lambda d: _reliable(broker, d, events, 0.0, False)),
                ("reliable_latency", lambda d: _reliable(broker, d, lat_count, rate, True)),
                ("naive_throughput", lambda d: _naive(broker, d, events, 0.0)),
                ("naive_latency", lambda d: _naive(broker, d, lat_count, rate)),
            )
            for name, fn in runs:
                folder = base / name
                folder.mkdir()
                _say(f"bench hub: {name.replace('_', ' ')} …", err=True)
                parts[name] = fn(folder)
        finally:
            broker.close()
    rel, nai = parts["reliable_throughput"], parts["naive_throughput"]
    speedup = rel["throughput"] / nai["throughput"] if nai["throughput"] else float("inf")
    return {
        "bench": "hub",
        "events": events,
        "rate": rate,
        "reliable": {
            **rel,
            "latency_ms": parts["reliable_latency"]["latency_ms"],
            "latency_lost": parts["reliable_latency"]["lost"],
        },
        "naive": {
            **nai,
            "latency_ms": parts["naive_latency"]["latency_ms"],
            "latency_lost": parts["naive_latency"]["lost"],
        },
        "speedup": round(speedup, 2),
        "targets": {
            "throughput_2000": rel["throughput"] >= 2000 and rel["lost"] == 0,
            "speedup_2x": speedup >= 2.0,
            "p99_under_200ms": parts["reliable_latency"]["latency_ms"]["p99"] < 200.0,
        },
    }


def _table(r: dict[str, Any]) -> str:
    rows = [
        (
            "design",
            "events/s",
            "lost",
            f"p50 ms @{r['rate']:g}/s",
            f"p99 ms @{r['rate']:g}/s",
            "lost @rate",
        ),
    ]
    for name, label in (
        ("reliable", "outbox + QoS 1 + batch commit + e2e ack"),
        ("naive", "QoS 0 fire-and-forget, commit per message"),
    ):
        d = r[name]
        rows.append(
            (
                label,
                f"{d['throughput']:.0f}",
                f"{d['lost']}/{d['events']}",
                f"{d['latency_ms']['p50']:.1f}",
                f"{d['latency_ms']['p99']:.1f}",
                str(d["latency_lost"]),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    lines.append(
        f"speed-up (reliable / naive): {r['speedup']:.2f}x   targets: "
        + ", ".join(f"{k} {'ok' if v else 'MISSED'}" for k, v in r["targets"].items())
    )
    return "\n".join(lines)


def bench_hub_command(args: argparse.Namespace) -> int:
    """``shaobing bench hub [--events N] [--rate R] [--json]``."""
    if args.events < 100 or args.rate <= 0:
        _say("shaobing bench hub: expected --events ≥ 100 and --rate > 0", err=True)
        return 2
    try:
        result = run_bench(args.events, args.rate)
    except RuntimeError as exc:
        _say(str(exc), err=True)
        return 1
    _say(json.dumps(result) if args.json else _table(result))
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m shaobing_tools.bench_hub``: the same as ``shaobing bench hub``."""
    p = argparse.ArgumentParser(prog="python -m shaobing_tools.bench_hub")
    p.add_argument("--json", action="store_true")
    p.add_argument("--events", type=int, default=20000)
    p.add_argument("--rate", type=float, default=200.0)
    args = p.parse_args(argv)
    return bench_hub_command(args)


if __name__ == "__main__":
    sys.exit(main())
