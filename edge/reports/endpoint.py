"""``POST /api/v1/reports``: a worker's voice/photo/text report becomes a wire Event.

Multipart fields: ``audio`` (wav/mp3/m4a/amr/ogg, ≤ 20 MB, ≤ 120 s), ``photos`` (JPEG/PNG/
WebP, ≤ 10 MB each), ``text``, ``lat``, ``lon``, ``worker_id``, ``grid_id``. The audio is
decoded and transcribed in a worker thread (never in the event loop), the transcript and
text go through :func:`pipelines.report_extract.extract`, photo EXIF gives coordinates and
the capture time, and the Event with its evidence bytes is handed to ``submit`` (the
node's durable outbox). Bad uploads get a 4xx and nothing is submitted: 415 wrong type,
413 too big or too long, 422 undecodable or silent audio / missing content.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import datetime
from pathlib import PurePath
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, File, Form, HTTPException, Request, UploadFile
from starlette.concurrency import run_in_threadpool

from edge.reports import ReportContext, load_context
from edge.reports.asr import SAMPLE_RATE, AudioError, Transcriber, decode_audio, is_silent
from edge.reports.photo import PhotoInfo, oriented_image, photo_location, read_photo_info
from edge.reports.photo_hints import PhotoHints, combine, photo_hints
from pipelines.report_extract import ReportFields
from shaobing.config import EdgeConfig, split_hostport
from shaobing.contract import (
    ContractError,
    Event,
    Evidence,
    Location,
    Source,
    new_event_id,
    now_utc,
    verify_worker_token,
)
from shaobing.severity import max_severity

__all__ = ["build_router", "ReportLimits", "AUDIO_TYPES", "Reporter", "report_body_limit"]

FORM_FIELDS = frozenset({"audio", "photos", "text", "lat", "lon", "worker_id", "grid_id"})

log = logging.getLogger(__name__)

AUDIO_TYPES: dict[str, str] = {
    ".wav": "audio/wav",
    ".mp3": "audio/mpeg",
    ".m4a": "audio/mp4",
    ".amr": "audio/amr",
    ".ogg": "audio/ogg",
    ".oga": "audio/ogg",
    ".opus": "audio/ogg",
}
_AUDIO_CTYPES = {
    "audio/wav": ".wav", "audio/x-wav": ".wav", "audio/wave": ".wav", "audio/vnd.wave": ".wav",
    "audio/mpeg": ".mp3", "audio/mp3": ".mp3", "audio/mp4": ".m4a", "audio/x-m4a": ".m4a",
    "audio/m4a": ".m4a", "audio/aac": ".m4a", "audio/amr": ".amr", "audio/3gpp": ".amr",
    "audio/ogg": ".ogg", "application/ogg": ".ogg", "audio/opus": ".ogg",
}  # fmt: skip
_GENERIC_CTYPES = {"", "application/octet-stream", "binary/octet-stream"}


@dataclass(frozen=True)
class ReportLimits:
    """Upload limits (``reports:`` section of the edge config may override them)."""

    audio_max_bytes: int = 20 * 1024 * 1024
    audio_max_s: float = 120.0
    photo_max_bytes: int = 10 * 1024 * 1024
    max_photos: int = 9
    text_max_chars: int = 2000
    parallel: int = 1

    @classmethod
    def from_config(cls, options: dict[str, Any]) -> ReportLimits:
        """Limits from ``cfg.reports`` (unknown keys are ignored here; the node validates them)."""
        base = cls()
        return cls(
            audio_max_bytes=int(options.get("audio_max_bytes", base.audio_max_bytes)),
            audio_max_s=float(options.get("audio_max_s", base.audio_max_s)),
            photo_max_bytes=int(options.get("photo_max_bytes", base.photo_max_bytes)),
            max_photos=int(options.get("max_photos", base.max_photos)),
            text_max_chars=int(options.get("text_max_chars", base.text_max_chars)),
            parallel=max(1, int(options.get("parallel", base.parallel))),
        )


def _audio_kind(upload: UploadFile) -> str:
    """The audio file's extension from its name or content type; 415 when it is not audio we take."""
    ext = PurePath(upload.filename or "").suffix.lower()
    ctype = (upload.content_type or "").split(";")[0].strip().lower()
    if ext in AUDIO_TYPES and (
        ctype in _GENERIC_CTYPES or ctype.startswith("audio/") or ctype in _AUDIO_CTYPES
    ):
        return ext
    if ctype in _AUDIO_CTYPES and not ext:
        return _AUDIO_CTYPES[ctype]
    raise HTTPException(
        status_code=415,
        detail=f"audio: expected wav, mp3, m4a, amr or ogg, found {upload.filename or 'no name'} ({ctype or 'no content type'})",
    )


