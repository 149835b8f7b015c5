"""Evidence: JPEG snapshots with boxes and zones drawn, clips from a bounded ring of frames,
stored by sha256 with size/age retention."""

from __future__ import annotations

import hashlib
import logging
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from shaobing.contract import Evidence

log = logging.getLogger(__name__)

_EXT = {
    "image/jpeg": ".jpg",
    "image/png": ".png",
    "video/mp4": ".mp4",
    "video/x-msvideo": ".avi",
    "audio/wav": ".wav",
    "text/plain": ".txt",
}


def render_snapshot(
    image: np.ndarray,
    boxes: Iterable[Sequence[float]] = (),
    zones: Mapping[str, Sequence[Sequence[float]]] | None = None,
    quality: int = 85,
    max_width: int = 1280,
) -> bytes:
    """JPEG of ``image`` with zones (yellow) and boxes (red) drawn."""
    import cv2

    canvas = image.copy()
    for name, poly in (zones or {}).items():
        pts = np.asarray(poly, dtype=np.int32).reshape(-1, 1, 2)
        cv2.polylines(canvas, [pts], isClosed=True, color=(0, 215, 255), thickness=2)
        x, y = int(pts[0, 0, 0]), int(pts[0, 0, 1])
        cv2.putText(
            canvas,
            name,
            (x + 3, max(12, y - 4)),
            cv2.FONT_HERSHEY_SIMPLEX,
            0.5,
            (0, 215, 255),
            1,
            cv2.LINE_AA,
        )
    for box in boxes:
        x1, y1, x2, y2 = (int(round(v)) for v in box[:4])
        cv2.rectangle(canvas, (x1, y1), (x2, y2), (0, 0, 255), 2)
    h, w = canvas.shape[:2]
    if w > max_width:
        canvas = cv2.resize(canvas, (max_width, int(h * max_width / w)))
    ok, buf = cv2.imencode(".jpg", canvas, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError("snapshot: JPEG encoding failed")
    return buf.tobytes()


def evidence_id_for(sha256: str) -> str:
    """Evidence ids are content addresses: the first 32 hex digits of the sha256."""
    return sha256[:32]


class EvidenceStore:
    """Evidence files on the node's disk, named by content hash (never by anything from outside).

    Args:
        root: folder.
        max_bytes: total size kept; oldest files go first.
        max_age_days: files older than this are deleted.
    """

    def __init__(
        self, root: str | Path, max_bytes: int = 2 * 1024**3, max_age_days: float = 30.0
    ) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.max_bytes = max_bytes
        self.max_age_s = max_age_days * 86400.0
        self._lock = threading.Lock()
        self._since_prune = 0

    def save(self, data: bytes, content_type: str, kind: str = "image") -> tuple[Evidence, Path]:
        """Store bytes; returns the contract Evidence entry and the file path."""
        digest = hashlib.sha256(data).hexdigest()
        ev = Evidence(
            id=evidence_id_for(digest),
            kind=kind,  # type: ignore[arg-type]
            content_type=content_type,
            sha256=digest,
            bytes=len(data),
        )
        path = self.root / (digest + _EXT.get(content_type, ".bin"))
        with self._lock:
            if not path.exists():
                tmp = path.with_suffix(path.suffix + ".tmp")
                tmp.write_bytes(data)
                tmp.replace(path)
            self._since_prune += 1
            if self._since_prune >= 50:
                self._since_prune = 0
                self.prune()
        return ev, path

    def prune(self) -> int:
        """Apply age and size retention; returns the number of files deleted."""
        files = []
        for p in self.root.iterdir():
            if p.is_file() and not p.name.endswith(".tmp"):
                st = p.stat()
                files.append((st.st_mtime, st.st_size, p))
        files.sort()
        now = time.time()
        total = sum(f[1] for f in files)
        deleted = 0
        for mtime, size, p in files:
            if now - mtime > self.max_age_s or total > self.max_bytes:
                try:
                    p.unlink()
                    total -= size
                    deleted += 1
                except OSError as exc:
                    log.warning("evidence retention: cannot delete %s: %s", p, exc)
            else:
                break
        return deleted


# --------------------------------------------------------------------------- clips


@dataclass
class _ClipRequest:
    tag: int
    t_event: float
    t_end: float
    frames: list[tuple[float, np.ndarray]]


@dataclass(frozen=True)
class FinishedClip:
    """Frames around one event, ready to encode."""

    tag: int
    t_event: float
    frames: tuple[tuple[float, np.ndarray], ...]


class ClipBuffer:
    """A bounded ring of small frames, from which clips around events are cut.

    Frames are downscaled to ``width`` pixels and kept at most ``fps`` per second, so one
    camera holds at most ``(pre_s + post_s) × fps`` small frames per open clip plus the
    ring — a few megabytes whatever the source resolution.

    Args:
        pre_s: seconds kept before an event.
        post_s: seconds recorded after it.
        fps: frames per second kept.
        width: frame width kept (height follows the aspect ratio).
        max_open: clips recorded at once; further requests are refused (counted).
    """

    def __init__(
        self,
        pre_s: float = 3.0,
        post_s: float = 3.0,
        fps: float = 5.0,
        width: int = 320,
        max_open: int = 4,
    ) -> None:
        self.pre_s = pre_s
        self.post_s = post_s
        self.fps = fps
        self.width = width
        self.max_open = max_open
        self.refused = 0
        self._ring: deque[tuple[float, np.ndarray]] = deque(maxlen=max(1, int(pre_s * fps) + 1))
        self._open: list[_ClipRequest] = []
        self._next_tag = 1
        self._last_t: float | None = None

    def push(self, t: float, image: np.ndarray) -> list[FinishedClip]:
        """Offer a frame at media time ``t``; returns clips whose post-event time has passed."""
        import cv2

        if self._last_t is None or t - self._last_t >= 1.0 / self.fps - 1e-6 or t < self._last_t:
            self._last_t = t
            h, w = image.shape[:2]
            small = (
                image
                if w <= self.width
                else cv2.resize(
                    image,
                    (self.width, int(h * self.width / w) // 2 * 2),
                    interpolation=cv2.INTER_AREA,
                )
            )
            if small is image:
                small = image.copy()
            self._ring.append((t, small))
            for req in self._open:
                if t <= req.t_end:
                    req.frames.append((t, small))
        return self._finish(lambda req: t >= req.t_end)

    def request(self, t_event: float) -> int | None:
        """Start a clip around media time ``t_event``; returns its tag, or None when too many are open."""
        if len(self._open) >= self.max_open:
            self.refused += 1
            return None
        tag = self._next_tag
        self._next_tag += 1
        pre = [(ft, f) for ft, f in self._ring if t_event - self.pre_s <= ft <= t_event]
        self._open.append(_ClipRequest(tag, t_event, t_event + self.post_s, pre))
        return tag

    def flush(self) -> list[FinishedClip]:
        """End of stream: every open clip, with what it has."""
        return self._finish(lambda _req: True)

    def _finish(self, done: Callable[[_ClipRequest], bool]) -> list[FinishedClip]:
        out = [
            FinishedClip(r.tag, r.t_event, tuple(r.frames))
            for r in self._open
            if done(r) and r.frames
        ]
        self._open = [r for r in self._open if not done(r)]
        return out

    def open_count(self) -> int:
        """Clips being recorded."""
        return len(self._open)


def encode_clip(frames: Sequence[tuple[float, np.ndarray]], fps: float = 5.0) -> tuple[bytes, str]:
    """Encode frames as MJPEG-in-AVI (every OpenCV build writes it); returns (bytes, content type).

    Raises:
        ValueError: no frames, or the writer could not be opened.
    """
    import cv2

    if not frames:
        raise ValueError("clip: expected at least one frame, found none")
    h, w = frames[0][1].shape[:2]
    with tempfile.TemporaryDirectory(prefix="shaobing-clip-") as tmp:
        path = str(Path(tmp) / "clip.avi")
        writer = cv2.VideoWriter(path, cv2.VideoWriter.fourcc(*"MJPG"), fps, (w, h))
        if not writer.isOpened():
            raise ValueError("clip: cannot open an MJPEG writer")
        writer.set(cv2.VIDEOWRITER_PROP_QUALITY, 70)
        try:
            for _, img in frames:
                if img.shape[:2] != (h, w):
                    img = cv2.resize(img, (w, h))
                writer.write(img)
        finally:
            writer.release()
        return Path(path).read_bytes(), "video/x-msvideo"


def save_clip(store: EvidenceStore, clip: FinishedClip, fps: float = 5.0) -> tuple[Evidence, bytes]:
    """Encode a finished clip and store it; returns its Evidence entry (kind ``clip``) and bytes."""
    data, content_type = encode_clip(clip.frames, fps)
    ev, _ = store.save(data, content_type, "clip")
    return ev, data
