"""Multi-object tracker in the ByteTrack style.

Two-stage association per frame: confident detections are matched to predicted tracks
by IoU first, then the weak detections (which ByteTrack keeps instead of discarding) are
matched to the tracks still unmatched — so a person half hidden behind another keeps
their id. Tracks are predicted with a smoothed constant-velocity model and survive
``max_lost_s`` without a match. Greedy matching on the IoU matrix (highest first) is
used instead of the Hungarian algorithm: for the few dozen boxes of a camera frame the
results are the same in practice and it needs no SciPy on the edge box.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from edge.detector.runtime import Detections
from pipelines.base import Track


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU of xyxy boxes: (n, 4) × (m, 4) → (n, m)."""
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)), dtype=np.float32)
    ix1 = np.maximum(a[:, None, 0], b[None, :, 0])
    iy1 = np.maximum(a[:, None, 1], b[None, :, 1])
    ix2 = np.minimum(a[:, None, 2], b[None, :, 2])
    iy2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(ix2 - ix1, 0, None) * np.clip(iy2 - iy1, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-9), 0.0).astype(np.float32)


def greedy_match(scores: np.ndarray, threshold: float) -> list[tuple[int, int]]:
    """Pairs (row, col) in descending score order, each row and column used once, score ≥ threshold."""
    pairs: list[tuple[int, int]] = []
    if scores.size == 0:
        return pairs
    flat = np.argsort(-scores, axis=None)
    used_r: set[int] = set()
    used_c: set[int] = set()
    for idx in flat:
        r, c = divmod(int(idx), scores.shape[1])
        if scores[r, c] < threshold:
            break
        if r in used_r or c in used_c:
            continue
        used_r.add(r)
        used_c.add(c)
        pairs.append((r, c))
    return pairs


@dataclass
class _State:
    track_id: int
    box: np.ndarray
    class_name: str
    confidence: float
    born_t: float
    last_t: float
    velocity: np.ndarray = field(default_factory=lambda: np.zeros(4, np.float32))
    hits: int = 1

    def predicted(self, t: float) -> np.ndarray:
        dt = max(0.0, t - self.last_t)
        return self.box + self.velocity * dt


class Tracker:
    """Track objects across detector frames of one camera.

    Args:
        high_threshold: detections at or above start tracks and match first.
        low_threshold: weaker detections only extend existing tracks.
        match_iou: minimum IoU between a predicted track box and a detection.
        max_lost_s: a track unmatched for this long is dropped.
        min_hits: matches before a new track is reported (filters one-frame flickers).
    """

    def __init__(
        self,
        high_threshold: float = 0.45,
        low_threshold: float = 0.15,
        match_iou: float = 0.2,
        max_lost_s: float = 2.0,
        min_hits: int = 2,
    ) -> None:
        self.high_threshold = high_threshold
        self.low_threshold = low_threshold
        self.match_iou = match_iou
        self.max_lost_s = max_lost_s
        self.min_hits = min_hits
        self._tracks: list[_State] = []
        self._next_id = 1

    def update(self, detections: Detections, t: float) -> list[Track]:
        """Associate this frame's detections (at media time ``t`` seconds); return live tracks."""
        boxes = detections.xyxy.astype(np.float32)
        conf = detections.confidence
        names = [detections.name(i) for i in range(len(detections))]
        high = np.flatnonzero(conf >= self.high_threshold)
        low = np.flatnonzero((conf >= self.low_threshold) & (conf < self.high_threshold))
        predicted = np.array([s.predicted(t) for s in self._tracks], dtype=np.float32).reshape(-1, 4)

        unmatched_tracks = list(range(len(self._tracks)))
        matched: dict[int, int] = {}
        for det_idx in (high, low):
            if len(det_idx) == 0 or not unmatched_tracks:
                continue
            ious = iou_matrix(predicted[unmatched_tracks], boxes[det_idx])
            # same class only
            for i, ti in enumerate(unmatched_tracks):
                for j, di in enumerate(det_idx):
                    if self._tracks[ti].class_name != names[di]:
                        ious[i, j] = 0.0
            pairs = greedy_match(ious, self.match_iou)
            for i, j in pairs:
                matched[unmatched_tracks[i]] = int(det_idx[j])
            taken = {unmatched_tracks[i] for i, _ in pairs}
            unmatched_tracks = [ti for ti in unmatched_tracks if ti not in taken]

        used_dets = set(matched.values())
        for ti, di in matched.items():
            s = self._tracks[ti]
            dt = t - s.last_t
            new_box = boxes[di]
            if dt > 1e-6:
                inst_v = (new_box - s.box) / dt
                s.velocity = 0.6 * s.velocity + 0.4 * inst_v if s.hits > 1 else inst_v
            s.box = new_box
            s.confidence = float(conf[di])
            s.last_t = t
            s.hits += 1
        for di in high:
            if int(di) not in used_dets:
                self._tracks.append(_State(self._next_id, boxes[di].copy(), names[di], float(conf[di]), t, t))
                self._next_id += 1
        self._tracks = [s for s in self._tracks if t - s.last_t <= self.max_lost_s]
        return [self._to_track(s, t) for s in self._tracks if s.hits >= self.min_hits]

    @staticmethod
    def _to_track(s: _State, t: float) -> Track:
        lost = max(0.0, t - s.last_t)
        box = s.predicted(t) if lost > 0 else s.box
        vx = float((s.velocity[0] + s.velocity[2]) / 2)
        vy = float((s.velocity[1] + s.velocity[3]) / 2)
        return Track(
            track_id=s.track_id,
            xyxy=(float(box[0]), float(box[1]), float(box[2]), float(box[3])),
            class_name=s.class_name,
            confidence=s.confidence,
            age_s=max(0.0, t - s.born_t),
            velocity=(vx, vy),
            lost_s=lost,
        )

    def __len__(self) -> int:
        return len(self._tracks)
