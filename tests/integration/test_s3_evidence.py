"""Evidence in S3-compatible storage (``evidence_url: s3://…``), for hub workers that share no disk.

The object store here is moto's server mode: a local S3-compatible test server from PyPI
standing in for MinIO or a cloud bucket, which cannot run on this machine. Everything else
is real: mosquitto, the hub process, boto3 over HTTP on loopback.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from hub.objects import S3Objects
from shaobing import topics
from shaobing.contract import Event, Evidence, Location, Source, new_event_id
from tests.support.mosquitto import Mosquitto, free_port
from tests.support.processes import start_hub, wait_for

boto3 = pytest.importorskip("boto3", reason="boto3 comes with the s3 extra")
pytest.importorskip("moto.server", reason="moto[server] is the local S3 test server (dev extra)")


@pytest.fixture()
def s3_endpoint(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(
            lambda: urllib.request.urlopen(url, timeout=1).status < 500, 30, "the S3 test server"
        )
        boto3.client("s3", endpoint_url=url, region_name="us-east-1").create_bucket(
            Bucket="evidence"
        )
        yield url
    finally:
        proc.terminate()
        proc.wait(10)


def test_objects_round_trip_by_hash(s3_endpoint: str) -> None:
    store = S3Objects(f"s3://evidence/town-a?endpoint={s3_endpoint}")
    data = b"\xff\xd8 a snapshot"
    sha = hashlib.sha256(data).hexdigest()
    location = store.put(sha, data)
    assert location == f"s3://evidence/town-a/{sha[:2]}/{sha}"
    assert store.get(location) == data
    with pytest.raises(ValueError, match="s3://evidence"):
        store.get("s3://other/x")


def test_bad_url_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="s3://bucket/prefix"):
        S3Objects("http://not-s3/bucket")


def test_hub_stores_evidence_in_the_bucket_and_serves_it(tmp_path: Path, s3_endpoint: str) -> None:
    with Mosquitto(workdir=tmp_path / "broker") as broker:
        port = free_port()
        hub = start_hub(
            tmp_path,
            broker.url,
            port,
            extra={"evidence_url": f"s3://evidence/hub?endpoint={s3_endpoint}"},
        )
        try:
            image = b"\xff\xd8\xff\xe0" + b"jpeg-bytes" * 100
            sha = hashlib.sha256(image).hexdigest()
            now = datetime.now(UTC)
            event = Event(
                id=new_event_id(),
                type="fire",
                severity="emergency",
                incident_key="s3-node/cam1/smoke_fire/1",
                occurred_at=now,
                detected_at=now,
                source=Source(
                    node_id="s3-node", kind="camera", device_id="cam1", pipeline="smoke_fire"
                ),
                location=Location(grid_id="beibei-tianfu-01"),
                confidence=0.9,
                summary="地下商场 火情",
                evidence=[
                    Evidence(
                        id="ev1",
                        kind="image",
                        content_type="image/jpeg",
                        sha256=sha,
                        bytes=len(image),
                    )
                ],
            )
            client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="s3-node")
            client.connect("127.0.0.1", broker.port)
            client.loop_start()
            client.publish(topics.evidence_topic("s3-node", "ev1"), image, qos=1).wait_for_publish(
                5
            )
            client.publish(topics.event_topic("s3-node"), event.to_bytes(), qos=1).wait_for_publish(
                5
            )
            client.loop_stop()
            client.disconnect()

            def fetch() -> bytes:
                with urllib.request.urlopen(
                    f"http://127.0.0.1:{port}/api/v1/evidence/ev1?node_id=s3-node", timeout=3
                ) as r:
                    assert r.headers["Content-Type"] == "image/jpeg"
                    return bytes(r.read())

            assert wait_for(fetch, 30, "the evidence through the hub") == image
            s3 = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1")
            keys = [o["Key"] for o in s3.list_objects_v2(Bucket="evidence").get("Contents", [])]
            assert f"hub/{sha[:2]}/{sha}" in keys
            assert not list(
                (tmp_path / "hub-evidence").glob("objects/*/*")
            )  # nothing on the hub's disk
            assert (
                json.loads(
                    urllib.request.urlopen(
                        f"http://127.0.0.1:{port}/api/v1/stats", timeout=3
                    ).read()
                )["events_total"]
                == 1
            )
        finally:
            hub.stop()
