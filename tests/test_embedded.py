"""With no DATABASE_URL the gateway boots its own PostgreSQL, migrates it and serves."""

import pytest

from gql.app import create_app
from gql.settings import Settings
from tests.conftest import running, stop_embedded


@pytest.mark.embedded
async def test_gateway_boots_the_embedded_server(embedded_dir):
    settings = Settings(_env_file=None, database_url=None, data_dir=embedded_dir / "data")  # type: ignore[call-arg]
    try:
        async with running(create_app(settings)) as client:
            ready = await client.get("/readyz")
            assert ready.status_code == 200, ready.text
            checks = ready.json()["checks"]
            assert checks["database"] == {"status": "ok"}
            assert checks["schema"]["status"] == "ok"
            assert checks["worker"]["status"] in ("starting", "running")
            body = (
                await client.post("/graphql", json={"query": "{ emailDomains { totalCount } }"})
            ).json()
            assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
        assert (embedded_dir / "data" / "postgres" / "PG_VERSION").exists()
    finally:
        stop_embedded(embedded_dir / "data" / "postgres")
