"""Finding 8: a request's provider fan-out is bounded (PROVIDER_CONCURRENCY at a time, at most
PROVIDER_CALLS_PER_REQUEST calls), and provider-calling fields count their cost in the node
estimate. Through HTTP against a fake AgentMail that times every request."""

import uuid
from collections.abc import Iterator

import pytest

from gql.app import create_app
from gql.db.engine import Database
from tests.conftest import create_domains, running, session_token
from tests.test_lifecycle import lifecycle_settings
from tests.test_poller import TimedAgentMail

SYNC = "query { emailDomains(first: 8, sync: true) { edges { node { id status } } } }"


@pytest.fixture(scope="module")
def fake() -> Iterator[TimedAgentMail]:
    with TimedAgentMail() as server:
        yield server


def most_at_once(fake: TimedAgentMail) -> int:
    spans = [s for s in fake.spans if s.method == "GET"]
    return max(sum(1 for o in spans if o.start <= s.start < o.end) for s in spans)


async def test_a_synced_listing_calls_the_provider_within_the_requests_budget(
    database_url: str, db: Database, fake: TimedAgentMail
) -> None:
    fake.reset()
    user_id = uuid.uuid4()
    domains = await create_domains(db, user_id, ["verifying"] * 8)
    for d in domains:
        fake.add_domain(d.domain, status="VERIFIED")
    fake.delay_next(100, 0.3, method="GET", path="/v0/domains/*")
    settings = lifecycle_settings(
        database_url, fake.url, provider_concurrency=2, provider_calls_per_request=5
    )
    headers = {"Authorization": f"Bearer {session_token(user_id)}"}
    async with running(create_app(settings)) as client:
        response = await client.post("/graphql", json={"query": SYNC}, headers=headers)
    body = response.json()
    assert "errors" not in body, body
    assert len([s for s in fake.spans if s.method == "GET"]) == 5  # the budget
    assert most_at_once(fake) <= 2  # the bound
    statuses = [e["node"]["status"] for e in body["data"]["emailDomains"]["edges"]]
    assert statuses.count("VERIFIED") == 5
    assert body["extensions"]["sync"]["partial"] is True
    assert len(body["extensions"]["sync"]["failedIds"]) == 3


async def test_provider_fields_count_their_cost_in_the_node_estimate(
    database_url: str, fake: TimedAgentMail
) -> None:
    settings = lifecycle_settings(database_url, fake.url, graphql_max_nodes=1200)
    headers = {"Authorization": f"Bearer {session_token(uuid.uuid4())}"}
    cheap = "{ emailDomains(first: 100) { edges { node { id domain status } } } }"
    synced = "{ emailDomains(first: 100, sync: true) { edges { node { id domain status } } } }"
    records = (
        "{ emailDomains(first: 100) { edges { node { id"
        " publishedRecords { cloudflare { checked } } } } } }"
    )
    async with running(create_app(settings)) as client:
        answers = {
            q: (await client.post("/graphql", json={"query": q}, headers=headers)).json()
            for q in (cheap, synced, records)
        }
    assert "errors" not in answers[cheap], answers[cheap]
    for query in (synced, records):
        [error] = answers[query]["errors"]
        assert "could return about" in error["message"], error
