"""Options of the ``smoke_fire`` pipeline (``cameras[].pipelines.smoke_fire``)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

from shaobing.severity import SEVERITIES


class Options(BaseModel):
    """``smoke_fire`` options under ``cameras[].pipelines`` (``smoke_fire: {}`` watches the whole frame)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    zone: str | None = Field(
        default=None,
        description="zone name from cameras[].zones to watch; default: the whole frame",
    )
    detect_fire: bool = Field(default=True, description="raise `fire` events")
    detect_smoke: bool = Field(default=True, description="raise `smoke` events")
    classical: bool = Field(
        default=True, description="run the weight-free colour/flicker/smoke detector"
    )
    model: str | None = Field(
        default=None,
        description="name of a detector.extra_models entry (e.g. fire_smoke) whose fire/smoke detections are confirmed too; "
        "setting it makes the node run detection for this camera",
    )
    fire_classes: list[str] = Field(
        default_factory=lambda: ["fire", "flame"], description="model classes that mean fire"
    )
    smoke_classes: list[str] = Field(
        default_factory=lambda: ["smoke"], description="model classes that mean smoke"
    )
    model_confidence: float = Field(
        default=0.35, ge=0.0, le=1.0, description="ignore weaker model detections"
    )
    work_width: int = Field(
        default=320,
        ge=96,
        le=960,
        description="analysis width in pixels (frames are scaled down to it)",
    )
    cell_px: int = Field(
        default=8, ge=4, le=32, description="evidence grid cell size, in work pixels"
    )
    analysis_fps: float = Field(
        default=5.0, gt=0.0, le=30.0, description="analyse at most this many frames per second"
    )
    confirm_s: float = Field(
        default=2.0, ge=0.5, le=60.0, description="evidence must last this long before an event"
    )
    window_s: float = Field(
        default=3.0, ge=0.5, le=60.0, description="sliding window for the N-of-M persistence test"
    )
    persist_ratio: float = Field(
        default=0.7,
        gt=0.0,
        le=1.0,
        description="share of the window's samples a cell must hold evidence in",
    )
    max_gap_s: float = Field(
        default=1.5,
        gt=0.0,
        le=30.0,
        description="a longer gap between frames restarts the evidence",
    )
    fire_min_area: float = Field(
        default=0.0008,
        gt=0.0,
        le=1.0,
        description="smallest flame region, as a fraction of the watched area",
    )
    flicker_min: float = Field(
        default=10.0,
        ge=0.0,
        le=255.0,
        description="least flicker of a flame region: mean brightness change (grey levels) between samples of pixels that stay flame-coloured",
    )
    churn_min: float = Field(
        default=0.05,
        ge=0.0,
        le=1.0,
        description="least shape churn of a flame region: flame-mask XOR over union between samples",
    )
    flame_min_red: int = Field(
        default=170, ge=0, le=255, description="least red channel value of a flame-coloured pixel"
    )
    flame_hot_level: int = Field(
        default=200, ge=0, le=255, description="luma of a luminous (hot) flame pixel"
    )
    flame_hot_min: float = Field(
        default=0.02,
        ge=0.0,
        le=1.0,
        description="least share of a flame region's pixels that are luminous (a flame is a light source)",
    )
    flame_solid_min: float = Field(
        default=0.3,
        ge=0.0,
        le=1.0,
        description="least share of a flame region's pixels inside a solid body (3×3 erosion); rejects glitter on water",
    )
    smoke_min_area: float = Field(
        default=0.004,
        gt=0.0,
        le=1.0,
        description="smallest smoke region, as a fraction of the watched area",
    )
    smoke_max_chroma: int = Field(
        default=40, ge=0, le=255, description="largest max(RGB)-min(RGB) of a smoke pixel (grey)"
    )
    smoke_max_saturation: float = Field(
        default=0.35,
        gt=0.0,
        le=1.0,
        description="largest chroma share, (max-min)/max of RGB, of a smoke pixel on a dark background "
        "(a flame's dim glow is saturated)",
    )
    smoke_min_diff: int = Field(
        default=14,
        ge=1,
        le=255,
        description="least brightness difference from the background of a smoke pixel",
    )
    smoke_dark_level: float = Field(
        default=40.0,
        gt=0.0,
        le=255.0,
        description="background brightness below which smoke is judged as lit smoke on a dark scene "
        "(thresholds ramp from the dark ones at black to the constants at this level)",
    )
    smoke_dark_diff: int = Field(
        default=5,
        ge=1,
        le=255,
        description="least difference from a black background of a smoke pixel (smoke_min_diff applies on bright ones)",
    )
    smoke_dark_soft: float = Field(
        default=1.5,
        ge=0.0,
        le=10.0,
        description="edges a smoke pixel may bring on a black background, per grey level of its difference",
    )
    smoke_hold_background: float = Field(
        default=0.3,
        ge=0.0,
        le=1.0,
        description="rate at which the background learns pixels that show smoke, relative to the others "
        "(1: a steady plume fades into the background like a parked object)",
    )
    smoke_confirm_s: float = Field(
        default=4.0,
        ge=0.5,
        le=120.0,
        description="classical smoke evidence must last this long (smoke is slower to judge than flame)",
    )
    smoke_window_s: float = Field(
        default=5.0, ge=0.5, le=120.0, description="persistence window of classical smoke evidence"
    )
    smoke_turbulence_min: float = Field(
        default=0.25,
        ge=0.0,
        le=1.0,
        description="least share of a smoke region's pixels changing between samples",
    )
    smoke_rise_min: float = Field(
        default=0.25,
        ge=0.0,
        description="least rise or spread, in region heights over the window, of a smoke region",
    )
    global_change_max: float = Field(
        default=0.45,
        gt=0.0,
        le=1.0,
        description="a change covering more of the watched area is global (not smoke)",
    )
    background_s: float = Field(
        default=20.0, ge=1.0, le=600.0, description="time constant of the background model"
    )
    clear_s: float = Field(
        default=10.0, ge=1.0, le=3600.0, description="nothing confirmed for this long → cleared"
    )
    update_growth: float = Field(
        default=1.5,
        gt=1.0,
        le=100.0,
        description="region area ratio since the last report that sends an update",
    )
    update_interval_s: float = Field(
        default=5.0, ge=0.0, le=3600.0, description="least time between two updates"
    )
    fire_severity: str | None = Field(
        default=None, description="severity of fire events; default: the taxonomy's (emergency)"
    )
    smoke_severity: str | None = Field(
        default=None, description="severity of smoke events; default: the taxonomy's (urgent)"
    )

    @model_validator(mode="after")
    def _check(self) -> Options:
        if not (self.detect_fire or self.detect_smoke):
            raise ValueError("expected detect_fire or detect_smoke (or both), found both false")
        if not self.classical and self.model is None:
            raise ValueError("expected classical: true or a model name, found neither")
        if self.window_s < self.confirm_s:
            raise ValueError(
                f"expected window_s >= confirm_s, found window_s={self.window_s} < confirm_s={self.confirm_s}"
            )
        if self.smoke_window_s < self.smoke_confirm_s:
            raise ValueError(
                f"expected smoke_window_s >= smoke_confirm_s, found {self.smoke_window_s} < {self.smoke_confirm_s}"
            )
        for name in ("fire_severity", "smoke_severity"):
            value = getattr(self, name)
            if value is not None and value not in SEVERITIES:
                raise ValueError(f"{name}: expected normal, urgent or emergency, found {value!r}")
        return self
