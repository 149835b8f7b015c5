"""Camera health: black, frozen, covered or blurred video → one ``device_fault`` per episode.

Works on the small grey frame the motion gate already made. A condition must hold for
``raise_after_s`` media seconds before it is reported (a dark moment or a still scene is
not a fault), and the picture must be normal for ``clear_after_s`` before the episode is
closed with a ``cleared`` finding. Conditions, in the order they are checked:

- ``black``: mean brightness below ``black_mean`` with nothing brighter than ``black_peak``
  (a night scene keeps its lamps; a fade to black ends here too);
- ``frozen``: consecutive frames identical (the decoder repeats the last picture);
- ``covered``: almost no contrast and no edges (a lens cap, a bag, spray paint), not black;
- ``blurred``: no strong edges left (defocus, a wet or fogged lens): ``edge_strength``
  below ``blur_edge``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np

from pipelines.base import Finding

_SUMMARY = {
    "black": "摄像头画面全黑",
    "frozen": "摄像头画面冻结",
    "covered": "摄像头被遮挡",
    "blurred": "摄像头画面严重模糊",
}


@dataclass(frozen=True)
class HealthOptions:
    """Thresholds of the health check (grey levels 0–255 on the small frame)."""

    black_mean: float = 18.0
    black_peak: float = 28.0
    covered_std: float = 6.0
    covered_laplacian: float = 10.0
    blur_edge: float = 150.0
    frozen_diff: float = 0.05
    raise_after_s: float = 5.0
    frozen_after_s: float = 10.0
    clear_after_s: float = 3.0


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
        self._candidate: str | None = None
        self._candidate_since: float = 0.0
        self._normal_since: float | None = None
        self._prev: np.ndarray | None = None
        self._frozen_since: float | None = None
        self._episode_key: str | None = None

    def resume(self) -> None:
        """The source was blind for a while: judge the next frames afresh (not against the
        last picture before the gap, which would look frozen or changed)."""
        self._prev = None
        self._frozen_since = None
        self._candidate = None
        self._normal_since = None

    def classify(self, grey: np.ndarray, t: float) -> str | None:
        """The condition this frame shows (None when normal); updates the frozen timer."""
        import cv2

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
        mean = float(grey.mean())
        # black: dark *and* nothing bright in it (a night scene has lamps, windows, flames)
        if mean < o.black_mean and float(np.percentile(grey, 99)) < o.black_peak:
            return "black"
        if (
            self._frozen_since is not None
            and t - self._frozen_since >= o.frozen_after_s - o.raise_after_s
        ):
            return "frozen"
        std = float(grey.std())
        lap = float(cv2.Laplacian(grey, cv2.CV_32F).var())
        if std < o.covered_std and lap < o.covered_laplacian:
            return "covered"
        if edge_strength(grey) < o.blur_edge:
            return "blurred"
        return None

    def update(self, grey: np.ndarray, t: float, at: datetime) -> list[Finding]:
        """Feed one small grey frame at media time ``t`` (``at`` its wall time); returns findings."""
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
