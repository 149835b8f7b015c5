"""``POST /api/v1/reports``: bad uploads get a 4xx and store nothing; good ones become Events."""

from __future__ import annotations

import hashlib
import io
import wave
from collections.abc import Iterator

import numpy as np
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from edge.reports import load_context
from edge.reports.asr import Transcriber
from edge.reports.endpoint import build_router
from shaobing.config import EdgeConfig
from shaobing.contract import Event
from shaobing.paths import shared_dir
from tests.unit.edge.test_reports_photo import jpeg_with_exif

AUDIO_DIR = shared_dir() / "data" / "reports" / "audio"
CTX = load_context()


def wav_bytes(seconds: float, tone: bool = False, rate: int = 16000) -> bytes:
    t = np.arange(int(seconds * rate)) / rate
    samples = (0.3 * np.sin(2 * np.pi * 440 * t) if tone else np.zeros_like(t)) * 32767
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(samples.astype("<i2").tobytes())
    return buf.getvalue()


class Store:
    """Records what the endpoint submits (stands in for the outbox in these HTTP-level tests)."""

    def __init__(self) -> None:
        self.items: list[tuple[Event, dict[str, bytes]]] = []
        self.fail = False

    def __call__(self, event: Event, blobs: dict[str, bytes]) -> None:
        if self.fail:
            raise OSError("disk full")
        self.items.append((event, blobs))


@pytest.fixture(scope="module")
def transcriber() -> Transcriber:
    return Transcriber(CTX.places, CTX.keywords)


@pytest.fixture()
def app(transcriber: Transcriber) -> Iterator[tuple[TestClient, Store]]:
    cfg = EdgeConfig(node_id="edge-test", grid_id="beibei-tianfu-01")
    store = Store()
    api = FastAPI()
    api.include_router(build_router(cfg, store, context=CTX, transcriber=transcriber))
    with TestClient(api) as client:
        yield client, store


def test_wrong_type_is_415(app: tuple[TestClient, Store]) -> None:
    client, store = app
    r = client.post("/api/v1/reports", files={"audio": ("notes.txt", b"hello", "text/plain")})
    assert r.status_code == 415 and "wav" in r.json()["detail"]
    r = client.post("/api/v1/reports", files={"audio": ("clip.mp4", b"....", "video/mp4")})
    assert r.status_code == 415
    ok, bad = wav_bytes(1.0, tone=True), b"%PDF-1.4 not a photo"
    r = client.post(
        "/api/v1/reports",
        files=[("audio", ("a.wav", ok, "audio/wav")), ("photos", ("p.jpg", bad, "image/jpeg"))],
    )
    assert r.status_code == 415
    assert store.items == []


def test_too_big_and_too_long_are_413(app: tuple[TestClient, Store]) -> None:
    client, store = app
    big = b"RIFF" + b"\x00" * (20 * 1024 * 1024 + 10)
    r = client.post("/api/v1/reports", files={"audio": ("big.wav", big, "audio/wav")})
    assert r.status_code == 413
    r = client.post(
        "/api/v1/reports", files={"audio": ("long.wav", wav_bytes(121.0, tone=True), "audio/wav")}
    )
    assert r.status_code == 413 and "120" in r.json()["detail"]
    photo = b"\xff\xd8\xff" + b"\x00" * (10 * 1024 * 1024 + 1)
    r = client.post(
        "/api/v1/reports",
        data={"text": "有人落水"},
        files={"photos": ("p.jpg", photo, "image/jpeg")},
    )
    assert r.status_code == 413
    assert store.items == []


def test_silent_and_undecodable_are_422(app: tuple[TestClient, Store]) -> None:
    client, store = app
    r = client.post("/api/v1/reports", files={"audio": ("quiet.wav", wav_bytes(3.0), "audio/wav")})
    assert r.status_code == 422 and "silence" in r.json()["detail"]
    r = client.post(
        "/api/v1/reports", files={"audio": ("junk.mp3", b"\x00\x01\x02junk" * 500, "audio/mpeg")}
    )
    assert r.status_code == 422
    r = client.post(
        "/api/v1/reports", files={"audio": ("empty.wav", b"", "audio/wav")}, data={"text": ""}
    )
    assert r.status_code == 422
    r = client.post("/api/v1/reports", data={"lat": "29.5"})
    assert r.status_code == 422
    assert store.items == []


def test_text_and_photo_report(app: tuple[TestClient, Store]) -> None:
    client, store = app
    photo = jpeg_with_exif(lat=29.8512, lon=106.4355, taken="2026:07:01 14:30:05")
    r = client.post(
        "/api/v1/reports",
        data={
            "text": "代家沟社区第二网格楼下消防通道被一辆白色轿车堵住了",
            "worker_id": "w-tianfu-02",
        },
        files={"photos": ("p.jpg", photo, "image/jpeg")},
    )
    assert r.status_code == 202, r.text
    (event, blobs) = store.items[-1]
    assert r.json()["id"] == event.id
    assert event.type == "fire_lane_blocked" and event.severity == "normal"
    assert event.source.kind == "report" and event.source.node_id == "edge-test"
    assert event.source.device_id == "w-tianfu-02" and event.source.pipeline == "report"
    assert event.location.grid_id == "beibei-tianfu-02"
    assert event.location.lat == pytest.approx(29.8512, abs=1e-4)
    assert event.occurred_at.isoformat().startswith("2026-07-01T14:30:05")
    (ev,) = event.evidence
    assert (
        ev.kind == "image"
        and ev.sha256 == hashlib.sha256(photo).hexdigest()
        and blobs[ev.id] == photo
    )
    Event.from_json(event.to_bytes())  # valid on the wire


def test_no_place_falls_back_to_worker_grid(app: tuple[TestClient, Store]) -> None:
    client, store = app
    r = client.post("/api/v1/reports", data={"text": "楼下有人吵架", "grid_id": "yubei-longxi-01"})
    assert r.status_code == 202
    assert store.items[-1][0].location.grid_id == "yubei-longxi-01"
    assert store.items[-1][0].attributes["needs_confirmation"] is True


def test_store_failure_is_503(app: tuple[TestClient, Store]) -> None:
    client, store = app
    store.fail = True
    r = client.post("/api/v1/reports", data={"text": "缙云社区有人落水"})
    assert r.status_code == 503


@pytest.mark.skipif(not (AUDIO_DIR / "dev_22.wav").is_file(), reason="spoken dev set not present")
def test_spoken_report_becomes_event(app: tuple[TestClient, Store]) -> None:
    client, store = app
    audio = (AUDIO_DIR / "dev_22.wav").read_bytes()
    r = client.post(
        "/api/v1/reports", files={"audio": ("r.wav", audio, "audio/wav")}, data={"worker_id": "w1"}
    )
    assert r.status_code == 202, r.text
    (event, blobs) = store.items[-1]
    assert event.type == "fire_lane_blocked"
    assert "消防通道" in event.attributes["transcript"]
    (ev,) = event.evidence
    assert ev.kind == "audio" and ev.content_type == "audio/wav"
    assert ev.sha256 == hashlib.sha256(audio).hexdigest() and blobs[ev.id] == audio
