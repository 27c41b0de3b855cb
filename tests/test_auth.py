"""Authentication and ownership through both transports: the REST shim and POST /graphql."""

import base64
import hashlib
import hmac
import json
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import jwt
import pytest

from gql.app import create_app
from gql.services.container import Services
from tests.conftest import JWT_SECRET, Owner, make_settings, running, session_token

MakeOwner = Callable[..., Any]

COUNT_QUERY = "{ emailDomains { totalCount } }"
DOMAIN_QUERY = "query ($id: UUID!) { emailDomain(id: $id) { id status updatedAt } }"
LIST_QUERY = "{ emailDomains(first: 100) { totalCount edges { node { id } } } }"
MUTATION = (
    "mutation ($id: UUID!, $status: DomainStatusInput!) "
    "{ updateEmailDomainStatus(id: $id, status: $status) { id status } }"
)
AUDIENCE = "email-domain-gateway"
ISSUER = "https://id.example.test/"
OTHER_SECRET = "another-secret-that-is-also-long-enough-for-hs256-987654"


def bearer(token: str | None) -> dict[str, str]:
    return {} if token is None else {"Authorization": f"Bearer {token}"}


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def hand_token(header: dict[str, Any], payload: dict[str, Any], key: bytes | None) -> str:
    """A JWT built without PyJWT, so headers it would refuse to write can be sent."""
    signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(payload).encode())}"
    if key is None:
        return signing_input + "."
    digest = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}
    signature = hmac.new(key, signing_input.encode(), digest[header["alg"]]).digest()
    return f"{signing_input}.{b64url(signature)}"


def in_minutes(minutes: float) -> int:
    return int((datetime.now(UTC) + timedelta(minutes=minutes)).timestamp())


def claims(user_id: uuid.UUID, **extra: Any) -> dict[str, Any]:
    return {"sub": str(user_id), "exp": in_minutes(5), **extra}


async def rest_patch(
    client: httpx.AsyncClient, token: str | None, domain_id: uuid.UUID, status: str = "failed"
) -> httpx.Response:
    return await client.patch(
        f"/api/email/domains/{domain_id}", headers=bearer(token), json={"status": status}
    )


async def graphql(
    client: httpx.AsyncClient,
    query: str,
    token: str | None = None,
    variables: dict[str, Any] | None = None,
) -> dict[str, Any]:
    response = await client.post(
        "/graphql", headers=bearer(token), json={"query": query, "variables": variables or {}}
    )
    assert "Traceback" not in response.text
    assert response.headers["content-type"].startswith("application/json")
    body: dict[str, Any] = response.json()
    return body


def rest_unauthorized(response: httpx.Response) -> str:
    """Asserts the REST 401 and returns its message."""
    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"].split()[0] == "Bearer"
    assert "Traceback" not in response.text
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message"}
    assert body["error"]["code"] == "unauthorized"
    message: str = body["error"]["message"]
    assert message.strip()
    return message


def graphql_error(body: dict[str, Any], code: str) -> str:
    """Asserts every error carries `code`, no data leaked, and returns the first message."""
    assert body.get("errors"), body
    for error in body["errors"]:
        assert error["extensions"]["code"] == code, body
        assert error["message"].strip()
    data = body.get("data")
    assert data is None or all(value is None for value in data.values()), body
    message: str = body["errors"][0]["message"]
    return message


async def generic_messages(client: httpx.AsyncClient, domain_id: uuid.UUID) -> tuple[str, str]:
    """The REST and GraphQL messages for a request with no token at all."""
    rest_message = rest_unauthorized(await rest_patch(client, None, domain_id))
    gql_message = graphql_error(await graphql(client, COUNT_QUERY), "UNAUTHENTICATED")
    return rest_message, gql_message


async def assert_refused(
    client: httpx.AsyncClient, services: Services, owner: Owner, token: str
) -> None:
    """Both transports refuse `token` with the same message as no token; nothing changes."""
    record = owner.domains[0]
    rest_generic, gql_generic = await generic_messages(client, record.id)

    rest_message = rest_unauthorized(await rest_patch(client, token, record.id))
    gql_body = await graphql(client, COUNT_QUERY, token)
    gql_message = graphql_error(gql_body, "UNAUTHENTICATED")
    mutation = await graphql(client, MUTATION, token, {"id": str(record.id), "status": "FAILED"})

    assert rest_message == rest_generic
    assert gql_message == gql_generic
    assert rest_message == gql_message
    assert graphql_error(mutation, "UNAUTHENTICATED") == gql_generic
    assert await services.domains.find(owner.principal, record.id) == record


