"""hub/open311.py: GeoReport v2 services and requests, worker reports, the session cookie."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from hub.app import create_app
from hub.users import SYSTEM, create_user
from tests.conftest import HubKit

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


@pytest.fixture
def client(sqlite_hubkit: HubKit) -> Iterator[TestClient]:
    cfg = sqlite_hubkit.config.model_copy(
        update={"open311": sqlite_hubkit.config.open311.model_copy(update={"api_keys": ["k-1"]})}
    )
    yield TestClient(create_app(cfg, sqlite_hubkit.store, lambda: True, sqlite_hubkit.core))


def test_one_service_per_taxonomy_type_with_its_chinese_name(
    client: TestClient, sqlite_hubkit: HubKit
) -> None:
    services = client.get("/open311/v2/services.json").json()
    tax = sqlite_hubkit.core.taxonomy
    assert {s["service_code"] for s in services} == set(tax.types)
    fire = next(s for s in services if s["service_code"] == "fire_lane_blocked")
    assert fire["service_name"] == tax.name_of("fire_lane_blocked")
    assert client.get("/open311/v2/services/fire_lane_blocked.json").status_code == 200
    r = client.get("/open311/v2/services/nope.json")
    assert r.status_code == 404 and r.json()[0]["code"] == 404 and r.json()[0]["description"]


def test_a_post_becomes_an_incident_and_a_work_order(
    client: TestClient, sqlite_hubkit: HubKit
) -> None:
    r = client.post(
        "/open311/v2/requests.json",
        data={
            "api_key": "k-1",
            "service_code": "fire_lane_blocked",
            "lat": "29.8552",
            "long": "106.4352",
            "description": "消防通道被车堵了 <b>快来</b>",
        },
    )
    assert r.status_code == 200, r.text
    req_id = r.json()[0]["service_request_id"]
    ev = sqlite_hubkit.store.get_event(req_id)
    assert ev is not None and ev["source"]["kind"] == "citizen" and ev["source"]["node_id"] == "hub"
    incidents = sqlite_hubkit.incidents()
    assert len(incidents) == 1 and incidents[0]["grid_id"] == "beibei-tianfu-01"
    orders = sqlite_hubkit.orders()
    assert len(orders) == 1
    one = client.get(f"/open311/v2/requests/{req_id}.json").json()[0]
    assert one["status"] == "open" and one["service_code"] == "fire_lane_blocked"
    assert (
        one["expected_datetime"] is not None
        and one["description"] == "消防通道被车堵了 <b>快来</b>"
    )
    listed = client.get("/open311/v2/requests.json", params={"status": "open"}).json()
    assert [x["service_request_id"] for x in listed] == [req_id]
    assert client.get("/open311/v2/requests.json", params={"status": "closed"}).json() == []
    assert client.get(f"/open311/v2/tokens/{req_id}.json").json()[0]["service_request_id"] == req_id
    if orders[0]["state"] == "reported":
        sqlite_hubkit.core.orders.transition(orders[0]["id"], "false_alarm", SYSTEM, "误报")
        closed = client.get(f"/open311/v2/requests/{req_id}.json").json()[0]
        assert closed["status"] == "closed" and closed["expected_datetime"] is None


def test_post_errors_are_a_list_of_code_and_description(client: TestClient) -> None:
    base = {"service_code": "fire_lane_blocked", "lat": "29.85", "long": "106.43"}
    r = client.post("/open311/v2/requests.json", data=base)
    assert r.status_code == 403 and r.json()[0]["code"] == 403
    r = client.post("/open311/v2/requests.json", data={**base, "api_key": "wrong"})
    assert r.status_code == 403
    r = client.post(
        "/open311/v2/requests.json", data={**base, "api_key": "k-1", "service_code": "nope"}
    )
    assert r.status_code == 400 and "service_code" in r.json()[0]["description"]
    r = client.post(
        "/open311/v2/requests.json",
        data={"api_key": "k-1", "service_code": "fire_lane_blocked"},
    )
    assert r.status_code == 400 and "location" in r.json()[0]["description"]
    r = client.post("/open311/v2/requests.json", data={**base, "api_key": "k-1", "lat": "999"})
    assert r.status_code == 400
    assert client.get("/open311/v2/requests/none.json").status_code == 404


def test_posting_is_off_without_keys(sqlite_hubkit: HubKit) -> None:
    c = TestClient(
        create_app(sqlite_hubkit.config, sqlite_hubkit.store, lambda: True, sqlite_hubkit.core)
    )
    r = c.post(
        "/open311/v2/requests.json",
        data={"api_key": "", "service_code": "fire_lane_blocked", "address_string": "3栋"},
    )
    assert r.status_code == 403


def test_worker_report_with_photo_lands_in_their_grid_once(
    client: TestClient, sqlite_hubkit: HubKit
) -> None:
    create_user(
        sqlite_hubkit.store,
        "w-tianfu-01",
        "grid_worker",
        "beibei-tianfu-01",
        password="pw-123456",
        registry=sqlite_hubkit.core.registry,
    )
    r = client.post("/api/v1/login?cookie=true", json={"name": "w-tianfu-01", "password": "pw-123456"})  # fmt: skip
    assert r.status_code == 200 and r.json()["token"] is None
    cookie = r.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie
    # a cookie alone does not authorise a mutation: the CSRF header is required
    assert client.post("/api/v1/uploads", content=PNG, headers={"content-type": "image/png"}).status_code == 401  # fmt: skip
    hdr = {"x-shaobing-csrf": "1"}
    up = client.post("/api/v1/uploads", content=PNG, headers={"content-type": "image/png", **hdr})
    assert up.status_code == 201, up.text
    body = {"text": "小区门口消防通道被占用", "photos": [up.json()["id"]], "client_id": "abc123"}
    r1 = client.post("/api/v1/reports", json=body, headers=hdr)
    assert r1.status_code == 201, r1.text
    r2 = client.post("/api/v1/reports", json=body, headers=hdr)
    assert r2.json()["duplicate"] is True and r2.json()["id"] == r1.json()["id"]
    ev = sqlite_hubkit.store.get_event(r1.json()["id"])
    assert ev is not None and ev["source"]["kind"] == "report"
    assert ev["location"]["grid_id"] == "beibei-tianfu-01" and len(ev["evidence"]) == 1
    img = client.get(f"/api/v1/evidence/{up.json()['id']}?node_id=hub")
    assert img.status_code == 200 and img.content == PNG
    assert len(sqlite_hubkit.incidents()) == 1
    client.cookies.clear()
    assert client.post("/api/v1/reports", json=body, headers=hdr).status_code == 401
