"""Request limits applied before a body is read: size and JSON nesting.

``BodyLimit`` is plain ASGI middleware, so it sees the body as it streams in: a declared
``Content-Length`` over the limit is refused with 413 before a byte is read, and a body
without one (chunked) is counted while it arrives and refused as soon as it passes the
limit. A JSON body nested deeper than ``max_json_depth`` is refused with 422 before any
parser recurses into it.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from typing import Any

from starlette.exceptions import HTTPException

__all__ = ["BodyLimit", "BodyTooLarge", "json_depth"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class BodyTooLarge(HTTPException):
    """A request body over its limit (413); FastAPI passes HTTP exceptions through."""

    def __init__(self, limit: int, found: str) -> None:
        super().__init__(
            status_code=413, detail=f"body: expected at most {limit} bytes, found {found}"
        )


def json_depth(data: bytes, stop_at: int) -> int:
    """Nesting depth of a JSON text, counted without parsing (stops past ``stop_at``)."""
    depth = deepest = 0
    in_string = escaped = False
    for byte in data:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:  # quote
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):  # [ {
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > stop_at:
                    return deepest
        elif byte in (0x5D, 0x7D):
            depth -= 1
    return deepest


class BodyLimit:
    """ASGI middleware: refuse bodies over their path's limit, and deeply nested JSON.

    Args:
        app: the wrapped application.
        default_limit: bytes allowed for any body.
        path_limits: (path prefix, bytes) pairs for paths that take more (uploads).
        max_json_depth: deepest nesting allowed in a JSON body.
    """

    def __init__(
        self,
        app: ASGIApp,
        default_limit: int,
        path_limits: Sequence[tuple[str, int]] = (),
        max_json_depth: int = 32,
    ) -> None:
        self.app = app
        self.default_limit = default_limit
        self.path_limits = list(path_limits)
        self.max_json_depth = max_json_depth

    def limit_for(self, path: str) -> int:
        """The body limit of a path."""
        for prefix, limit in self.path_limits:
            if path.startswith(prefix):
                return limit
        return self.default_limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope.get("path", ""))
        headers = {k.lower(): v for k, v in scope.get("headers", [])}
        declared = headers.get(b"content-length", b"").decode("latin-1").strip()
        if declared:
            if not declared.isdigit():
                await _refuse(send, 400, f"Content-Length: expected a number, found {declared!r}")
                return
            if int(declared) > limit:
                await _refuse(send, 413, f"body: expected at most {limit} bytes, found {declared}")
                return
        is_json = b"json" in headers.get(b"content-type", b"").lower()  # media types ignore case
        received = 0
        started = False
        buffered = bytearray()

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                chunk = message.get("body", b"")
                received += len(chunk)
                if received > limit:
                    raise BodyTooLarge(limit, "more")
                if is_json:
                    buffered.extend(chunk)
                    if not message.get("more_body", False):
                        depth = json_depth(bytes(buffered), self.max_json_depth)
                        if depth > self.max_json_depth:
                            raise HTTPException(
                                status_code=422,
                                detail=f"body: expected JSON nested at most "
                                f"{self.max_json_depth} levels, found more",
                            )
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except HTTPException as exc:
            if started or exc.status_code not in (413, 422):
                raise
            await _refuse(send, exc.status_code, str(exc.detail))


async def _refuse(send: Send, status: int, message: str) -> None:
    codes = {400: "bad_request", 413: "too_large", 422: "invalid"}
    body = json.dumps(
        {
            "error": {"status": status, "code": codes.get(status, "error"), "message": message},
            "detail": message,
        },
        ensure_ascii=False,
    ).encode("utf-8")
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
