"""The Strawberry view mounted on /graphql."""

from collections.abc import Mapping
from functools import cached_property
from typing import Any

import orjson
from graphql import GraphQLError
from starlette.requests import Request
from starlette.responses import Response
from starlette.websockets import WebSocket, WebSocketDisconnect
from strawberry.asgi import ASGIWebSocketAdapter, GraphQL
from strawberry.exceptions import ConnectionRejectionError
from strawberry.http.exceptions import WebSocketDisconnected
from strawberry.http.streaming import HTTPStreamTransport, SSETransport
from strawberry.schema.base import BaseSchema
from strawberry.subscriptions import GRAPHQL_SSE_PROTOCOL, GRAPHQL_TRANSPORT_WS_PROTOCOL
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import Operation
from strawberry.types.unset import UNSET, UnsetType

from gql.errors import RateLimited, Unavailable
from gql.graphql import ide
from gql.graphql.context import GatewayContext, admit_operation, connect, disconnect
from gql.graphql.subscriptions import KeepaliveTransportWSHandler
from gql.settings import Settings

SANDBOX_HEADER = "verification is simulated; set AGENTMAIL_API_KEY to use AgentMail"


class TextFrameWebSocketAdapter(ASGIWebSocketAdapter):
    """Sends every message as a text frame, as graphql-transport-ws requires.

    Strawberry sends bytes as binary frames, and `encode_json` returns orjson's bytes; the
    reference `graphql-ws` client closes the connection on a binary frame.
    """

    async def send_json(self, message: Mapping[str, object]) -> None:
        try:
            await self.ws.send_text(orjson.dumps(message).decode())
        except WebSocketDisconnect as exc:
            raise WebSocketDisconnected from exc


class AdmittingTransportWSHandler(KeepaliveTransportWSHandler):
    """Admits each operation like an HTTP request (authenticated, rate-counted) before its
    document is parsed, and stops watching the connection's credentials when it ends."""

    async def run_operation(self, operation: Operation[GatewayContext, None]) -> None:
        try:
            await admit_operation(self.context)
        except (RateLimited, Unavailable) as error:
            refusal = GraphQLError(error.message, extensions=error.extensions)
            await operation.send_initial_errors([refusal])
            return
        await super().run_operation(operation)

    async def shutdown(self) -> None:
        await super().shutdown()
        await disconnect(self.context)


class GatewayGraphQL(GraphQL[GatewayContext, None]):
    websocket_adapter_class = TextFrameWebSocketAdapter
    graphql_transport_ws_handler_class = AdmittingTransportWSHandler

    def __init__(self, schema: BaseSchema, settings: Settings) -> None:
        # Subscriptions over graphql-transport-ws on the WebSocket (only: the legacy graphql-ws
        # protocol has no per-operation hook to admit operations), and over Server-Sent Events
        # (graphql-sse, distinct connections) on POST; keepalive pings on both.
        super().__init__(
            schema,
            graphql_ide="graphiql" if settings.graphiql else None,
            allowed_origins=settings.cors_origins,
            keep_alive=True,
            keep_alive_interval=settings.subscription_keepalive_seconds,
            subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL, GRAPHQL_SSE_PROTOCOL),
            max_subscriptions_per_connection=settings.subscription_max_per_connection,
        )

    @cached_property
    def _stream_transport_map(self) -> dict[str, HTTPStreamTransport]:
        # The only HTTP stream transport served, with the configured heartbeat interval.
        return {"sse": SSETransport(heartbeat_interval=self.keep_alive_interval or 15.0)}

    async def on_ws_connect(self, context: GatewayContext) -> UnsetType | dict[str, object] | None:
        if not await connect(context):
            raise ConnectionRejectionError
        unset: UnsetType = UNSET
        return unset

    def encode_json(self, data: object) -> bytes:
        return orjson.dumps(data)

    def decode_json(self, data: str | bytes) -> object:
        return orjson.loads(data)

    def should_render_graphql_ide(self, request: Any) -> bool:
        # Only browsers asking for HTML get GraphiQL; API clients that send `Accept: */*`
        # (Apollo Client does) get a GraphQL answer instead of a web page.
        return (
            request.method == "GET"
            and request.query_params.get("query") is None
            and "text/html" in request.headers.get("accept", "")
        )

    async def render_graphql_ide(self, request: Request) -> Response:
        return await ide.page(request)

    async def get_context(
        self, request: Request | WebSocket, response: Response | WebSocket
    ) -> GatewayContext:
        services = request.app.state.services
        if services.sandbox and isinstance(response, Response):
            response.headers["X-Gateway-Sandbox"] = SANDBOX_HEADER
        return GatewayContext(request, response, services)
