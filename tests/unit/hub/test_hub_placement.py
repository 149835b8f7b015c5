"""Honest placement and merging that keeps separate cases separate (demo registry).

- A report about a place the registry cannot resolve (another district) is never filed
  under the reporter's or node's default grid: it is unplaced and goes to screening.
- GPS inside a grid polygon beats the uploader's grid.
- N reports of one type about N different places within a minute are N incidents, inside
  and outside the registry; the same place twice is one.
- Every merge says why in the timeline; an operator can split a wrongly merged event out.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from hub.users import Principal
from hub.workorders import Forbidden
from tests.conftest import HubKit

DEFAULT_GRID = "beibei-tianfu-03"  # 兴隆村第三网格, the reporting node's default


def report(k: HubKit, text: str, detail: dict[str, str] | None = None, **kw: object):  # type: ignore[no-untyped-def]
    """A worker's report as the edge sends it: the node's default grid and the place said."""
    attrs = {"location_detail": detail} if detail else {}
    return k.event(
        kw.pop("type_", "sanitation"),
        kind="report",
        node_id=kw.pop("node_id", "edge-xinglong"),
        device_id=kw.pop("device_id", "w-tianfu-03"),
        pipeline="report",
        grid_id=kw.pop("grid_id", DEFAULT_GRID),
        address=kw.pop("address", text),
        attributes=attrs,
        **kw,
    )


OUTSIDE = [
    ("荣昌区昌元街道玉屏路 垃圾堆放", {"district": "荣昌区", "town": "昌元街道"}),
    ("江津区几江街道滨江路 垃圾没人清", {"district": "江津区", "town": "几江街道"}),
    ("大渡口区春晖路街道 垃圾满了", {"district": "大渡口区", "town": "春晖路街道"}),
    ("巴南区圣灯山镇 路边垃圾", {"district": "巴南区", "town": "圣灯山镇"}),
    ("沙坪坝区磁器口 垃圾乱扔", {"district": "沙坪坝区"}),
]
INSIDE = [
    "代家沟社区 3栋 垃圾堆放",
    "代家沟社区 5栋 垃圾没清",
    "代家沟社区 地下商场 门口垃圾",
    "兴隆村滨河步道 垃圾",
    "缙云社区 垃圾桶满了",
]


def test_reports_about_other_districts_are_never_filed_in_the_default_grid(
    hubkit: HubKit,
) -> None:
    k = hubkit
    for text, detail in OUTSIDE:
        k.feed(report(k, text, detail))
    incs = k.incidents()
    assert len(incs) == len(OUTSIDE)
    for inc in incs:
        assert inc["placed"] is False and inc["grid_id"] is None, inc
        full = k.core.incidents.get(inc["id"], Principal("admin", "admin"))
        assert "待核实位置" in full["timeline"][0]["text"], full["timeline"][0]
    # the orders go to screening, not to the default grid's worker
    assert all(o["grid_id"] != DEFAULT_GRID for o in k.orders())


def test_a_town_the_default_grid_lies_in_keeps_the_default_grid(hubkit: HubKit) -> None:
    k = hubkit
    k.feed(report(k, "天府镇 兴隆村 路边垃圾", {"district": "北碚区", "town": "天府镇"}))
    (inc,) = k.incidents()
    assert inc["grid_id"] == DEFAULT_GRID and inc["placed"] is True


def test_a_named_grid_of_the_registry_wins_over_the_default(hubkit: HubKit) -> None:
    k = hubkit
    k.feed(report(k, "代家沟社区 3栋 楼下垃圾"))
    (inc,) = k.incidents()
    assert inc["grid_id"] == "beibei-tianfu-01"


def test_gps_inside_a_grid_beats_the_uploaders_grid(hubkit: HubKit) -> None:
    k = hubkit
    # a point inside 兴隆村第三网格's polygon, sent by a worker whose grid is 代家沟第一网格
    k.feed(report(k, "着火了", type_="fire", grid_id="beibei-tianfu-01", lat=29.845, lon=106.44))
    (inc,) = k.incidents()
    assert inc["grid_id"] == "beibei-tianfu-03"


@pytest.mark.parametrize("where", ["inside", "outside"])
def test_n_reports_of_one_type_at_n_places_within_a_minute_are_n_incidents(
    hubkit: HubKit, where: str
) -> None:
    k = hubkit
    items = [(t, None) for t in INSIDE] if where == "inside" else OUTSIDE
    for i, (text, detail) in enumerate(items):
        k.feed(report(k, text, detail, at=k.clock.now() + timedelta(seconds=10 * i)))
    assert len(k.incidents()) == len(items)
    assert len(k.orders()) == len(items)
    # the same place again within the minute joins its incident, and says why
    text, detail = items[0]
    k.feed(report(k, text, detail, at=k.clock.now() + timedelta(seconds=55)))
    incs = k.incidents()
    assert len(incs) == len(items)
    merged = next(i for i in incs if i["event_count"] == 2)
    full = k.core.incidents.get(merged["id"], Principal("admin", "admin"))
    assert any("原因" in t["text"] and "地址" in t["text"] for t in full["timeline"])


def test_a_weak_place_never_merges_by_type_and_time_alone(hubkit: HubKit) -> None:
    k = hubkit
    # a basement smoke detector, then a report of smoke in a stairwell of the same grid
    k.feed(
        k.event(
            "smoke",
            kind="sensor",
            node_id="gw",
            device_id="smoke-b1",
            pipeline="sensor_rules",
            grid_id="beibei-tianfu-01",
            address="代家沟社区 地下商场 B1",
            zone="basement",
        )
    )
    k.feed(report(k, "5栋楼道里冒烟", type_="smoke", grid_id="beibei-tianfu-01"))
    assert len(k.incidents()) == 2
    # a report with no place at all and only its default grid: separate too
    k.feed(report(k, "有烟", type_="smoke", grid_id="beibei-tianfu-01", address=None))
    assert len(k.incidents()) == 3


def test_an_operator_splits_a_wrongly_merged_event_out(hubkit: HubKit) -> None:
    k = hubkit
    first = k.event("fire", grid_id="beibei-tianfu-01", node_id="cam-a", device_id="cam1")
    second = k.event("fire", grid_id="beibei-tianfu-01", node_id="cam-b", device_id="cam9")
    k.feed(first, second)
    (inc,) = k.incidents()
    assert inc["event_count"] == 2
    cc = Principal("cc-tianfu", "command_centre", "beibei-tianfu")
    with pytest.raises(Forbidden):
        k.core.incidents.split(
            inc["id"], second.id, Principal("w", "grid_worker", "beibei-tianfu-01")
        )
    new = k.core.incidents.split(inc["id"], second.id, cc, note="两处不同的火")
    assert new["id"] != inc["id"]
    assert len(k.incidents()) == 2 and len(k.orders()) == 2
    old = k.core.incidents.get(inc["id"], cc)
    assert old["event_count"] == 1
    assert any(t["kind"] == "split" for t in old["timeline"])
    assert any(a["action"] == "incident.split" for a in k.store.list_audit())
    # the split event's later updates follow it, not the old incident
    k.feed(
        k.event(
            "fire",
            grid_id="beibei-tianfu-01",
            node_id="cam-b",
            device_id="cam9",
            incident_key=second.incident_key,
            state="update",
        )
    )
    assert k.core.incidents.get(new["id"], cc)["event_count"] == 2
