"""Each person sees their part: a role × endpoint matrix over every route that returns data.

The matrix is generated from the app's own routes: a GET route (or a data POST) without a
rule in ``RULES`` fails the first test, so a new endpoint cannot ship without saying who
may see it. Two incidents are stored, one in 代家沟社区第一网格 (天府镇) and one in
北温泉街道, each with evidence, a work order and a photo; then every role reads every
endpoint and must see exactly its part.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from hub.app import create_app
from hub.users import create_user
from tests.conftest import HubKit
from tests.support.mosquitto import free_port

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64

# who may read what: "scoped" (within the viewer's scope), "staff" (admin, command
# centre), "admin", "reader" (anyone who may read: no per-grid data), "self" (the caller's
# own account), "public" (health, pages, documents), "open311" (citizen requests, scoped
# for logged-in staff), "stream" (the live feed, scoped; checked over a real socket below)
RULES: dict[str, str] = {
    "GET /api/v1/events": "scoped",
    "GET /api/v1/events/{event_id}": "scoped",
    "GET /api/v1/dead-letters": "staff",
    "GET /api/v1/incidents": "scoped",
    "GET /api/v1/incidents/{incident_id}": "scoped",
    "GET /api/v1/work-orders": "scoped",
    "GET /api/v1/work-orders/{wo_id}": "scoped",
    "GET /api/v1/work-orders/{wo_id}/transitions": "scoped",
    "GET /api/v1/uploads/{upload_id}": "scoped",
    "GET /api/v1/evidence/{evidence_id}": "scoped",
    "GET /api/v1/hotspots": "scoped",
    "GET /api/v1/stats": "scoped",
    "GET /api/v1/nodes": "reader",
    "GET /api/v1/sources": "staff",
    "GET /api/v1/registry": "reader",
    "GET /api/v1/me": "self",
    "GET /api/v1/users": "admin",
    "GET /api/v1/audit": "staff",
    "GET /api/v1/reports/labelled": "staff",
    "GET /api/v1/stream": "stream",
    "GET /open311/v2/services.json": "public",
    "GET /open311/v2/services/{code}.json": "public",
    "GET /open311/v2/requests.json": "open311",
    "GET /open311/v2/requests/{req_id}.json": "open311",
    "GET /open311/v2/tokens/{token}.json": "public",
    "GET /r/{code}": "public",  # the citizen's rating page: the code is the secret
    "GET /api/v1/ratings/{code}": "public",
    "GET /healthz": "public",
    "GET /metrics": "public",
    "GET /": "public",
    "GET /m/": "public",
    "GET /static/{name}": "public",
    "GET /openapi.json": "public",
    "GET /docs": "public",
    "GET /docs-assets/{name}": "public",
}

ROLES = ("admin", "cc", "worker01", "worker02", "handler", "viewer")
# what each role may see of the two incidents (A: 天府镇 grid 01, B: 北温泉街道)
SEES = {
    "admin": {"A", "B"},
    "cc": {"A"},  # 天府镇's command centre
    "worker01": {"A"},
    "worker02": set(),  # the other grid of the same community
    "handler": {"A"},  # 天府镇 safety board; both incidents are fires (safety_law)
    "viewer": {"A", "B"},  # an unscoped read-only account
}


class World:
    def __init__(self, kit: HubKit) -> None:
        self.kit = kit
        cfg = kit.config.model_copy(
            update={"auth": kit.config.auth.model_copy(update={"anonymous_read": False})}
        )
        self.app = create_app(cfg, kit.store, lambda: True, kit.core)
        self.client = TestClient(self.app)
        reg = kit.core.registry
        self.tokens = {
            "admin": create_user(kit.store, "admin", "admin"),
            "cc": create_user(
                kit.store, "cc-tianfu", "command_centre", "beibei-tianfu", registry=reg
            ),
            "worker01": create_user(
                kit.store, "w-tianfu-01", "grid_worker", "beibei-tianfu-01", registry=reg
            ),
            "worker02": create_user(
                kit.store, "w-tianfu-02", "grid_worker", "beibei-tianfu-02", registry=reg
            ),
            "handler": create_user(
                kit.store,
                "h-tianfu-safety",
                "board_handler",
                "beibei-tianfu",
                "safety_law",
                registry=reg,
            ),
            "viewer": create_user(kit.store, "viewer", "viewer"),
        }
        self.ids: dict[str, dict[str, str]] = {}
        for name, grid in (("A", "beibei-tianfu-01"), ("B", "beibei-bwq-01")):
            node = f"node-{name.lower()}"
            ev = kit.event(
                "fire",
                severity="urgent",
                grid_id=grid,
                node_id=node,
                evidence=[
                    {
                        "id": f"ev-{name}",
                        "kind": "image",
                        "content_type": "image/png",
                        "sha256": "0" * 64,
                        "bytes": len(PNG),
                    }
                ],
            )
            kit.feed(ev)
            path = kit.config.resolve(kit.config.evidence_dir) / f"{name}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(PNG)
            kit.store.record_evidence(
                node, f"ev-{name}", "0" * 64, len(PNG), str(path), kit.clock.now()
            )
            inc = next(i for i in kit.incidents() if i["grid_id"] == grid)
            wo = next(o for o in kit.orders() if o["incident_id"] == inc["id"])
            up = self.client.post(
                f"/api/v1/uploads?work_order_id={wo['id']}",
                content=PNG,
                headers={**self.h("admin"), "content-type": "image/png"},
            )
            assert up.status_code == 201, up.text
            self.ids[name] = {
                "event": ev.id,
                "node": node,
                "incident": inc["id"],
                "order": wo["id"],
                "upload": up.json()["id"],
                "evidence": f"ev-{name}",
            }

    def h(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"}

    def get(self, who: str, path: str) -> Any:
        return self.client.get(path, headers=self.h(who))


@pytest.fixture
def world(sqlite_hubkit: HubKit) -> Iterator[World]:
    yield World(sqlite_hubkit)


def _routes(routes: Any) -> Iterator[Any]:
    """Every route, those of included routers too (however FastAPI holds them)."""
    for r in routes:
        inner = getattr(r, "original_router", None)
        if inner is not None:
            yield from _routes(inner.routes)
        else:
            yield r


def _route_keys(app: Any) -> set[str]:
    out = set()
    for r in _routes(app.routes):
        methods = getattr(r, "methods", None) or set()
        if "GET" in methods:
            out.add(f"GET {r.path}")
    return out


def test_every_route_that_returns_data_has_a_scoping_rule(world: World) -> None:
    keys = _route_keys(world.app)
    missing = sorted(keys - set(RULES))
    assert not missing, f"routes without a scoping rule in RULES: {missing}"
    stale = sorted(set(RULES) - keys)
    assert not stale, f"rules for routes that no longer exist: {stale}"
    posts = {
        r.path for r in _routes(world.app.routes) if isinstance(r, APIRoute) and "POST" in r.methods
    }
    assert "/api/v1/incidents/{incident_id}/split" in posts


def _item_paths(ids: dict[str, str]) -> dict[str, str]:
    return {
        "GET /api/v1/events/{event_id}": f"/api/v1/events/{ids['event']}?node_id={ids['node']}",
        "GET /api/v1/incidents/{incident_id}": f"/api/v1/incidents/{ids['incident']}",
        "GET /api/v1/work-orders/{wo_id}": f"/api/v1/work-orders/{ids['order']}",
        "GET /api/v1/work-orders/{wo_id}/transitions": f"/api/v1/work-orders/{ids['order']}/transitions",
        "GET /api/v1/uploads/{upload_id}": f"/api/v1/uploads/{ids['upload']}",
        "GET /api/v1/evidence/{evidence_id}": f"/api/v1/evidence/{ids['evidence']}?node_id={ids['node']}",
    }


def test_scoped_items_are_visible_exactly_within_scope(world: World) -> None:
    seen: dict[str, dict[str, bool]] = {}
    for role in ROLES:
        for name in ("A", "B"):
            for key, path in _item_paths(world.ids[name]).items():
                r = world.get(role, path)
                assert r.status_code in (200, 404), (role, path, r.status_code, r.text)
                visible = r.status_code == 200
                seen.setdefault(f"{role} {name}", {})[key] = visible
                assert visible == (name in SEES[role]), (role, name, key, r.status_code)
    assert any(all(v.values()) for v in seen.values())  # the matrix saw something


def test_scoped_lists_hold_exactly_the_scope(world: World) -> None:
    inc = {n: world.ids[n]["incident"] for n in ("A", "B")}
    for role in ROLES:
        want = {inc[n] for n in SEES[role]}
        incidents = {i["id"] for i in world.get(role, "/api/v1/incidents").json()["items"]}
        orders = {o["incident_id"] for o in world.get(role, "/api/v1/work-orders").json()["items"]}
        events = {e["incident_id"] for e in world.get(role, "/api/v1/events").json()["items"]}
        assert incidents == want and orders == want and events == want, role
        stats = world.get(role, "/api/v1/stats").json()
        assert stats["events_total"] == len(want), (role, stats["events_total"])
        assert sum(stats["events_by_node"].values()) == len(want)
        assert ("dead_letters_total" in stats) == (role in ("admin", "cc")), role
        spots = world.get(role, "/api/v1/hotspots")
        assert spots.status_code == 200


def test_staff_and_admin_endpoints_refuse_everyone_else(world: World) -> None:
    for key, rule in RULES.items():
        if rule not in ("staff", "admin"):
            continue
        path = key.split(" ", 1)[1]
        for role in ROLES:
            allowed = role == "admin" or (rule == "staff" and role == "cc")
            code = world.get(role, path).status_code
            assert (code == 200) == allowed, (role, path, code)
            if not allowed:
                assert code == 403
    anon = world.client.get("/api/v1/dead-letters")
    assert anon.status_code == 401


def test_reader_self_and_public_endpoints(world: World) -> None:
    for role in ROLES:
        assert world.get(role, "/api/v1/nodes").status_code == 200
        assert world.get(role, "/api/v1/registry").status_code == 200
        me = world.get(role, "/api/v1/me").json()
        assert me["role"] != "viewer" or role == "viewer"
    assert world.client.get("/api/v1/nodes").status_code == 401  # anonymous read is off
    assert world.client.get("/healthz").status_code == 200
    # Open311 lists: scoped for a logged-in worker
    assert world.get("worker02", "/open311/v2/requests.json").status_code == 200


def test_an_unattached_upload_is_seen_by_its_uploader_only(world: World) -> None:
    up = world.client.post(
        "/api/v1/uploads",
        content=PNG,
        headers={**world.h("worker01"), "content-type": "image/png"},
    )
    assert up.status_code == 201
    path = f"/api/v1/uploads/{up.json()['id']}"
    assert world.get("worker01", path).status_code == 200
    assert world.get("worker02", path).status_code == 404
    assert world.get("cc", path).status_code == 200


def test_the_live_stream_shows_only_the_viewers_part(world: World, tmp_path: Any) -> None:
    import uvicorn

    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(world.app, host="127.0.0.1", port=port, log_level="warning")
    )
    th = threading.Thread(target=server.run, daemon=True)
    th.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    got: dict[str, list[dict[str, Any]]] = {"worker01": [], "worker02": []}

    def listen(role: str) -> None:
        req = urllib.request.Request(
            f"http://127.0.0.1:{port}/api/v1/stream", headers=world.h(role)
        )
        end = time.monotonic() + 8
        try:
            with urllib.request.urlopen(req, timeout=4) as resp:  # noqa: S310 - loopback
                for raw in resp:
                    line = raw.decode().strip()
                    if line.startswith("data: "):
                        got[role].append(json.loads(line[6:]))
                    if time.monotonic() > end:
                        return
        except TimeoutError:
            return  # nothing more came: the feed stays silent for this viewer

    threads = [threading.Thread(target=listen, args=(r,), daemon=True) for r in got]
    try:
        for t in threads:
            t.start()
        time.sleep(1.0)
        k = world.kit
        k.feed(
            k.event(
                "sanitation", grid_id="beibei-tianfu-01", node_id="node-s", address="代家沟社区 5栋"
            )
        )
        k.feed(k.event("sanitation", grid_id="beibei-bwq-01", node_id="node-s", address="缙云社区"))
        for t in threads:
            t.join(12)
        w1, w2 = got["worker01"], got["worker02"]
        assert w1, "worker01 saw nothing of its own grid"
        assert all(
            x.get("grid_id", x.get("location", {}).get("grid_id")) in (None, "beibei-tianfu-01")
            for x in w1
        )
        assert not w2, f"worker02 saw other grids' items: {w2[:3]}"
    finally:
        server.should_exit = True
        th.join(5)
