"""Options of the falling-object pipeline: the façade calibration and the tuning knobs."""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from shaobing.severity import Severity


class FacadeOptions(BaseModel):
    """Façade calibration: four image corners and the window grid."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    corners: list[tuple[float, float]] = Field(
        description="façade corners in image pixels: top-left, top-right, bottom-right, bottom-left"
    )
    floors: int = Field(
        ge=1, le=300, description="storeys between the bottom and top edges; floor 1 = ground floor"
    )
    columns: int = Field(
        ge=1, le=200, description="window columns; column 1 = leftmost as seen in the image"
    )
    floor_height_m: float = Field(
        default=3.0, gt=0.5, le=20.0, description="storey height in metres"
    )
    column_width_m: float = Field(
        default=3.6,
        gt=0.3,
        le=50.0,
        description="window pitch in metres (façade width = columns × this)",
    )

    @field_validator("corners")
    @classmethod
    def _corners(cls, value: list[tuple[float, float]]) -> list[tuple[float, float]]:
        if len(value) != 4:
            raise ValueError(f"expected 4 corners [[x, y], …] (TL, TR, BR, BL), found {len(value)}")
        pts = np.asarray(value, dtype=np.float64)
        cross = []
        for i in range(4):
            a, b, c = pts[i], pts[(i + 1) % 4], pts[(i + 2) % 4]
            ab, bc = b - a, c - b
            cross.append(ab[0] * bc[1] - ab[1] * bc[0])
        if not (all(c > 0 for c in cross) or all(c < 0 for c in cross)):
            raise ValueError(
                f"expected a convex quadrilateral TL, TR, BR, BL, found corners {value}"
            )
        tl, tr, br, bl = pts
        if not (tl[1] + tr[1] < bl[1] + br[1]):
            raise ValueError(
                f"expected the top edge (TL, TR) above the bottom edge (BR, BL), found corners {value}"
            )
        if not (tl[0] < tr[0] and bl[0] < br[0]):
            raise ValueError(
                f"expected left corners left of right corners (TL, TR, BR, BL), found corners {value}"
            )
        e1, e2 = tr - tl, bl - tl
        if abs(float(e1[0] * e2[1] - e1[1] * e2[0])) < 100.0:
            raise ValueError(
                f"expected a façade of some area, found a degenerate quadrilateral {value}"
            )
        return value


class Options(BaseModel):
    """``falling_object`` options under ``cameras[].pipelines``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    facade: FacadeOptions = Field(description="façade calibration (corners, floors, columns)")
    building: str | None = Field(
        default=None, description="building name, e.g. 3栋 (goes into address and summary)"
    )
    severity: Severity = Field(
        default="urgent", description="severity of the event (never below the type's default)"
    )
    work_width: int = Field(
        default=640, ge=160, le=1920, description="motion analysis width in pixels (downscale)"
    )
    max_shrink: float = Field(
        default=2.0,
        ge=1.0,
        le=16.0,
        description=(
            "never shrink the frame more than this for motion analysis: a 1920-pixel camera "
            "is analysed at 960, not at work_width (a small body stays two pixels wide)"
        ),
    )
    min_drop_m: float = Field(
        default=3.0, gt=0.0, le=100.0, description="smallest tracked vertical drop to report (m)"
    )
    min_accel_mps2: float = Field(
        default=3.5, gt=0.0, le=30.0, description="lowest plausible fitted fall acceleration"
    )
    max_accel_mps2: float = Field(
        default=60.0, gt=1.0, le=100.0, description="highest plausible fitted fall acceleration"
    )
    gap_s: float = Field(
        default=0.3, gt=0.0, le=1.0, description="a track ends after this long unseen"
    )
    air_margin: float = Field(
        default=0.25,
        ge=0.0,
        le=1.0,
        description="air beside the façade watched, as a fraction of its width",
    )
    max_activity: float = Field(
        default=0.03,
        ge=0.0,
        le=1.0,
        description="reject tracks through places that keep moving (activity 0..1)",
    )
    color: bool = Field(
        default=True,
        description="compare colour, not only brightness (slower, sees hue-only contrast)",
    )
    min_contrast: float = Field(
        default=10.0, ge=1.0, le=100.0, description="lowest grey-level difference treated as motion"
    )
    faint_candidates: bool = Field(
        default=True,
        description=(
            "look for faint candidates (2.5× the camera's noise floor) where a known track "
            "is expected, so a small or dark object stays tracked (track before detect)"
        ),
    )
    rain_filter: bool = Field(
        default=True,
        description="remove rain: many thin streaks that share one direction in a frame",
    )
    path_search: bool = Field(
        default=True,
        description=(
            "search gravity paths through faint differences over the last frames (track "
            "before detect in the intensity domain): finds objects too faint to show as a "
            "blob in any one frame"
        ),
    )
    regather: bool = Field(
        default=True,
        description=(
            "when a track that fell fast is no fall, follow its body again through every "
            "blob of the last seconds (a snowflake's or an insect's track took its points)"
        ),
    )
    depth_paths: bool = Field(
        default=True,
        description=(
            "a path that is no parabola on the façade may still be a fall in front of it "
            "(thrown towards the camera): test gravity in 3-D before rejecting it"
        ),
    )

    @model_validator(mode="after")
    def _accel(self) -> Options:
        if self.min_accel_mps2 >= self.max_accel_mps2:
            raise ValueError(
                f"expected min_accel_mps2 < max_accel_mps2, found {self.min_accel_mps2} ≥ {self.max_accel_mps2}"
            )
        return self
