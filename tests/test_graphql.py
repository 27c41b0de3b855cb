"""GraphQL through HTTP: queries, the mutation, pagination, and every error code."""

import logging
import uuid
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from gql.errors import Conflict
from gql.services.container import Services
from tests.conftest import make_settings, running
from tests.execution_paths import app, client, services
from tests.helpers import MakeOwner

__all__ = ["app", "client", "services"]  # fixtures: every test runs on both execution paths

DOMAIN_FIELDS = """
  id userId domain agentmailDomainId status verifiedAt createdAt updatedAt
  dnsRecords { type name value priority }
"""
UPDATE = (
    "mutation Update($id: UUID!, $status: DomainStatusInput!) {"
    f" updateEmailDomainStatus(id: $id, status: $status) {{ {DOMAIN_FIELDS} }} }}"
)
LIST = (
    "query List($first: Int, $after: String, $status: DomainStatus) {"
    " emailDomains(first: $first, after: $after, status: $status) {"
    f" totalCount edges {{ cursor node {{ {DOMAIN_FIELDS} }} }}"
    " pageInfo { hasNextPage hasPreviousPage startCursor endCursor } } }"
)
ONE = f"query One($id: UUID!) {{ emailDomain(id: $id) {{ {DOMAIN_FIELDS} }} }}"


