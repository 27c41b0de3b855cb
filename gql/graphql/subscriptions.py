"""The Subscription root, and server keepalive pings on graphql-transport-ws connections."""

import asyncio
import contextlib
import uuid
from collections.abc import AsyncGenerator

import strawberry
from strawberry.http.exceptions import WebSocketDisconnected
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
)
from strawberry.types import Info

from gql.graphql.context import GatewayContext
from gql.graphql.events import DomainEvent
from gql.observability.metrics import subscription_open
from gql.services.events import parse_event_id


@strawberry.type
class Subscription:
    @strawberry.subscription(
        description=(
            "Changes of one of the caller's domains (`id`), or of all of them when `id` is "
            "omitted, as they are committed, each with the domain after the change. With "
            "`after` (an event id received before), the stored events after it come first, so "
            "a client that reconnects misses nothing. A one-domain stream completes after its "
            "DELETED event."
        )
    )
    async def email_domain_events(
        self,
        info: Info[GatewayContext, None],
        id: uuid.UUID | None = None,
        after: strawberry.ID | None = None,
    ) -> AsyncGenerator[DomainEvent, None]:
        ctx = info.context
        principal = await ctx.principal()
        resume = None if after is None else parse_event_id(str(after))
        stream = ctx.services.events.stream(principal, domain_id=id, after=resume, connection=ctx)
        async with contextlib.aclosing(stream), subscription_open():
            async for event in stream:
                yield DomainEvent.from_value(event)


class KeepaliveTransportWSHandler(BaseGraphQLTransportWSHandler[GatewayContext, None]):
    """Sends a graphql-transport-ws `ping` every `keep_alive_interval` seconds once the
    connection is acknowledged, so proxies keep idle connections open and dead peers are found.
    """

    async def handle(self) -> None:
        pinger = asyncio.create_task(self._ping())
        try:
            await super().handle()
        finally:
            pinger.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pinger

    async def _ping(self) -> None:
        interval = self.view.keep_alive_interval or 15.0
        with contextlib.suppress(WebSocketDisconnected):
            while True:
                await asyncio.sleep(interval)
                if self.connection_acknowledged:
                    await self.send_message({"type": "ping"})