async def _read_limited(upload: UploadFile, limit: int, what: str) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        block = await upload.read(1 << 20)
        if not block:
            break
        size += len(block)
        if size > limit:
            raise HTTPException(
                status_code=413,
                detail=f"{what}: expected at most {limit // (1024 * 1024)} MB, found more",
            )
        chunks.append(block)
    return b"".join(chunks)


def report_body_limit(cfg: EdgeConfig) -> int:
    """The largest report body: the audio, every photo and 1 MiB for the form around them."""
    limits = ReportLimits.from_config(dict(cfg.reports))
    return limits.audio_max_bytes + limits.max_photos * limits.photo_max_bytes + 2**20


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and localhost."""
    return host in ("localhost", "::1") or host.startswith("127.")


@dataclass(frozen=True)
class Reporter:
    """Who sent a report, as far as the node can tell."""

    worker_id: str | None
    grid_id: str | None
    verified: bool  # worker and grid come from a token the hub signed


def authenticate_reporter(
    cfg: EdgeConfig, authorization: str, form_worker: str | None, form_grid: str | None
) -> Reporter:
    """The sender of a report, or HTTPException 401.

    A worker token signed by the hub (checked with the node's ``ack_key``) gives the worker
    and the grid; the form's say nothing then. A node-level ``http_token`` lets a trusted
    app post with the form's worker id, and once set it is required. Without a token, only
    a node that listens on loopback takes reports (tests, the demo, an app on the box).
    """
    token = authorization[7:].strip() if authorization.lower().startswith("bearer ") else ""
    key, node_token = cfg.ack_key_value(), cfg.http_token_value()
    if token.startswith("sbw1."):
        if key is None:
            raise HTTPException(
                status_code=401, detail="token: this node has no ack_key to check worker tokens"
            )
        try:
            worker, grid = verify_worker_token(token, key)
        except ContractError as exc:
            raise HTTPException(
                status_code=401, detail=str(exc), headers={"WWW-Authenticate": "Bearer"}
            ) from None
        return Reporter(worker, grid, True)
    if token and node_token and hmac.compare_digest(token.encode(), node_token.encode()):
        return Reporter(form_worker, form_grid, False)
    host = split_hostport(cfg.http, "http")[0] if cfg.http else "127.0.0.1"
    if token or node_token is not None or not is_loopback(host):
        raise HTTPException(
            status_code=401,
            detail="token: expected Authorization: Bearer with a worker token or the node's token",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return Reporter(form_worker, form_grid, False)  # a node on loopback: the box itself


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class _Received:
    """What a report carried, read and checked (nothing understood yet)."""

    text: str
    audio: bytes
    audio_ext: str | None
    photos: list[tuple[bytes, PhotoInfo]]


@dataclass(frozen=True)
class _Understood:
    """What the words and the photos say: the fields, the type and its candidates."""

    fields: ReportFields
    report_text: str
    transcript: str
    duration: float | None
    hints: PhotoHints | None
    primary: str
    candidates: list[str]
    unsure: bool


class _ReportDesk:
    """Takes one report at a time from the form to the outbox (see ``build_router``)."""

    def __init__(
        self,
        cfg: EdgeConfig,
        submit: Callable[[Event, dict[str, bytes]], None],
        context: ReportContext | None,
        transcriber: Transcriber | None,
        detector: Callable[[], Any] | None,
    ) -> None:
        self.cfg = cfg
        self.submit = submit
        self.ctx = context or load_context(cfg)
        self.limits = ReportLimits.from_config(dict(cfg.reports))
        self.tz = ZoneInfo(cfg.timezone)
        self.detector = detector
        self._transcriber = transcriber
        self.gate = asyncio.Semaphore(self.limits.parallel)
        self.grids = {p.id for p in self.ctx.places if p.kind == "grid" and p.id}

    def transcriber(self) -> Transcriber:
        """The transcriber, loaded on the first recording."""
        if self._transcriber is None:
            self._transcriber = Transcriber(
                self.ctx.places,
                self.ctx.keywords,
                model=self.cfg.reports.get("model"),
                vocab=str(self.cfg.reports.get("vocab") or self.ctx.vocab_mode),
            )
        return self._transcriber

    def recognise(self, data: bytes) -> tuple[str, float]:
        """(transcript, seconds) of a recording; 413/422 when it is too long, silent or unclear."""
        try:
            pcm = decode_audio(data, max_seconds=self.limits.audio_max_s)
        except AudioError as exc:
            code = 413 if "at most" in str(exc) else 422
            raise HTTPException(status_code=code, detail=f"audio: {exc}") from None
        duration = pcm.size / SAMPLE_RATE
        if duration < 0.3 or is_silent(pcm):
            raise HTTPException(status_code=422, detail="audio: expected speech, found silence")
        t = self.transcriber().transcribe(pcm)
        if not t.text.strip():
            raise HTTPException(
                status_code=422,
                detail="audio: expected speech, found none that could be recognised",
            )
        return t.text, duration

    def check_form(
        self,
        form_keys: Collection[str],
        reporter: Reporter,
        lat: float | None,
        lon: float | None,
    ) -> None:
        """422 for unknown fields, a grid outside the registry, or half a position."""
        unknown = sorted(set(form_keys) - FORM_FIELDS)
        if unknown:
            raise HTTPException(
                status_code=422,
                detail=f"report: expected only {', '.join(sorted(FORM_FIELDS))}, found {', '.join(unknown)}",
            )
        grid_id = reporter.grid_id
        if (
            grid_id is not None
            and not reporter.verified
            and self.grids
            and grid_id not in self.grids
        ):
            raise HTTPException(
                status_code=422,
                detail=f"grid_id: expected a grid of the registry, found {grid_id!r}",
            )
        if (lat is None) != (lon is None):
            raise HTTPException(
                status_code=422, detail="lat and lon: expected both or neither, found only one"
            )

    async def receive(
        self, audio: UploadFile | None, photos: list[UploadFile] | None, text: str | None
    ) -> _Received:
        """Read the uploads within the limits (413, 415, 422 otherwise)."""
        limits = self.limits
        text = (text or "").strip()
        if len(text) > limits.text_max_chars:
            raise HTTPException(
                status_code=413,
                detail=f"text: expected at most {limits.text_max_chars} characters, found {len(text)}",
            )
        uploads = [p for p in (photos or []) if p.filename or p.size]
        if len(uploads) > limits.max_photos:
            raise HTTPException(
                status_code=413,
                detail=f"photos: expected at most {limits.max_photos}, found {len(uploads)}",
            )
        audio_ext = (
            _audio_kind(audio) if audio is not None and (audio.filename or audio.size) else None
        )
        audio_bytes = b""
        if audio is not None and audio_ext is not None:
            audio_bytes = await _read_limited(audio, limits.audio_max_bytes, "audio")
            if not audio_bytes:
                raise HTTPException(
                    status_code=422, detail="audio: expected a recording, found an empty file"
                )
        photo_blobs: list[tuple[bytes, PhotoInfo]] = []
        for i, up in enumerate(uploads):
            data = await _read_limited(up, limits.photo_max_bytes, f"photos[{i}]")
            try:
                info = read_photo_info(data, self.cfg.timezone)
            except ValueError as exc:
                raise HTTPException(status_code=415, detail=f"photos[{i}]: {exc}") from None
            photo_blobs.append((data, info))
        if not audio_bytes and not text and not photo_blobs:
            raise HTTPException(
                status_code=422, detail="report: expected audio, text or a photo, found none"
            )
        return _Received(text, audio_bytes, audio_ext, photo_blobs)

    async def understand(self, got: _Received) -> _Understood:
        """Transcribe (in a worker thread, a few at a time), extract, and weigh the photos."""
        transcript = ""
        duration = None
        if got.audio:
            async with self.gate:
                transcript, duration = await run_in_threadpool(self.recognise, got.audio)
        report_text = "。".join(t for t in (got.text, transcript) if t)
        fields = self.ctx.extract(report_text)
        hints = None
        primary, candidates, unsure = fields.type, list(fields.types), fields.needs_confirmation
        if got.photos:
            hints = await run_in_threadpool(_photo_hints, [d for d, _ in got.photos], self.detector)
            primary, candidates, unsure = combine(
                fields.type, list(fields.types), fields.needs_confirmation, bool(report_text), hints
            )
        return _Understood(
            fields, report_text, transcript, duration, hints, primary, candidates, unsure
        )

    def event(
        self,
        got: _Received,
        said: _Understood,
        reporter: Reporter,
        position: tuple[float | None, float | None],
    ) -> tuple[Event, dict[str, bytes]]:
        """The wire event and its evidence bytes (422 when the contract refuses it)."""
        cfg, fields = self.cfg, said.fields
        event_id = new_event_id()
        now = now_utc()
        p_lat, p_lon, taken = photo_location([info for _, info in got.photos])
        ev_lat, ev_lon = position if position[0] is not None else (p_lat, p_lon)
        occurred = taken if taken is not None and taken <= now else now
        evidence, blobs = _evidence(event_id, got)
        grid = (
            fields.location.grid_id
            or reporter.grid_id
            or (cfg.grid_id if cfg.grid_id != "unknown" else None)
        )
        address = fields.location.address or (cfg.address if not grid and ev_lat is None else None)
        if not (grid or address or ev_lat is not None):
            grid = cfg.grid_id
        attributes = _attributes(got, said, reporter, taken)
        try:
            event = Event(
                id=event_id,
                type=said.primary,
                severity=_at_least_default(fields.severity, said.primary, self.ctx),  # type: ignore[arg-type]
                state="active",
                incident_key=f"report/{event_id}",
                occurred_at=occurred.astimezone(self.tz),
                detected_at=now.astimezone(self.tz),
                source=Source(
                    node_id=cfg.node_id,
                    kind="report",
                    device_id=reporter.worker_id or "unknown",
                    pipeline="report",
                    model="whisper-base" if got.audio else None,
                ),
                location=Location(grid_id=grid, address=address, lat=ev_lat, lon=ev_lon),
                confidence=fields.confidence,
                summary=_summary(
                    fields.summary, said.primary, fields.type, bool(said.report_text), self.ctx
                ),
                attributes={k: v for k, v in attributes.items() if v not in (None, [], {})},
                evidence=evidence,
            )
        except ValueError as exc:
            raise HTTPException(status_code=422, detail=f"report: {exc}") from None
        return event, blobs

    async def store(self, event: Event, blobs: dict[str, bytes]) -> None:
        """Hand the event to the outbox (503 when it cannot be stored)."""
        try:
            await run_in_threadpool(self.submit, event, blobs)
        except Exception as exc:
            log.exception("report %s could not be stored", event.id)
            raise HTTPException(
                status_code=503, detail=f"report could not be stored: {exc}"
            ) from None


def _evidence(event_id: str, got: _Received) -> tuple[list[Evidence], dict[str, bytes]]:
    """Evidence entries (the recording first, then the photos) and their bytes by id."""
    evidence: list[Evidence] = []
    blobs: dict[str, bytes] = {}
    if got.audio and got.audio_ext is not None:
        eid = f"{event_id}-a"
        evidence.append(
            Evidence(
                id=eid,
                kind="audio",
                content_type=AUDIO_TYPES[got.audio_ext],
                sha256=_sha(got.audio),
                bytes=len(got.audio),
            )
        )
        blobs[eid] = got.audio
    for i, (data, info) in enumerate(got.photos):
        eid = f"{event_id}-p{i}"
        evidence.append(
            Evidence(
                id=eid,
                kind="image",
                content_type=info.content_type,
                sha256=_sha(data),
                bytes=len(data),
            )
        )
        blobs[eid] = data
    return evidence, blobs


def _attributes(
    got: _Received, said: _Understood, reporter: Reporter, taken: datetime | None
) -> dict[str, Any]:
    """The report event's attributes (empty values are dropped by the caller)."""
    fields = said.fields
    return {
        "text": got.text or None,
        "transcript": said.transcript or None,
        "types": said.candidates,
        "needs_confirmation": said.unsure,
        "photo_hints": said.hints.to_dict() if said.hints is not None else None,
        "elements": fields.elements,
        "cues": fields.cues,
        "worker_id": reporter.worker_id,
        "worker_verified": reporter.verified,
        "audio_s": round(said.duration, 2) if said.duration is not None else None,
        "photo_taken_at": taken.isoformat() if taken else None,
        "location_detail": {
            k: v
            for k, v in (
                ("district", fields.location.district),
                ("town", fields.location.town),
                ("community", fields.location.community),
            )
            if v
        },
    }


def build_router(
    cfg: EdgeConfig,
    submit: Callable[[Event, dict[str, bytes]], None],
    *,
    context: ReportContext | None = None,
    transcriber: Transcriber | None = None,
    detector: Callable[[], Any] | None = None,
) -> APIRouter:
    """The report endpoint.

    Args:
        cfg: the edge node's config (node id, default grid, time zone, ``reports`` limits).
        submit: stores the event and its evidence bytes durably (the node's outbox); it is
            called in a worker thread and may block.
        context: taxonomy and gazetteer (default: from ``cfg``).
        transcriber: a prepared transcriber (default: whisper-base with the context's vocabulary).
        detector: returns the node's object detector (an ``infer``-able OnnxDetector) or None;
            photos are then checked for vehicles and flame as type hints.
    """
    desk = _ReportDesk(cfg, submit, context, transcriber, detector)
    router = APIRouter()

    @router.post("/api/v1/reports", status_code=202)
    async def post_report(
        request: Request,
        audio: Annotated[
            UploadFile | None, File(description="wav/mp3/m4a/amr/ogg, ≤ 20 MB, ≤ 120 s")
        ] = None,
        photos: Annotated[
            list[UploadFile] | None, File(description="JPEG/PNG/WebP, ≤ 10 MB each")
        ] = None,
        text: Annotated[str | None, Form(description="typed report text")] = None,
        lat: Annotated[float | None, Form(ge=-90, le=90, description="WGS-84 latitude")] = None,
        lon: Annotated[float | None, Form(ge=-180, le=180, description="WGS-84 longitude")] = None,
        worker_id: Annotated[str | None, Form(max_length=128)] = None,
        grid_id: Annotated[str | None, Form(max_length=128)] = None,
    ) -> dict[str, Any]:
        """Accept one report; 202 with the event id once it is stored for delivery."""
        reporter = authenticate_reporter(
            cfg, request.headers.get("authorization", ""), worker_id, grid_id
        )
        desk.check_form((await request.form()).keys(), reporter, lat, lon)
        got = await desk.receive(audio, photos, text)
        said = await desk.understand(got)
        event, blobs = desk.event(got, said, reporter, (lat, lon))
        await desk.store(event, blobs)
        return {
            "id": event.id,
            "type": event.type,
            "severity": event.severity,
            "summary": event.summary,
            "needs_confirmation": said.fields.needs_confirmation,
            "occurred_at": datetime.isoformat(event.occurred_at),
        }

    return router


def _photo_hints(photos: list[bytes], detector: Callable[[], Any] | None) -> PhotoHints:
    """Decode the photos upright and look for vehicles and flame (runs in a worker thread)."""
    images = [oriented_image(data) for data in photos]
    model = detector() if detector is not None else None
    detect = (lambda img: model.infer([img])[0]) if model is not None else None
    return photo_hints([img for img in images if img is not None], detect)


def _summary(said: str, primary: str, from_text: str, has_text: bool, ctx: ReportContext) -> str:
    """The line a worker reads: what was said, or what the photo showed when the text gave
    no type (never "unrecognised" when a photo found one)."""
    if primary != from_text or not has_text:
        try:
            name = ctx.taxonomy.get(primary).name
        except (AttributeError, KeyError):
            name = primary
        if primary != "other":
            return f"照片识别：{name}" + (f"（{said}）" if has_text and said else "")
    return said or primary


def _at_least_default(severity: str, type_code: str, ctx: ReportContext) -> str:
    """Never below the primary type's default severity (the type may come from a photo)."""
    default = "normal"
    try:
        default = ctx.taxonomy.get(type_code).severity
    except (AttributeError, KeyError):
        pass
    return max_severity(severity, default)
