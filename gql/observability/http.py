"""The outermost middleware: request id, server span, HTTP metrics and one log line per request."""

import logging
import time
from functools import cache

from prometheus_client import Histogram
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gql.observability import tracing
from gql.observability.logs import REQUEST_LOGGER, RequestFacts, begin_request
from gql.observability.metrics import HTTP_DURATION, UNMATCHED_ROUTE
from gql.observability.request_id import HEADER, accept_or_mint, bind

logger = logging.getLogger(REQUEST_LOGGER)

_HEADER = HEADER.lower().encode()
_TRACE_HEADERS = frozenset({b"traceparent", b"tracestate"})
# Any other method a client invents is counted as `_OTHER` (as OpenTelemetry does), so it
# cannot add label values.
_METHODS = frozenset(
    {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT", "TRACE"}
)
OTHER_METHOD = "_OTHER"


@cache
def _duration(method: str, route: str, status: int) -> Histogram:
    # Methods, routes and statuses are all bounded, so this cache is too.
    return HTTP_DURATION.labels(method, route, str(status))


def _route(scope: Scope) -> str:
    """The route template (`/api/email/domains/{id}`), never the raw path, so metrics and
    span names stay a handful of values."""
    for route in getattr(scope.get("app"), "routes", ()):
        match, _ = route.matches(scope)
        if match is not Match.NONE:
            return str(getattr(route, "path", UNMATCHED_ROUTE))
    return UNMATCHED_ROUTE


def _outcome(status: int) -> str:
    if status < 400:
        return "ok"
    return "client_error" if status < 500 else "server_error"


def _with_request_id(message: Message, request_id: str) -> Message:
    headers = [(k, v) for k, v in message.get("headers", ()) if k.lower() != _HEADER]
    headers.append((_HEADER, request_id.encode()))
    return {**message, "headers": headers}


class ObservabilityMiddleware:
    """Binds the request id (the caller's `X-Request-ID` when acceptable) for everything below,
    returns it on every response and WebSocket handshake, and measures and logs the request.

    An exception escaping the app leaves the request id bound, so the server's error handler
    cites the same reference in its 500 answer and its log line.
    """

    def __init__(self, app: ASGIApp, *, access_log: bool) -> None:
        self.app = app
        self.access_log = access_log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        incoming: str | None = None
        carrier: dict[str, str] = {}
        for key, value in scope["headers"]:
            if key == _HEADER:
                incoming = value.decode("latin-1")
            elif key in _TRACE_HEADERS:
                carrier[key.decode()] = value.decode("latin-1")
        request_id = accept_or_mint(incoming)
        bind(request_id)
        if scope["type"] == "websocket":

            async def send_accept(message: Message) -> None:
                if message["type"] == "websocket.accept":
                    message = _with_request_id(message, request_id)
                await send(message)

            await self.app(scope, receive, send_accept)
            return
        await self._http(scope, receive, send, request_id, carrier)

    async def _http(
        self, scope: Scope, receive: Receive, send: Send, request_id: str, carrier: dict[str, str]
    ) -> None:
        facts = begin_request()
        method: str = scope["method"] if scope["method"] in _METHODS else OTHER_METHOD
        status = 500
        began = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message = _with_request_id(message, request_id)
            await send(message)

        with tracing.span(
            method,
            kind="server",
            carrier=carrier,
            attributes={"http.request.method": method, "url.path": scope["path"]},
        ) as span:
            try:
                await self.app(scope, receive, send_with_id)
            except Exception:
                status = 500
                raise
            finally:
                duration = time.perf_counter() - began
                route = _route(scope)
                _duration(method, route, status).observe(duration)
                if span is not None:
                    span.update_name(f"{method} {route}")
                    span.set_attribute("http.route", route)
                    span.set_attribute("http.response.status_code", status)
                    if status >= 500:
                        tracing.mark_error(span, str(status))
                if self.access_log:
                    self._log(scope, method, route, status, duration, facts)

    def _log(
        self,
        scope: Scope,
        method: str,
        route: str,
        status: int,
        duration: float,
        facts: RequestFacts,
    ) -> None:
        outcome = facts.graphql_outcome or _outcome(status)
        duration_ms = round(duration * 1000, 3)
        parts = [method, scope["path"], str(status), f"{duration_ms:g} ms"]
        if facts.operation_type is not None:
            parts += [facts.operation_type, facts.operation_name or "(anonymous)"]
        if facts.user_id is not None:
            parts.append(f"user {facts.user_id}")
        logger.info(
            " ".join(parts),
            extra={
                "method": method,
                "route": route,
                "path": scope["path"],
                "status": status,
                "duration_ms": duration_ms,
                "user_id": facts.user_id,
                "operation_name": facts.operation_name,
                "operation_type": facts.operation_type,
                "outcome": outcome,
            },
        )
