"""Tracker: ids through occlusion and crossings, age/speed/dwell, coasting, and id stability on real video."""

from __future__ import annotations

import cv2
import numpy as np

from edge.detector.runtime import COCO80, Detections, OnnxDetector
from edge.tracker import Tracker, iou_matrix
from shaobing.models import resolve_model
from shaobing.paths import assets_dir

NAMES = tuple(COCO80)


def dets(
    boxes: list[tuple[float, float, float, float]], conf: list[float] | None = None, cls: int = 0
) -> Detections:
    n = len(boxes)
    return Detections(
        np.asarray(boxes, np.float32).reshape(n, 4),
        np.asarray(conf or [0.9] * n, np.float32),
        np.full(n, cls, np.int32),
        NAMES,
    )


def test_iou_matrix_values() -> None:
    a = np.array([[0, 0, 10, 10]], np.float32)
    b = np.array([[5, 0, 15, 10], [20, 20, 30, 30]], np.float32)
    np.testing.assert_allclose(iou_matrix(a, b), [[50 / 150, 0.0]], rtol=1e-6)


def test_id_survives_a_short_occlusion_and_weak_detections() -> None:
    tr = Tracker(max_lost_s=1.5)
    t = 0.0
    ids = set()
    for k in range(10):  # walking right at 50 px/s, 5 samples/s
        x = 100 + 10 * k
        ids |= {tk.track_id for tk in tr.update(dets([(x, 100, x + 30, 180)]), t)}
        t += 0.2
    for _ in range(5):  # hidden for 1 s
        tracks = tr.update(dets([]), t)
        assert tracks and tracks[0].lost_s > 0
        t += 0.2
    seen_after = []
    for k in range(15, 20):  # reappears where the motion model expects it, first as a weak box
        x = 100 + 10 * k
        conf = [0.2] if k == 15 else [0.9]
        seen_after += [
            tk.track_id
            for tk in tr.update(dets([(x, 100, x + 30, 180)], conf), t)
            if tk.lost_s == 0
        ]
        t += 0.2
    assert ids == {1} and set(seen_after) == {1}


def test_two_people_crossing_keep_their_ids() -> None:
    tr = Tracker()
    first: dict[int, float] = {}
    last: dict[int, float] = {}
    for k in range(21):
        t = k * 0.2
        a = 50 + 15 * k  # left → right
        b = 350 - 15 * k  # right → left, a little lower
        tracks = tr.update(dets([(a, 100, a + 30, 180), (b, 110, b + 30, 190)]), t)
        for tk in tracks:
            first.setdefault(tk.track_id, tk.center[0])
            last[tk.track_id] = tk.center[0]
    assert len(first) == 2
    moves = sorted(last[i] - first[i] for i in first)
    assert moves[0] < -250 and moves[1] > 250  # one went left, the other right: no swap


def test_flicker_is_not_reported_and_age_speed_dwell_are_kept() -> None:
    zone = [(200.0, 0.0), (400.0, 0.0), (400.0, 300.0), (200.0, 300.0)]
    tr = Tracker(zones={"yard": zone})
    assert tr.update(dets([(10, 10, 20, 20)]), 0.0) == []  # one detection is not yet a track
    assert tr.update(dets([]), 0.2) == [] and len(tr) == 0  # flicker dropped at once
    t = 1.0
    for k in range(11):  # 100 px/s to the right, crossing into the yard at x≈200
        x = 150 + 20 * k
        tracks = tr.update(dets([(x, 100, x + 20, 160)]), t)
        t += 0.2
    (tk,) = tracks
    assert abs(tk.age_s - 2.0) < 1e-6
    assert 90 <= tk.speed <= 110
    (info,) = tr.info(t - 0.2)
    assert info.track_id == tk.track_id and 90 <= info.speed_px_s <= 110
    # foot (x+10) inside from x ≥ 190, i.e. k ≥ 2 at t = 1.4; now t = 3.0
    assert abs(info.dwell_s["yard"] - 1.6) < 1e-6
    assert abs(tr.dwell_s(tk.track_id, "yard", t - 0.2) - 1.6) < 1e-6


def test_coasting_keeps_still_objects_for_longer_than_max_lost() -> None:
    tr = Tracker(max_lost_s=1.0)
    for k in range(3):
        tr.update(dets([(10, 10, 60, 40)], cls=2), k * 0.2)
    for k in range(3, 40):  # 7 s of still frames (the motion gate skipped the detector)
        tracks = tr.coast(k * 0.2)
    assert len(tracks) == 1 and tracks[0].lost_s == 0 and tracks[0].class_name == "car"
    (again,) = tr.update(dets([(11, 10, 61, 40)], cls=2), 8.0)  # the keep-alive detection
    assert again.track_id == tracks[0].track_id


def test_id_stability_on_the_pedestrians_video() -> None:
    """8 s of the real video at 5 samples/s: few ids beyond the people present, few births mid-frame."""
    det = OnnxDetector(resolve_model("yolov5n"), threads=2)
    cap = cv2.VideoCapture(str(assets_dir() / "video" / "pedestrians_opencv_vtest.avi"))
    tr = Tracker(high_threshold=0.35, low_threshold=0.14)
    lengths: dict[int, int] = {}
    max_concurrent = 0
    interior_births = 0
    for i in range(80):
        ok, img = cap.read()
        assert ok
        if i % 2:
            continue
        (d,) = det.infer([img], confidence=0.14, classes={"person"})
        tracks = tr.update(d, i / 10)
        max_concurrent = max(max_concurrent, len(tracks))
        for tk in tracks:
            if tk.track_id not in lengths:
                x1, y1, x2, y2 = tk.xyxy
                if i > 4 and x1 > 20 and x2 < 460 and y1 > 20 and y2 < 340:
                    interior_births += 1  # a new id in the middle of the picture: a fragment
            lengths[tk.track_id] = lengths.get(tk.track_id, 0) + 1
    cap.release()
    assert max_concurrent >= 4
    assert len(lengths) <= max_concurrent + 3, lengths
    assert interior_births <= 3
    assert sum(n >= 10 for n in lengths.values()) >= max_concurrent - 1  # most tracks live ≥ 2 s
