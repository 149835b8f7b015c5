"""The pages: dashboard, phone page, citizen rating page, API docs and static files."""

from __future__ import annotations

import re
from pathlib import Path

from fastapi import APIRouter, HTTPException
from fastapi.responses import FileResponse, HTMLResponse

router = APIRouter(include_in_schema=False)
rating_router = APIRouter(include_in_schema=False)

STATIC = Path(__file__).resolve().parent.parent / "static"
DOCS_ASSETS = frozenset({"swagger-ui-bundle.js", "swagger-ui.css", "favicon.png"})
_STATIC_NAME = re.compile(r"^[A-Za-z0-9_\-][A-Za-z0-9_.\-]{0,127}$")


def docs_assets() -> Path | None:
    """The folder of the Swagger UI and ReDoc files (the ``fastapi-offline`` package)."""
    try:
        import fastapi_offline
    except ImportError:
        return None
    return Path(fastapi_offline.__file__).resolve().parent / "static"


def _page(name: str) -> HTMLResponse:
    return HTMLResponse((STATIC / name).read_text(encoding="utf-8"))


@rating_router.get("/r/{code}", response_class=HTMLResponse)
def rate_page(code: str) -> HTMLResponse:
    return _page("rate.html")


@router.get("/", response_class=HTMLResponse)
def dashboard() -> HTMLResponse:
    return _page("index.html")


@router.get("/m/", response_class=HTMLResponse)
def mobile() -> HTMLResponse:
    return _page("mobile.html")


@router.get("/docs", response_class=HTMLResponse)
def docs() -> HTMLResponse:
    return _page("docs.html")


@router.get("/docs-assets/{name}")
def docs_asset(name: str) -> FileResponse:
    folder = docs_assets()
    if name not in DOCS_ASSETS or folder is None or not (folder / name).is_file():
        raise HTTPException(status_code=404, detail="not found")
    return FileResponse(folder / name)


@router.get("/static/{name}")
def static(name: str) -> FileResponse:
    if not _STATIC_NAME.match(name):
        raise HTTPException(status_code=404, detail="not found")
    path = (STATIC / name).resolve()
    if path.parent != STATIC or not path.is_file():
        raise HTTPException(status_code=404, detail="not found")
    return FileResponse(path)
