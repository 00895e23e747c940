"""ASGI middleware that refuses request bodies over the configured size with 413.

Pure ASGI (no BaseHTTPMiddleware). A declared Content-Length over the limit is refused before
reading; one within the limit passes straight through (the HTTP server reads exactly that many
bytes, never more), so only a chunked body is wrapped and counted as it streams.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.fhir.jsonio import FHIR_JSON_UTF8, dumps
from app.fhir.outcomes import Issue, operation_outcome


class BodyTooLargeError(Exception):
    """Raised inside the receive wrapper when a streamed body passes the limit."""


def _refusal(limit: int) -> bytes:
    issue = Issue(
        "error",
        "too-costly",
        f"The request body is larger than the {limit}-byte limit",
        ("$body",),
    )
    return dumps(operation_outcome([issue]))


class BodySizeLimit:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    break  # count what arrives instead
                if declared > self.max_bytes:
                    await self._refuse(send)
                else:
                    await self.app(scope, receive, send)
                return
        received = 0
        response_started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLargeError
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal response_started
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except BodyTooLargeError:
            if not response_started:
                await self._refuse(send)

    async def _refuse(self, send: Send) -> None:
        body = _refusal(self.max_bytes)
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", FHIR_JSON_UTF8.encode()),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
