"""The per-operation context handed to every resolver, and who the caller is.

Over HTTP a request is admitted (authenticated and counted against a rate limit) once, before
its document is parsed, by `AdmitFirst` in front of the view. Over a WebSocket each operation is
admitted the same way by `admit_operation`, called at the start of the operation's task; the
token comes from the `connection_init` payload (`{"Authorization": "Bearer …"}`) or, failing
that, from the upgrade request's `Authorization` header. A connection whose token is revoked or
expires is closed with 4403 (`watch_credentials`).
"""

import asyncio
import contextlib
import time
from contextvars import ContextVar

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocket, WebSocketState

from gql.errors import RateLimited, Unavailable
from gql.models import Principal
from gql.services.access import Admission
from gql.services.container import Services

ADMISSION_KEY = "gql.admission"
FORBIDDEN = 4403

# Set at the top of each WebSocket operation's task, so that every resolver of that operation
# (sibling fields run in child tasks, which copy it) sees the same admission.
_operation_admission: ContextVar[Admission | None] = ContextVar(
    "gql_operation_admission", default=None
)


def _client(connection: Request | WebSocket) -> str:
    return connection.client.host if connection.client else "unknown"


class GatewayContext:
    """Request (or WebSocket), response and services; the caller comes from the admission.

    `principal()` raises `Unauthenticated` lazily, so introspection and `__typename` need no
    credentials, while every request and operation is counted whether or not it uses data.
    """

    def __init__(
        self, request: Request | WebSocket, response: Response | WebSocket, services: Services
    ) -> None:
        self.request = request
        self.response = response
        self.services = services
        self.extensions: dict[str, object] = {}
        # Set by Strawberry from the `connection_init` payload.
        self.connection_params: dict[str, object] | None = None
        self._admission: asyncio.Future[Admission] | None = None
        self._watcher: asyncio.Task[None] | None = None

    @property
    def is_websocket(self) -> bool:
        return isinstance(self.request, WebSocket)

    def authorization(self) -> str | None:
        """The credentials sent: `Authorization` (any case) in the `connection_init` payload,
        else the request's (or upgrade request's) `Authorization` header."""
        for name, value in (self.connection_params or {}).items():
            if name.lower() == "authorization" and isinstance(value, str):
                return value
        return self.request.headers.get("authorization")

    async def principal(self) -> Principal:
        return (await self.admission()).require()

    async def admission(self) -> Admission:
        if self.is_websocket:
            admission = _operation_admission.get()
            return admission if admission is not None else await admit_operation(self)
        admitted = self.request.scope.get(ADMISSION_KEY)
        if isinstance(admitted, Admission):
            return admitted
        # Not admitted in front of the view (a schema executed directly): once, here.
        if self._admission is not None:
            return await self._admission
        self._admission = asyncio.get_running_loop().create_future()
        try:
            admission = await self.services.access.admission(
                self.authorization(), _client(self.request)
            )
        except Exception as error:
            self._admission.set_exception(error)
            self._admission.exception()  # retrieved here; other awaiters re-raise it
            raise
        self._admission.set_result(admission)
        return admission


async def admit_operation(context: GatewayContext) -> Admission:
    """Authenticate and count one WebSocket operation, before its document is parsed.

    Call it at the start of the operation's task: the admission is then the one every resolver
    of the operation sees. Raises `RateLimited` when the caller is over its limit, `Unavailable`
    when the database cannot be asked about a key.
    """
    admission = await context.services.access.admission(
        context.authorization(), _client(context.request)
    )
    _operation_admission.set(admission)
    return admission


async def connect(context: GatewayContext) -> bool:
    """On `connection_init`: False for credentials that were sent but are not valid (the socket
    is then closed with 4403); for valid ones, the connection is watched until they end."""
    if context.authorization() is None:
        return True
    try:
        admission = await context.services.access.admission(
            context.authorization(), _client(context.request)
        )
    except (RateLimited, Unavailable):
        return False  # fail closed: the client connects again later
    if admission.principal is None:
        return False
    context._watcher = asyncio.create_task(watch_credentials(context, admission))
    return True


async def disconnect(context: GatewayContext) -> None:
    """When the socket is gone: stop watching its credentials."""
    watcher, context._watcher = context._watcher, None
    if watcher is not None and watcher is not asyncio.current_task():
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher


async def watch_credentials(context: GatewayContext, admission: Admission) -> None:
    """Close the socket (4403) when its credentials end: a session token at its expiry (no
    need to look again before: it is signed), a key within API_KEY_CACHE_SECONDS (at least
    every second) of its revocation, asking the database."""
    access = context.services.access
    if admission.expires_at is not None:
        await asyncio.sleep(max(0.0, admission.expires_at - time.time()))
    else:
        authorization = context.authorization()
        while True:
            await asyncio.sleep(access.recheck_seconds)
            with contextlib.suppress(Unavailable):  # asked again at the next check
                if not await access.revalidate(authorization):
                    break
    websocket = context.response
    if isinstance(websocket, WebSocket) and websocket.client_state != WebSocketState.DISCONNECTED:
        with contextlib.suppress(RuntimeError):
            await websocket.close(
                code=FORBIDDEN, reason="Forbidden: the token was revoked or has expired"
            )


class AdmitFirst:
    """Admits each GraphQL HTTP request before its body is read or parsed.

    A caller over its rate limit gets a GraphQL error (429, `RATE_LIMITED`, `Retry-After`)
    without any further work, and so does every caller while the database cannot be asked about
    a key (503, `SERVICE_UNAVAILABLE`); otherwise the admission is left in the scope for the
    context.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        services: Services = scope["app"].state.services
        # Read straight from the scope: this runs on every request.
        authorization = next(
            (v.decode("latin-1") for k, v in scope["headers"] if k == b"authorization"), None
        )
        client = scope.get("client")
        try:
            scope[ADMISSION_KEY] = await services.access.admission(
                authorization, client[0] if client else "unknown"
            )
        except (RateLimited, Unavailable) as error:
            await _refusal(error)(scope, receive, send)
            return
        await self.app(scope, receive, send)


def _refusal(error: RateLimited | Unavailable) -> Response:
    body = {"errors": [{"message": error.message, "extensions": error.extensions}]}
    return Response(
        orjson.dumps(body),
        status_code=error.http_status,
        headers={"Retry-After": str(error.retry_after)},
        media_type="application/json",
    )