async def assert_admitted(
    client: httpx.AsyncClient, services: Services, owner: Owner, token: str
) -> None:
    """Both transports serve the owner's data to `token`."""
    record = owner.domains[0]
    body = await graphql(client, COUNT_QUERY, token)
    assert body == {"data": {"emailDomains": {"totalCount": len(owner.domains)}}}

    response = await rest_patch(client, token, record.id, "failed")
    assert response.status_code == 200, response.text
    assert response.json()["domain"]["status"] == "failed"

    mutated = await graphql(client, MUTATION, token, {"id": str(record.id), "status": "VERIFYING"})
    assert mutated == {
        "data": {"updateEmailDomainStatus": {"id": str(record.id), "status": "VERIFYING"}}
    }
    stored = await services.domains.find(owner.principal, record.id)
    assert stored is not None
    assert stored.status.value == "verifying"


# --- who is admitted -------------------------------------------------------------------------


async def test_api_key_is_admitted(
    client: httpx.AsyncClient, make_owner: MakeOwner, services: Services
) -> None:
    owner = await make_owner(["pending", "verified"])
    await assert_admitted(client, services, owner, owner.key)


async def test_session_token_is_admitted(
    client: httpx.AsyncClient, make_owner: MakeOwner, services: Services
) -> None:
    owner = await make_owner(["pending", "verified", "failed"])
    await assert_admitted(client, services, owner, session_token(owner.user_id))


async def test_session_token_within_leeway_is_admitted(
    client: httpx.AsyncClient, make_owner: MakeOwner, services: Services
) -> None:
    owner = await make_owner(["pending"])
    token = session_token(owner.user_id, exp=datetime.now(UTC) - timedelta(seconds=5))
    await assert_admitted(client, services, owner, token)


# --- who is refused --------------------------------------------------------------------------

_REFUSED_TOKENS: dict[str, Callable[[Owner], str]] = {
    "expired": lambda o: session_token(o.user_id, exp=in_minutes(-10)),
    "missing-exp": lambda o: session_token(o.user_id, exp=None),
    "missing-sub": lambda o: jwt.encode({"exp": in_minutes(5)}, JWT_SECRET, "HS256"),
    "empty-sub": lambda o: session_token(""),
    "non-uuid-sub": lambda o: session_token("user-42"),
    "wrong-secret": lambda o: session_token(o.user_id, secret=OTHER_SECRET),
    "alg-none": lambda o: hand_token({"alg": "none", "typ": "JWT"}, claims(o.user_id), None),
    "alg-none-signed": lambda o: (
        hand_token({"alg": "none", "typ": "JWT"}, claims(o.user_id), None) + b64url(b"signature")
    ),
    "hs512": lambda o: hand_token(
        {"alg": "HS512", "typ": "JWT"}, claims(o.user_id), JWT_SECRET.encode()
    ),
    "future-nbf": lambda o: session_token(o.user_id, nbf=in_minutes(10)),
    "tampered-sub": lambda o: tampered(session_token(uuid.uuid4()), o.user_id),
    "malformed": lambda o: "not-a-token",
    "unknown-api-key": lambda o: "pk_live_" + uuid.uuid4().hex,
}


def tampered(token: str, user_id: uuid.UUID) -> str:
    """`token` with its payload swapped for one naming `user_id`, signature kept."""
    header, _, signature = token.split(".")
    payload = b64url(json.dumps(claims(user_id)).encode())
    return f"{header}.{payload}.{signature}"


@pytest.mark.parametrize("case", list(_REFUSED_TOKENS))
async def test_bad_token_is_refused_with_the_generic_message(
    client: httpx.AsyncClient, make_owner: MakeOwner, services: Services, case: str
) -> None:
    owner = await make_owner(["pending", "verified"])
    await assert_refused(client, services, owner, _REFUSED_TOKENS[case](owner))


async def test_revoked_key_is_refused_on_both_transports(
    client: httpx.AsyncClient, make_owner: MakeOwner, services: Services
) -> None:
    owner = await make_owner(["pending"])
    assert (await graphql(client, COUNT_QUERY, owner.key)).get("errors") is None

    (key,) = await services.api_keys.list(owner.user_id)
    await services.api_keys.revoke(key.id)

    await assert_refused(client, services, owner, owner.key)


