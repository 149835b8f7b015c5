"""``/setup`` on the node: draw each camera's zones and façade calibration on its picture.

- ``GET /setup``: the page (canvas over a fresh snapshot of each camera).
- ``GET /setup/api/cameras``: each camera's zones, pipelines and façade calibration
  (no credentials: a password in a stream URL is masked, the broker's is never sent).
- ``GET /setup/api/cameras/{id}/snapshot.jpg``: the latest frame.
- ``PUT /setup/api/cameras/{id}``: new zones and/or façade calibration. Checked by the same
  config models as ``edge run`` (errors as ``FILE:LINE key.path: …``), written back into the
  node's YAML with its comments and order kept (``ruamel.yaml``), and put into effect for
  that camera from its next frame, without a restart.

Writing needs the node's ``http_token`` (Bearer) when one is set; without one, only a
client on loopback may write.
"""

from __future__ import annotations

import hmac
import io
import re
import time
from pathlib import Path
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from edge.node_view import NodeView
from shaobing.config import ConfigError, load_edge_config

__all__ = ["build_setup_router", "SetupIn"]

STATIC = Path(__file__).resolve().parent / "static"
_CRED = re.compile(r"(://[^:/@]+:)[^@/]+@")
Point = tuple[float, float]


class FacadeIn(BaseModel):
    """A façade calibration drawn on the picture."""

    model_config = ConfigDict(extra="forbid")
    corners: list[Point] = Field(min_length=4, max_length=4, description="TL, TR, BR, BL")
    floors: int = Field(ge=1, le=300)
    columns: int = Field(ge=1, le=1000)


class SetupIn(BaseModel):
    """What the setup page saves for one camera."""

    model_config = ConfigDict(extra="forbid")
    zones: dict[str, list[Point]] | None = Field(
        default=None, description="every zone of the camera, by name (pixel polygons)"
    )
    facade: FacadeIn | None = Field(default=None, description="falling_object façade calibration")


def _masked(url: str) -> str:
    return _CRED.sub(r"\1***@", url)


def _camera_view(node: NodeView, index: int) -> dict[str, Any]:
    cam = node.config.cameras[index]
    worker = next((w for w in node.cameras if w.camera.id == cam.id), None)
    image = worker.engine.last_image if worker is not None else None
    facade = None
    fo = cam.pipelines.get("falling_object")
    if isinstance(fo, dict) and isinstance(fo.get("facade"), dict):
        f = fo["facade"]
        facade = {
            "corners": f.get("corners"),
            "floors": f.get("floors"),
            "columns": f.get("columns"),
        }
    return {
        "id": cam.id,
        "url": _masked(cam.url),
        "running": worker is not None,
        "width": int(image.shape[1]) if image is not None else None,
        "height": int(image.shape[0]) if image is not None else None,
        "zones": {k: [list(p) for p in v] for k, v in cam.zones.items()},
        "pipelines": sorted(cam.pipelines),
        "zone_refs": _zone_refs(cam.pipelines),
        "facade": facade,
    }


def _zone_refs(pipelines: dict[str, Any]) -> dict[str, list[str]]:
    """Which pipeline option names which zone (so the page can say what a zone is for)."""
    out: dict[str, list[str]] = {}
    for name, opts in pipelines.items():
        if not isinstance(opts, dict):
            continue
        for key, value in opts.items():
            if key.endswith("zone") and isinstance(value, str):
                out.setdefault(value, []).append(f"{name}.{key}")
    return out


def _may_write(request: Request, node: NodeView) -> None:
    token = node.config.http_token_value()
    header = request.headers.get("authorization", "")
    given = header[7:].strip() if header.lower().startswith("bearer ") else ""
    if token:
        if given and hmac.compare_digest(given.encode(), token.encode()):
            return
        raise HTTPException(status_code=401, detail="需要节点令牌（http_token）才能保存")
    host = request.client.host if request.client else ""
    if host in ("127.0.0.1", "::1", "localhost") or host.startswith("127."):
        return
    raise HTTPException(
        status_code=403, detail="此节点未设置 http_token：只有本机（127.0.0.1）可以保存"
    )


