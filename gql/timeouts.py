"""A time limit on every HTTP request, so a slow dependency cannot hold callers forever."""

import asyncio

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gql.rest.responses import error_response


class RequestTimeLimit:
    """Answers 503 `unavailable` (with Retry-After) when a request runs past `seconds`.

    The work in flight is cancelled; a single-statement write either committed or did not, so
    nothing is left half-written. WebSockets are not limited.
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
            started = started or message["type"] == "http.response.start"
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
