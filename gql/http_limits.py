"""Limits on HTTP requests: time for every request, body size for GraphQL, and (below the
ASGI app, in the HTTP protocol) header size and the time to send them."""

import asyncio
import functools
from asyncio import BaseTransport, Protocol, TimerHandle
from typing import Any, cast

from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from gql.errors import Unavailable
from gql.rest.responses import error_response, json_response


class RequestTimeLimit:
    """Answers 503 (with Retry-After) when a request runs past `seconds`: `unavailable` in the
    REST shape, or SERVICE_UNAVAILABLE as a GraphQL error on `graphql_paths`.

    The work in flight is cancelled; a single-statement write either committed or did not, so
    nothing is left half-written. WebSockets are not limited.
    """

    def __init__(
        self, app: ASGIApp, seconds: float, graphql_paths: frozenset[str] = frozenset()
    ) -> None:
        self.app = app
        self.seconds = seconds
        # Answered with a GraphQL error (SERVICE_UNAVAILABLE) rather than the REST body.
        self.graphql_paths = graphql_paths

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
            message = (
                f"The request took longer than {self.seconds:g} s and was stopped; nothing was "
                "left half-done. Retry shortly."
            )
            headers = {"Retry-After": str(Unavailable.retry_after)}
            response = (
                json_response(
                    {
                        "errors": [
                            {"message": message, "extensions": Unavailable(message).extensions}
                        ]
                    },
                    503,
                    headers,
                )
                if scope["path"] in self.graphql_paths
                else error_response(503, "unavailable", message, headers)
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


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with two limits uvicorn does not have.

    - Headers larger than `max_header_bytes` (request line included) are answered 431 and the
      connection closed: httptools itself buffers a header of any size.
    - A connection that has not completed a request's headers within `header_timeout` seconds
      of opening, or of the first byte of its next request, is closed: uvicorn's keep-alive
      timeout only runs between requests, so a client sending one byte every few seconds (or
      nothing at all) kept a connection forever.
    """

    def __init__(
        self, *args: Any, max_header_bytes: int, header_timeout: float, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self._max_header_bytes = max_header_bytes
        self._header_timeout = header_timeout
        self._too_large = _headers_too_large(max_header_bytes)

    def connection_made(self, transport: BaseTransport) -> None:
        super().connection_made(transport)  # type: ignore[arg-type]
        self._header_bytes = 0
        self._awaiting_headers = True
        self._header_deadline: TimerHandle | None = None
        self._arm_header_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_header_deadline()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._awaiting_headers:
            self._header_bytes += len(data)
            self._arm_header_deadline()
        super().data_received(data)
        if self._awaiting_headers and self._header_bytes > self._max_header_bytes:
            self._refuse_headers()

    def on_headers_complete(self) -> None:
        self._awaiting_headers = False
        self._header_bytes = 0
        self._cancel_header_deadline()
        size = len(self.url) + sum(len(n) + len(v) + 4 for n, v in self.headers)
        if size <= self._max_header_bytes:
            super().on_headers_complete()
            return
        # Answered through uvicorn's own request cycle, which then closes the connection.
        app, self.app = self.app, self._too_large
        try:
            super().on_headers_complete()
        finally:
            self.app = app

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._awaiting_headers = True

    def _arm_header_deadline(self) -> None:
        if self._header_deadline is None:
            self._header_deadline = self.loop.call_later(self._header_timeout, self._headers_late)

    def _cancel_header_deadline(self) -> None:
        if self._header_deadline is not None:
            self._header_deadline.cancel()
            self._header_deadline = None

    def _headers_late(self) -> None:
        self._header_deadline = None
        if self._awaiting_headers and not self.transport.is_closing():
            self.transport.close()

    def _refuse_headers(self) -> None:
        # Headers still unfinished: nothing for an ASGI request cycle yet, so written here.
        self._awaiting_headers = False
        self._cancel_header_deadline()
        if self.transport.is_closing():
            return
        body = bytes(self._too_large.body)
        self.transport.write(
            b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
            b"content-type: application/json\r\nconnection: close\r\n"
            b"content-length: " + str(len(body)).encode() + b"\r\n\r\n" + body
        )
        self.transport.close()


@functools.cache
def _headers_too_large(max_header_bytes: int) -> Response:
    message = (
        f"The request headers are larger than {max_header_bytes} bytes; send shorter headers "
        "(a bearer token, not a cookie jar)."
    )
    return error_response(431, "headers_too_large", message, {"Connection": "close"})


def guarded_http_protocol(*, max_header_bytes: int, header_timeout: float) -> type[Protocol]:
    """The protocol class uvicorn should run, with these limits.

    A partial of a module-level class, not a class made here: `serve --workers N` pickles
    uvicorn's configuration into each process.
    """
    factory = functools.partial(
        GuardedHttpToolsProtocol, max_header_bytes=max_header_bytes, header_timeout=header_timeout
    )
    return cast("type[Protocol]", factory)
