"""Hub API latency with a large database, and incident-processing throughput.

Fills a fresh database with N events (default 100,000, through ``Store.insert_events``) and
M incidents with their work orders (bulk rows), then times the list endpoints through the
real FastAPI app (in process) and prints p50/p95 per query next to the 50 ms target. A
second figure: events/s through the incident engine (merge + work order + notices).

    .venv/bin/python benchmarks/bench_hub_api.py [--events 100000] [--orders 20000] [--db URL] [--json]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from fastapi.testclient import TestClient  # noqa: E402

from hub import schema  # noqa: E402
from hub.app import build_core, create_app  # noqa: E402
from hub.store import ManualClock, Store  # noqa: E402
from hub.users import create_user  # noqa: E402
from shaobing.config import HubConfig  # noqa: E402
from shaobing.contract import Event, new_event_id  # noqa: E402
from shaobing.paths import configs_dir  # noqa: E402

TARGET_MS = 50.0
TYPES = [
    "fire_lane_blocked",
    "sanitation",
    "noise",
    "road_facility",
    "street_vending",
    "smoke",
    "falling_object",
]
GRIDS = [
    "beibei-tianfu-01",
    "beibei-tianfu-02",
    "beibei-tianfu-03",
    "beibei-bwq-01",
    "yubei-longxi-01",
]
PLACE = {
    "beibei-tianfu-01": ("beibei-tianfu-daiyun", "beibei-tianfu", "beibei"),
    "beibei-tianfu-02": ("beibei-tianfu-daiyun", "beibei-tianfu", "beibei"),
    "beibei-tianfu-03": ("beibei-tianfu-xinglong", "beibei-tianfu", "beibei"),
    "beibei-bwq-01": ("beibei-bwq-jinyun", "beibei-beiwenquan", "beibei"),
    "yubei-longxi-01": ("yubei-longxi-songshi", "yubei-longxi", "yubei"),
}


def make_event(i: int, at: datetime, rnd: random.Random) -> Event:
    grid = rnd.choice(GRIDS)
    return Event.model_validate(
        {
            "id": new_event_id() + f"-{i}",
            "type": rnd.choice(TYPES),
            "severity": rnd.choice(["normal", "normal", "urgent"]),
            "incident_key": f"k{i}",
            "occurred_at": at,
            "detected_at": at,
            "source": {
                "node_id": f"node-{i % 40}",
                "kind": "camera",
                "device_id": f"cam{i % 7}",
                "pipeline": "p",
            },
            "location": {"grid_id": grid, "address": f"{grid} {i % 50}号"},
            "confidence": 0.8,
            "summary": f"事件 {i}",
        }
    )


def fill(store: Store, n_events: int, n_orders: int, t0: datetime) -> None:
    rnd = random.Random(7)
    batch: list[tuple[Event, datetime]] = []
    for i in range(n_events):
        at = t0 + timedelta(seconds=i * 20)
        batch.append((make_event(i, at, rnd), at))
        if len(batch) == 2000:
            store.insert_events(batch)
            batch = []
    if batch:
        store.insert_events(batch)
    states = [
        "reported",
        "dispatched",
        "accepted",
        "handled",
        "closed",
        "closed",
        "closed",
        "false_alarm",
    ]
    inc_rows, wo_rows = [], []
    for j in range(n_orders):
        at = t0 + timedelta(seconds=j * 90)
        grid = rnd.choice(GRIDS)
        c, t, d = PLACE[grid]
        typ = rnd.choice(TYPES)
        iid = f"inc-{j:07d}"
        inc_rows.append(
            {
                "id": iid,
                "type": typ,
                "family": typ,
                "severity": "normal",
                "state": "open",
                "grid_id": grid,
                "community_id": c,
                "town_id": t,
                "district_id": d,
                "placed": True,
                "summary": f"事件 {j}",
                "first_at": at,
                "last_at": at,
                "created_at": at,
                "updated_at": at,
                "event_count": 1,
                "sources": "[]",
                "evidence": "[]",
                "suppressed": False,
                "pinned": False,
                "ack_escalated": False,
            }
        )
        st = rnd.choice(states)
        wo_rows.append(
            {
                "id": f"wo-{j:07d}",
                "incident_id": iid,
                "state": st,
                "type": typ,
                "board": "safety_law" if j % 2 else "livelihood",
                "level": "grid",
                "severity": "normal",
                "grid_id": grid,
                "community_id": c,
                "town_id": t,
                "district_id": d,
                "screening": False,
                "assignee_id": f"w-{grid}",
                "summary": f"事件 {j}",
                "source_key": f"node-{j % 40}/cam{j % 7}/p",
                "created_at": at,
                "updated_at": at,
                "dispatched_at": at,
                "accept_due_at": at + timedelta(hours=4),
                "handle_due_at": at + timedelta(days=2),
                "escalations": 0,
                "reassigns": 0,
                "reworks": int(j % 13 == 0),
                "reopens": 0,
                "accept_s": 600.0 if st != "reported" else None,
                "close_s": 7200.0 if st == "closed" else None,
                "on_time": (j % 5 != 0) if st == "closed" else None,
                "version": 1,
            }
        )
    with store.write() as conn:
        for k in range(0, len(inc_rows), 1000):
            conn.execute(schema.incidents.insert(), inc_rows[k : k + 1000])
            conn.execute(schema.work_orders.insert(), wo_rows[k : k + 1000])


def timeit(client: TestClient, url: str, headers: dict[str, str], n: int) -> tuple[float, float]:
    client.get(url, headers=headers)  # warm
    samples = []
    for _ in range(n):
        t = time.perf_counter()
        r = client.get(url, headers=headers)
        samples.append((time.perf_counter() - t) * 1000)
        assert r.status_code == 200, (url, r.status_code, r.text[:200])
    samples.sort()
    return statistics.median(samples), samples[int(0.95 * (len(samples) - 1))]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=100_000)
    ap.add_argument("--orders", type=int, default=20_000)
    ap.add_argument("--db", default=None, help="database URL (default: a fresh SQLite file)")
    ap.add_argument("--repeat", type=int, default=30)
    ap.add_argument(
        "--process", type=int, default=1000, help="events pushed through the incident engine"
    )
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-hub-api-"))
    url = args.db or f"sqlite:///{tmp / 'hub.sqlite'}"
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    clock = ManualClock(t0 + timedelta(days=40))
    store = Store(url, clock=clock)
    store.migrate()
    store.delete_all()
    cfg = HubConfig.model_validate(
        {
            "db": url,
            "registry": str(configs_dir() / "demo" / "registry.yaml"),
            "evidence_dir": str(tmp / "ev"),
            "auth": {"anonymous_read": False},
        }
    )
    core = build_core(cfg, store)
    t = time.perf_counter()
    fill(store, args.events, args.orders, t0)
    fill_s = time.perf_counter() - t
    admin = {"Authorization": "Bearer " + create_user(store, "admin", "admin")}
    worker = {
        "Authorization": "Bearer "
        + create_user(
            store, "w-tianfu-01", "grid_worker", "beibei-tianfu-01", registry=core.registry
        )
    }
    client = TestClient(create_app(cfg, store, lambda: True, core))
    page = client.get("/api/v1/events?limit=50", headers=admin).json()
    for _ in range(20):  # a cursor 1,000 events deep
        page = client.get(f"/api/v1/events?limit=50&cursor={page['next']}", headers=admin).json()
    deep = page["next"]
    queries = [
        ("events, newest 50", "/api/v1/events?limit=50", admin),
        ("events, by type", "/api/v1/events?limit=50&type=noise", admin),
        ("events, by grid", "/api/v1/events?limit=50&grid_id=beibei-bwq-01", admin),
        ("events, page 21 (cursor)", f"/api/v1/events?limit=50&cursor={deep}", admin),
        ("events, scoped grid worker", "/api/v1/events?limit=50", worker),
        ("incidents, newest 50", "/api/v1/incidents?limit=50", admin),
        ("work orders, newest 50", "/api/v1/work-orders?limit=50", admin),
        ("work orders, state=dispatched", "/api/v1/work-orders?limit=50&state=dispatched", admin),
        ("work orders, scoped grid worker", "/api/v1/work-orders?limit=50", worker),
        ("hotspots", "/api/v1/hotspots", admin),
        ("stats (aggregates, not a list)", "/api/v1/stats", admin),
    ]
    results = []
    for name, q, h in queries:
        p50, p95 = timeit(
            client, q, h, args.repeat if "stats" not in name else max(5, args.repeat // 5)
        )
        results.append(
            {
                "query": name,
                "url": q,
                "p50_ms": round(p50, 2),
                "p95_ms": round(p95, 2),
                "target_ms": TARGET_MS if "stats" not in name else None,
            }
        )
    # incident engine throughput on fresh events (merge + order + notices), batches of 50
    rnd = random.Random(11)
    evs = [
        make_event(10_000_000 + i, clock.now() + timedelta(seconds=i), rnd)
        for i in range(args.process)
    ]
    store.insert_events([(e, clock.now()) for e in evs])
    t = time.perf_counter()
    for i in range(0, len(evs), 50):
        core.incidents.process(evs[i : i + 50])
    proc_s = time.perf_counter() - t
    summary = {
        "db": store.engine.dialect.name,
        "events": args.events,
        "incidents": args.orders,
        "work_orders": args.orders,
        "fill_s": round(fill_s, 1),
        "incident_engine_events_per_s": round(len(evs) / proc_s, 1),
        "queries": results,
    }
    if args.json:
        print(json.dumps(summary, ensure_ascii=False))
    else:
        print(
            f"hub API on {summary['db']}: {args.events} events, {args.orders} incidents + work orders (fill {fill_s:.0f} s)"
        )
        print(f"{'query':<34} {'p50 ms':>8} {'p95 ms':>8}  target")
        for r in results:
            ok = "" if r["target_ms"] is None else ("ok" if r["p95_ms"] < TARGET_MS else "SLOW")
            print(
                f"{r['query']:<34} {r['p50_ms']:>8.1f} {r['p95_ms']:>8.1f}  {'< 50 ms ' + ok if r['target_ms'] else '-'}"
            )
        print(
            f"incident engine: {summary['incident_engine_events_per_s']:.0f} events/s (merge + work order + notices, batches of 50)"
        )
    store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
