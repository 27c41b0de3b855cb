"""Abuse of the HTTP layer itself (headers, slow and idle connections, WebSocket messages), and
of the document cache, against a real `gql-gateway serve` process."""

import asyncio
import contextlib
import json
from urllib.parse import urlsplit

import httpx

from gql.graphql.documents import DocumentCache, Entry
from tests.helpers import Served, events_until, node_client, serve

HEALTHZ = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n"


async def connect(served: Served) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    address = urlsplit(served.url)
    assert address.hostname is not None
    assert address.port is not None
    return await asyncio.open_connection(address.hostname, address.port)


async def closed_by_server(reader: asyncio.StreamReader, *, within: float = 15) -> bytes:
    """Everything the server sent until it closed (or reset) the connection."""
    received = b""
    async with asyncio.timeout(within):
        with contextlib.suppress(ConnectionError):
            while chunk := await reader.read(65536):
                received += chunk
    return received


async def test_oversized_headers_are_refused(database_url: str) -> None:
    async with serve(database_url, {"HTTP_MAX_HEADER_BYTES": "16384"}) as served:
        reader, writer = await connect(served)
        writer.write(HEALTHZ + b"X-Padding: " + b"a" * 32768 + b"\r\n\r\n")
        answer = await closed_by_server(reader)
        writer.close()
        assert answer.startswith(b"HTTP/1.1 431 "), answer[:200]
        assert b'"headers_too_large"' in answer
        async with httpx.AsyncClient(base_url=served.url) as client:
            normal = await client.get("/healthz", headers={"X-Padding": "a" * 8000})
        assert normal.status_code == 200


async def test_an_endless_header_is_cut_off(database_url: str) -> None:
    async with serve(database_url, {"HTTP_MAX_HEADER_BYTES": "16384"}) as served:
        reader, writer = await connect(served)
        writer.write(HEALTHZ + b"X-Padding: ")

        async def flood() -> None:
            with contextlib.suppress(ConnectionError):
                for _ in range(1600):  # 100 MB, never finished
                    writer.write(b"a" * 65536)
                    await writer.drain()

        flooding = asyncio.create_task(flood())
        try:
            await closed_by_server(reader)
        finally:
            flooding.cancel()
            writer.close()


async def test_headers_sent_slowly_are_cut_off(database_url: str) -> None:
    async with serve(database_url, {"HTTP_HEADER_TIMEOUT_SECONDS": "1"}) as served:
        reader, writer = await connect(served)
        writer.write(HEALTHZ)

        async def trickle() -> None:
            with contextlib.suppress(ConnectionError):
                while True:
                    writer.write(b"X")
                    await writer.drain()
                    await asyncio.sleep(0.3)

        trickling = asyncio.create_task(trickle())
        try:
            assert await closed_by_server(reader) == b""
        finally:
            trickling.cancel()
            writer.close()


async def test_a_connection_that_sends_nothing_is_closed(database_url: str) -> None:
    async with serve(database_url, {"HTTP_HEADER_TIMEOUT_SECONDS": "1"}) as served:
        reader, writer = await connect(served)
        assert await closed_by_server(reader) == b""
        writer.close()


async def test_connections_beyond_the_limit_are_answered_503(database_url: str) -> None:
    env = {"HTTP_MAX_CONNECTIONS": "5", "HTTP_HEADER_TIMEOUT_SECONDS": "60"}
    async with serve(database_url, env) as served:
        idle = [await connect(served) for _ in range(5)]
        try:
            async with httpx.AsyncClient(base_url=served.url) as client:
                answer = await client.get("/healthz")
            assert answer.status_code == 503
        finally:
            for _, writer in idle:
                writer.close()


async def test_a_websocket_message_over_the_body_limit_closes_the_socket(
    database_url: str,
) -> None:
    query = "{ " + " ".join(["__typename"] * 2000) + " }"  # 22 KB
    async with (
        serve(database_url, {"MAX_BODY_BYTES": "8192"}) as served,
        node_client("ws-session.mjs", served.ws_url, json.dumps({"query": query}), "1") as js,
    ):
        events = await events_until(js, "closed")
    assert events[-1]["code"] == 1009, events


def test_the_document_cache_is_bounded_in_bytes() -> None:
    from graphql import parse

    cache = DocumentCache(512, 1000, max_tokens=2000)
    for i in range(20):
        query = "{ " + f"a{i} " * 100 + "}"
        cache.put(query, Entry(document=parse(query), size=len(query)))
    assert 0 < cache.size <= 1000
    huge = "{ " + "a " * 1000 + "}"
    cache.put(huge, Entry(document=parse(huge), size=len(huge)))
    assert cache.get(huge) is None
