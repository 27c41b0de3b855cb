"""GraphQL over HTTP, per media type: graphql-http's audit suite against a real server, the
status and body of every kind of failure, and one timestamp format on both transports."""

from typing import Any

import httpx
import pytest

from tests.execution_paths import app, client, services
from tests.helpers import MakeOwner, node_client, serve

__all__ = ["app", "client", "services"]  # fixtures: every test runs on both execution paths

GRAPHQL_RESPONSE = "application/graphql-response+json"
JSON = "application/json"
ONE = "query One($id: UUID!) { emailDomain(id: $id) { id createdAt updatedAt } }"


async def test_the_graphql_http_audit_suite_passes(database_url: str) -> None:
    results: list[dict[str, Any]] = []
    async with (
        serve(database_url) as served,
        node_client("http-audit.mjs", f"{served.url}/graphql") as js,
    ):
        while "done" not in (message := await js.next(within=60)):
            results.append(message)
    assert len(results) > 50
    failed = [r for r in results if r["status"] != "ok" and not r["name"].startswith("MAY")]
    assert failed == []


def _codes(body: dict[str, Any]) -> list[str]:
    return [e["extensions"]["code"] for e in body["errors"]]


PRE_EXECUTION = [
    ({"query": "{ emailDomains { "}, "GRAPHQL_PARSE_FAILED"),
    ({"query": "{ emailDomains { nope } }"}, "GRAPHQL_VALIDATION_FAILED"),
    ({"query": ONE, "variables": {"id": "not-a-uuid"}}, "BAD_USER_INPUT"),
    ({"query": ONE}, "BAD_USER_INPUT"),
]


@pytest.mark.parametrize(("request_body", "code"), PRE_EXECUTION)
async def test_graphql_response_json_answers_4xx_without_data_before_execution(
    client: httpx.AsyncClient, request_body: dict[str, Any], code: str
) -> None:
    response = await client.post(
        "/graphql", json=request_body, headers={"Accept": GRAPHQL_RESPONSE}
    )
    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith(GRAPHQL_RESPONSE)
    body = response.json()
    assert "data" not in body
    assert _codes(body) == [code]


@pytest.mark.parametrize(("request_body", "code"), PRE_EXECUTION)
@pytest.mark.parametrize("accept", [JSON, "*/*", None])
async def test_application_json_keeps_answering_200(
    client: httpx.AsyncClient, request_body: dict[str, Any], code: str, accept: str | None
) -> None:
    headers = {"Accept": accept} if accept else {}
    response = await client.post("/graphql", json=request_body, headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith(JSON)
    assert _codes(response.json()) == [code]


async def test_execution_errors_are_200_with_data_in_both_media_types(
    client: httpx.AsyncClient,
) -> None:
    for accept in (GRAPHQL_RESPONSE, JSON):
        response = await client.post(
            "/graphql",
            json={"query": "{ emailDomains { totalCount } }"},
            headers={"Accept": accept},
        )
        assert response.status_code == 200
        assert response.headers["content-type"].startswith(accept)
        body = response.json()
        assert "data" in body
        assert _codes(body) == ["UNAUTHENTICATED"]


async def test_the_preferred_media_type_wins(client: httpx.AsyncClient) -> None:
    for accept, media in [
        (f"{JSON}, {GRAPHQL_RESPONSE}", GRAPHQL_RESPONSE),
        (f"{GRAPHQL_RESPONSE};q=0.5, {JSON}", JSON),
        (f"{GRAPHQL_RESPONSE},{JSON};q=0.9", GRAPHQL_RESPONSE),
        ("text/plain", JSON),
    ]:
        response = await client.post(
            "/graphql", json={"query": "{ __typename }"}, headers={"Accept": accept}
        )
        assert response.headers["content-type"].startswith(media), accept


def _refused(response: Any, status: int, code: str, media: str = JSON) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(media)
    body: dict[str, Any] = response.json()
    assert _codes(body) == [code]
    assert body["errors"][0]["message"]
    return body


@pytest.mark.parametrize("accept", [JSON, GRAPHQL_RESPONSE])
async def test_refusals_are_graphql_error_bodies(
    client: httpx.AsyncClient, make_owner: MakeOwner, accept: str
) -> None:
    owner = await make_owner(["pending"])
    headers = {**owner.headers, "Accept": accept}
    operation = {"query": "{ __typename }"}
    body = _refused(
        await client.post("/graphql", json=[operation, operation], headers=headers),
        400,
        "BAD_REQUEST",
        accept,
    )
    assert "Batching is not enabled" in body["errors"][0]["message"]
    domain_id = owner.domains[0].id
    mutation = f'mutation {{ updateEmailDomainStatus(id: "{domain_id}", status: FAILED) {{ id }} }}'
    response = await client.get("/graphql", params={"query": mutation}, headers=headers)
    _refused(response, 405, "METHOD_NOT_ALLOWED", accept)
    assert response.headers["allow"] == "POST"
    response = await client.post(
        "/graphql", content="{ __typename }", headers={**headers, "Content-Type": "text/plain"}
    )
    _refused(response, 415, "UNSUPPORTED_MEDIA_TYPE", accept)
    response = await client.put("/graphql", json=operation, headers=headers)
    _refused(response, 405, "METHOD_NOT_ALLOWED", accept)
    assert response.headers["allow"] == "GET, POST"
    response = await client.post(
        "/graphql", content="{not json", headers={**headers, "Content-Type": JSON}
    )
    _refused(response, 400, "BAD_REQUEST", accept)
    response = await client.post("/graphql", json=["not an operation"], headers=headers)
    _refused(response, 400, "BAD_REQUEST", accept)
    response = await client.post("/graphql", json={"query": 7}, headers=headers)
    _refused(response, 400, "BAD_REQUEST", accept)


async def test_graphql_timestamps_are_rfc3339_utc_with_z_like_rest(
    client: httpx.AsyncClient, make_owner: MakeOwner
) -> None:
    owner = await make_owner(["pending"])
    domain = owner.domains[0]
    response = await client.post(
        "/graphql", json={"query": ONE, "variables": {"id": str(domain.id)}}, headers=owner.headers
    )
    node = response.json()["data"]["emailDomain"]
    rest = await client.patch(
        f"/api/email/domains/{domain.id}", json={"status": "pending"}, headers=owner.headers
    )
    row = rest.json()["domain"]
    assert node["createdAt"].endswith("Z")
    assert node["createdAt"] == row["created_at"]
    assert node["updatedAt"] == row["updated_at"]
