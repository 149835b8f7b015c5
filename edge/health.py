"""Camera health: black, frozen, covered, tampered or blurred video → one ``device_fault`` per episode.

Works on the small grey frame the motion gate already made. A condition must hold for
``raise_after_s`` media seconds before it is reported (a dark moment or a still scene is
not a fault), and the picture must be normal for ``clear_after_s`` before the episode is
closed with a ``cleared`` finding.

Each camera learns its own normal over its first ``learn_s`` seconds of healthy picture: its
sharpness (``edge_strength``), its brightness and a small normalised picture of its view.
Afterwards it is judged against that, not against one threshold for every camera: a sharp
street scene that loses half its edge strength is defocused even while it still has more
edges than a soft indoor scene ever had. The learned normal follows slow changes (day and
night) with a time constant of ``adapt_s``, only while the picture is healthy. Until it is
learned, global thresholds apply. Conditions, in the order they are checked:

- ``black``: mean brightness below ``black_mean`` (and below ``black_ratio`` of the learned
  brightness) with nothing brighter than ``black_peak`` (a night scene keeps its lamps);
- ``frozen``: consecutive frames identical (the decoder repeats the last picture);
- ``covered``: a flat picture (``covered_std``) whose only edges are sensor noise
  (``covered_edge``): a lens cap, a bag, a cloth, thick paint — noise keeps a covered
  sensor's Laplacian up, so the Laplacian alone would call it blurred;
- ``tampered``: the view is not the learned one (``tamper_change`` of the picture differs
  from it after brightness and contrast are normalised) for ``tampered_after_s``: the camera
  was turned away. A night IR switch (grey, brighter, noisier) keeps the view;
- ``blurred``: strong edges lost (defocus, a wet, fogged or sprayed lens): ``edge_strength``
  below ``blur_ratio`` of the learned sharpness (``blur_edge`` before it is learned).

The picture is checked at most every ``check_every_s`` (0.25 s): a condition must hold for
seconds, so four looks a second decide it as well as every frame would, at a third of the
cost on a 10 fps camera and a seventh on a 25 fps one.

Measured on tampering clips made with ffmpeg from the shared videos (tests/support/tamper.py,
tests/integration/test_camera_tampering.py) and on the real clips (no false faults).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np

from pipelines.base import Finding

_SUMMARY = {
    "black": "摄像头画面全黑",
    "frozen": "摄像头画面冻结",
    "covered": "摄像头被遮挡",
    "blurred": "摄像头画面严重模糊",
    "tampered": "摄像头视角被改变",
}

VIEW_SIZE = (64, 36)
"""Size of the normalised view picture compared with the learned one (w, h)."""


@dataclass(frozen=True)
class HealthOptions:
    """Thresholds of the health check (grey levels 0–255 on the small frame)."""

    black_mean: float = 18.0
    black_peak: float = 28.0
    black_ratio: float = 0.25
    covered_std: float = 6.0
    covered_edge: float = 60.0
    blur_edge: float = 150.0
    blur_ratio: float = 0.7
    tamper_change: float = 0.25
    frozen_diff: float = 0.05
    raise_after_s: float = 5.0
    frozen_after_s: float = 10.0
    tampered_after_s: float = 10.0
    clear_after_s: float = 3.0
    learn_s: float = 120.0
    learn_every_s: float = 1.0
    adapt_s: float = 1800.0
    check_every_s: float = 0.25


def edge_strength(grey: np.ndarray) -> float:
    """Mean Sobel gradient magnitude of the strongest 0.5 % of pixels.

    Sensor noise makes many weak gradients and a sharp scene a few strong ones, so the
    top of the distribution separates focus from blur where a variance would mix them.
    """
    import cv2

    gx = cv2.Sobel(grey, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(grey, cv2.CV_32F, 0, 1, ksize=3)
    mag = cv2.magnitude(gx, gy).ravel()
    k = max(1, mag.size // 200)
    return float(np.partition(mag, mag.size - k)[-k:].mean())


def view_picture(grey: np.ndarray) -> np.ndarray:
    """The view as a tiny picture with brightness and contrast normalised (z-scores).

    Exposure, auto gain and an IR switch change brightness and contrast, not the view; a
    turned camera changes the view.
    """
    import cv2

    small = cv2.resize(grey, VIEW_SIZE, interpolation=cv2.INTER_AREA).astype(np.float32)
    small = cv2.GaussianBlur(small, (3, 3), 0)
    return np.asarray((small - small.mean()) / (small.std() + 1e-3), dtype=np.float32)


@dataclass
class Baseline:
    """A camera's own normal, learned from its healthy picture."""

    sharpness: float
    brightness: float
    view: np.ndarray


