"""``shaobing loadgen``: synthetic edge traffic through the real outbox and publisher.

``--count`` and ``--rate`` are totals over all ``--nodes``. Every node has its own
SQLite outbox (``{outbox}/{node}.sqlite``) and publisher, but all publishers share one
network thread (``MqttLoop``); a single producer thread paces the events. Rows left in
an outbox by an earlier (killed) run are replayed first. The result line counts what
was sent and acknowledged; the exit status is 0 only when every event was acknowledged
by the hub before ``--timeout``.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edge.mqtt import MqttLoop
from edge.outbox import Outbox
from edge.publisher import Publisher
from shaobing.config import BrokerConfig
from shaobing.contract import Event, Location, Source, new_event_id, now_utc

__all__ = [
    "LoadgenOptions",
    "run_loadgen",
    "loadgen_command",
    "synthetic_event",
    "TimedOutbox",
    "main",
]

log = logging.getLogger(__name__)

_TYPES = ("fire_lane_blocked", "sanitation", "street_vending", "road_facility", "noise", "other")


_TEMPLATES: dict[str, Event] = {}


def synthetic_event(node_id: str, seq: int) -> Event:
    """A valid synthetic event (``attributes.seq`` numbers it within its node)."""
    t = now_utc()
    severity = "emergency" if seq % 50 == 7 else "urgent" if seq % 12 == 5 else "normal"
    template = _TEMPLATES.get(node_id)
    if template is None:
        template = _TEMPLATES[node_id] = Event(
            id=new_event_id(),
            type="other",
            severity="normal",
            incident_key=f"{node_id}/loadgen/0",
            occurred_at=t,
            detected_at=t,
            source=Source(node_id=node_id, kind="system", device_id="loadgen", pipeline="loadgen"),
            location=Location(grid_id="loadgen", address="压测网格"),
            confidence=0.9,
            summary=f"压测事件 {node_id} #0",
            attributes={"seq": 0, "loadgen": True},
        )
    # every field below is valid by construction: copy the validated template
    return template.model_copy(
        update={
            "id": new_event_id(),
            "type": _TYPES[seq % len(_TYPES)],
            "severity": severity,
            "incident_key": f"{node_id}/loadgen/{seq}",
            "occurred_at": t,
            "detected_at": t,
            "summary": f"压测事件 {node_id} #{seq}",
            "attributes": {"seq": seq, "loadgen": True},
        }
    )


class TimedOutbox(Outbox):
    """An outbox that remembers when each event was put and when the hub acked it."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.put_times: dict[str, float] = {}
        self.latencies: list[float] = []

    def put_many(self, items: Iterable[tuple[Event, Any]]) -> None:  # noqa: D102 - see Outbox
        items = list(items)
        t = time.perf_counter()
        for ev, _ in items:
            self.put_times[ev.id] = t
        super().put_many(items)

    def ack(self, ids: Iterable[str]) -> int:  # noqa: D102 - see Outbox
        ids = list(ids)
        n = super().ack(ids)
        t = time.perf_counter()
        for i in ids:
            t0 = self.put_times.pop(i, None)
            if t0 is not None:
                self.latencies.append(t - t0)
        return n


@dataclass
class LoadgenOptions:
    """What to generate and how the transport behaves."""

    broker: str
    nodes: int = 1
    rate: float = 100.0
    count: int = 1000
    outbox: str | None = None
    timeout: float = 120.0
    username: str | None = None
    password: str | None = None
    node_prefix: str = "lg"
    ack_timeout_s: float = 10.0
    backoff_max_s: float = 30.0
    max_inflight: int = 500
    synchronous: str = "NORMAL"
    protocol: str = "auto"
    status_interval_s: float = 15.0
    record_latency: bool = False
    progress_s: float = 5.0
    extra: dict[str, Any] = field(default_factory=dict)


def _node_ids(opts: LoadgenOptions) -> list[str]:
    if opts.username and opts.nodes == 1:
        return [opts.username]
    return [f"{opts.node_prefix}{i:04d}" for i in range(opts.nodes)]


def _publishers(
    opts: LoadgenOptions, node_ids: list[str], outboxes: list[Outbox], loop: MqttLoop
) -> list[Publisher]:
    broker = BrokerConfig.model_validate(
        {
            "url": opts.broker,
            "username": opts.username,
            "password": opts.password,
            "protocol": opts.protocol,
        }
    )
    return [
        Publisher(
            n,
            broker,
            o,
            max_inflight=opts.max_inflight,
            ack_timeout_s=opts.ack_timeout_s,
            status_interval_s=opts.status_interval_s,
            loop=loop,
            backoff_min_s=0.2,
            backoff_max_s=opts.backoff_max_s,
        )
        for n, o in zip(node_ids, outboxes, strict=True)
    ]


