"""A minimal graphql-transport-ws client for the live-status tests (the Python subscriber)."""

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

EVENT_FIELDS = """
  id domainId kind fromStatus toStatus reason cause actor occurredAt
  domain { id status statusReason updatedAt }
"""
SUBSCRIBE = (
    "subscription($id: UUID, $after: ID) { emailDomainEvents(id: $id, after: $after) {"
    f" {EVENT_FIELDS} }} }}"
)


class Subscription:
    """One subscription on its own graphql-transport-ws connection."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.pings = 0

    async def message(self, *, within: float = 10) -> dict[str, Any]:
        """The next message that is not a keepalive ping (pings are answered)."""
        deadline = time.monotonic() + within
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no message within {within} s")
            try:
                raw = await asyncio.wait_for(self.ws.recv(), remaining)
            except TimeoutError:
                raise AssertionError(f"no message within {within} s") from None
            assert isinstance(raw, str), "graphql-transport-ws messages are text frames"
            message: dict[str, Any] = json.loads(raw)
            if message["type"] == "ping":
                self.pings += 1
                await self.ws.send(json.dumps({"type": "pong"}))
                continue
            return message

    async def event(self, *, within: float = 10) -> dict[str, Any]:
        """The next event delivered; fails on anything else."""
        message = await self.message(within=within)
        assert message["type"] == "next", message
        assert "errors" not in message["payload"], message
        event: dict[str, Any] = message["payload"]["data"]["emailDomainEvents"]
        return event

    async def closed(self, *, within: float = 10) -> tuple[int | None, str]:
        """Wait for the server to close the connection; its code and reason."""
        try:
            while True:
                await self.message(within=within)
        except ConnectionClosed as closed:
            received = closed.rcvd
            return (None, "") if received is None else (received.code, received.reason)


@asynccontextmanager
async def subscribe(
    ws_url: str,
    token: str,
    variables: dict[str, Any] | None = None,
    *,
    query: str = SUBSCRIBE,
) -> AsyncIterator[Subscription]:
    """Connect, initialise with the token (in the `connection_init` payload) and start one
    subscription."""
    authorization = f"Bearer {token}"
    async with connect(
        ws_url,
        subprotocols=["graphql-transport-ws"],  # type: ignore[list-item]
        open_timeout=10,
    ) as ws:
        await ws.send(
            json.dumps({"type": "connection_init", "payload": {"Authorization": authorization}})
        )
        subscription = Subscription(ws)
        ack = await subscription.message()
        assert ack["type"] == "connection_ack", ack
        await ws.send(
            json.dumps(
                {
                    "id": "1",
                    "type": "subscribe",
                    "payload": {"query": query, "variables": variables or {}},
                }
            )
        )
        try:
            yield subscription
        finally:
            with contextlib.suppress(ConnectionClosed):
                await ws.send(json.dumps({"id": "1", "type": "complete"}))
