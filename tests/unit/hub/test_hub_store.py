"""hub/store.py: migrations (SQLite and PostgreSQL), idempotent inserts, pages, change feed, leases."""

from __future__ import annotations

from datetime import UTC
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import inspect
from sqlalchemy import text as sa_text

from hub.store import MIGRATIONS, Store
from tests.conftest import HubKit


def test_insert_is_idempotent_and_pages_newest_first(hubkit: HubKit) -> None:
    k = hubkit
    evs = [k.event("sanitation", kind="citizen") for _ in range(7)]
    assert len(k.store.insert_events([(e, k.clock.now()) for e in evs])) == 7
    assert k.store.insert_events([(e, k.clock.now()) for e in evs[:3]]) == []
    assert k.store.count_events() == 7
    page, nxt = k.store.list_events(limit=4)
    assert [p["id"] for p in page] == [e.id for e in reversed(evs)][:4] and nxt is not None
    page2, nxt2 = k.store.list_events(limit=4, before_seq=nxt)
    assert len(page2) == 3 and nxt2 is None
    assert [s for s, _ in k.store.events_after(0, 100)] == sorted(
        s for s, _ in k.store.events_after(0, 100)
    )


def test_change_feed_and_lease(hubkit: HubKit) -> None:
    k = hubkit
    start = k.store.last_seq("changes")
    k.feed(k.event())
    kinds = [c["kind"] for c in k.store.list_changes(start)]
    assert "incident" in kinds and "work_order" in kinds
    assert k.store.acquire_lease("x", "a", 10)
    assert not k.store.acquire_lease("x", "b", 10)
    assert k.store.acquire_lease("x", "a", 10)  # renew
    k.clock.advance(seconds=11)
    assert k.store.acquire_lease("x", "b", 10)


def test_upgrade_from_0001_keeps_events_and_processes_them(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.sqlite'}"
    store = Store(url)
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with store.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0001")
    kit_events = HubKit(f"sqlite:///{tmp_path / 'scratch.sqlite'}", tmp_path)
    e = kit_events.event()
    with store.engine.begin() as conn:  # written by the 0001 schema (unique id alone)
        conn.execute(
            sa_text(
                "INSERT INTO events (id, type, severity, state, incident_key, node_id,"
                " source_kind, device_id, pipeline, grid_id, summary, confidence, occurred_at,"
                " detected_at, received_at, clock_skew, payload) VALUES (:id, :type, :sev,"
                " 'active', :key, :node, :kind, :dev, :pipe, :grid, :summary, 0.9, :at, :at,"
                " :at, 0, :payload)"
            ),
            {
                "id": e.id,
                "type": e.type,
                "sev": e.severity,
                "key": e.incident_key,
                "node": e.source.node_id,
                "kind": e.source.kind,
                "dev": e.source.device_id,
                "pipe": e.source.pipeline,
                "grid": e.location.grid_id,
                "summary": e.summary,
                "at": e.occurred_at.astimezone(UTC).replace(tzinfo=None),
                "payload": e.to_json(),
            },
        )
    assert not store.is_migrated()
    store.migrate()
    assert store.is_migrated()
    assert "incident_id" in {c["name"] for c in inspect(store.engine).get_columns("events")}
    store.close()
    kit = HubKit(url, tmp_path, start_worker=False)
    kit.clock.advance(seconds=60)
    # events from before the upgrade get their incidents when the incident worker starts
    assert kit.incident_worker.run_once() == 1
    assert kit.core.incidents.process_pending() == 0
    assert len(kit.orders()) == 1
    kit.close()
    kit_events.close()
