"""Abuse through GraphQL documents, against a real `gql-gateway serve` process."""

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest

from tests.conftest import JWT_SECRET
from tests.helpers import Served, serve


@pytest.fixture(scope="module")
async def served(database_url: str) -> AsyncIterator[Served]:
    async with serve(database_url, {"JWT_SECRET": JWT_SECRET}) as gateway:
        yield gateway


def doubling_fragments(levels: int) -> str:
    """Each fragment spreads the next one twice: 2**levels selections in a few hundred bytes."""
    fragments = [f"fragment F{i} on Query {{ ...F{i + 1} ...F{i + 1} }}" for i in range(levels)]
    fragments.append(f"fragment F{levels} on Query {{ __typename }}")
    return "query { ...F0 } " + " ".join(fragments)


async def test_exponential_fragment_spreads_are_refused_while_the_server_keeps_answering(
    served: Served,
) -> None:
    async with httpx.AsyncClient(base_url=served.url, timeout=30) as client:
        bomb = asyncio.create_task(client.post("/graphql", json={"query": doubling_fragments(30)}))
        health = await client.get("/healthz")
        assert health.status_code == 200
        body = (await bomb).json()
    assert body.get("data") is None
    (error,) = body["errors"]
    assert error["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    assert "nodes; the limit is 10000" in error["message"]


async def test_too_many_fragment_spreads_are_refused(served: Served) -> None:
    spreads = " ".join(["...F"] * 101)
    query = f"query {{ {spreads} }} fragment F on Query {{ __typename }}"
    async with httpx.AsyncClient(base_url=served.url) as client:
        body = (await client.post("/graphql", json={"query": query})).json()
    (error,) = body["errors"]
    assert error["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    assert "more than 100 fragment spreads" in error["message"]