@dataclass
class _Run:
    """One run's moving parts and clock."""

    opts: LoadgenOptions
    node_ids: list[str]
    outboxes: list[Outbox]
    publishers: list[Publisher]
    stop: threading.Event
    started: float
    next_progress: float = 0.0
    generated: int = 0

    def tick(self, now: float) -> None:
        """A progress line every ``progress_s``."""
        if now >= self.next_progress:
            self.next_progress = now + self.opts.progress_s
            _progress(self.generated, self.outboxes, self.publishers)


def _produce(run: _Run) -> float:
    """Paced round-robin over the nodes, one transaction per node per step; the seconds it took."""
    opts, node_ids = run.opts, run.node_ids
    gen_started = time.monotonic()
    while run.generated < opts.count and not run.stop.is_set():
        now = time.monotonic()
        if now - run.started > opts.timeout:
            break
        target = (
            opts.count
            if opts.rate <= 0
            else min(opts.count, int((now - gen_started) * opts.rate) + 1)
        )
        n_new = min(target - run.generated, 2000)
        if n_new > 0:
            per_node: dict[int, list[tuple[Event, None]]] = {}
            for k in range(run.generated, run.generated + n_new):
                idx = k % len(node_ids)
                per_node.setdefault(idx, []).append(
                    (synthetic_event(node_ids[idx], k // len(node_ids)), None)
                )
            for idx, items in per_node.items():
                run.outboxes[idx].put_many(items)
            run.generated += n_new
        else:
            time.sleep(
                min(0.01, max(0.0005, (run.generated + 1) / opts.rate - (now - gen_started)))
            )
        run.tick(now)
    return time.monotonic() - gen_started


def _wait_acks(run: _Run) -> None:
    """Until every outbox is empty, the timeout passes or ``stop`` is set."""
    while not run.stop.is_set():
        pending = sum(o.depth() for o in run.outboxes)
        now = time.monotonic()
        if pending == 0 or now - run.started > run.opts.timeout:
            break
        run.tick(now)
        time.sleep(0.01)


def _result(run: _Run, replayed: int, gen_duration: float, duration: float) -> dict[str, Any]:
    opts, outboxes, publishers, generated = run.opts, run.outboxes, run.publishers, run.generated
    pending = sum(o.depth() for o in outboxes)
    acked = sum(p.stats["acked"] for p in publishers)
    result: dict[str, Any] = {
        "sent": generated + replayed,
        "generated": generated,
        "replayed": replayed,
        "acked": acked,
        "pending": pending,
        "dropped": sum(o.dropped for o in outboxes),
        "nodes": len(run.node_ids),
        "rate": round(generated / gen_duration, 1) if gen_duration > 0 else 0.0,
        "duration_s": round(duration, 3),
        "throughput": round(acked / duration, 1) if duration > 0 else 0.0,
        "resent": sum(p.stats["resent"] for p in publishers),
        "reconnects": sum(max(0, p.stats["connects"] - 1) for p in publishers),
        "ok": pending == 0 and generated == opts.count,
    }
    if opts.record_latency:
        lat = sorted(x for o in outboxes for x in o.latencies)  # type: ignore[attr-defined]
        result["latency_ms"] = {
            "p50": round(_pct(lat, 50) * 1000, 2),
            "p99": round(_pct(lat, 99) * 1000, 2),
            "max": round((lat[-1] if lat else 0.0) * 1000, 2),
        }
    return result


def run_loadgen(opts: LoadgenOptions, stop: threading.Event | None = None) -> dict[str, Any]:
    """Generate, send and wait for acks; returns the result object."""
    if opts.nodes < 1:
        raise ValueError(f"nodes: expected at least 1, found {opts.nodes}")
    if opts.count < 0:
        raise ValueError(f"count: expected 0 or more, found {opts.count}")
    stop = stop or threading.Event()
    tmp = None
    if opts.outbox:
        folder = Path(opts.outbox)
    else:
        tmp = tempfile.TemporaryDirectory(prefix="shaobing-loadgen-")
        folder = Path(tmp.name)
    folder.mkdir(parents=True, exist_ok=True)
    node_ids = _node_ids(opts)
    cls = TimedOutbox if opts.record_latency else Outbox
    outboxes = [
        cls(folder / f"{n}.sqlite", ack_timeout_s=opts.ack_timeout_s, synchronous=opts.synchronous)
        for n in node_ids
    ]
    replayed = sum(o.depth() for o in outboxes)
    loop = MqttLoop(name="loadgen-mqtt")
    publishers = _publishers(opts, node_ids, outboxes, loop)
    started = time.monotonic()
    for p in publishers:
        p.start()
    run = _Run(opts, node_ids, outboxes, publishers, stop, started, started + opts.progress_s)
    try:
        gen_duration = _produce(run)
        _wait_acks(run)
        duration = time.monotonic() - started
    finally:
        for p in publishers:
            p.stop(timeout=2.0)
        loop.stop(force=True)
    result = _result(run, replayed, gen_duration, duration)
    for o in outboxes:
        o.close()
    if tmp is not None:
        tmp.cleanup()
    return result


def _say(text: str, *, err: bool = False) -> None:
    stream = sys.stderr if err else sys.stdout
    stream.write(text + "\n")
    stream.flush()


def _pct(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    k = min(len(values) - 1, max(0, round(q / 100 * (len(values) - 1))))
    return values[k]


def _progress(generated: int, outboxes: list[Outbox], publishers: list[Publisher]) -> None:
    pending = sum(o.depth() for o in outboxes)
    connected = sum(1 for p in publishers if p.connected)
    _say(
        f"loadgen: generated {generated}, pending {pending}, connected {connected}/{len(publishers)}",
        err=True,
    )


def loadgen_command(args: argparse.Namespace) -> int:
    """``shaobing loadgen --broker URL --nodes N --rate R --count C``; exit 0 when all acked."""
    try:
        opts = LoadgenOptions(
            broker=args.broker,
            nodes=args.nodes,
            rate=args.rate,
            count=args.count,
            outbox=args.outbox,
            timeout=args.timeout,
            username=args.username,
            password=args.password,
            node_prefix=getattr(args, "node_prefix", None) or "lg",
            ack_timeout_s=getattr(args, "ack_timeout", None) or 10.0,
            backoff_max_s=getattr(args, "backoff_max", None) or 30.0,
            max_inflight=getattr(args, "max_inflight", None) or 500,
            synchronous=getattr(args, "sync", None) or "NORMAL",
            protocol=getattr(args, "protocol", None) or "auto",
        )
        BrokerConfig(url=opts.broker)
    except ValueError as exc:
        _say(f"shaobing loadgen: {exc}", err=True)
        return 2
    try:
        result = run_loadgen(opts)
    except ValueError as exc:
        _say(f"shaobing loadgen: {exc}", err=True)
        return 2
    if args.json:
        _say(json.dumps(result))
    else:
        _say(
            f"sent {result['sent']} (new {result['generated']}, replayed {result['replayed']}), "
            f"acked {result['acked']}, pending {result['pending']}, dropped {result['dropped']}, "
            f"rate {result['rate']}/s, {result['duration_s']} s"
        )
    if not result["ok"]:
        _say(
            f"shaobing loadgen: {result['pending']} events not acknowledged by the hub within {opts.timeout} s",
            err=True,
        )
        return 1
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The loadgen options, including the transport knobs tests use."""
    p = argparse.ArgumentParser(
        prog="python -m shaobing_tools.loadgen",
        description=__doc__.splitlines()[0] if __doc__ else None,
    )
    p.add_argument("--broker", required=True)
    p.add_argument("--nodes", type=int, default=1)
    p.add_argument("--rate", type=float, default=100.0)
    p.add_argument("--count", type=int, default=1000)
    p.add_argument("--outbox", default=None)
    p.add_argument("--timeout", type=float, default=120.0)
    p.add_argument("--username", default=None)
    p.add_argument("--password", default=None)
    p.add_argument("--json", action="store_true")
    p.add_argument("--node-prefix", default="lg", help="node ids are PREFIX0000, PREFIX0001 …")
    p.add_argument(
        "--ack-timeout",
        type=float,
        default=10.0,
        help="re-send when the hub's ack is later than this",
    )
    p.add_argument("--backoff-max", type=float, default=30.0, help="reconnect delay ceiling")
    p.add_argument(
        "--max-inflight", type=int, default=500, help="events sent and not yet acked, per node"
    )
    p.add_argument(
        "--sync",
        choices=["FULL", "NORMAL"],
        default="NORMAL",
        help="outbox SQLite synchronous mode",
    )
    p.add_argument("--protocol", choices=["auto", "5", "3.1.1"], default="auto")
    return p


def main(argv: list[str] | None = None) -> int:
    """``python -m shaobing_tools.loadgen``: the same command with the extra transport knobs."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    return loadgen_command(args)


if __name__ == "__main__":
    sys.exit(main())
