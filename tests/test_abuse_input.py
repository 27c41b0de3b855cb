"""Hostile input: schema guessing, forged cursors, Host headers, repeated JSON members,
look-alike and special-use names, slow requests; against a real `gql-gateway serve` process."""

import asyncio
import base64
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.helpers import Served, serve

TYPO = "{ emailDomainz { totalCount } }"
BAD_ENUM = (
    "mutation M($id: UUID!, $s: DomainStatusInput!) "
    "{ updateEmailDomainStatus(id: $id, status: $s) { id } }"
)


@pytest.fixture(scope="module")
async def served(database_url: str) -> AsyncIterator[Served]:
    async with serve(database_url) as gateway:
        yield gateway


async def graphql(
    served: Served, query: str, variables: dict[str, Any] | None = None, **headers: str
) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=served.url) as client:
        answer = await client.post(
            "/graphql", json={"query": query, "variables": variables or {}}, headers=headers
        )
    body: dict[str, Any] = answer.json()
    return body


def messages(body: dict[str, Any]) -> str:
    return " ".join(e["message"] for e in body["errors"])


# --- 8: no suggestions without introspection --------------------------------------------------


async def test_suggestions_are_given_while_introspection_is_on(served: Served) -> None:
    assert "Did you mean" in messages(await graphql(served, TYPO))


async def test_no_suggestions_when_introspection_is_off(database_url: str, make_owner) -> None:
    owner = await make_owner(["pending"])
    variables = {"id": str(owner.domains[0].id), "s": "VERIFIE"}
    async with serve(database_url, {"INTROSPECTION": "false"}) as served:
        typo = await graphql(served, TYPO, Authorization=f"Bearer {owner.key}")
        enum = await graphql(served, BAD_ENUM, variables, Authorization=f"Bearer {owner.key}")
    assert typo["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    assert enum["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    for text in (messages(typo), messages(enum)):
        assert "Did you mean" not in text
        assert "Allowed values" not in text
        assert "VERIFYING" not in text


# --- 9: forged cursors ------------------------------------------------------------------------


async def test_a_cursor_with_an_out_of_range_time_is_bad_user_input(
    served: Served, make_owner
) -> None:
    owner = await make_owner(["pending"])
    forged = base64.urlsafe_b64encode(f"0001-01-01T00:00:00+23:59|{uuid.uuid4()}".encode())
    query = "query P($after: String) { emailDomains(after: $after) { totalCount } }"
    body = await graphql(
        served, query, {"after": forged.decode()}, Authorization=f"Bearer {owner.key}"
    )
    assert [e["extensions"]["code"] for e in body["errors"]] == ["BAD_USER_INPUT"]
    assert "Traceback" not in served.output()


# --- 10: Host headers and redirects -----------------------------------------------------------


@pytest.mark.parametrize("path", ["/api/email/domains/{id}/", "/graphql/"])
async def test_no_redirect_is_built_from_the_host_header(
    served: Served, make_owner, path: str
) -> None:
    owner = await make_owner(["pending"])
    url = path.format(id=owner.domains[0].id)
    async with httpx.AsyncClient(base_url=served.url) as client:
        answer = await client.request(
            "PATCH" if "api" in url else "POST",
            url,
            json={"status": "failed"},
            headers={"Host": "evil.example", **owner.headers},
        )
    assert answer.status_code == 404
    assert "location" not in answer.headers
    assert answer.json()["error"]["code"] == "not_found"


async def test_only_allowed_hosts_are_served(database_url: str) -> None:
    async with (
        serve(database_url, {"ALLOWED_HOSTS": '["gateway.test", "127.0.0.1"]'}) as served,
        httpx.AsyncClient(base_url=served.url) as client,
    ):
        refused = await client.get("/healthz", headers={"Host": "evil.example"})
        allowed = await client.get("/healthz", headers={"Host": "gateway.test"})
    assert refused.status_code == 400
    assert allowed.status_code == 200


# --- 12: repeated JSON members, names, time limits --------------------------------------------


async def test_repeated_json_members_are_refused(served: Served, make_owner) -> None:
    owner = await make_owner(["pending"])
    domain = owner.domains[0]
    async with httpx.AsyncClient(base_url=served.url) as client:
        repeated = await client.patch(
            f"/api/email/domains/{domain.id}",
            content=b'{"status":"verified","status":"failed"}',
            headers={**owner.headers, "Content-Type": "application/json"},
        )
        seed = await client.patch(
            f"/api/email/domains/{domain.id}",
            content=b'{"status": "failed"}',
            headers={**owner.headers, "Content-Type": "application/json"},
        )
    assert repeated.status_code == 422
    assert repeated.json()["error"]["code"] == "validation_error"
    assert "repeats the member(s) `status`" in repeated.json()["error"]["message"]
    assert seed.status_code == 200
    assert seed.json()["domain"]["status"] == "failed"


CREATE = "mutation C($d: String!) { createEmailDomain(domain: $d) { id } }"
REFUSED_NAMES = {
    "cyrillic-a": ("ex\u0430mple-shop.com", "mixes letters of several scripts"),
    "onion": ("shop.onion", "special-use name"),
    "reverse-dns": ("1.2.0.192.in-addr.arpa", "special-use name"),
    "rfc-6761": ("mail.example.com", "special-use name"),
}


@pytest.mark.parametrize(("name", "says"), REFUSED_NAMES.values(), ids=REFUSED_NAMES.keys())
async def test_look_alike_and_special_use_names_are_refused(
    served: Served, make_owner, name: str, says: str
) -> None:
    owner = await make_owner(["pending"])
    body = await graphql(served, CREATE, {"d": name}, Authorization=f"Bearer {owner.key}")
    assert [e["extensions"]["code"] for e in body["errors"]] == ["BAD_USER_INPUT"], body
    assert says in messages(body)


async def test_a_graphql_request_over_its_time_limit_gets_a_graphql_error(
    database_url: str,
) -> None:
    document = b'{"query": "{ __typename }"}'

    async def stalled() -> AsyncIterator[bytes]:
        yield document[:-3]
        await asyncio.sleep(3)
        yield document[-3:]

    async with (
        serve(database_url, {"REQUEST_TIMEOUT_SECONDS": "1"}) as served,
        httpx.AsyncClient(base_url=served.url, timeout=10) as client,
    ):
        answer = await client.post(
            "/graphql",
            content=stalled(),
            headers={"Content-Type": "application/json", "Content-Length": str(len(document))},
        )
    assert answer.status_code == 503
    assert answer.headers["Retry-After"] == "5"
    (error,) = answer.json()["errors"]
    assert error["extensions"]["code"] == "SERVICE_UNAVAILABLE"
