"""hub/labelled.py: extraction shown for checking, confirmed reports, labelled examples, export."""

from __future__ import annotations

import argparse
import csv
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from hub.app import create_app
from hub.labelled import export_labelled, labelled_rows
from hub.users import create_user
from tests.conftest import HubKit


@pytest.fixture
def worker(sqlite_hubkit: HubKit) -> Iterator[tuple[TestClient, dict[str, str]]]:
    kit = sqlite_hubkit
    client = TestClient(create_app(kit.config, kit.store, lambda: True, kit.core))
    token = create_user(
        kit.store, "w-tianfu-01", "grid_worker", "beibei-tianfu-01", registry=kit.core.registry
    )
    yield client, {"Authorization": f"Bearer {token}"}


def test_extract_shows_fields_and_stores_nothing(
    worker: tuple[TestClient, dict[str, str]], sqlite_hubkit: HubKit
) -> None:
    client, hdr = worker
    r = client.post(
        "/api/v1/reports/extract",
        json={"text": "代家沟社区3栋楼下消防通道被一辆车堵了"},
        headers=hdr,
    )
    assert r.status_code == 200, r.text
    f = r.json()
    assert f["type"] == "fire_lane_blocked" and f["type_name"] == "消防通道占用"
    assert "代家沟社区3栋" in f["location"] and f["severity"] == "normal"
    assert f["grid_id"] == "beibei-tianfu-01"
    assert labelled_rows(sqlite_hubkit.store) == [] and sqlite_hubkit.incidents() == []
    assert client.post("/api/v1/reports/extract", json={"text": "x"}).status_code == 401
    vague = client.post("/api/v1/reports/extract", json={"text": "这里有点问题"}, headers=hdr)
    assert vague.json()["needs_confirmation"] is True


def test_confirmed_report_keeps_what_the_worker_changed(
    worker: tuple[TestClient, dict[str, str]], sqlite_hubkit: HubKit, tmp_path: Path
) -> None:
    client, hdr = worker
    text = "代家沟社区5栋门口有人吵架，还动手推了人"
    extracted = client.post("/api/v1/reports/extract", json={"text": text}, headers=hdr).json()
    body = {
        "text": text,
        "type": "public_security",  # the worker says: a fight, not a quarrel
        "address": extracted["location"],
        "severity": "urgent",
        "client_id": "lab-1",
    }
    r = client.post("/api/v1/reports/confirmed", json=body, headers=hdr)
    assert r.status_code == 201, r.text
    out = r.json()
    ev = sqlite_hubkit.store.get_event(out["id"])
    assert ev is not None and ev["type"] == "public_security" and ev["severity"] == "urgent"
    assert ev["location"]["grid_id"] == "beibei-tianfu-01"
    assert ("type" in out["corrected"]) == (extracted["type"] != "public_security")
    # the same phone report sent twice is stored once
    again = client.post("/api/v1/reports/confirmed", json=body, headers=hdr).json()
    assert again == {"id": out["id"], "duplicate": True}
    rows = labelled_rows(sqlite_hubkit.store)
    assert len(rows) == 1
    row = rows[0]
    assert row["text"] == text and row["types"] == "public_security"
    assert row["extracted_type"] == extracted["type"] and row["corrected_by"] == "w-tianfu-01"
    # export in the shared TSV format, readable by `shaobing report eval`
    path = tmp_path / "labelled.tsv"
    assert export_labelled(sqlite_hubkit.store, path) == 1
    with path.open(encoding="utf-8", newline="") as fh:
        got = list(csv.DictReader(fh, delimiter="\t"))
    assert got[0]["text"] == text and got[0]["location"] == extracted["location"]
    from edge.reports.cli import eval_command

    assert eval_command(argparse.Namespace(tsv=str(path), config=None, json=True, audio=False)) == 0

    # unknown codes are refused; a token is required
    base = {"text": "井盖坏了", "type": "road_facility", "severity": "normal"}
    assert client.post("/api/v1/reports/confirmed", json={**base, "type": "nope"}, headers=hdr).status_code == 422  # fmt: skip
    assert client.post("/api/v1/reports/confirmed", json={**base, "severity": "high"}, headers=hdr).status_code == 422  # fmt: skip
    assert client.post("/api/v1/reports/confirmed", json=base).status_code == 401

    # the worker's severity never goes below the type's default on the wire; the label keeps it
    body = {"text": "代家沟社区有人落水", "type": "drowning", "severity": "normal"}
    r = client.post("/api/v1/reports/confirmed", json=body, headers=hdr)
    ev = sqlite_hubkit.store.get_event(r.json()["id"])
    assert ev is not None and ev["severity"] == "emergency"
    assert labelled_rows(sqlite_hubkit.store)[-1]["severities"] == "normal"
