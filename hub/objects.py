"""Where evidence bytes live: a folder (default, shared between workers as a volume) or an
S3-compatible bucket (MinIO, Ceph, a cloud object store), configured by URL.

``evidence_url: s3://BUCKET/PREFIX?endpoint=http://minio:9000&region=cn-southwest-1``;
credentials come from the usual ``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY``
environment variables. Objects are named by their sha256 only — never by anything from
the wire.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import parse_qs, urlparse

S3_PREFIX = "s3://"


class ObjectStore(Protocol):
    """Content-addressed storage of evidence bytes."""

    def put(self, sha256: str, data: bytes) -> str:
        """Store bytes under their hash (idempotent); returns the location to record."""
        ...

    def get(self, location: str) -> bytes:
        """The bytes at a location returned by ``put``."""
        ...


class DiskObjects:
    """Files under ``root/objects/ab/abcdef…``, written atomically and fsynced."""

    def __init__(self, root: str | Path) -> None:
        self.objects = Path(root) / "objects"
        self.objects.mkdir(parents=True, exist_ok=True)

    def put(self, sha256: str, data: bytes) -> str:
        """Write once; an existing object is kept."""
        path = self.objects / sha256[:2] / sha256
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
            try:
                with os.fdopen(fd, "wb") as f:
                    f.write(data)
                    f.flush()
                    os.fsync(f.fileno())
                os.replace(tmp, path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        return str(path)

    def get(self, location: str) -> bytes:
        """Read a file written by ``put``."""
        return Path(location).read_bytes()


class S3Objects:
    """Objects in an S3-compatible bucket (boto3, the ``s3`` extra).

    Args:
        url: ``s3://bucket/prefix?endpoint=http://host:9000&region=REGION``.
        client: an existing boto3 S3 client (tests), else one is made from the URL.
    """

    def __init__(self, url: str, client: Any = None) -> None:
        parsed = urlparse(url)
        if parsed.scheme != "s3" or not parsed.netloc:
            raise ValueError(f"evidence_url: expected s3://bucket/prefix, found {url!r}")
        self.bucket = parsed.netloc
        self.prefix = parsed.path.strip("/")
        query = {k: v[-1] for k, v in parse_qs(parsed.query).items()}
        if client is None:
            try:
                import boto3
            except ImportError:
                raise ValueError(
                    "evidence_url: s3:// storage needs boto3 (pip install 'shaobing[s3]')"
                ) from None
            client = boto3.client(
                "s3",
                endpoint_url=query.get("endpoint"),
                region_name=query.get("region", "us-east-1"),
            )
        self.client = client

    def _key(self, sha256: str) -> str:
        name = f"{sha256[:2]}/{sha256}"
        return f"{self.prefix}/{name}" if self.prefix else name

    def put(self, sha256: str, data: bytes) -> str:
        """Upload (an object with the same hash has the same bytes: overwriting is harmless)."""
        key = self._key(sha256)
        self.client.put_object(Bucket=self.bucket, Key=key, Body=data, ContentLength=len(data))
        return f"{S3_PREFIX}{self.bucket}/{key}"

    def get(self, location: str) -> bytes:
        """Download an object recorded by ``put``."""
        if not location.startswith(f"{S3_PREFIX}{self.bucket}/"):
            raise ValueError(
                f"evidence location: expected s3://{self.bucket}/…, found {location!r}"
            )
        key = location[len(S3_PREFIX) + len(self.bucket) + 1 :]
        body = self.client.get_object(Bucket=self.bucket, Key=key)["Body"]
        data: bytes = body.read()
        return data


def object_store(evidence_url: str | None, evidence_dir: Path) -> ObjectStore:
    """The configured backend: S3 when ``evidence_url`` is set, else the folder."""
    if evidence_url:
        return S3Objects(evidence_url)
    return DiskObjects(evidence_dir)
