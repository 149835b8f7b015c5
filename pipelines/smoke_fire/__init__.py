"""Smoke and fire on camera: a classical detector that needs no weights, plus a model path.

Config (``cameras[].pipelines``)::

    smoke_fire: {}                       # whole frame, classical detector
    smoke_fire: {zone: yard}             # only inside the camera's zone "yard"
    smoke_fire: {model: fire_smoke}      # also confirm detections of an extra model
    # with, at the node level:
    # detector: {extra_models: [{name: fire_smoke, model: fire_smoke.onnx, classes: [fire, smoke]}]}

Classical detector (on a frame scaled down to ``work_width`` pixels, the previous sample
aligned on it when the whole view moved — camera shake or pan):

* **flame** — pixels with flame colour (R ≥ G > B, R − B ≥ 60, brighter than the frame's mean,
  or a bright, not bluish core near such pixels). A flame region must *flicker* (pixels that
  stay flame-coloured change brightness from sample to sample, ``flicker_min``), change shape
  (``churn_min``), be a light source (part of it near the sensor's top, ``flame_hot_min``)
  and be one solid body (``flame_solid_min``). A sunset, a brick wall, an orange jacket, a
  waving flag, a lamp or glitter on water fails at least one of these.
* **smoke** — grey (low chroma) pixels that differ from a slow background model without
  adding edges (smoke is soft; opaque objects bring sharp silhouettes), keep changing inside
  (turbulence) and rise or spread. Smoke is judged over a longer time (``smoke_confirm_s``).
  A change that covers most of the watched area at once is a global change (fade to black,
  covered lens, fog, exposure jump): camera health reports those; this pipeline ignores them
  and relearns its background.

Evidence is counted on a coarse grid of cells. A cell is *persistent* when it holds evidence
in at least ``persist_ratio`` of the samples of the sliding window (N of M) and the evidence
has lasted at least ``confirm_s``; connected persistent cells form a region. A moving car or
a walking person in red never stays long enough in the same cells. The temporal tests use
the lower quartile of the per-sample values over the window, so they must hold through the
window, not in one lucky sample. A region that passes them is confirmed, and the camera's
situation for that type becomes active.

Model path: with ``model`` set (the name of an entry in ``detector.extra_models``), the node
runs that model for this camera and passes its detections as ``obs.tracks``; tracks whose
class is one of ``fire_classes`` / ``smoke_classes`` (and at least ``model_confidence``)
are painted on their own grid and go through the same persistence confirmation (the model
already judged the appearance, so no flicker test). ``classical: false`` leaves only the model.

Findings: ``fire`` (taxonomy default severity: emergency) and ``smoke`` (urgent), one
situation per type per camera: ``active`` once, ``update`` when the region has grown by
``update_growth`` (at most every ``update_interval_s``), and ``cleared`` when nothing was
confirmed for ``clear_s`` (or at the end of the stream). ``incident_key``:
``{camera}/smoke_fire/{zone or "frame"}/{type}/{start time}``. Attributes: ``region`` (box in
source pixels), ``area_ratio`` (region area over the area when first reported),
``area_fraction`` (of the watched area), ``detector`` (``classical`` or the model name),
``score``, ``media_time_s``, ``zone``. ``boxes`` are the confirmed regions.

Frames: the pipeline wants pixels (``needs_frames``) but not every frame
(``needs_every_frame`` is false): it works on whatever rate the node samples (``detect_fps``,
5 fps by default; tested from 2.5 to 12.5 fps) and analyses at most ``analysis_fps`` frames
per second when fed faster. A gap longer than ``max_gap_s`` restarts the evidence, so the
camera's ``detect_fps`` must be at least ``1 / max_gap_s``.
"""

from pipelines.smoke_fire.detector import Detector
from pipelines.smoke_fire.evidence import CLASSICAL, FLICKER_QUANTILE, Kind, flame_mask
from pipelines.smoke_fire.options import Options
from pipelines.smoke_fire.pipeline import STATE_VERSION, SmokeFire, build

__all__ = [
    "CLASSICAL",
    "FLICKER_QUANTILE",
    "STATE_VERSION",
    "Detector",
    "Kind",
    "Options",
    "SmokeFire",
    "build",
    "flame_mask",
]
