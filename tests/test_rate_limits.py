"""Rate limits shared between processes through Redis, and kept apart per user."""

import os

from gql.app import create_app
from tests.conftest import make_settings, running
from tests.helpers import MakeOwner

# The machines this project runs on start Redis on this address; CI uses the same.
REDIS = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379")
QUERY = {"query": "{ emailDomains { totalCount } }"}


async def test_two_gateways_share_one_limit_through_redis(
    database_url: str, make_owner: MakeOwner
) -> None:
    settings = make_settings(database_url, rate_limit="3/minute", rate_limit_storage=REDIS)
    owner, other = await make_owner(), await make_owner()
    async with running(create_app(settings)) as first, running(create_app(settings)) as second:
        for client in (first, second, first):
            ok = await client.post("/graphql", json=QUERY, headers=owner.headers)
            assert "errors" not in ok.json(), ok.text
        limited = await second.post("/graphql", json=QUERY, headers=owner.headers)
        assert limited.json()["errors"][0]["extensions"]["code"] == "RATE_LIMITED"
        assert int(limited.headers["Retry-After"]) >= 1
        rest = await first.patch(
            f"/api/email/domains/{owner.domains[0].id}",
            json={"status": "failed"},
            headers=owner.headers,
        )
        assert rest.status_code == 429
        assert rest.json()["error"]["code"] == "rate_limited"
        unaffected = await second.post("/graphql", json=QUERY, headers=other.headers)
        assert "errors" not in unaffected.json()