class CameraHealth:
    """Per-camera health state machine.

    Args:
        camera_id: for incident keys.
        options: thresholds and hold times.
    """

    def __init__(self, camera_id: str, options: HealthOptions | None = None) -> None:
        self.camera_id = camera_id
        self.options = options or HealthOptions()
        self.state: str | None = None  # the open episode's condition
        self.episodes = 0
        self.baseline: Baseline | None = None
        self._candidate: str | None = None
        self._candidate_since: float = 0.0
        self._normal_since: float | None = None
        self._prev: np.ndarray | None = None
        self._frozen_since: float | None = None
        self._changed_since: float | None = None
        self._changes: deque[tuple[float, float]] = deque(maxlen=256)
        self._episode_key: str | None = None
        self._learn: list[tuple[float, float, np.ndarray]] = []  # bounded, see _learn_from
        self._learn_started: float | None = None
        self._last_learn_t: float | None = None
        self._last_check_t: float | None = None

    def resume(self) -> None:
        """The source was blind for a while: judge the next frames afresh (not against the
        last picture before the gap, which would look frozen or changed)."""
        self._prev = None
        self._frozen_since = None
        self._changed_since = None
        self._changes.clear()
        self._candidate = None
        self._normal_since = None
        self._last_check_t = None

    def due(self, t: float) -> bool:
        """Whether a frame at media time ``t`` is checked: at most one every
        ``check_every_s`` (every condition must hold for seconds before it counts, so 4 looks
        a second decide as well as 25, at a fraction of the cost)."""
        last = self._last_check_t
        if last is not None and 0.0 <= t - last < self.options.check_every_s - 1e-6:
            return False
        self._last_check_t = t
        return True

    def classify(self, grey: np.ndarray, t: float) -> str | None:
        """The condition this frame shows (None when normal); updates the timers and learns."""
        o = self.options
        prev, self._prev = self._prev, grey
        identical = (
            prev is not None
            and prev.shape == grey.shape
            and float(np.abs(grey - prev).mean()) <= o.frozen_diff
        )
        if identical:
            if self._frozen_since is None:
                self._frozen_since = t
        else:
            self._frozen_since = None
        base = self.baseline
        mean = float(grey.mean())
        # black: dark *and* nothing bright in it (a night scene has lamps, windows, flames)
        dark = o.black_mean if base is None else min(o.black_mean, o.black_ratio * base.brightness)
        if mean < max(dark, 2.0) and float(np.percentile(grey, 99)) < o.black_peak:
            return "black"
        if (
            self._frozen_since is not None
            and t - self._frozen_since >= o.frozen_after_s - o.raise_after_s
        ):
            return "frozen"
        sharpness = edge_strength(grey)
        if float(grey.std()) < o.covered_std and sharpness < o.covered_edge:
            return "covered"
        view = view_picture(grey)
        if base is not None:
            # the median over the last 2 s: a bus passing close does not turn the camera,
            # and a person walking through a turned view does not turn it back
            recent = self._changes
            recent.append((t, float((np.abs(view - base.view) > 1.0).mean())))
            while recent and recent[0][0] < t - 2.0:
                recent.popleft()
            changed = float(np.median([c for _, c in recent]))
            if changed >= o.tamper_change:
                if self._changed_since is None:
                    self._changed_since = t
                if t - self._changed_since >= o.tampered_after_s - o.raise_after_s:
                    return "tampered"
            else:
                self._changed_since = None
        blur_limit = o.blur_edge if base is None else o.blur_ratio * base.sharpness
        if sharpness < blur_limit:
            return "blurred"
        if self._changed_since is None and self._candidate is None and self.state is None:
            self._learn_from(t, sharpness, mean, view)
        return None

    def _learn_from(self, t: float, sharpness: float, brightness: float, view: np.ndarray) -> None:
        """Learn (then slowly follow) the camera's normal from a healthy frame."""
        o = self.options
        if self._last_learn_t is not None and 0 <= t - self._last_learn_t < o.learn_every_s:
            return
        self._last_learn_t = t
        if self.baseline is None:
            if self._learn_started is None:
                self._learn_started = t
            if len(self._learn) < 128:  # bounded: 128 tiny views in float16 ≈ 0.6 MB
                self._learn.append((sharpness, brightness, view.astype(np.float16)))
            if t - self._learn_started >= o.learn_s and len(self._learn) >= 5:
                # medians: a person walking close to the lens for a moment does not count
                self.baseline = Baseline(
                    sharpness=float(np.median([x[0] for x in self._learn])),
                    brightness=float(np.median([x[1] for x in self._learn])),
                    view=np.median(
                        np.stack([x[2].astype(np.float32) for x in self._learn]), axis=0
                    ).astype(np.float32),
                )
                self._learn.clear()
            return
        w = min(1.0, o.learn_every_s / o.adapt_s)
        b = self.baseline
        b.sharpness = (1 - w) * b.sharpness + w * sharpness
        b.brightness = (1 - w) * b.brightness + w * brightness
        b.view = ((1 - w) * b.view + w * view).astype(np.float32)

    def update(self, grey: np.ndarray, t: float, at: datetime) -> list[Finding]:
        """Feed one small grey frame at media time ``t`` (``at`` its wall time); returns findings.

        Frames between two checks (see ``due``) change nothing.
        """
        if not self.due(t):
            return []
        cond = self.classify(grey, t)
        o = self.options
        out: list[Finding] = []
        if cond is None:
            self._candidate = None
            if self.state is not None:
                if self._normal_since is None:
                    self._normal_since = t
                if t - self._normal_since >= o.clear_after_s:
                    out.append(self._finding("cleared", self.state, at))
                    self.state = None
                    self._episode_key = None
            return out
        self._normal_since = None
        if cond != self._candidate:
            self._candidate = cond
            self._candidate_since = t
        if self.state is None and t - self._candidate_since >= o.raise_after_s:
            self.state = cond
            self.episodes += 1
            self._episode_key = f"{self.camera_id}/device_fault/{at:%Y%m%dT%H%M%S}"
            out.append(self._finding("active", cond, at))
        return out

    def _finding(self, state: str, cond: str, at: datetime) -> Finding:
        key = self._episode_key or f"{self.camera_id}/device_fault"
        summary = _SUMMARY.get(cond, "摄像头故障") + ("（已恢复）" if state == "cleared" else "")
        return Finding(
            type="device_fault",
            severity="normal",
            state=state,  # type: ignore[arg-type]
            incident_key=key,
            occurred_at=at,
            confidence=0.9,
            summary=summary,
            attributes={"fault": cond, "condition": cond, "camera": self.camera_id},
            snapshot=state == "active",
        )


