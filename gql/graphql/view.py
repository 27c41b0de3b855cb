"""The Strawberry view mounted on /graphql, speaking GraphQL over HTTP (see `over_http`)."""

from collections.abc import Mapping
from functools import cached_property
from typing import Any

import orjson
from cross_web import AsyncHTTPRequestAdapter, HTTPException
from graphql import GraphQLError
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket, WebSocketDisconnect
from strawberry.asgi import ASGIWebSocketAdapter, GraphQL
from strawberry.exceptions import ConnectionRejectionError
from strawberry.http import GraphQLHTTPResponse, GraphQLRequestData, process_result
from strawberry.http.exceptions import WebSocketDisconnected
from strawberry.http.parse_content_type import parse_content_type
from strawberry.http.streaming import HTTPStreamTransport, SSETransport
from strawberry.schema.base import BaseSchema
from strawberry.schema.exceptions import InvalidOperationTypeError
from strawberry.subscriptions import GRAPHQL_SSE_PROTOCOL, GRAPHQL_TRANSPORT_WS_PROTOCOL
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    Operation,
)
from strawberry.types import ExecutionResult
from strawberry.types.unset import UNSET, UnsetType

from gql.errors import RateLimited, Unavailable
from gql.graphql import ide
from gql.graphql.context import GatewayContext, admit_operation, connect, disconnect
from gql.graphql.over_http import (
    GRAPHQL_RESPONSE,
    JSON,
    RequestRefused,
    failed_before_execution,
    negotiate,
)
from gql.graphql.persisted import PersistedDocuments
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

    def __init__(
        self, schema: BaseSchema, settings: Settings, *, persisted: PersistedDocuments
    ) -> None:
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
        self.persisted = persisted

    @cached_property
    def _stream_transport_map(self) -> dict[str, HTTPStreamTransport]:
        # The only HTTP stream transport served, with the configured heartbeat interval.
        return {"sse": SSETransport(heartbeat_interval=self.keep_alive_interval or 15.0)}

    async def on_ws_connect(self, context: GatewayContext) -> UnsetType | dict[str, object] | None:
        if not await connect(context):
            raise ConnectionRejectionError
        unset: UnsetType = UNSET
        return unset

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        request = Request(scope, receive)
        try:
            response = await self.run(request)
        except HTTPException as error:
            response = self.refusal(request, RequestRefused(error.status_code, error.reason))
        except RequestRefused as refused:
            response = self.refusal(request, refused)
        await response(scope, receive, send)

    def refusal(self, request: Request, refused: RequestRefused) -> Response:
        """A request refused before GraphQL ran, as a GraphQL error body."""
        headers = dict(refused.headers)
        if refused.status == 405:
            headers.setdefault("Allow", "GET, POST")
        return Response(
            orjson.dumps(refused.body()),
            status_code=refused.status,
            media_type=negotiate(request.headers.get("accept")),
            headers=headers,
        )

    def encode_json(self, data: object) -> bytes:
        return orjson.dumps(data)

    def decode_json(self, data: str | bytes) -> object:
        return orjson.loads(data)

    def should_render_graphql_ide(self, request: Any) -> bool:
        # Only browsers asking for HTML get GraphiQL; API clients that send `Accept: */*`
        # (Apollo Client does) get a GraphQL answer instead of a web page.
        params = request.query_params
        return (
            request.method == "GET"
            and params.get("query") is None
            and params.get("documentId") is None
            and params.get("extensions") is None
            and "text/html" in request.headers.get("accept", "")
        )

    async def render_graphql_ide(self, request: Request) -> Response:
        return await ide.page(request)

    async def parse_http_body(
        self, request: AsyncHTTPRequestAdapter
    ) -> GraphQLRequestData | list[GraphQLRequestData]:
        """Strawberry's parsing, plus persisted documents and a 415 for other media types."""
        transport = self._get_stream_transport_from_headers(request.headers)
        protocol = transport.protocol if transport else "http"
        if request.method == "GET":
            data: object = self.parse_query_params(request.query_params)
        else:
            content_type, _ = parse_content_type(request.content_type or "")
            if content_type != JSON:
                raise RequestRefused(
                    415,
                    f"Send the GraphQL request as {JSON} (got "
                    f"{content_type or 'no Content-Type'}), or as a GET with query parameters.",
                )
            data = self.parse_json(await request.get_body())
        if isinstance(data, list):
            self._validate_batch_request(data, protocol=protocol)
            return [self._request_data(item, protocol) for item in data]
        return self._request_data(data, protocol)

    def _request_data(self, data: object, protocol: Any) -> GraphQLRequestData:
        if not isinstance(data, dict):
            raise RequestRefused(400, "A GraphQL request is a JSON object with a `query`.")
        data = self.persisted.resolve(data)
        for name, types, what in (
            ("query", (str,), "a string"),
            ("variables", (dict,), "an object"),
            ("extensions", (dict,), "an object"),
            ("operationName", (str,), "a string"),
        ):
            value = data.get(name)
            if value is not None and not isinstance(value, types):
                raise RequestRefused(400, f"`{name}` must be {what} or null, if provided.")
        return GraphQLRequestData(
            query=data.get("query"),
            variables=data.get("variables"),
            operation_name=data.get("operationName"),
            extensions=data.get("extensions"),
            protocol=protocol,
        )

    async def execute_single(self, *args: Any, **kwargs: Any) -> ExecutionResult:
        try:
            return await super().execute_single(*args, **kwargs)
        except HTTPException as error:
            if isinstance(error.__cause__, InvalidOperationTypeError):
                raise RequestRefused(
                    405, f"{error.reason}: send it as a POST.", headers={"Allow": "POST"}
                ) from error
            raise

    async def get_sub_response(self, request: Request | WebSocket) -> Response:
        response = await super().get_sub_response(request)
        response.media_type = negotiate(request.headers.get("accept"))
        return response

    async def process_result(
        self, request: Request, result: ExecutionResult
    ) -> GraphQLHTTPResponse:
        body = process_result(result)
        if failed_before_execution(result.data, result.errors):
            # The specification's "request error": the request never reached execution.
            body.pop("data", None)
        return body

    def create_response(
        self,
        response_data: GraphQLHTTPResponse | list[GraphQLHTTPResponse],
        sub_response: Response,
    ) -> Response:
        media = sub_response.media_type or JSON
        status = 200
        if (
            media == GRAPHQL_RESPONSE
            and isinstance(response_data, dict)
            and "data" not in response_data
        ):
            status = 400
        response = Response(self.encode_json(response_data), status_code=status, media_type=media)
        response.headers.raw.extend(sub_response.headers.raw)
        if sub_response.background:
            response.background = sub_response.background
        if sub_response.status_code:
            response.status_code = sub_response.status_code
        return response

    async def get_context(
        self, request: Request | WebSocket, response: Response | WebSocket
    ) -> GatewayContext:
        services = request.app.state.services
        if services.sandbox and isinstance(response, Response):
            response.headers["X-Gateway-Sandbox"] = SANDBOX_HEADER
        return GatewayContext(request, response, services)
