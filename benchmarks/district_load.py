"""District-scale load: many edge nodes → town Mosquitto → bridge → district Mosquitto →
N hub workers (``$share/hub``) on one PostgreSQL.

Every simulated node has its own SQLite outbox and retained status with a will (LWT); all
share one network thread (``shaobing_tools.loadgen``). One extra node is killed mid-run without a
DISCONNECT, so the brokers publish its will and the hub must open a ``device_fault``
incident. Per run it prints events/s, end-to-end p50/p99 latency (outbox put → hub ack,
through both brokers and a database commit), CPU and peak memory of every part (psutil),
loss, and events per CPU-second of each hub worker; runs for several worker counts compare
the per-CPU throughput.

    .venv/bin/python benchmarks/district_load.py [--nodes 500] [--rate 150] [--duration 300]
        [--workers 1,2] [--status-interval 15] [--db postgresql://...] [--json]

Without ``--db`` a throwaway PostgreSQL cluster is started (initdb/pg_ctl on loopback).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import pwd
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psutil  # noqa: E402
from sqlalchemy import func, select  # noqa: E402

from hub import schema  # noqa: E402
from hub.store import Store  # noqa: E402
from tests.support.mosquitto import Mosquitto, free_port  # noqa: E402
from tests.support.processes import Proc, http_json, start_hub  # noqa: E402

BRIDGE = """connection district
address 127.0.0.1:{port}
remote_clientid bridge-town-{port}
cleansession false
bridge_protocol_version mqttv311
restart_timeout 1 5
max_queued_messages 0
topic shaobing/v1/+/event out 1
topic shaobing/v1/+/evidence/+ out 1
topic shaobing/v1/+/status out 1
topic shaobing/v1/+/ack in 1
topic shaobing/v1/hub/dispatch/+ in 1"""


# --------------------------------------------------------------------------- PostgreSQL


def _pg_bindir() -> Path:
    for c in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (c / "initdb").exists():
            return c
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    raise SystemExit("district_load: expected PostgreSQL server binaries (initdb), found none")


@contextlib.contextmanager
def throwaway_postgres() -> Iterator[tuple[str, Path]]:
    """A PostgreSQL cluster on a free loopback port; yields (url, data folder)."""
    bindir = _pg_bindir()
    root = os.geteuid() == 0
    wrap = (lambda a: ["runuser", "-u", "postgres", "--", *a]) if root else (lambda a: a)
    tmp = Path(tempfile.mkdtemp(prefix="shaobing-district-pg-"))
    data, sock = tmp / "data", tmp / "sock"
    sock.mkdir()
    if root:
        pg = pwd.getpwnam("postgres")
        for p in (tmp, sock):
            os.chown(p, pg.pw_uid, pg.pw_gid)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    subprocess.run(
        wrap([str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust"]),
        check=True,
        capture_output=True,
    )
    opts = f"-p {port} -k {sock} -c listen_addresses=127.0.0.1 -c max_connections=100"
    subprocess.run(
        wrap(
            [str(bindir / "pg_ctl"), "-D", str(data), "-l", str(tmp / "pg.log"), "-o", opts, "-w"]
            + ["start"]
        ),
        check=True,
        capture_output=True,
    )
    try:
        subprocess.run(
            wrap([str(bindir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres"])
            + ["shaobing"],
            check=True,
            capture_output=True,
        )
        yield f"postgresql://postgres@127.0.0.1:{port}/shaobing", data
    finally:
        subprocess.run(
            wrap([str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"]),
            capture_output=True,
        )
        shutil.rmtree(tmp, ignore_errors=True)


def _postmaster(data: Path | None) -> psutil.Process | None:
    if data is None:
        return None
    pidfile = data / "postmaster.pid"
    with contextlib.suppress(OSError, ValueError, psutil.Error):
        return psutil.Process(int(pidfile.read_text().split()[0]))
    return None


# --------------------------------------------------------------------------- measurement


class Meter:
    """CPU seconds and peak RSS of named process groups, sampled once a second."""

    def __init__(self, parts: dict[str, list[psutil.Process]]) -> None:
        self.parts = parts
        self.cpu0 = {k: self._cpu(v) for k, v in parts.items()}
        self.peak = dict.fromkeys(parts, 0)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self.t0 = time.monotonic()
        self._thread.start()

    @staticmethod
    def _group(procs: list[psutil.Process]) -> list[psutil.Process]:
        out = []
        for p in procs:
            with contextlib.suppress(psutil.Error):
                out.append(p)
                out.extend(p.children(recursive=True))
        return out

    def _cpu(self, procs: list[psutil.Process]) -> float:
        total = 0.0
        for p in self._group(procs):
            with contextlib.suppress(psutil.Error):
                t = p.cpu_times()
                total += t.user + t.system
        return total

    def _rss(self, procs: list[psutil.Process]) -> int:
        total = 0
        for p in self._group(procs):
            with contextlib.suppress(psutil.Error):
                total += p.memory_info().rss
        return total

    def _loop(self) -> None:
        while not self._stop.wait(1.0):
            for k, v in self.parts.items():
                self.peak[k] = max(self.peak[k], self._rss(v))

    def finish(self) -> dict[str, dict[str, float]]:
        """Per part: CPU seconds, mean CPU %, peak RSS MiB over the measured window."""
        wall = time.monotonic() - self.t0
        out = {}
        for k, v in self.parts.items():
            cpu = self._cpu(v) - self.cpu0[k]
            self.peak[k] = max(self.peak[k], self._rss(v))
            out[k] = {
                "cpu_s": round(cpu, 2),
                "cpu_pct": round(100 * cpu / wall, 1) if wall > 0 else 0.0,
                "rss_mib": round(self.peak[k] / 2**20, 1),
            }
        self._stop.set()
        return out


# --------------------------------------------------------------------------- one run


def _child_loadgen(spec: str) -> int:
    """Child mode: run the load generator with latency recording; print its result JSON."""
    from shaobing_tools.loadgen import LoadgenOptions, run_loadgen

    opts = LoadgenOptions(**json.loads(spec))
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    result = run_loadgen(opts, stop)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    result["cpu_s"] = round(usage.ru_utime + usage.ru_stime, 2)
    result["rss_mib"] = round(usage.ru_maxrss / 1024, 1)
    print(json.dumps(result), flush=True)
    return 0 if result["ok"] else 1


def _spawn_loadgen(opts: dict[str, Any], log: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(Path(__file__).resolve()), "--child-loadgen", json.dumps(opts)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=log.open("w"),
        text=True,
    )


def _count(store: Store, stmt: Any) -> int:
    with store.engine.connect() as conn:
        return int(conn.execute(stmt).scalar_one())


def run_once(
    args: argparse.Namespace, workers: int, db: str, pg_data: Path | None
) -> dict[str, Any]:
    """One run with ``workers`` hub workers; returns its figures."""
    store = Store(db)
    store.migrate()
    store.delete_all()
    tmp = Path(tempfile.mkdtemp(prefix=f"shaobing-district-{workers}w-"))
    count = int(args.rate * args.duration)
    hub_cfg = {
        "ingest": {"shared_group": "hub", "batch_size": args.batch_size},
        "sla": {"tick_s": 5.0},
    }
    hubs: list[Proc] = []
    try:
        with Mosquitto(workdir=tmp / "district", extra="max_inflight_messages 0") as district:
            town = Mosquitto(workdir=tmp / "town", extra=BRIDGE.format(port=district.port))
            town.start()
            try:
                ports = []
                for i in range(workers):
                    (tmp / f"w{i}").mkdir()
                    port = free_port()
                    hubs.append(start_hub(tmp / f"w{i}", district.url, port, db=db, extra=hub_cfg))
                    ports.append(port)
                time.sleep(1.0)
                base = {
                    "broker": town.url,
                    "ack_timeout_s": args.ack_timeout,
                    "max_inflight": args.max_inflight,
                    "backoff_max_s": 5.0,
                    "status_interval_s": args.status_interval,
                    "timeout": args.duration + 120.0,
                    "progress_s": 30.0,
                }
                gen = _spawn_loadgen(
                    {
                        **base,
                        "nodes": args.nodes,
                        "rate": args.rate,
                        "count": count,
                        "outbox": str(tmp / "outboxes"),
                        "node_prefix": "d",
                        "record_latency": True,
                    },
                    tmp / "loadgen.log",
                )
                doomed = _spawn_loadgen(
                    {
                        **base,
                        "nodes": 1,
                        "rate": 1.0,
                        "count": 10**6,
                        "outbox": str(tmp / "doomed"),
                        "node_prefix": "offline",
                    },
                    tmp / "doomed.log",
                )
                parts: dict[str, list[psutil.Process]] = {
                    "loadgen": [psutil.Process(gen.pid)],
                    "mosquitto-town": [psutil.Process(town.proc.pid)],  # type: ignore[union-attr]
                    "mosquitto-district": [psutil.Process(district.proc.pid)],  # type: ignore[union-attr]
                }
                for i, h in enumerate(hubs):
                    parts[f"hub-{i + 1}"] = [psutil.Process(h.proc.pid)]
                pm = _postmaster(pg_data)
                if pm is not None:
                    parts["postgresql"] = [pm]
                meter = Meter(parts)
                load0 = os.getloadavg()[0]
                time.sleep(min(args.duration / 2, 60.0))
                doomed.kill()  # no DISCONNECT: the broker publishes the will
                doomed.wait()
                out, _ = gen.communicate(timeout=args.duration + 300)
                figures = meter.finish()
                load1 = os.getloadavg()[0]
                result = json.loads(out.strip().splitlines()[-1]) if out.strip() else {}
                # the generator has exited: its own rusage covers its whole life
                wall = time.monotonic() - meter.t0
                figures["loadgen"] = {
                    "cpu_s": result.get("cpu_s", 0.0),
                    "cpu_pct": round(100 * result.get("cpu_s", 0.0) / wall, 1),
                    "rss_mib": result.get("rss_mib", 0.0),
                }
                t = schema.events
                deadline = time.monotonic() + 30
                fault_incidents = 0
                while time.monotonic() < deadline:
                    fault_incidents = _count(
                        store,
                        select(func.count())
                        .select_from(schema.incidents)
                        .where(schema.incidents.c.type == "device_fault"),
                    )
                    if fault_incidents:
                        break
                    time.sleep(0.5)
                stored = _count(
                    store,
                    select(func.count()).select_from(t).where(t.c.node_id.like("d%")),
                )
                distinct = _count(
                    store,
                    select(func.count(func.distinct(t.c.id))).where(t.c.node_id.like("d%")),
                )
                faults = _count(
                    store,
                    select(func.count()).select_from(t).where(t.c.type == "device_fault"),
                )
                committed = []
                for p in ports:
                    with contextlib.suppress(OSError, ValueError):
                        committed.append(
                            int(
                                http_json(f"http://127.0.0.1:{p}/api/v1/stats")["ingest"][
                                    "committed"
                                ]
                            )
                        )
                db_bytes = _count(store, select(func.pg_database_size("shaobing")))
            finally:
                for h in hubs:
                    h.stop()
                town.kill()
    finally:
        store.close()
        shutil.rmtree(tmp, ignore_errors=True)
    duration = float(result.get("duration_s", 0.0)) or 1.0
    per_worker = []
    for i, n in enumerate(committed):
        cpu = figures[f"hub-{i + 1}"]["cpu_s"]
        per_worker.append(
            {"committed": n, "cpu_s": cpu, "events_per_cpu_s": round(n / cpu, 1) if cpu else 0.0}
        )
    hub_cpu = sum(w["cpu_s"] for w in per_worker)
    return {
        "workers": workers,
        "nodes": args.nodes,
        "target_rate": args.rate,
        "duration_s": duration,
        "generated": result.get("generated"),
        "acked": result.get("acked"),
        "pending": result.get("pending"),
        "stored": stored,
        "duplicates": stored - distinct,
        # an event is either committed or still in its node's outbox (re-sent later)
        "lost": max(0, (result.get("generated") or 0) - distinct - (result.get("pending") or 0)),
        "events_per_s": round(distinct / duration, 1),
        "latency_ms": result.get("latency_ms"),
        "resent": result.get("resent"),
        "device_fault_events": faults,
        "device_fault_incidents": fault_incidents,
        "per_worker": per_worker,
        "events_per_hub_cpu_s": round(distinct / hub_cpu, 1) if hub_cpu else 0.0,
        "parts": figures,
        "loadavg_1m": [round(load0, 2), round(load1, 2)],
        "cpus": psutil.cpu_count(),
        "db_mib": round(db_bytes / 2**20, 1),
    }


def _table(runs: list[dict[str, Any]]) -> str:
    lines = [
        "| workers | nodes | events/s | p50 ms | p99 ms | in outbox at end | lost | dup | device_fault inc. "
        "| events per hub CPU-s | per worker (events/CPU-s) | load 1m |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in runs:
        lat = r["latency_ms"] or {}
        lines.append(
            f"| {r['workers']} | {r['nodes']} | {r['events_per_s']} | {lat.get('p50')} | "
            f"{lat.get('p99')} | {r['pending']} | {r['lost']} | {r['duplicates']} | {r['device_fault_incidents']} | "
            f"{r['events_per_hub_cpu_s']} | "
            + ", ".join(str(w["events_per_cpu_s"]) for w in r["per_worker"])
            + f" | {r['loadavg_1m'][1]} |"
        )
    lines += ["", "| run | part | CPU s | CPU % | peak RSS MiB |", "|---|---|---|---|---|"]
    for r in runs:
        for k, v in r["parts"].items():
            lines.append(
                f"| {r['workers']}w | {k} | {v['cpu_s']} | {v['cpu_pct']} | {v['rss_mib']} |"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, run each worker count, print the table (and JSON)."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--nodes", type=int, default=500, help="simulated edge nodes")
    p.add_argument("--rate", type=float, default=150.0, help="events/s over all nodes")
    p.add_argument("--duration", type=float, default=300.0, help="seconds of load per run")
    p.add_argument("--workers", default="1,2", help="hub worker counts to run, comma-separated")
    p.add_argument("--status-interval", type=float, default=15.0, help="node heartbeat, s")
    p.add_argument("--ack-timeout", type=float, default=60.0, help="edge re-send after, s")
    p.add_argument("--max-inflight", type=int, default=50, help="unacked events per node")
    p.add_argument("--batch-size", type=int, default=200, help="hub ingest batch")
    p.add_argument("--db", default=None, help="PostgreSQL URL (default: a throwaway cluster)")
    p.add_argument("--json", action="store_true", help="also print the figures as JSON")
    p.add_argument("--child-loadgen", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child_loadgen:
        return _child_loadgen(args.child_loadgen)
    counts = [int(x) for x in args.workers.split(",") if x.strip()]
    runs = []
    with contextlib.ExitStack() as stack:
        if args.db:
            db, data = args.db, None
        else:
            db, data = stack.enter_context(throwaway_postgres())
        for n in counts:
            print(
                f"district_load: {n} worker(s), {args.nodes} nodes, {args.rate}/s, "
                f"{args.duration} s",
                file=sys.stderr,
                flush=True,
            )
            runs.append(run_once(args, n, db, data))
    print(_table(runs))
    if len(runs) >= 2 and runs[0]["workers"] == 1:
        base = runs[0]["events_per_hub_cpu_s"]
        for r in runs[1:]:
            ratio = r["events_per_hub_cpu_s"] / base if base else 0.0
            print(f"per-CPU throughput, {r['workers']} workers vs 1: {ratio:.2f}×")
    if args.json:
        print(json.dumps(runs, ensure_ascii=False))
    ok = all(
        r["lost"] == 0 and r["duplicates"] == 0 and r["device_fault_incidents"] >= 1 for r in runs
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
