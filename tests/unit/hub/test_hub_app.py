"""hub/app.py: the HTTP API — auth and scope, transitions (409 with allowed), uploads, lists, stats."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from hub.app import create_app
from hub.users import create_user
from tests.conftest import HubKit

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


class Api:
    def __init__(self, kit: HubKit, anonymous_read: bool) -> None:
        self.kit = kit
        cfg = kit.config.model_copy(
            update={"auth": kit.config.auth.model_copy(update={"anonymous_read": anonymous_read})}
        )
        self.client = TestClient(create_app(cfg, kit.store, lambda: True, kit.core))
        reg = kit.core.registry
        self.tokens = {
            "admin": create_user(kit.store, "admin", "admin"),
            "cc": create_user(
                kit.store, "cc-tianfu", "command_centre", "beibei-tianfu", registry=reg
            ),
            "worker": create_user(
                kit.store, "w-tianfu-01", "grid_worker", "beibei-tianfu-01", registry=reg
            ),
            "worker2": create_user(
                kit.store, "w-tianfu-02", "grid_worker", "beibei-tianfu-02", registry=reg
            ),
            "life": create_user(
                kit.store,
                "h-tianfu-life",
                "board_handler",
                "beibei-tianfu",
                "livelihood",
                registry=reg,
            ),
            "viewer": create_user(kit.store, "viewer", "viewer", password="secret-pass"),
        }

    def h(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"}

    def move(self, wo: str, who: str, action: str, **body: object):  # type: ignore[no-untyped-def]
        return self.client.post(
            f"/api/v1/work-orders/{wo}/transitions",
            json={"action": action, **body},
            headers=self.h(who),
        )


@pytest.fixture
def api(sqlite_hubkit: HubKit) -> Iterator[Api]:
    yield Api(sqlite_hubkit, anonymous_read=False)


def test_reads_need_a_token_unless_anonymous_read(sqlite_hubkit: HubKit) -> None:
    closed = Api(sqlite_hubkit, anonymous_read=False)
    r = closed.client.get("/api/v1/work-orders")
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "unauthorized" and r.json()["detail"]
    assert (
        closed.client.get(
            "/api/v1/work-orders", headers={"Authorization": "Bearer nope"}
        ).status_code
        == 401
    )
    assert closed.client.get("/api/v1/work-orders", headers=closed.h("viewer")).status_code == 200
    open_ = TestClient(
        create_app(sqlite_hubkit.config, sqlite_hubkit.store, lambda: True, sqlite_hubkit.core)
    )
    assert open_.get("/api/v1/work-orders").status_code == 200
    # anonymous may read but not act
    sqlite_hubkit.feed(sqlite_hubkit.event())
    wo = sqlite_hubkit.orders()[0]["id"]
    assert (
        open_.post(f"/api/v1/work-orders/{wo}/transitions", json={"action": "track"}).status_code
        == 401
    )


def test_transition_api_and_audit(api: Api) -> None:
    k = api.kit
    k.feed(k.event(grid_id="beibei-tianfu-01"))
    wo = k.orders()[0]["id"]
    r = api.move(wo, "worker", "accept")
    assert r.status_code == 409
    err = r.json()["error"]
    assert (
        err["code"] == "conflict"
        and err["allowed"] == ["track", "false_alarm"]
        and err["state"] == "reported"
    )
    assert api.move(wo, "viewer", "track").status_code in (403, 404)
    assert api.move(wo, "worker2", "track").status_code == 404  # out of scope
    r = api.move(wo, "worker", "track", note="已到现场")
    assert r.status_code == 200 and r.json()["state"] == "dispatched"
    assert api.move(wo, "worker", "accept").status_code == 200
    up = api.client.post(
        "/api/v1/uploads", content=PNG, headers={**api.h("worker"), "Content-Type": "image/png"}
    )
    assert up.status_code == 201
    r = api.move(wo, "worker", "handle", note="处理完毕", photos=[up.json()["id"]])
    assert r.status_code == 200 and r.json()["state"] == "handled"
    assert api.move(wo, "cc", "rate", rating=9).status_code == 409  # not in this state
    assert api.move(wo, "cc", "verify").status_code == 200
    assert api.move(wo, "cc", "rate", rating=9).status_code == 422
    assert api.move(wo, "cc", "rate", rating=5).json()["state"] == "closed"
    assert api.move(wo, "cc", "bogus").status_code == 422  # a bad request, not a state conflict
    trail = api.client.get(f"/api/v1/work-orders/{wo}/transitions", headers=api.h("cc")).json()
    handle = [t for t in trail["items"] if t["action"] == "handle"][0]
    assert handle["actor"] == "w-tianfu-01" and handle["photos"] == [up.json()["id"]]
    assert api.client.get(f"/api/v1/uploads/{up.json()['id']}", headers=api.h("cc")).content == PNG
    audit = api.client.get("/api/v1/audit", headers=api.h("admin")).json()["items"]
    assert any(a["action"] == "upload" for a in audit) and any(
        a["action"] == "work_order.handle" for a in audit
    )


def test_scoping_per_role_in_lists(api: Api) -> None:
    k = api.kit
    k.feed(k.event("fire_lane_blocked", grid_id="beibei-tianfu-01"))
    k.clock.advance(hours=1)
    k.feed(k.event("sanitation", grid_id="beibei-tianfu-02", kind="citizen"))
    k.clock.advance(hours=1)
    k.feed(k.event("sanitation", grid_id="yubei-longxi-01", kind="citizen", node_id="other"))

    def ids(who: str, path: str = "/api/v1/work-orders") -> set[str]:
        return {x["grid_id"] for x in api.client.get(path, headers=api.h(who)).json()["items"]}

    assert ids("admin") == {"beibei-tianfu-01", "beibei-tianfu-02", "yubei-longxi-01"}
    assert ids("cc") == {"beibei-tianfu-01", "beibei-tianfu-02"}
    assert ids("worker") == {"beibei-tianfu-01"}
    assert ids("life") == {"beibei-tianfu-02"}  # livelihood board only
    assert ids("worker", "/api/v1/incidents") == {"beibei-tianfu-01"}
    events = api.client.get("/api/v1/events", headers=api.h("worker2")).json()["items"]
    assert len(events) == 1 and events[0]["type"] == "sanitation"
    mine = api.client.get("/api/v1/work-orders?mine=true", headers=api.h("worker")).json()["items"]
    assert [o["assignee_id"] for o in mine] == ["w-tianfu-01"]


def test_lists_page_with_cursor(api: Api) -> None:
    k = api.kit
    for i in range(5):
        k.clock.advance(hours=1)
        k.feed(
            k.event("sanitation", grid_id="beibei-tianfu-02", kind="citizen", summary=f"垃圾{i}")
        )
    seen: list[str] = []
    url = "/api/v1/work-orders?limit=2"
    while True:
        page = api.client.get(url, headers=api.h("admin")).json()
        seen += [o["id"] for o in page["items"]]
        if page["next"] is None:
            break
        url = f"/api/v1/work-orders?limit=2&cursor={page['next']}"
    assert len(seen) == len(set(seen)) == 5
    assert (
        api.client.get("/api/v1/events?cursor=abc", headers=api.h("admin")).json()["error"]["code"]
        == "bad_request"
    )
    for path in (
        "/api/v1/events",
        "/api/v1/incidents",
        "/api/v1/hotspots",
        "/api/v1/nodes",
        "/api/v1/sources",
    ):
        body = api.client.get(path, headers=api.h("admin")).json()
        assert set(body) == {"items", "next"}, path


def test_uploads_limited_in_type_and_size(api: Api) -> None:
    c, h = api.client, api.h("worker")
    assert (
        c.post(
            "/api/v1/uploads", content=b"<script>", headers={**h, "Content-Type": "text/html"}
        ).status_code
        == 415
    )
    assert (
        c.post(
            "/api/v1/uploads", content=b"not a png", headers={**h, "Content-Type": "image/png"}
        ).status_code
        == 415
    )
    big = PNG + b"\x00" * api.kit.config.upload_max_bytes
    r = c.post("/api/v1/uploads", content=big, headers={**h, "Content-Type": "image/png"})
    assert r.status_code == 413 and r.json()["error"]["code"] == "too_large"
    assert (
        c.post("/api/v1/uploads", content=PNG, headers={"Content-Type": "image/png"}).status_code
        == 401
    )


def test_ack_stops_the_flashing(api: Api) -> None:
    k = api.kit
    k.feed(k.event("fire", severity="emergency", grid_id="beibei-tianfu-01"))
    inc = api.client.get("/api/v1/incidents?pinned=true", headers=api.h("cc")).json()["items"]
    assert len(inc) == 1
    r = api.client.post(
        f"/api/v1/incidents/{inc[0]['id']}/ack", json={"note": "已调度"}, headers=api.h("cc")
    )
    assert (
        r.status_code == 200 and r.json()["pinned"] is False and r.json()["acked_by"] == "cc-tianfu"
    )
    assert (
        api.client.get("/api/v1/incidents?pinned=true", headers=api.h("cc")).json()["items"] == []
    )


def test_stats_kpis_and_openapi(api: Api) -> None:
    k = api.kit
    k.feed(k.event(grid_id="beibei-tianfu-01"))
    wo = k.orders()[0]["id"]
    for who, action in (
        ("worker", "track"),
        ("worker", "accept"),
        ("worker", "handle"),
        ("cc", "rework"),
        ("worker", "handle"),
        ("cc", "verify"),
    ):
        assert api.move(wo, who, action).status_code == 200
    api.move(wo, "cc", "rate", rating=4)
    k.clock.advance(hours=1)
    k.feed(k.event("sanitation", grid_id="beibei-tianfu-02", kind="citizen"))
    s = api.client.get("/api/v1/stats", headers=api.h("admin")).json()
    assert s["events_total"] == 2 and s["work_orders_total"] == 2 and s["work_orders_closed"] == 1
    assert s["close_rate"] == 0.5 and s["rework_rate"] == 1.0 and s["on_time_close_rate"] == 1.0
    assert s["by_board"] == {"safety_law": 1, "livelihood": 1} and s["by_level"] == {"grid": 2}
    assert len(s["incidents_trend"]) == 14
    spec = api.client.get("/openapi.json").json()
    for path in (
        "/api/v1/events",
        "/api/v1/incidents",
        "/api/v1/work-orders",
        "/api/v1/work-orders/{wo_id}/transitions",
        "/api/v1/hotspots",
        "/api/v1/stats",
        "/api/v1/nodes",
        "/api/v1/stream",
    ):
        assert path in spec["paths"], path
    assert "哨兵" in api.client.get("/").text


def test_login_and_users(api: Api) -> None:
    c = api.client
    assert c.post("/api/v1/login", json={"name": "viewer", "password": "wrong"}).status_code == 401
    tok = c.post("/api/v1/login", json={"name": "viewer", "password": "secret-pass"}).json()[
        "token"
    ]
    assert (
        c.get("/api/v1/me", headers={"Authorization": f"Bearer {tok}"}).json()["role"] == "viewer"
    )
    assert (
        c.post(
            "/api/v1/users", json={"name": "x", "role": "viewer"}, headers=api.h("cc")
        ).status_code
        == 403
    )
    r = c.post(
        "/api/v1/users",
        json={"name": "w2", "role": "grid_worker", "scope": "beibei-tianfu"},
        headers=api.h("admin"),
    )
    assert r.status_code == 422 and "grid" in r.json()["error"]["message"]
    r = c.post(
        "/api/v1/users",
        json={"name": "w3", "role": "grid_worker", "scope": "beibei-bwq-01"},
        headers=api.h("admin"),
    )
    assert r.status_code == 201
    assert (
        c.get("/api/v1/me", headers={"Authorization": f"Bearer {r.json()['token']}"}).json()[
            "scope_id"
        ]
        == "beibei-bwq-01"
    )
    assert all(
        "token" not in u for u in c.get("/api/v1/users", headers=api.h("admin")).json()["items"]
    )
