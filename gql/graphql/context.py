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
        self.extensions: dict[str, object] = {}

    async def principal(self) -> Principal:
        if self._principal is not None:
            return await self._principal
        self._principal = asyncio.get_running_loop().create_future()
        client = self.request.client.host if self.request.client else "unknown"
        try:
            principal = await self.services.access.admit(
                self.request.headers.get("authorization"), client
            )
        except Exception as error:
            self._principal.set_exception(error)
            self._principal.exception()  # retrieved here; other awaiters re-raise it
            raise
        self._principal.set_result(principal)
        return principal
