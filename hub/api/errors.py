"""One shape for every error: ``{"error": {"status", "code", "message", …}, "detail": message}``."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from hub.workorders import Forbidden, Invalid, NotFound, TransitionRefused

__all__ = ["ERRORS", "ErrorBody", "ErrorDetail", "error_response", "install_error_handlers"]

CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    409: "conflict",
    413: "too_large",
    415: "unsupported_media_type",
    422: "invalid",
    429: "too_many_requests",
    503: "unavailable",
}


def error_response(status: int, message: str, **extra: Any) -> JSONResponse:
    """The JSON error response."""
    body = {
        "error": {
            "status": status,
            "code": CODES.get(status, "error"),
            "message": message,
            **extra,
        },
        "detail": message,
    }
    return JSONResponse(body, status_code=status)


class ErrorDetail(BaseModel):
    """What went wrong; 409s also carry ``state``, ``action`` and ``allowed``, 422s ``issues``."""

    model_config = ConfigDict(extra="allow")
    status: int = Field(description="HTTP status")
    code: str = Field(
        description="bad_request, unauthorized, forbidden, not_found, conflict, too_large, unsupported_media_type, invalid"
    )
    message: str = Field(description="expected … found …")


class ErrorBody(BaseModel):
    """Every error response has this shape."""

    error: ErrorDetail = Field(description="the error")
    detail: str = Field(description="the message again (FastAPI clients read `detail`)")


ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody} for code in (400, 401, 403, 404, 409, 413, 415, 422)
}


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    resp = error_response(exc.status_code, str(exc.detail))
    for k, v in (exc.headers or {}).items():
        resp.headers[k] = v
    return resp


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    issues = [
        {"loc": ".".join(str(p) for p in e.get("loc", ())), "message": e.get("msg", "")}
        for e in exc.errors()
    ]
    return error_response(
        422,
        "; ".join(f"{i['loc']}: {i['message']}" for i in issues) or "invalid request",
        issues=issues,
    )


async def _refused(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, TransitionRefused)
    return error_response(409, str(exc), state=exc.state, action=exc.action, allowed=exc.allowed)


def _plain(status: int) -> Any:
    async def handler(request: Request, exc: Exception) -> JSONResponse:
        return error_response(status, str(exc))

    return handler


def install_error_handlers(app: FastAPI) -> None:
    """HTTP errors, validation errors and the work-order core's refusals in the one shape."""
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(TransitionRefused, _refused)
    app.add_exception_handler(Forbidden, _plain(403))
    app.add_exception_handler(NotFound, _plain(404))
    app.add_exception_handler(Invalid, _plain(422))
