"""Evidence: JPEG snapshots with boxes and zones drawn, stored by sha256 with size/age retention."""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np

from shaobing.contract import Evidence

log = logging.getLogger(__name__)

_EXT = {"image/jpeg": ".jpg", "image/png": ".png", "video/mp4": ".mp4", "audio/wav": ".wav", "text/plain": ".txt"}


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
        cv2.putText(canvas, name, (x + 3, max(12, y - 4)), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 215, 255), 1, cv2.LINE_AA)
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

    def __init__(self, root: str | Path, max_bytes: int = 2 * 1024**3, max_age_days: float = 30.0) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.max_bytes = max_bytes
        self.max_age_s = max_age_days * 86400.0
        self._lock = threading.Lock()
        self._since_prune = 0

    def save(self, data: bytes, content_type: str, kind: str = "image") -> tuple[Evidence, Path]:
        """Store bytes; returns the contract Evidence entry and the file path."""
        digest = hashlib.sha256(data).hexdigest()
        ev = Evidence(id=evidence_id_for(digest), kind=kind, content_type=content_type, sha256=digest, bytes=len(data))  # type: ignore[arg-type]
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
