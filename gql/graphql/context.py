"""The per-operation context handed to every resolver."""

import asyncio

from starlette.requests import Request
from starlette.responses import Response
from starlette.websockets import WebSocket

from gql.models import Principal
from gql.services.container import Services


class GatewayContext:
    """Request, response and services; the caller is authenticated lazily, once per operation.

    Lazily, because introspection and `__typename` need no credentials; once, because sibling
    fields resolve concurrently and must not each count against the rate limit.
    """

    def __init__(
        self, request: Request | WebSocket, response: Response | WebSocket, services: Services
    ) -> None:
        self.request = request
        self.response = response
        self.services = services
        self._principal: asyncio.Future[Principal] | None = None

    async def principal(self) -> Principal:
        if self._principal is None:
            client = self.request.client.host if self.request.client else "unknown"
            self._principal = asyncio.ensure_future(
                self.services.access.admit(self.request.headers.get("authorization"), client)
            )
        return await asyncio.shield(self._principal)
