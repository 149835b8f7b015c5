"""Evidence images a person can judge at night: the enhanced composite and the path strip."""

from __future__ import annotations

import math

import cv2
import numpy as np

_PATCH_PX = 48  # full-resolution crop around the object, per sighting
_MAX_PATCHES = 400  # all tracks together (≈ 2.8 MB of crops at most)


def _enhance_path(img: np.ndarray, box: tuple[float, float, float, float]) -> None:
    """Brighten a dark frame and bring out the region of the path (in place).

    At night the façade is nearly black and a thrown object a few grey levels off it: a
    gamma lift makes the scene readable, local contrast equalisation (CLAHE) around the
    path makes the object stand out from the noise.
    """
    h, w = img.shape[:2]
    lab = cv2.cvtColor(img, cv2.COLOR_BGR2LAB)
    lum = lab[:, :, 0]
    if float(np.mean(lum)) < 90.0:
        lut = (255.0 * (np.arange(256) / 255.0) ** 0.5).astype(np.uint8)
        lum[:] = cv2.LUT(lum, lut)
    pad = 40
    x0 = int(max(0, math.floor(box[0]) - pad))
    y0 = int(max(0, math.floor(box[1]) - pad))
    x1 = int(min(w, math.ceil(box[2]) + pad))
    y1 = int(min(h, math.ceil(box[3]) + pad))
    if x1 - x0 >= 8 and y1 - y0 >= 8:
        clahe = cv2.createCLAHE(clipLimit=3.0, tileGridSize=(4, 4))
        lum[y0:y1, x0:x1] = clahe.apply(np.ascontiguousarray(lum[y0:y1, x0:x1]))
    img[:] = cv2.cvtColor(lab, cv2.COLOR_LAB2BGR)
    cv2.rectangle(img, (x0, y0), (x1 - 1, y1 - 1), (255, 255, 255), 1)


def _path_strip(patches: list[tuple[float, np.ndarray]], t_release: float) -> bytes:
    """A film strip of full-resolution crops along the path, each enhanced, as one JPEG."""
    if not patches:
        return b""
    pick = np.unique(np.linspace(0, len(patches) - 1, min(12, len(patches))).round().astype(int))
    tiles = []
    for i in pick:
        t, patch = patches[int(i)]
        tile = patch if patch.ndim == 3 else cv2.cvtColor(patch, cv2.COLOR_GRAY2BGR)
        lab = cv2.cvtColor(tile, cv2.COLOR_BGR2LAB)
        lab[:, :, 0] = cv2.normalize(lab[:, :, 0], None, 0, 255, cv2.NORM_MINMAX)
        tile = cv2.cvtColor(lab, cv2.COLOR_LAB2BGR)
        tile = cv2.resize(tile, (144, 144), interpolation=cv2.INTER_NEAREST)
        cv2.putText(
            tile,
            f"+{t - t_release:.2f}s",
            (4, 14),
            cv2.FONT_HERSHEY_SIMPLEX,
            0.4,
            (0, 255, 255),
            1,
            cv2.LINE_AA,
        )
        tiles.append(tile)
    while len(tiles) % 6 and len(tiles) > 6:
        tiles.append(np.zeros_like(tiles[0]))
    rows = [cv2.hconcat(tiles[i : i + 6]) for i in range(0, len(tiles), 6)]
    ok, buf = cv2.imencode(".jpg", cv2.vconcat(rows), [cv2.IMWRITE_JPEG_QUALITY, 90])
    return buf.tobytes() if ok else b""
