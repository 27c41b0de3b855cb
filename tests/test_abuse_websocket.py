"""Abuse over a WebSocket (graphql-transport-ws, the reference npm graphql-ws client) against a
real `gql-gateway serve` process: every operation is admitted like an HTTP request."""

import json
import time
import uuid

from gql.services.container import Services
from tests.conftest import JWT_SECRET, session_token
from tests.helpers import events_until, node_client, serve

DOMAIN = "query One($id: UUID!) { emailDomain(id: $id) { id status } }"
OVERRIDE = (
    "mutation Fail($id: UUID!) { updateEmailDomainStatus(id: $id, status: FAILED) { status } }"
)


def request(query: str, domain_id: uuid.UUID) -> str:
    return json.dumps({"query": query, "variables": {"id": str(domain_id)}})


def bearer(token: str) -> str:
    return json.dumps({"Authorization": f"Bearer {token}"})


async def test_the_connection_init_payload_authenticates(database_url: str, make_owner) -> None:
    owner = await make_owner(["pending"])
    domain = owner.domains[0]
    async with (
        serve(database_url) as served,
        node_client(
            "ws-session.mjs", served.ws_url, request(DOMAIN, domain.id), "1", bearer(owner.key)
        ) as js,
    ):
        event = await js.next()
        assert event["event"] == "next", event
        assert event["value"] == {
            "data": {"emailDomain": {"id": str(domain.id), "status": "PENDING"}}
        }


async def test_the_upgrade_request_header_authenticates(database_url: str, make_owner) -> None:
    owner = await make_owner(["pending"])
    domain = owner.domains[0]
    headers = json.dumps({"Authorization": f"Bearer {owner.key}"})
    async with (
        serve(database_url) as served,
        node_client(
            "ws-session.mjs", served.ws_url, request(DOMAIN, domain.id), "1", "{}", headers
        ) as js,
    ):
        event = await js.next()
        assert event["value"]["data"]["emailDomain"]["id"] == str(domain.id), event


async def test_an_invalid_token_in_connection_init_closes_the_socket(database_url: str) -> None:
    async with (
        serve(database_url) as served,
        node_client(
            "ws-session.mjs",
            served.ws_url,
            json.dumps({"query": "{ __typename }"}),
            "1",
            bearer("pk_live_" + "x" * 43),
        ) as js,
    ):
        events = await events_until(js, "closed")
        assert events[-1]["code"] == 4403, events


async def test_each_operation_counts_against_the_rate_limit(database_url: str, make_owner) -> None:
    owner = await make_owner(["pending"])
    async with (
        serve(database_url, {"RATE_LIMIT": "10/minute"}) as served,
        node_client(
            "ws-session.mjs",
            served.ws_url,
            request(DOMAIN, owner.domains[0].id),
            "30",
            bearer(owner.key),
        ) as js,
    ):
        events = await events_until(js, "done")
    answered = [e for e in events if e["event"] == "next"]
    refused = [e for e in events if e["event"] == "error"]
    assert 0 < len(answered) <= 10, events
    assert len(answered) + len(refused) == 30, events
    assert {err["extensions"]["code"] for e in refused for err in e["error"]} == {"RATE_LIMITED"}


async def test_a_revoked_key_closes_its_socket(
    database_url: str, make_owner, services: Services
) -> None:
    owner = await make_owner(["pending"])
    domain = owner.domains[0]
    async with (
        serve(database_url, {"API_KEY_CACHE_SECONDS": "1"}) as served,
        node_client(
            "ws-session.mjs", served.ws_url, request(OVERRIDE, domain.id), "1", bearer(owner.key)
        ) as js,
    ):
        events = await events_until(js, "done")
        assert events[0]["value"]["data"]["updateEmailDomainStatus"] == {"status": "FAILED"}
        (key,) = await services.api_keys.list(owner.user_id)
        await services.api_keys.revoke(key.id)
        closed = await events_until(js, "closed", within=10)
        assert closed[-1]["code"] == 4403, closed


async def test_an_expired_session_token_closes_its_socket(database_url: str, make_owner) -> None:
    owner = await make_owner(["pending"])
    async with serve(database_url, {"JWT_SECRET": JWT_SECRET, "JWT_LEEWAY_SECONDS": "0"}) as served:
        token = session_token(owner.user_id, exp=int(time.time()) + 4)
        async with node_client(
            "ws-session.mjs",
            served.ws_url,
            request(DOMAIN, owner.domains[0].id),
            "1",
            bearer(token),
        ) as js:
            events = await events_until(js, "done")
            assert events[0]["event"] == "next", events
            closed = await events_until(js, "closed", within=10)
            assert closed[-1]["code"] == 4403, closed