async def gql(
    client: httpx.AsyncClient,
    query: str,
    headers: dict[str, str] | None = None,
    **variables: Any,
) -> dict[str, Any]:
    response = await client.post(
        "/graphql", json={"query": query, "variables": variables}, headers=headers or {}
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def codes(body: dict[str, Any]) -> list[str]:
    return [e["extensions"]["code"] for e in body.get("errors", [])]


async def test_mutation_overrides_status(client: httpx.AsyncClient, make_owner: MakeOwner) -> None:
    owner = await make_owner(["verifying"])
    domain = owner.domains[0]
    body = await gql(client, UPDATE, owner.headers, id=str(domain.id), status="FAILED")
    assert "errors" not in body
    node = body["data"]["updateEmailDomainStatus"]
    assert node["status"] == "FAILED"
    assert node["id"] == str(domain.id)
    assert node["userId"] == str(owner.user_id)
    assert node["updatedAt"] > domain.updated_at.isoformat()
    assert node["dnsRecords"][-1] == {
        "type": "MX",
        "name": domain.domain,
        "value": "inbound-smtp.agentmail.to",
        "priority": 10,
    }
    again = await gql(client, UPDATE, owner.headers, id=str(domain.id), status="FAILED")
    assert again["data"]["updateEmailDomainStatus"]["updatedAt"] == node["updatedAt"]


async def test_mutation_refuses_verified_listing_allowed_values(
    client: httpx.AsyncClient, make_owner: MakeOwner
) -> None:
    owner = await make_owner(["verifying"])
    body = await gql(client, UPDATE, owner.headers, id=str(owner.domains[0].id), status="VERIFIED")
    assert codes(body) == ["BAD_USER_INPUT"]
    assert "PENDING, VERIFYING, FAILED" in body["errors"][0]["message"]
    inline = (
        f'mutation {{ updateEmailDomainStatus(id: "{owner.domains[0].id}", status: VERIFIED)'
        " { id } }"
    )
    body = await gql(client, inline, owner.headers)
    assert codes(body) == ["GRAPHQL_VALIDATION_FAILED"]
    assert "Allowed values: PENDING, VERIFYING, FAILED." in body["errors"][0]["message"]
    one = await gql(client, ONE, owner.headers, id=str(owner.domains[0].id))
    assert one["data"]["emailDomain"]["status"] == "VERIFYING"


async def test_email_domain_returns_the_row_or_null(
    client: httpx.AsyncClient, make_owner: MakeOwner
) -> None:
    owner, other = await make_owner(["pending"]), await make_owner()
    domain = owner.domains[0]
    body = await gql(client, ONE, owner.headers, id=str(domain.id))
    assert body["data"]["emailDomain"]["domain"] == domain.domain
    assert body["data"]["emailDomain"]["agentmailDomainId"] == domain.agentmail_domain_id
    assert (await gql(client, ONE, other.headers, id=str(domain.id)))["data"] == {
        "emailDomain": None
    }
    missing = await gql(client, ONE, owner.headers, id=str(uuid.uuid4()))
    assert missing == {"data": {"emailDomain": None}}


async def test_email_domains_pages_newest_first(
    client: httpx.AsyncClient, make_owner: MakeOwner
) -> None:
    owner = await make_owner(["pending", "verified", "failed", "verifying", "pending"])
    expected = [str(d.id) for d in reversed(owner.domains)]
    seen, after, pages = [], None, 0
    while True:
        body = await gql(client, LIST, owner.headers, first=2, after=after)
        connection = body["data"]["emailDomains"]
        assert connection["totalCount"] == 5
        seen += [edge["node"]["id"] for edge in connection["edges"]]
        pages += 1
        info = connection["pageInfo"]
        assert info["endCursor"] == connection["edges"][-1]["cursor"]
        if not info["hasNextPage"]:
            break
        after = info["endCursor"]
    assert seen == expected
    assert pages == 3


async def test_email_domains_filters_by_status(
    client: httpx.AsyncClient, make_owner: MakeOwner
) -> None:
    owner = await make_owner(["pending", "verified", "pending"])
    body = await gql(client, LIST, owner.headers, status="PENDING")
    connection = body["data"]["emailDomains"]
    assert connection["totalCount"] == 2
    assert {e["node"]["status"] for e in connection["edges"]} == {"PENDING"}


async def test_bad_page_arguments_are_bad_user_input(
    client: httpx.AsyncClient, make_owner: MakeOwner
) -> None:
    owner = await make_owner()
    body = await gql(client, LIST, owner.headers, first=101)
    assert codes(body) == ["BAD_USER_INPUT"]
    assert "between 0 and 100" in body["errors"][0]["message"]
    body = await gql(client, LIST, owner.headers, after="not-a-cursor")
    assert codes(body) == ["BAD_USER_INPUT"]
    assert "endCursor" in body["errors"][0]["message"]


async def test_unknown_domain_is_not_found(
    client: httpx.AsyncClient, make_owner: MakeOwner
) -> None:
    owner = await make_owner()
    body = await gql(client, UPDATE, owner.headers, id=str(uuid.uuid4()), status="FAILED")
    assert codes(body) == ["NOT_FOUND"]
    assert body["data"] is None


async def test_no_token_is_unauthenticated(client: httpx.AsyncClient) -> None:
    body = await gql(client, "{ emailDomains { totalCount } }")
    assert codes(body) == ["UNAUTHENTICATED"]


async def test_syntax_and_validation_errors_keep_their_message(client: httpx.AsyncClient) -> None:
    body = await gql(client, "{ emailDomains { ")
    assert codes(body) == ["GRAPHQL_PARSE_FAILED"]
    assert "Syntax Error" in body["errors"][0]["message"]
    body = await gql(client, "{ emailDomains { nope } }")
    assert codes(body) == ["GRAPHQL_VALIDATION_FAILED"]
    assert "Cannot query field 'nope'" in body["errors"][0]["message"]


async def test_repeated_document_is_served_from_the_cache(
    client: httpx.AsyncClient, make_owner: MakeOwner, monkeypatch: pytest.MonkeyPatch
) -> None:
    owner = await make_owner()
    await gql(client, LIST, owner.headers)
    import gql.graphql.documents as documents

    def fail(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("a cached document was parsed or validated again")

    monkeypatch.setattr(documents, "parse", fail)
    monkeypatch.setattr(documents, "validate", fail)
    body = await gql(client, LIST, owner.headers)
    assert body["data"]["emailDomains"]["totalCount"] == 2


async def test_unexpected_errors_are_masked_and_logged(
    client: httpx.AsyncClient,
    make_owner: MakeOwner,
    services: Services,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    owner = await make_owner()

    async def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("SELECT secret FROM internals")

    monkeypatch.setattr(services.domains, "find", broken)
    with caplog.at_level(logging.ERROR, logger="gql.graphql.errors"):
        body = await gql(client, ONE, owner.headers, id=str(owner.domains[0].id))
    (error,) = body["errors"]
    assert error["extensions"]["code"] == "INTERNAL_SERVER_ERROR"
    assert "SELECT" not in error["message"]
    request_id = error["extensions"]["requestId"]
    assert request_id in error["message"]
    assert any(request_id in r.getMessage() and r.exc_info for r in caplog.records)


async def test_conflict_errors_carry_their_code(
    client: httpx.AsyncClient,
    make_owner: MakeOwner,
    services: Services,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    owner = await make_owner()

    async def conflict(*args: Any, **kwargs: Any) -> None:
        raise Conflict("Another account has already verified this domain.")

    monkeypatch.setattr(services.domains, "override_status", conflict)
    body = await gql(client, UPDATE, owner.headers, id=str(owner.domains[0].id), status="FAILED")
    assert codes(body) == ["CONFLICT"]
    assert body["errors"][0]["message"] == "Another account has already verified this domain."


async def test_rate_limited_with_retry_after(database_url: str, make_owner: MakeOwner) -> None:
    async with running(create_app_with(database_url, rate_limit="2/minute")) as client:
        owner = await make_owner()
        for _ in range(2):
            assert "errors" not in await gql(client, LIST, owner.headers)
        response = await client.post("/graphql", json={"query": LIST}, headers=owner.headers)
        assert codes(response.json()) == ["RATE_LIMITED"]
        assert int(response.headers["Retry-After"]) >= 1


async def test_database_unavailable_is_service_unavailable(make_owner: MakeOwner) -> None:
    owner = await make_owner()
    app = create_app_with(
        "postgresql+asyncpg://postgres@127.0.0.1:1/postgres", db_connect_timeout=1
    )
    async with running(app) as client:
        response = await client.post(
            "/graphql",
            json={
                "query": UPDATE,
                "variables": {"id": str(owner.domains[0].id), "status": "FAILED"},
            },
            headers={"Authorization": "Bearer " + session_jwt(owner.user_id)},
        )
    assert codes(response.json()) == ["SERVICE_UNAVAILABLE"]
    assert response.headers["Retry-After"] == "5"


async def test_graphiql_for_browsers_json_for_api_clients(client: httpx.AsyncClient) -> None:
    page = await client.get("/graphql", headers={"Accept": "text/html"})
    assert page.status_code == 200
    assert "graphiql" in page.text.lower()
    apollo = await client.get(
        "/graphql", params={"query": "{ __typename }"}, headers={"Accept": "*/*"}
    )
    assert apollo.json() == {"data": {"__typename": "Query"}}


def create_app_with(database_url: str, **overrides: Any) -> Starlette:
    from gql.app import create_app

    return create_app(make_settings(database_url, **overrides))


def session_jwt(user_id: uuid.UUID) -> str:
    from tests.conftest import session_token

    return session_token(user_id)


async def test_batching_only_when_configured(database_url: str, make_owner: MakeOwner) -> None:
    owner = await make_owner()
    batch = [{"query": "{ __typename }"}, {"query": "{ emailDomains { totalCount } }"}]
    async with running(create_app_with(database_url, graphql_max_batch=2)) as client:
        answers = (await client.post("/graphql", json=batch, headers=owner.headers)).json()
        assert answers[0] == {"data": {"__typename": "Query"}}
        assert answers[1]["data"]["emailDomains"]["totalCount"] == 2
        too_many = await client.post("/graphql", json=batch * 2, headers=owner.headers)
        assert too_many.status_code == 400
        assert "Too many operations" in too_many.text
