"""Limits on HTTP requests: time for every request, body size for GraphQL."""

import asyncio

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gql.providers.budget import request_budget
from gql.rest.responses import error_response, json_response


class RequestTimeLimit:
    """Answers 503 `unavailable` (with Retry-After) when a request runs past `seconds`.

    The work in flight is cancelled; every write commits with the jobs it implies or not at
    all, so nothing is left half-written. Provider calls inside the request spend its budget
    (time left, `provider_calls` calls, `provider_concurrency` at a time), so they give up
    before the limit and the request can answer. WebSockets are not limited.
    """

    def __init__(
        self, app: ASGIApp, seconds: float, provider_calls: int, provider_concurrency: int
    ) -> None:
        self.app = app
        self.seconds = seconds
        self.provider_calls = provider_calls
        self.provider_concurrency = provider_concurrency

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def send_tracking(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        limit = asyncio.timeout(self.seconds)
        budget = request_budget(
            self.seconds, calls=self.provider_calls, concurrency=self.provider_concurrency
        )
        try:
            with budget:
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
