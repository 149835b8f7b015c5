"""Evidence: snapshots, bounded clip ring, clip encoding, content-addressed store with retention."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

import cv2
import numpy as np

from edge.evidence import ClipBuffer, EvidenceStore, encode_clip, render_snapshot, save_clip


def frame(i: int, w: int = 640, h: int = 360) -> np.ndarray:
    img = np.full((h, w, 3), 30, np.uint8)
    cv2.putText(img, str(i), (50, 200), cv2.FONT_HERSHEY_SIMPLEX, 4, (255, 255, 255), 6)
    return img


def test_snapshot_draws_boxes_and_zones() -> None:
    img = np.zeros((120, 160, 3), np.uint8)
    data = render_snapshot(img, [(10, 10, 50, 60)], {"z": [(80, 10), (150, 10), (150, 100)]})
    out = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    assert out.shape == (120, 160, 3)
    assert out[10:60, 10].mean(axis=0)[2] > 150  # red box edge
    assert out[10, 100:140].mean(axis=0)[1] > 120  # yellow zone edge


def test_clip_has_frames_before_and_after_and_memory_is_bounded() -> None:
    buf = ClipBuffer(pre_s=2.0, post_s=1.0, fps=5.0, width=320, max_open=2)
    finished = []
    for i in range(100):  # 10 s at 10 fps
        t = i / 10
        if i == 50:
            tag = buf.request(t)
            assert tag is not None
        finished += buf.push(t, frame(i))
        assert len(buf._ring) <= 11  # pre_s × fps + 1 small frames, whatever the run length
    (clip,) = finished
    times = [t for t, _ in clip.frames]
    assert (
        times[0] >= 3.0 - 1e-9 and times[0] <= 3.2 and times[-1] >= 6.0 - 1e-9 and times[-1] <= 6.2
    )
    assert 14 <= len(times) <= 17  # ~5 fps over 3 s
    assert all(f.shape == (180, 320, 3) for _, f in clip.frames)


def test_too_many_open_clips_are_refused_and_flush_closes_the_rest() -> None:
    buf = ClipBuffer(pre_s=1.0, post_s=5.0, fps=5.0, max_open=1)
    buf.push(0.0, frame(0))
    assert buf.request(0.0) is not None
    assert buf.request(0.1) is None and buf.refused == 1
    buf.push(0.2, frame(2))
    (clip,) = buf.flush()
    assert len(clip.frames) == 2 and buf.open_count() == 0


def test_clip_encodes_to_a_playable_video_and_is_stored_by_hash(tmp_path: Path) -> None:
    buf = ClipBuffer(pre_s=1.0, post_s=1.0, fps=5.0)
    done = []
    for i in range(30):
        if i == 10:
            buf.request(i / 10)
        done += buf.push(i / 10, frame(i))
    (clip,) = done
    data, ctype = encode_clip(clip.frames)
    assert ctype == "video/x-msvideo" and len(data) > 1000
    store = EvidenceStore(tmp_path / "ev")
    ev, raw = save_clip(store, clip)
    assert (
        ev.kind == "clip" and ev.sha256 == hashlib.sha256(raw).hexdigest() and ev.bytes == len(raw)
    )
    path = tmp_path / "ev" / f"{ev.sha256}.avi"
    cap = cv2.VideoCapture(str(path))
    n = 0
    while cap.read()[0]:
        n += 1
    cap.release()
    assert n == len(clip.frames)


def test_store_retention_by_size_and_age(tmp_path: Path) -> None:
    store = EvidenceStore(tmp_path, max_bytes=2500, max_age_days=1.0)
    paths = []
    for i in range(4):
        _, p = store.save(bytes([i]) * 1000, "image/jpeg")
        old = time.time() - (10 - i) * 60
        os.utime(p, (old, old))
        paths.append(p)
    assert store.prune() == 2  # 4000 bytes > 2500: the two oldest go
    assert [p.exists() for p in paths] == [False, False, True, True]
    ancient = time.time() - 2 * 86400
    os.utime(paths[2], (ancient, ancient))
    assert store.prune() == 1 and not paths[2].exists() and paths[3].exists()
    # same bytes → same id, stored once
    a, _ = store.save(b"x" * 10, "image/jpeg")
    b, _ = store.save(b"x" * 10, "image/jpeg")
    assert a.id == b.id
