"""Generated requests (schemathesis) against a gateway served by uvicorn on loopback.

The REST shim is tested against the OpenAPI description the gateway serves; the GraphQL endpoint
against its own introspected schema. Example counts are bounded so the suite stays fast. Every
answer must conform to its description, and none may be a 5xx or a masked internal error.
"""

import asyncio
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from gql.app import create_app
from gql.db.engine import Database
from gql.rest.openapi import openapi_document
from gql.services.api_keys import ApiKeyService
from tests.conftest import create_domains, make_settings
from tests.fakes import LiveServer

EXPECTED_CODES = {
    "UNAUTHENTICATED",
    "NOT_FOUND",
    "BAD_USER_INPUT",
    "CONFLICT",
    "RATE_LIMITED",
    "SERVICE_UNAVAILABLE",
    "PROVIDER_UNAVAILABLE",
    "GRAPHQL_VALIDATION_FAILED",
    "GRAPHQL_PARSE_FAILED",
}
EXAMPLES = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)


def _owner_key(database_url: str) -> str:
    """A user with a key and a domain, made on a loop of its own (the tests here are sync)."""

    async def make() -> str:
        db = Database(database_url, make_settings(database_url))
        await db.open()
        try:
            user = uuid.uuid4()
            await create_domains(db, user, ["pending"])
            key, _ = await ApiKeyService(db).create(user)
            return key
        finally:
            await db.close()

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, make()).result()


@pytest.fixture(scope="module")
def live(database_url: str) -> Iterator[tuple[str, dict[str, str]]]:
    app = create_app(make_settings(database_url))
    with LiveServer(app, lifespan=True, name="gateway") as server:
        yield server.url, {"Authorization": f"Bearer {_owner_key(database_url)}"}


def _no_internal_error(response: Any) -> None:
    assert response.status_code < 500, response.text[:500]
    assert "INTERNAL_SERVER_ERROR" not in response.text, response.text[:500]
    assert "Traceback" not in response.text


def test_the_served_description_is_the_one_tested(live: tuple[str, dict[str, str]]) -> None:
    url, _ = live
    assert httpx.get(f"{url}/api/openapi.json").json() == openapi_document()


rest = schemathesis.openapi.from_dict(openapi_document())


@rest.parametrize()
@EXAMPLES
def test_rest_shim_conforms(case: Any, live: tuple[str, dict[str, str]]) -> None:
    url, auth = live
    response = case.call(base_url=url, headers=auth)
    _no_internal_error(response)
    case.validate_response(response)


# The committed SDL, which a test in test_schema.py keeps equal to what the gateway serves.
graphql = schemathesis.graphql.from_path(Path(__file__).parent.parent / "schema.graphql")


@graphql.parametrize()
@EXAMPLES
def test_graphql_answers_without_internal_errors(
    case: Any, live: tuple[str, dict[str, str]]
) -> None:
    url, auth = live
    response = case.call(base_url=f"{url}/graphql", headers=auth)
    _no_internal_error(response)
    # Expected errors are part of the contract (schemathesis' own GraphQL checks count any
    # error as a failure): each must carry one of the contract's codes and a message.
    body = response.json()
    assert "data" in body or "errors" in body, body
    for error in body.get("errors") or []:
        assert error["extensions"]["code"] in EXPECTED_CODES, error
        assert error["message"], error