def _write_yaml(path: Path, cam_id: str, body: SetupIn) -> tuple[str, str]:
    """The node's YAML with this camera's zones and façade replaced (comments kept).

    Returns (new text, old text); raises KeyError when the file has no such camera.
    """
    from ruamel.yaml import YAML
    from ruamel.yaml.comments import CommentedMap, CommentedSeq

    yaml = YAML()
    yaml.preserve_quotes = True
    old = path.read_text(encoding="utf-8")
    data = yaml.load(old)
    cams = data.get("cameras") or []
    cam = next((c for c in cams if str(c.get("id")) == cam_id), None)
    if cam is None:
        raise KeyError(cam_id)

    def flow(points: list[Point]) -> CommentedSeq:
        seq = CommentedSeq([_flow_pair(p) for p in points])
        seq.fa.set_flow_style()
        return seq

    if body.zones is not None:
        zones = cam.get("zones")
        if not isinstance(zones, CommentedMap):
            zones = CommentedMap()
            cam["zones"] = zones
        for name in [k for k in zones if k not in body.zones]:
            del zones[name]
        for name, points in body.zones.items():
            zones[name] = flow(points)
    if body.facade is not None:
        pipes = cam.get("pipelines") or CommentedMap()
        fo = pipes.get("falling_object")
        if fo is None:
            raise ValueError("facade: this camera has no falling_object pipeline")
        facade = fo.get("facade") or CommentedMap()
        facade["corners"] = flow(body.facade.corners)
        facade["floors"] = body.facade.floors
        facade["columns"] = body.facade.columns
        fo["facade"] = facade
    buf = io.StringIO()
    yaml.dump(data, buf)
    return buf.getvalue(), old


def _flow_pair(p: Point) -> Any:
    from ruamel.yaml.comments import CommentedSeq

    pair = CommentedSeq([_num(p[0]), _num(p[1])])
    pair.fa.set_flow_style()
    return pair


def _num(v: float) -> float | int:
    return int(v) if float(v).is_integer() else round(float(v), 1)


def build_setup_router(node: NodeView) -> APIRouter:
    """The setup page and its API for ``node``."""
    router = APIRouter()

    @router.get("/setup", response_class=HTMLResponse, include_in_schema=False)
    def page() -> HTMLResponse:
        return HTMLResponse((STATIC / "setup.html").read_text(encoding="utf-8"))

    @router.get("/setup/static/{name}", include_in_schema=False)
    def static(name: str) -> FileResponse:
        if name not in ("setup.js", "setup.css"):
            raise HTTPException(status_code=404, detail="not found")
        return FileResponse(STATIC / name)

    @router.get("/setup/api/cameras")
    def cameras() -> JSONResponse:
        return JSONResponse(
            {
                "node_id": node.config.node_id,
                "writable_without_token": node.config.http_token_value() is None,
                "items": [_camera_view(node, i) for i in range(len(node.config.cameras))],
            }
        )

    @router.get("/setup/api/cameras/{cam_id}/snapshot.jpg")
    def snapshot(cam_id: str) -> Response:
        import cv2

        worker = next((w for w in node.cameras if w.camera.id == cam_id), None)
        image = worker.engine.last_image if worker is not None else None
        if image is None:
            raise HTTPException(status_code=404, detail=f"camera {cam_id!r}: no picture yet")
        ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 85])
        if not ok:
            raise HTTPException(status_code=500, detail="snapshot could not be encoded")
        return Response(bytes(data), media_type="image/jpeg", headers={"Cache-Control": "no-store"})

    @router.put("/setup/api/cameras/{cam_id}")
    def save(cam_id: str, body: SetupIn, request: Request) -> JSONResponse:
        _may_write(request, node)
        path = node.config_path
        if path is None:
            raise HTTPException(
                status_code=409, detail="this node was not started from a config file"
            )
        t0 = time.monotonic()
        try:
            text, old = _write_yaml(path, cam_id, body)
        except KeyError:
            raise HTTPException(
                status_code=404, detail=f"camera {cam_id!r} not in {path}"
            ) from None
        except ValueError as exc:
            raise HTTPException(status_code=422, detail=str(exc)) from None
        # checked exactly as `edge run` checks a config, on a copy beside the file
        trial = path.with_name(f".{path.name}.setup-check")
        trial.write_text(text, encoding="utf-8")
        try:
            from pipelines.registry import options_models
            from pipelines.sensor_rules import threshold_issues

            cfg = load_edge_config(trial, options_models(), [lambda c: threshold_issues(c.sensors)])
        except ConfigError as exc:
            issues = [str(i).replace(str(trial), str(path)) for i in exc.issues]
            return JSONResponse(
                {
                    "error": {
                        "status": 422,
                        "code": "invalid",
                        "message": "; ".join(issues),
                        "issues": issues,
                    },
                    "detail": "; ".join(issues),
                },
                status_code=422,
            )
        finally:
            trial.unlink(missing_ok=True)
        camera = cfg.camera(cam_id)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
        try:
            node.apply_camera(camera)
        except KeyError:
            pass  # a camera that is not running (disabled) takes it at its next start
        return JSONResponse(
            {
                "saved": str(path),
                "applied": any(w.camera.id == cam_id for w in node.cameras),
                "took_ms": round((time.monotonic() - t0) * 1000, 1),
                "camera": _camera_view(node, [c.id for c in node.config.cameras].index(cam_id)),
            }
        )

    return router
