"""Limits on HTTP requests: time for every request, body size for GraphQL."""

import asyncio

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gql.rest.responses import error_response, json_response


class RequestTimeLimit:
    """Answers 503 `unavailable` (with Retry-After) when a request runs past `seconds`.

    The work in flight is cancelled; a single-statement write either committed or did not, so
    nothing is left half-written. WebSockets and event streams (SSE subscriptions, which last
    as long as the client wants) are not limited once their response has started.
    """

    def __init__(self, app: ASGIApp, seconds: float) -> None:
        self.app = app
        self.seconds = seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def send_tracking(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                if any(
                    name.lower() == b"content-type" and value.startswith(b"text/event-stream")
                    for name, value in message.get("headers", [])
                ):
                    limit.reschedule(None)
            await send(message)

        limit = asyncio.timeout(self.seconds)
        try:
            async with limit:
                await self.app(scope, receive, send_tracking)
        except TimeoutError:
            if not limit.expired() or started:
                raise
            response = error_response(
                503,
                "unavailable",
                f"The request took longer than {self.seconds:g} s and was stopped; nothing was "
                "left half-done. Retry shortly.",
                {"Retry-After": "5"},
            )
            await response(scope, receive, send)


class _TooLarge(Exception):
    pass


class BodySizeLimit:
    """Answers 413 (a GraphQL error, code PAYLOAD_TOO_LARGE) for a body over `max_bytes`,
    declared or streamed. The REST shim checks its own body, with its own error shape."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(scope, receive, send)
            return
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_bytes:
                raise _TooLarge
            return message

        try:
            await self.app(scope, counting_receive, send)
        except _TooLarge:
            await self._refuse(scope, receive, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        message = (
            f"The request body is larger than {self.max_bytes} bytes; send a smaller document."
        )
        body = {"errors": [{"message": message, "extensions": {"code": "PAYLOAD_TOO_LARGE"}}]}
        await json_response(body, 413)(scope, receive, send)
