"""hub/registry.py: placement by grid id, polygon, GCJ-02, address, node; validation."""

from __future__ import annotations

from pathlib import Path

import pytest

from hub.geo import wgs84_to_gcj02
from hub.registry import load_registry, validate_registry_file
from shaobing.config import ConfigError
from shaobing.contract import Event
from shaobing.paths import configs_dir

REG = configs_dir() / "demo" / "registry.yaml"


@pytest.fixture(scope="module")
def reg():  # type: ignore[no-untyped-def]
    return load_registry(REG)


def ev(node: str = "n1", kind: str = "report", **loc: object) -> Event:
    return Event.model_validate(
        {
            "id": "e1",
            "type": "sanitation",
            "severity": "normal",
            "incident_key": "k",
            "occurred_at": "2026-03-02T09:00:00+08:00",
            "detected_at": "2026-03-02T09:00:01+08:00",
            "source": {"node_id": node, "kind": kind, "device_id": "d", "pipeline": "p"},
            "location": loc,
            "confidence": 1,
            "summary": "垃圾",
            **({"attributes": {"crs": "gcj02"}} if loc.pop("gcj", False) else {}),
        }
    )


def test_demo_registry_is_valid() -> None:
    validate_registry_file(REG)


def test_place_by_grid_id(reg) -> None:  # type: ignore[no-untyped-def]
    p = reg.place(ev(grid_id="beibei-tianfu-02", kind="camera"))
    assert (p.grid_id, p.community_id, p.town_id, p.district_id, p.method) == (
        "beibei-tianfu-02",
        "beibei-tianfu-daiyun",
        "beibei-tianfu",
        "beibei",
        "grid_id",
    )
    # a worker's report carries the reporter's default grid: placed there, but weakly
    assert reg.place(ev(grid_id="beibei-tianfu-02")).method == "default"


def test_place_by_polygon(reg) -> None:  # type: ignore[no-untyped-def]
    assert reg.place(ev(lat=29.845, lon=106.44)).grid_id == "beibei-tianfu-03"
    assert reg.place(ev(lat=29.595, lon=106.535)).grid_id == "yubei-longxi-01"


def test_gcj02_input_is_converted_when_flagged(reg) -> None:  # type: ignore[no-untyped-def]
    # a WGS-84 point just inside grid 01's east edge; its GCJ-02 coordinates lie ~500 m off
    lat, lon = 29.8550, 106.4395
    glat, glon = wgs84_to_gcj02(lat, lon)
    assert reg.place(ev(lat=lat, lon=lon)).grid_id == "beibei-tianfu-01"
    assert (
        reg.place(ev(lat=glat, lon=glon)).grid_id != "beibei-tianfu-01"
    )  # unflagged: taken as WGS-84
    assert reg.place(ev(lat=glat, lon=glon, gcj=True)).grid_id == "beibei-tianfu-01"


def test_place_by_address_name(reg) -> None:  # type: ignore[no-untyped-def]
    assert reg.place(ev(address="北碚区天府镇兴隆村滨河步道 东段")).grid_id == "beibei-tianfu-03"
    p = reg.place(ev(address="缙云社区 某小区门口"))
    assert p.community_id == "beibei-bwq-jinyun" and p.placed


def test_unknown_grid_falls_back_to_node_then_unplaced(reg) -> None:  # type: ignore[no-untyped-def]
    assert reg.place(ev(node="demo-firelane-01", grid_id="unknown")).grid_id == "yubei-longxi-01"
    p = reg.place(ev(node="stranger", address="火星 基地"))
    assert not p.placed and p.grid_id is None


def test_people_on_duty(reg) -> None:  # type: ignore[no-untyped-def]
    p = reg.place(ev(grid_id="beibei-tianfu-01"))
    assert [x.id for x in reg.on_duty(p, "grid", "safety_law")] == ["w-tianfu-01", "w-tianfu-01b"]
    assert reg.on_duty(p, "community", "safety_law")[0].id == "c-daiyun"
    assert reg.on_duty(p, "town", "livelihood")[0].id == "h-tianfu-life"
    assert reg.on_duty(p, "district", "safety_law")[0].id == "beibei-emergency"
    ids = {x.id for x in reg.responsible(p, "safety_law")}
    assert {"w-tianfu-01", "c-daiyun", "h-tianfu-safety", "beibei-emergency", "cc-tianfu"} <= ids


def test_validation_names_file_line_and_key(tmp_path: Path) -> None:
    bad = tmp_path / "reg.yaml"
    bad.write_text(
        "kind: registry\n"
        "districts:\n"
        "  - id: d1\n"
        "    name: 区\n"
        "    towns:\n"
        "      - id: t1\n"
        "        name: 镇\n"
        "        command_centre: {id: cc, name: 中心}\n"
        "        board_handlers: {roads: {id: h, name: 某}}\n"
        "        communities:\n"
        "          - id: c1\n"
        "            name: 社区\n"
        "            handler: {id: ch, name: 某}\n"
        "            grids:\n"
        "              - {id: g1, name: 格, worker: {id: w, name: 某}, polygon: [[1, 1], [2, 2]]}\n"
        "              - {id: g1, name: 格2, worker: {id: w2, name: 某}, colour: red}\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as info:
        validate_registry_file(bad)
    text = str(info.value)
    assert f"{bad}:9 districts.0.towns.0.board_handlers" in text and "roads" in text
    assert f"{bad}:15 districts.0.towns.0.communities.0.grids.0.polygon" in text
    assert f"{bad}:16" in text and "colour" in text


def test_gcj02_polygons_are_converted_at_load(tmp_path: Path) -> None:
    # the same square drawn on a GCJ-02 map: its WGS-84 interior is ~500 m away
    corners = [(106.430, 29.850), (106.440, 29.850), (106.440, 29.860), (106.430, 29.860)]
    ring = [list(reversed(wgs84_to_gcj02(lat, lon))) for lon, lat in corners]
    f = tmp_path / "reg.yaml"
    f.write_text(
        "kind: registry\ncrs: gcj02\ndistricts:\n  - id: d\n    name: 区\n    towns:\n      - id: t\n        name: 镇\n"
        "        command_centre: {id: cc, name: 中心}\n        communities:\n          - id: c\n            name: 社区\n"
        f"            handler: {{id: h, name: 某}}\n            grids:\n              - {{id: g, name: 格, worker: {{id: w, name: 某}}, polygon: {ring}}}\n",
        encoding="utf-8",
    )
    reg = load_registry(f)
    assert reg.locate(29.855, 106.435) == "g"
    assert reg.locate(29.8505, 106.4395) == "g"
