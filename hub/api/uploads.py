"""Uploads (photos from the phone page) and evidence (what the nodes sent)."""

from __future__ import annotations

import asyncio
import hashlib
import secrets
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import FileResponse, Response
from pydantic import BaseModel, Field

from hub.api.deps import Act, CoreDep, Read
from hub.objects import S3_PREFIX, S3Objects
from hub.repository import add_upload, evidence_visible, upload_row

router = APIRouter(tags=["evidence"])

UPLOAD_TYPES: dict[str, tuple[str, tuple[bytes, ...]]] = {
    "image/jpeg": (".jpg", (b"\xff\xd8\xff",)),
    "image/png": (".png", (b"\x89PNG\r\n\x1a\n",)),
    "image/webp": (".webp", (b"RIFF",)),
}


class UploadPublic(BaseModel):
    """A stored upload."""

    id: str = Field(description="upload id (for `photos` of transitions and reports)")
    content_type: str = Field(description="image/jpeg, image/png or image/webp")
    bytes: int = Field(description="size")
    sha256: str = Field(description="SHA-256 of the bytes (hex)")


async def _read_limited(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise HTTPException(
            status_code=413, detail=f"upload: expected at most {limit} bytes, found {declared}"
        )
    buf = bytearray()
    async for chunk in request.stream():
        buf.extend(chunk)
        if len(buf) > limit:
            raise HTTPException(
                status_code=413, detail=f"upload: expected at most {limit} bytes, found more"
            )
    return bytes(buf)


@router.post("/api/v1/uploads", status_code=201)
async def upload(
    request: Request, user: Act, core: CoreDep, work_order_id: str | None = None
) -> UploadPublic:
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype not in UPLOAD_TYPES:
        raise HTTPException(
            status_code=415,
            detail=f"content type: expected one of {', '.join(UPLOAD_TYPES)}, found {ctype or 'none'!r}",
        )
    config = core.config
    data = await _read_limited(request, config.upload_max_bytes)
    ext, magics = UPLOAD_TYPES[ctype]
    if (
        not data
        or not any(data.startswith(m) for m in magics)
        or (ctype == "image/webp" and data[8:12] != b"WEBP")
    ):
        raise HTTPException(
            status_code=415, detail=f"upload: expected {ctype} bytes, found something else"
        )
    if work_order_id:
        core.orders.get(work_order_id, user)
    digest = hashlib.sha256(data).hexdigest()
    up_id = secrets.token_hex(16)
    folder = config.resolve(config.evidence_dir) / "uploads"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{up_id}{ext}"
    await asyncio.to_thread(path.write_bytes, data)
    add_upload(core.store, up_id, work_order_id, ctype, len(data), digest, str(path), user.name)
    return UploadPublic(id=up_id, content_type=ctype, bytes=len(data), sha256=digest)


@router.get("/api/v1/uploads/{upload_id}")
def get_upload(upload_id: str, user: Read, core: CoreDep) -> FileResponse:
    r = upload_row(core.store, upload_id)
    if r is None or not Path(r.path).exists():
        raise HTTPException(status_code=404, detail=f"upload {upload_id!r} not found")
    if r.work_order_id:
        core.orders.get(r.work_order_id, user)  # 404 outside the viewer's scope
    elif user.role not in ("admin", "command_centre") and user.name != r.uploaded_by:
        # not attached to an order yet: only its uploader and the command centre
        raise HTTPException(status_code=404, detail=f"upload {upload_id!r} not found")
    return FileResponse(r.path, media_type=r.content_type)


@router.get("/api/v1/evidence/{evidence_id}", response_model=None)
def evidence(
    evidence_id: str,
    user: Read,
    core: CoreDep,
    request: Request,
    node_id: Annotated[
        str, Query(min_length=1, description="the node that sent it (ids are per node)")
    ],
) -> Response:
    store = core.store
    bucket: S3Objects | None = request.app.state.bucket
    rec = store.get_evidence(node_id, evidence_id)
    if rec is not None and not evidence_visible(store, core.registry, user, node_id, evidence_id):
        rec = None  # evidence follows the scope of the incident it belongs to
    if rec is not None and bucket is not None and rec["path"].startswith(S3_PREFIX):
        try:
            data = bucket.get(rec["path"])
        except Exception as exc:  # the object store is down or the object is gone
            raise HTTPException(
                status_code=404, detail=f"evidence {evidence_id!r} not available: {exc}"
            ) from None
        return Response(data, media_type=sniff(data))
    if rec is None or not Path(rec["path"]).exists():
        raise HTTPException(status_code=404, detail=f"evidence {evidence_id!r} not found")
    return FileResponse(rec["path"], media_type=sniff(_head(rec["path"])))


def sniff(head: bytes) -> str:
    """Content type of evidence bytes from their first bytes (files are named by hash only)."""
    if head.startswith(b"\xff\xd8"):
        return "image/jpeg"
    if head.startswith(b"\x89PNG"):
        return "image/png"
    if head.startswith(b"RIFF") and head[8:12] == b"AVI ":
        return "video/x-msvideo"
    if head.startswith(b"RIFF") and head[8:12] == b"WAVE":
        return "audio/wav"
    if head[4:8] == b"ftyp":
        return "video/mp4"
    return "application/octet-stream"


def _head(path: str) -> bytes:
    """The first bytes of a file."""
    with open(path, "rb") as fh:
        return fh.read(16)
