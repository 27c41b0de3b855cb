"""Fixtures that run a GraphQL HTTP test module twice: through compiled plans (the default)
and through plain graphql-core (`GRAPHQL_COMPILED_PLANS=false`).

A module imports `app`, `client` and `services` from here; they replace the session-wide
fixtures of the same names for that module, so `make_owner` and the tests see the app of
the current path.
"""

from collections.abc import AsyncIterator

import httpx
import pytest
from starlette.applications import Starlette

from gql.app import create_app
from gql.services.container import Services
from tests.conftest import make_settings


@pytest.fixture(scope="module", params=[True, False], ids=["plans", "graphql-core"])
async def app(request: pytest.FixtureRequest, database_url: str) -> AsyncIterator[Starlette]:
    application = create_app(make_settings(database_url, graphql_compiled_plans=request.param))
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture(scope="module")
async def client(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway.test") as c:
        yield c


@pytest.fixture(scope="module")
def services(app: Starlette) -> Services:
    result: Services = app.state.services
    return result
