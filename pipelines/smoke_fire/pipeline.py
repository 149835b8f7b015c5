"""The ``smoke_fire`` pipeline: confirmed regions → one situation per type per camera."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pipelines.base import Box, CameraContext, Finding, Observation, Severity, State
from pipelines.situation import Situation
from pipelines.smoke_fire.detector import Detector
from pipelines.smoke_fire.evidence import Kind, Region, union_box
from pipelines.smoke_fire.options import Options
from shaobing.severity import as_severity

STATE_VERSION = 1


@dataclass
class _Situation:
    """A fire or smoke on the camera: its life, and the region as last confirmed."""

    kind: Kind
    life: Situation
    started_at: datetime
    first_area: float
    reported_area: float
    last_confirmed_t: float
    last_update_t: float
    detector: str
    box: Box
    score: float


@dataclass
class SmokeFire:
    """Per-camera smoke/fire pipeline (classical detector and/or an extra model's detections)."""

    options: Options
    context: CameraContext
    fire_severity: Severity = "emergency"
    smoke_severity: Severity = "urgent"
    name: str = "smoke_fire"
    needs_every_frame: bool = False
    needs_frames: bool = True
    needs_detections: bool = False
    _last_t: float | None = None
    _situations: dict[str, _Situation] = field(default_factory=dict)
    _detector: Detector = field(init=False)

    def __post_init__(self) -> None:
        self.needs_detections = self.options.model is not None
        self.needs_frames = self.options.classical
        self._detector = Detector(self.options, self.context)

    @property
    def global_changes(self) -> int:
        """Global changes (fade, covered lens, fog) the smoke detector ignored."""
        return self._detector.global_changes

    @property
    def last_shift(self) -> tuple[float, float, float]:
        """Last view shift measured between samples: (dx, dy, phase-correlation response)."""
        return self._detector.last_shift

    # ------------------------------------------------------------------ public API

    def update(self, obs: Observation) -> list[Finding]:
        """Analyse one observation; return active/update/cleared findings."""
        opts = self.options
        if self._last_t is not None:
            dt = obs.t - self._last_t
            if 0 <= dt < 0.98 / opts.analysis_fps:
                return []
            if dt > opts.max_gap_s or dt < 0:
                self._detector.restart()
        size = self._detector.frame_size(obs)
        if size is None:
            return self._close_stale(obs)
        self._detector.ensure_geometry(size)
        self._last_t = obs.t
        return self._report(self._detector.regions(obs), obs)

    def resume(self, at: datetime, t: float, gap_s: float) -> None:
        """The camera was blind for ``gap_s`` before media time ``t`` (a lost stream, a restart).

        A fire nobody could see is not out: each open situation's clear window restarts at
        ``t``, so it goes on under the same incident key when it is confirmed again within
        ``clear_s`` and is cleared only if it is really gone. The evidence restarts (the
        samples before the gap say nothing about now) but the background is kept: the scene
        is the same, and smoke already standing in it would not differ from a fresh one.
        """
        for sit in self._situations.values():
            # media time may restart after a restart (a new stream): set, never max()
            sit.last_confirmed_t = t
            sit.last_update_t = t
        self._detector.forget_previous()
        self._last_t = None

    def state_dict(self) -> dict[str, Any]:
        """Open situations, JSON-serialisable: a fire still burning after a node restart goes
        on under the same incident key (the evidence itself is not kept)."""
        return {
            "version": STATE_VERSION,
            "zone": self.options.zone,
            "situations": [
                {
                    "kind": sit.kind,
                    "key": sit.life.key,
                    "started_at": sit.started_at.isoformat(),
                    "first_area": sit.first_area,
                    "reported_area": sit.reported_area,
                    "detector": sit.detector,
                    "box": list(sit.box),
                    "score": sit.score,
                }
                for sit in self._situations.values()
            ],
        }

    def load_state(self, state: dict[str, Any]) -> None:
        """Restore what ``state_dict()`` saved; the node then calls ``resume`` (a restart is a
        gap), so each situation's clear window starts at the first frame after the restart."""
        if (
            not state
            or state.get("version") != STATE_VERSION
            or state.get("zone") != self.options.zone
        ):
            return
        for item in state.get("situations", []):
            kind = item["kind"]
            if kind not in ("fire", "smoke"):
                continue
            box = tuple(float(v) for v in item["box"])
            self._situations[kind] = _Situation(
                kind=kind,
                life=Situation(kind, self._severity_of(kind), str(item["key"]), "active"),
                started_at=datetime.fromisoformat(item["started_at"]),
                first_area=float(item["first_area"]),
                reported_area=float(item["reported_area"]),
                last_confirmed_t=0.0,
                last_update_t=0.0,
                detector=str(item["detector"]),
                box=(box[0], box[1], box[2], box[3]),
                score=float(item["score"]),
            )

    def flush(self, at: datetime) -> list[Finding]:
        """End of stream: clear every open situation."""
        out = [self._finding(s, "cleared", at, None) for s in self._situations.values()]
        self._situations.clear()
        return out

    # ------------------------------------------------------------------ findings

    def _report(self, regions: list[Region], obs: Observation) -> list[Finding]:
        opts = self.options
        out: list[Finding] = []
        kinds: tuple[Kind, ...] = ("fire", "smoke")
        for kind in kinds:
            mine = [r for r in regions if r.kind == kind]
            sit = self._situations.get(kind)
            if mine:
                best = max(mine, key=lambda r: (r.score, r.area))
                area = float(sum(r.area for r in mine))
                box = union_box([r.box for r in mine])
                if sit is None:
                    zone = opts.zone or "frame"
                    key = f"{obs.camera_id}/smoke_fire/{zone}/{kind}/{obs.at:%Y%m%dT%H%M%S}"
                    sit = _Situation(
                        kind=kind,
                        life=Situation(kind, self._severity_of(kind), key),
                        started_at=obs.at,
                        first_area=max(area, 1e-6),
                        reported_area=max(area, 1e-6),
                        last_confirmed_t=obs.t,
                        last_update_t=obs.t,
                        detector=best.detector,
                        box=box,
                        score=best.score,
                    )
                    self._situations[kind] = sit
                    out.append(
                        self._finding(sit, "active", obs.at, obs, area, [r.box for r in mine])
                    )
                else:
                    sit.last_confirmed_t = obs.t
                    sit.box, sit.score = box, max(sit.score, best.score)
                    if (
                        area >= sit.reported_area * opts.update_growth
                        and obs.t - sit.last_update_t >= opts.update_interval_s
                    ):
                        sit.reported_area = area
                        sit.last_update_t = obs.t
                        sit.detector = best.detector
                        out.append(
                            self._finding(sit, "update", obs.at, obs, area, [r.box for r in mine])
                        )
            elif sit is not None and obs.t - sit.last_confirmed_t >= opts.clear_s:
                out.append(self._finding(sit, "cleared", obs.at, obs))
                del self._situations[kind]
        return out

    def _severity_of(self, kind: Kind) -> Severity:
        return self.fire_severity if kind == "fire" else self.smoke_severity

    def _close_stale(self, obs: Observation) -> list[Finding]:
        return self._report([], obs)

    def _finding(
        self,
        sit: _Situation,
        state: State,
        at: datetime,
        obs: Observation | None,
        area: float | None = None,
        boxes: list[Box] | None = None,
    ) -> Finding:
        opts = self.options
        where = f"{opts.zone}区域" if opts.zone else "画面内"
        word = {"fire": "明火", "smoke": "烟雾"}[sit.kind]
        verb = {"active": "发现", "update": "扩大", "cleared": "已消失"}[state]
        summary = f"{where}{verb}{word}" if state == "active" else f"{where}{word}{verb}"
        attrs: dict[str, Any] = {
            "region": [round(v, 1) for v in sit.box],
            "detector": sit.detector,
            "score": round(sit.score, 3),
        }
        if area is not None:
            attrs["area_fraction"] = round(area, 5)
            attrs["area_ratio"] = round(area / sit.first_area, 3)
        if obs is not None:
            attrs["media_time_s"] = round(obs.t, 3)
        if opts.zone:
            attrs["zone"] = opts.zone
        return sit.life.report(
            state,
            occurred_at=at,
            confidence=round(float(sit.score), 3),
            summary=summary,
            attributes=attrs,
            zone=opts.zone,
            address=self.context.address,
            grid_id=self.context.grid_id,
            boxes=tuple(boxes) if boxes else ((sit.box,) if state != "cleared" else ()),
            snapshot=state != "cleared",
        )


def _severity(
    options_value: str | None, context: CameraContext, code: str, fallback: Severity
) -> Severity:
    if options_value is not None:
        return as_severity(options_value)
    return context.severity_of(code, fallback)


def build(options: Options, context: CameraContext) -> SmokeFire:
    """Factory used by the registry."""
    if options.zone is not None and options.zone not in context.zones:
        raise KeyError(
            f"smoke_fire: expected a zone of camera {context.camera_id!r} ({', '.join(sorted(context.zones)) or 'none defined'}), found {options.zone!r}"
        )
    return SmokeFire(
        options=options,
        context=context,
        fire_severity=_severity(options.fire_severity, context, "fire", "emergency"),
        smoke_severity=_severity(options.smoke_severity, context, "smoke", "urgent"),
    )
