"""Tampering clips made with ffmpeg from the shared videos (camera-health tests and tuning).

Each clip is a real video that plays normally for ``normal_s`` seconds (the health check
learns the camera's own sharpness and brightness there) and is then tampered with until
its end: defocused (Gaussian blur at several σ), fogged or sprayed (contrast lost under a
veil), covered (a flat grey or dark cloth with sensor noise), turned away (the view
jumps to another part of the scene and stays), or switched to night IR (grey, brighter,
noisier: not a fault). Clips are small (scaled to 480 px wide) and cached by name.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from shaobing.paths import assets_dir

WIDTH = 480


@dataclass(frozen=True)
class Tamper:
    """One way to tamper with a camera.

    Attributes:
        name: short id (file names, reports).
        expected: device_fault conditions that count as detecting it; empty: not a fault.
        vf: ffmpeg filter chain applied from ``{T}`` seconds on (timeline ``enable``), or
            ``turn`` for a view that jumps.
    """

    name: str
    expected: tuple[str, ...]
    vf: str


def _on(filters: str) -> str:
    return ",".join(f"{f}:enable='gte(t,{{T}})'" for f in filters.split(","))


TAMPERS: tuple[Tamper, ...] = (
    Tamper("blur_s4", ("blurred",), _on("gblur=sigma=4")),
    Tamper("blur_s8", ("blurred",), _on("gblur=sigma=8")),
    Tamper("blur_s12", ("blurred",), _on("gblur=sigma=12")),
    Tamper("blur_s20", ("blurred", "covered"), _on("gblur=sigma=20")),
    Tamper("fog", ("blurred", "covered"), _on("gblur=sigma=3,eq=contrast=0.35:brightness=0.25")),
    Tamper("spray", ("blurred", "covered"), _on("gblur=sigma=8,eq=contrast=0.2:brightness=0.3")),
    Tamper(
        "cover_grey",
        ("covered",),
        _on("drawbox=x=0:y=0:w=iw:h=ih:color=0x808080@1:t=fill,noise=alls=8:allf=t"),
    ),
    Tamper(
        "cover_dark",
        ("covered", "black"),
        _on("drawbox=x=0:y=0:w=iw:h=ih:color=0x303030@1:t=fill,noise=alls=6:allf=t"),
    ),
    Tamper("turned", ("tampered",), "turn"),
    Tamper("ir_night", (), _on("hue=s=0,eq=brightness=0.06:contrast=1.25,noise=alls=10:allf=t")),
)

BASES = (
    "pedestrians_opencv_vtest.avi",
    "cars_parking_area_intel.mp4",
    "people_indoor_intel_one_by_one.mp4",
)


def make_clip(base: str, tamper: Tamper, out_dir: Path, normal_s: float, total_s: float) -> Path:
    """``base`` played normally for ``normal_s`` s, then tampered until ``total_s`` (cached)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / f"{Path(base).stem}__{tamper.name}_{normal_s:g}_{total_s:g}.mp4"
    if out.exists() and out.stat().st_size > 0:
        return out
    src = _base(base, out_dir, total_s)
    if tamper.vf == "turn":
        # the camera is turned: from normal_s on, the view is another part of the scene
        # (the right half, scaled up) and stays there
        import cv2

        cap = cv2.VideoCapture(str(src))
        w, h = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        cap.release()
        graph = (
            f"[0:v]setsar=1[n];[1:v]crop=iw/2:ih/2:iw/2:ih/4,scale={w}:{h},setsar=1[t];"
            "[n][t]concat=n=2:v=1[v]"
        )
        inputs = ["-t", str(normal_s), "-i", str(src), "-ss", str(normal_s), "-i", str(src)]
        _ffmpeg([*inputs, "-filter_complex", graph, "-map", "[v]"], out)
    else:
        _ffmpeg(["-i", str(src), "-vf", tamper.vf.format(T=normal_s)], out)
    return out


def _base(base: str, out_dir: Path, total_s: float) -> Path:
    """The shared video scaled to ``WIDTH``, looped to ``total_s`` seconds (cached)."""
    out = out_dir / f"{Path(base).stem}__base_{total_s:g}.mp4"
    if not (out.exists() and out.stat().st_size > 0):
        src = str(assets_dir() / "video" / base)
        args = ["-stream_loop", "-1", "-i", src, "-t", str(total_s)]
        _ffmpeg([*args, "-vf", f"scale={WIDTH}:-2,setsar=1"], out)
    return out


def _ffmpeg(args: list[str], out: Path) -> None:
    tmp = out.with_suffix(".part.mp4")
    cmd = [
        "ffmpeg", "-nostdin", "-y", "-loglevel", "error", *args, "-an", "-c:v", "libx264",
        "-preset", "ultrafast", "-crf", "20", "-pix_fmt", "yuv420p", str(tmp),
    ]  # fmt: skip
    subprocess.run(cmd, check=True, capture_output=True, timeout=120)
    tmp.replace(out)


def health_faults(
    video: Path, options: object, max_s: float | None = None, every: int = 2, loop: bool = False
) -> list[tuple[float, str, str]]:
    """Camera health over a video: (media time, state, condition) of each device_fault.

    Frames are decoded in order (looped up to ``max_s`` with ``loop``) and every
    ``every``-th one is checked, as the node does on its 160 px grey copy.
    """
    from datetime import UTC, datetime, timedelta

    from edge.health import CameraHealth, HealthOptions
    from edge.motion import downscale_grey
    from edge.sources.video import VideoSource

    assert isinstance(options, HealthOptions)
    health = CameraHealth("cam", options)
    t0 = datetime(2026, 7, 1, tzinfo=UTC)
    out: list[tuple[float, str, str]] = []
    for frame in VideoSource(str(video), loop=loop, realtime=False).frames():
        if max_s is not None and frame.t >= max_s:
            break
        if frame.index % every:
            continue
        grey = downscale_grey(frame.image, 160)
        for f in health.update(grey, frame.t, t0 + timedelta(seconds=frame.t)):
            out.append((round(frame.t, 2), f.state, str(f.attributes["fault"])))
    return out