async def test_no_token_is_refused(
    client: httpx.AsyncClient, make_owner: MakeOwner, services: Services
) -> None:
    owner = await make_owner(["pending"])
    record = owner.domains[0]

    rest_message = rest_unauthorized(await rest_patch(client, None, record.id))
    body = await graphql(client, DOMAIN_QUERY, None, {"id": str(record.id)})

    assert graphql_error(body, "UNAUTHENTICATED") == rest_message
    assert await services.domains.find(owner.principal, record.id) == record


@pytest.fixture(scope="module")
async def audience_client(database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    settings = make_settings(database_url, jwt_audience=AUDIENCE, jwt_issuer=ISSUER)
    async with running(create_app(settings)) as c:
        yield c


async def test_configured_audience_and_issuer_are_admitted(
    audience_client: httpx.AsyncClient, make_owner: MakeOwner, services: Services
) -> None:
    owner = await make_owner(["pending", "verified"])
    token = session_token(owner.user_id, aud=AUDIENCE, iss=ISSUER)
    await assert_admitted(audience_client, services, owner, token)


_AUDIENCE_CASES: dict[str, dict[str, Any]] = {
    "wrong-audience": {"aud": "someone-else", "iss": ISSUER},
    "wrong-issuer": {"aud": AUDIENCE, "iss": "https://evil.example.test/"},
    "missing-audience": {"iss": ISSUER},
    "missing-issuer": {"aud": AUDIENCE},
}


@pytest.mark.parametrize("case", list(_AUDIENCE_CASES))
async def test_wrong_audience_or_issuer_is_refused_when_configured(
    audience_client: httpx.AsyncClient, make_owner: MakeOwner, services: Services, case: str
) -> None:
    owner = await make_owner(["pending", "verified"])
    token = session_token(owner.user_id, **_AUDIENCE_CASES[case])
    await assert_refused(audience_client, services, owner, token)


# --- what needs no token ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "data"),
    [
        ("{ __schema { queryType { name } } }", {"__schema": {"queryType": {"name": "Query"}}}),
        ("{ __typename }", {"__typename": "Query"}),
        ('{ __type(name: "Domain") { name } }', {"__type": {"name": "Domain"}}),
    ],
    ids=["schema", "typename", "type"],
)
async def test_introspection_needs_no_token(
    client: httpx.AsyncClient, query: str, data: dict[str, Any]
) -> None:
    assert await graphql(client, query) == {"data": data}


async def test_introspection_does_not_open_data_fields(client: httpx.AsyncClient) -> None:
    body = await graphql(client, "{ __typename emailDomains { totalCount } }")
    graphql_error(body, "UNAUTHENTICATED")


# --- ownership -------------------------------------------------------------------------------


@pytest.mark.parametrize("via", ["api_key", "jwt"])
async def test_another_user_can_neither_read_nor_change_a_domain(
    client: httpx.AsyncClient,
    make_owner: MakeOwner,
    services: Services,
    via: str,
) -> None:
    alice = await make_owner(["pending", "verified"])
    bob = await make_owner(["failed"])
    target = alice.domains[0]
    bob_token = bob.key if via == "api_key" else session_token(bob.user_id)

    read = await graphql(client, DOMAIN_QUERY, bob_token, {"id": str(target.id)})
    listed = await graphql(client, LIST_QUERY, bob_token)
    rest = await rest_patch(client, bob_token, target.id, "failed")
    mutated = await graphql(client, MUTATION, bob_token, {"id": str(target.id), "status": "FAILED"})

    assert read == {"data": {"emailDomain": None}}
    connection = listed["data"]["emailDomains"]
    assert "errors" not in listed
    assert [edge["node"]["id"] for edge in connection["edges"]] == [str(bob.domains[0].id)]
    assert connection["totalCount"] == 1
    assert rest.status_code == 404, rest.text
    assert rest.json()["error"]["code"] == "not_found"
    graphql_error(mutated, "NOT_FOUND")
    assert await services.domains.find(alice.principal, target.id) == target

    # The owner still sees the domain, so the nulls above are about ownership, not the id.
    own = await graphql(client, DOMAIN_QUERY, alice.key, {"id": str(target.id)})
    assert own["data"]["emailDomain"]["id"] == str(target.id)
    assert own["data"]["emailDomain"]["status"] == "PENDING"
