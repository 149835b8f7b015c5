"""Falling objects (高空抛物): motion on a façade that falls like a dropped body.

A camera looks up at a building. The COCO detector does not see a falling bottle, so this
pipeline works on pixels. A background model on a downscaled, smoothed crop of the watched
region (the façade plus ``air_margin`` of air beside it; colour differences by default, so
an object as bright as the wall still shows) gives small moving blobs. Global gain changes
(exposure, clouds) are compensated; a frame where much of the region changes at once
(lightning, a light switched on) relearns the background and is skipped; a per-pixel
activity map mutes places that keep moving (foliage, flags, ghosts); many thin streaks in
one frame are dropped as rain. Repeated frames (frame-rate conversion) are skipped.

Hard conditions (night, infrared, small objects, rain, snow, insects): the threshold
follows the camera's noise floor, learned over time; rain streaks are removed by shape
and common direction (structure tensor, then an opening along that direction); a frame of
many small particles is not a global change; where a known track is expected, faint
candidates (2.5 σ) may extend it but never start one (track before detect); a track linked
through crowds of candidates is rejected, and among clutter only a plain fall under g
counts.

Blobs are linked into tracks in façade metres (a homography from the four calibrated
corners) with a gravity-aware predictor. A finished track is accepted only if it falls like
a body:

* weighted least squares ``Y(t) = y0 + v0·t − ½·a·t²`` with ``a`` within
  ``[min_accel_mps2, max_accel_mps2]`` and significantly above zero (leaves and paper
  drift at near-constant speed, birds fly level or climb), a small residual, a drop of at
  least ``min_drop_m`` and a fast final speed. The upper bound is loose on purpose: an
  object thrown towards a camera that looks up appears, once mapped onto the façade plane,
  to fall faster than g;
* sideways motion close to a straight line, no climbing back once falling, a steady blob
  size, seen in most frames it spans, not in a busy (foliage) area.

Tracks broken by an occlusion or a crossing bird are joined again when the pieces fit one
fall and the first piece was falling (or sat at its release above a falling second piece);
a piece of a fall already reported, or a second find from the same window at the same
moment, is not reported twice.

Physics (issue 19.6): the camera pose comes from the calibration (focal length from the
homography, principal point at the image centre). A fitted acceleration between 0.5 g and
1.25 g is a body under gravity; above that, the track is fitted with g in 3-D, the body
moving towards the camera in front of the façade (``gravity_depth``); when neither
explains it, the fit is ``implausible``: ``floor_range`` is widened and the confidence
lowered. ``attributes.fit`` gives the model, the depth and a Chinese reason.

The release point is the highest point consistent with the fit: the vertex of a parabola
fitted to the early part of the track (velocity zero) when the object was already falling at
its first sighting, else the first sighting itself; a static lead-in (an object resting on a
sill before it falls) pins the release position. Release floor and window column come from
the normalised façade coordinates of that point; ``floor_range`` spans the estimates with
the fitted acceleration and with g, and the first sighting, so it widens when the release
was extrapolated far above the first sighting.

Façade metres: height = ``floors × floor_height_m``; width = ``columns ×
column_width_m`` (default 3.6 m, a common window pitch). The width only scales the
sideways plausibility limits; floor and column indices come from the normalised
coordinates.

One finding (state ``active``) per falling object, emitted when its track ends (object
landed, left the frame or the façade region), i.e. within ``gap_s`` (0.3 s) of the last
sighting.
"""

from pipelines.falling_object.geometry import CameraPose, FacadeGeometry, G
from pipelines.falling_object.motion import Blobs, MotionDetector
from pipelines.falling_object.options import FacadeOptions, Options
from pipelines.falling_object.physics import FallClassifier, FallFit, GravityFit, gravity_depth_fit
from pipelines.falling_object.pipeline import MESSAGES, FallingObject, build

__all__ = [
    "MESSAGES",
    "G",
    "Blobs",
    "CameraPose",
    "FacadeGeometry",
    "FacadeOptions",
    "FallClassifier",
    "FallFit",
    "FallingObject",
    "GravityFit",
    "MotionDetector",
    "Options",
    "build",
    "gravity_depth_fit",
]