_SOURCE_SUMMARY = {
    "source_lost": "摄像头视频流中断",
    "unreachable": "摄像头无法连接",
}


class SourceWatch:
    """A camera that delivers no frames is blind: one ``device_fault`` per blind episode.

    A source with no frame for ``source_lost_s`` raises ``device_fault`` with
    ``attributes.fault`` = ``source_lost`` (it had delivered frames before) or
    ``unreachable`` (it never opened), and the source's last error. The episode is
    cleared, with its duration, as soon as frames flow again. Blindness is judged on the
    node's monotonic clock (no frame means no media time), so this runs beside the frame
    loop, not inside it: the node calls ``check`` every fraction of a second.

    Args:
        camera_id: for incident keys and attributes.
        source_lost_s: seconds without frames that make the camera blind.
    """

    def __init__(self, camera_id: str, source_lost_s: float) -> None:
        self.camera_id = camera_id
        self.source_lost_s = source_lost_s
        self.fault: str | None = None  # the open episode's fault, or None
        self.episodes = 0
        self._key: str | None = None
        self._blind_since_mono = 0.0
        self._blind_since: datetime | None = None
        self._last_frame_at_raise: float | None = None

    def check(
        self,
        now_mono: float,
        now: datetime,
        started_mono: float,
        last_frame_mono: float | None,
        last_error: str | None,
    ) -> list[Finding]:
        """Judge the source at ``now_mono`` (``now`` the same instant, aware); returns findings.

        Args:
            now_mono: ``time.monotonic()`` now.
            now: the same instant as an aware datetime (event times).
            started_mono: monotonic time the source started reading.
            last_frame_mono: monotonic time of its latest frame, None when it never gave one.
            last_error: the source's last error message, if any.
        """
        if self.fault is not None:
            if last_frame_mono is not None and last_frame_mono != self._last_frame_at_raise:
                # frames flow again: the episode lasted from the last frame before to this one
                duration = max(0.0, last_frame_mono - self._blind_since_mono)
                finding = self._finding("cleared", now, last_error, duration)
                self.fault = None
                self._key = None
                return [finding]
            return []
        since = last_frame_mono if last_frame_mono is not None else started_mono
        silent_s = now_mono - since
        if silent_s < self.source_lost_s:
            return []
        self.fault = "unreachable" if last_frame_mono is None else "source_lost"
        self.episodes += 1
        self._blind_since_mono = since
        self._blind_since = now - timedelta(seconds=silent_s)
        self._last_frame_at_raise = last_frame_mono
        self._key = f"{self.camera_id}/device_fault/{self.fault}/{self._blind_since:%Y%m%dT%H%M%S}"
        return [self._finding("active", now, last_error, silent_s)]

    def _finding(
        self, state: str, now: datetime, last_error: str | None, seconds: float
    ) -> Finding:
        fault = self.fault or "source_lost"
        attributes: dict[str, object] = {
            "fault": fault,
            "condition": fault,
            "camera": self.camera_id,
            "error": last_error,
            "since": self._blind_since.isoformat() if self._blind_since else None,
        }
        if state == "cleared":
            attributes["duration_s"] = round(seconds, 1)
        else:
            attributes["silent_s"] = round(seconds, 1)
        summary = _SOURCE_SUMMARY[fault] + (
            f"（已恢复，中断{seconds:.0f}秒）" if state == "cleared" else ""
        )
        return Finding(
            type="device_fault",
            severity="normal",
            state=state,  # type: ignore[arg-type]
            incident_key=self._key or f"{self.camera_id}/device_fault/{fault}",
            occurred_at=self._blind_since if state == "active" and self._blind_since else now,
            confidence=1.0,
            summary=summary,
            attributes=attributes,
            snapshot=False,
        )
