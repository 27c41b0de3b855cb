"""The Strawberry view mounted on /graphql."""

from collections.abc import Mapping
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.websockets import WebSocket, WebSocketDisconnect
from strawberry.asgi import ASGIWebSocketAdapter, GraphQL
from strawberry.http.exceptions import WebSocketDisconnected

from gql.graphql import ide
from gql.graphql.context import GatewayContext

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


class GatewayGraphQL(GraphQL[GatewayContext, None]):
    websocket_adapter_class = TextFrameWebSocketAdapter

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
