"""Request bodies over a configured size are refused before they are read.

A pure ASGI wrapper, installed outermost, so the check runs before routing, authentication
and body parsing: a declared ``Content-Length`` over the limit gets 413 at once without a
byte of the body read, and a chunked body is counted as it streams and cut off (413) the
moment it passes the limit. The reply is the API's problem document.
"""

from __future__ import annotations

import json

from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

PROBLEM_JSON = "application/problem+json"


class BodySizeLimit:
    """Refuse HTTP requests whose body is larger than ``max_bytes`` with 413."""

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            await self._refuse(scope, send, f"the request body declares {declared} bytes")
            return
        seen = 0
        started = refused = False

        async def counted_receive() -> Message:
            # Past the limit: answer 413 at once and tell the app the client has gone, so
            # nothing downstream turns it into a 400 or reads another byte.
            nonlocal seen, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes and not started:
                    refused = True
                    await self._refuse(
                        scope, send, f"the request body passed {self.max_bytes} bytes"
                    )
                    return {"type": "http.disconnect"}
            return message

        async def tracked_send(message: Message) -> None:
            nonlocal started
            if refused:
                return  # the 413 has been sent; the app's own reply goes nowhere
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted_receive, tracked_send)
        except ClientDisconnect:
            if not refused:
                raise

    async def _refuse(self, scope: Scope, send: Send, what: str) -> None:
        body = json.dumps(
            {
                "type": "about:blank",
                "title": "Payload Too Large",
                "status": 413,
                "detail": f"{what}; the limit is {self.max_bytes} bytes",
                "instance": scope.get("path", ""),
                "error": "body_too_large",
            }
        ).encode()
        headers = [
            (b"content-type", PROBLEM_JSON.encode()),
            (b"content-length", str(len(body)).encode()),
            (b"connection", b"close"),
        ]
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
