"""Multi-object tracker in the ByteTrack style.

Two-stage association per frame: confident detections are matched to predicted tracks
first, then the weak detections (which ByteTrack keeps instead of discarding) are
matched to the tracks still unmatched — so a person half hidden behind another keeps
their id. Matching uses a *buffered* IoU (both boxes widened by ``buffer`` of their size)
so that objects sampled at a few frames per second, which move more than their own
width between samples, still overlap their prediction. Tracks are predicted with a
smoothed constant-velocity model and survive ``max_lost_s`` without a match; a new
track that misses its second frame is dropped at once (one-frame flicker).

Greedy matching on the score matrix (highest first) is used instead of the Hungarian
algorithm: for the few dozen boxes of a camera frame the results are the same in
practice and it needs no SciPy on the edge box.

Per track the tracker also keeps the age, the speed (px/s) and, when zones are given,
the dwell time in each zone (seconds the bottom centre has been inside, current stay).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from edge.detector.runtime import Detections
from pipelines.base import Track
from pipelines.geometry import point_in_polygon


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


def buffered(boxes: np.ndarray, buffer: float) -> np.ndarray:
    """Boxes widened by ``buffer`` × their width/height on each side."""
    if buffer <= 0 or len(boxes) == 0:
        return boxes
    w = (boxes[:, 2] - boxes[:, 0])[:, None]
    h = (boxes[:, 3] - boxes[:, 1])[:, None]
    grow = np.concatenate([-w, -h, w, h], axis=1) * buffer
    return boxes + grow


def greedy_match(scores: np.ndarray, threshold: float) -> list[tuple[int, int]]:
    """Pairs (row, col) in descending score order, each row and column used once, score ≥ threshold."""
    pairs: list[tuple[int, int]] = []
    if scores.size == 0:
        return pairs
    flat = np.argsort(-scores, axis=None, kind="stable")
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
    zone_since: dict[str, float] = field(default_factory=dict)

    def predicted(self, t: float) -> np.ndarray:
        dt = max(0.0, t - self.last_t)
        return self.box + self.velocity * dt


@dataclass(frozen=True)
class TrackInfo:
    """Extra per-track facts the wire ``Track`` does not carry."""

    track_id: int
    age_s: float
    speed_px_s: float
    dwell_s: dict[str, float]


class Tracker:
    """Track objects across detector frames of one camera.

    Args:
        high_threshold: detections at or above start tracks and match first.
        low_threshold: weaker detections only extend existing tracks.
        match_iou: minimum buffered IoU between a predicted track box and a detection.
        max_lost_s: a track unmatched for this long is dropped.
        min_hits: matches before a new track is reported (filters one-frame flickers).
        buffer: widening of boxes for matching (fraction of their size per side).
        zones: name → polygon, for dwell times.
    """

    def __init__(
        self,
        high_threshold: float = 0.45,
        low_threshold: float = 0.15,
        match_iou: float = 0.2,
        max_lost_s: float = 2.0,
        min_hits: int = 2,
        buffer: float = 0.3,
        zones: Mapping[str, Sequence[Sequence[float]]] | None = None,
    ) -> None:
        self.high_threshold = high_threshold
        self.low_threshold = low_threshold
        self.match_iou = match_iou
        self.max_lost_s = max_lost_s
        self.min_hits = min_hits
        self.buffer = buffer
        self.zones = dict(zones or {})
        self._tracks: list[_State] = []
        self._next_id = 1
        self._last_t: float | None = None  # time of the last update or coast

    def update(self, detections: Detections, t: float) -> list[Track]:
        """Associate this frame's detections (at media time ``t`` seconds); return live tracks."""
        boxes = detections.xyxy.astype(np.float32)
        conf = detections.confidence
        names = np.asarray([detections.name(i) for i in range(len(detections))], dtype=object)
        high = np.flatnonzero(conf >= self.high_threshold)
        low = np.flatnonzero((conf >= self.low_threshold) & (conf < self.high_threshold))
        predicted = np.array([s.predicted(t) for s in self._tracks], dtype=np.float32).reshape(
            -1, 4
        )
        track_names = np.asarray([s.class_name for s in self._tracks], dtype=object)

        unmatched_tracks = np.arange(len(self._tracks))
        matched: dict[int, int] = {}
        for det_idx in (high, low):
            if len(det_idx) == 0 or len(unmatched_tracks) == 0:
                continue
            scores = iou_matrix(
                buffered(predicted[unmatched_tracks], self.buffer),
                buffered(boxes[det_idx], self.buffer),
            )
            scores[track_names[unmatched_tracks][:, None] != names[det_idx][None, :]] = (
                0.0  # same class only
            )
            pairs = greedy_match(scores, self.match_iou)
            for i, j in pairs:
                matched[int(unmatched_tracks[i])] = int(det_idx[j])
            taken = np.zeros(len(unmatched_tracks), dtype=bool)
            taken[[i for i, _ in pairs]] = True
            unmatched_tracks = unmatched_tracks[~taken]

        used_dets = set(matched.values())
        for ti, di in matched.items():
            s = self._tracks[ti]
            dt = t - s.last_t
            new_box = boxes[di]
            if dt > 1e-6:
                inst_v = (new_box - s.box) / dt
                s.velocity = (0.6 * s.velocity + 0.4 * inst_v if s.hits > 1 else inst_v).astype(
                    np.float32
                )
            s.box = new_box.copy()
            s.confidence = float(conf[di])
            s.last_t = t
            s.hits += 1
        # a tentative track that missed its next frame was a flicker
        unmatched_set = {int(i) for i in unmatched_tracks}
        keep = [
            s
            for i, s in enumerate(self._tracks)
            if not (i in unmatched_set and s.hits < self.min_hits)
        ]
        self._tracks = keep
        for hi in high:
            di = int(hi)
            if di not in used_dets:
                self._tracks.append(
                    _State(self._next_id, boxes[di].copy(), str(names[di]), float(conf[di]), t, t)
                )
                self._next_id += 1
        self._tracks = [s for s in self._tracks if t - s.last_t <= self.max_lost_s]
        self._last_t = t
        self._update_zones(t)
        return [self._to_track(s, t) for s in self._tracks if s.hits >= self.min_hits]

    def coast(self, t: float) -> list[Track]:
        """Advance to ``t`` without detections because nothing moved: tracks stay where they are.

        Used by the motion gate: a still picture means still objects, so tracks keep their
        boxes, stop moving and do not age towards ``max_lost_s``.
        """
        previous = self._last_t
        for s in self._tracks:
            # only tracks seen at the previous step are held in place; a track that was
            # already lost (it drove out of view) keeps ageing and is dropped in time
            if s.last_t < t and previous is not None and s.last_t >= previous:
                s.box = s.predicted(s.last_t)  # unchanged
                s.velocity = np.zeros(4, np.float32)
                s.last_t = t
        self._tracks = [s for s in self._tracks if t - s.last_t <= self.max_lost_s]
        self._last_t = t
        self._update_zones(t)
        return [self._to_track(s, t) for s in self._tracks if s.hits >= self.min_hits]

    def _update_zones(self, t: float) -> None:
        if not self.zones:
            return
        for s in self._tracks:
            if s.last_t != t:
                continue
            foot = (float((s.box[0] + s.box[2]) / 2), float(s.box[3]))
            for name, poly in self.zones.items():
                if point_in_polygon(foot, poly):
                    s.zone_since.setdefault(name, t)
                else:
                    s.zone_since.pop(name, None)

    def info(self, t: float) -> list[TrackInfo]:
        """Age, speed and per-zone dwell of every reported track at media time ``t``."""
        out = []
        for s in self._tracks:
            if s.hits < self.min_hits:
                continue
            vx = float((s.velocity[0] + s.velocity[2]) / 2)
            vy = float((s.velocity[1] + s.velocity[3]) / 2)
            out.append(
                TrackInfo(
                    track_id=s.track_id,
                    age_s=max(0.0, t - s.born_t),
                    speed_px_s=float((vx * vx + vy * vy) ** 0.5),
                    dwell_s={z: max(0.0, t - since) for z, since in s.zone_since.items()},
                )
            )
        return out

    def dwell_s(self, track_id: int, zone: str, t: float) -> float:
        """Seconds track ``track_id`` has stood in ``zone`` (0 when outside or unknown)."""
        for s in self._tracks:
            if s.track_id == track_id and zone in s.zone_since:
                return max(0.0, t - s.zone_since[zone])
        return 0.0

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
