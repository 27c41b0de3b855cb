"""Anonymous floods and loosely formed tokens, against a real `gql-gateway serve` process."""

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import jwt
import pytest

from gql.app import create_app
from gql.errors import RateLimited
from gql.models import Principal
from gql.services.container import Services
from tests.conftest import JWT_SECRET, make_settings, running, session_token
from tests.helpers import Served, serve

Lookups = tuple[httpx.AsyncClient, list[str]]

TOTAL = "{ emailDomains { totalCount } }"
ANONYMOUS_WORK = {
    "typename": "{ __typename }",
    "introspection": "{ __schema { queryType { name } } }",
    "invalid-document": "{ noSuchField }",
    "syntax-error": "{ emailDomains {",
}


@pytest.mark.parametrize("query", ANONYMOUS_WORK.values(), ids=ANONYMOUS_WORK.keys())
async def test_anonymous_requests_are_counted_before_parsing(database_url: str, query: str) -> None:
    async with (
        serve(database_url, {"RATE_LIMIT_ANONYMOUS": "5/minute"}) as served,
        httpx.AsyncClient(base_url=served.url) as client,
    ):
        answers = [await client.post("/graphql", json={"query": query}) for _ in range(6)]
    assert [a.status_code for a in answers[:5]] == [200] * 5
    refused = answers[5]
    assert refused.status_code == 429
    assert int(refused.headers["Retry-After"]) >= 1
    assert [e["extensions"]["code"] for e in refused.json()["errors"]] == ["RATE_LIMITED"]


async def test_random_api_keys_are_refused_by_address(database_url: str) -> None:
    async with (
        serve(database_url, {"RATE_LIMIT_ANONYMOUS": "5/minute"}) as served,
        httpx.AsyncClient(base_url=served.url) as client,
    ):
        statuses = []
        for _ in range(20):
            key = "pk_live_" + uuid.uuid4().hex + uuid.uuid4().hex[:11]
            headers = {"Authorization": f"Bearer {key}"}
            answer = await client.post("/graphql", json={"query": TOTAL}, headers=headers)
            statuses.append(answer.status_code)
    assert statuses[:5] == [200] * 5  # answered with UNAUTHENTICATED
    assert set(statuses[5:]) == {429}


@pytest.fixture
async def lookups(database_url: str, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Lookups]:
    """An in-process gateway that counts the key lookups reaching the database."""
    settings = make_settings(
        database_url, rate_limit_anonymous="5/minute", api_key_cache_seconds=10
    )
    app = create_app(settings)
    async with running(app) as client:
        services: Services = app.state.services
        calls: list[str] = []
        original = services.api_keys.user_for

        async def counting(key: str) -> Principal | None:
            calls.append(key)
            return await original(key)

        monkeypatch.setattr(services.api_keys, "user_for", counting)
        yield client, calls


async def test_a_flood_of_random_keys_stops_reaching_the_database(lookups: Lookups) -> None:
    client, calls = lookups
    for _ in range(50):
        key = "pk_live_" + uuid.uuid4().hex + uuid.uuid4().hex[:11]
        await client.post(
            "/graphql", json={"query": TOTAL}, headers={"Authorization": f"Bearer {key}"}
        )
    assert len(calls) == 5


async def test_an_unknown_key_is_looked_up_once(lookups: Lookups) -> None:
    client, calls = lookups
    key = "pk_live_" + "u" * 43
    for _ in range(4):
        await client.post(
            "/graphql", json={"query": TOTAL}, headers={"Authorization": f"Bearer {key}"}
        )
    assert calls == [key]


async def test_malformed_keys_never_reach_the_database(lookups: Lookups) -> None:
    client, calls = lookups
    for key in ("pk_live_short", "pk_live_" + "x" * 44, "pk_live_" + "!" * 43):
        await client.post(
            "/graphql", json={"query": TOTAL}, headers={"Authorization": f"Bearer {key}"}
        )
    assert calls == []


# --- session tokens ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
async def served(database_url: str) -> AsyncIterator[Served]:
    # Headers large enough for the 60 KB token to reach the token check.
    env = {
        "JWT_SECRET": JWT_SECRET,
        "JWT_MAX_LIFETIME_SECONDS": "3600",
        "HTTP_MAX_HEADER_BYTES": "131072",
    }
    async with serve(database_url, env) as gateway:
        yield gateway


def raw_token(claims: dict[str, Any]) -> str:
    return jwt.encode(claims, JWT_SECRET, "HS256")


USER = uuid.UUID("6f1c2a8e-5b7d-4c3e-9a1f-2d4b6c8e0a1b")
SOON = int(time.time()) + 600
LOOSE_TOKENS = {
    "exp-as-string": lambda: raw_token({"sub": str(USER), "exp": str(SOON)}),
    "exp-in-9999": lambda: raw_token({"sub": str(USER), "exp": 253402300799}),
    "lifetime-over-maximum": lambda: raw_token(
        {"sub": str(USER), "iat": int(time.time()), "exp": int(time.time()) + 7200}
    ),
    "nbf-as-string": lambda: raw_token({"sub": str(USER), "exp": SOON, "nbf": "0"}),
    "iat-as-string": lambda: raw_token({"sub": str(USER), "exp": SOON, "iat": "0"}),
    "sub-without-dashes": lambda: raw_token({"sub": USER.hex, "exp": SOON}),
    "sub-as-urn": lambda: raw_token({"sub": USER.urn, "exp": SOON}),
    "sub-in-braces": lambda: raw_token({"sub": "{" + str(USER) + "}", "exp": SOON}),
    "sub-upper-case": lambda: raw_token({"sub": str(USER).upper(), "exp": SOON}),
    "sixty-kilobytes": lambda: raw_token({"sub": str(USER), "exp": SOON, "pad": "x" * 60_000}),
}


async def total(served: Served, token: str) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=served.url) as client:
        answer = await client.post(
            "/graphql", json={"query": TOTAL}, headers={"Authorization": f"Bearer {token}"}
        )
    body: dict[str, Any] = answer.json()
    return body


@pytest.mark.parametrize("make_token", LOOSE_TOKENS.values(), ids=LOOSE_TOKENS.keys())
async def test_loosely_formed_session_tokens_are_refused(served: Served, make_token: Any) -> None:
    body = await total(served, make_token())
    assert [e["extensions"]["code"] for e in body["errors"]] == ["UNAUTHENTICATED"], body


async def test_a_well_formed_session_token_is_accepted(served: Served) -> None:
    body = await total(served, session_token(USER, iat=int(time.time())))
    assert body == {"data": {"emailDomains": {"totalCount": 0}}}


async def test_a_session_token_is_verified_once_until_its_exp(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    decoded: list[str] = []
    original = jwt.decode

    def counting(token: str, *args: Any, **kwargs: Any) -> Any:
        decoded.append(token)
        return original(token, *args, **kwargs)

    monkeypatch.setattr(jwt, "decode", counting)
    token = session_token(USER, exp=time.time() + 1.5)
    for _ in range(3):
        assert (await services.access.admit(f"Bearer {token}", "cache-test")).user_id == USER
    assert len(decoded) == 1
    await asyncio.sleep(1.6)
    # Past `exp` the cache no longer answers: the token is verified again (the leeway accepts it).
    assert (await services.access.admit(f"Bearer {token}", "cache-test")).user_id == USER
    assert len(decoded) == 2


async def test_the_in_process_limit_counts_each_address_and_says_when_to_retry(
    database_url: str,
) -> None:
    from gql.services.access import RateLimiter

    limiter = RateLimiter(make_settings(database_url, rate_limit_anonymous="4/minute"))
    for _ in range(4):
        await limiter.hit_anonymous("a")
    await limiter.check_anonymous("b")
    with pytest.raises(RateLimited) as refused:
        await limiter.check_anonymous("a")
    with pytest.raises(RateLimited) as refused:
        await limiter.hit_anonymous("a")
    assert 1 <= refused.value.retry_after <= 60
    await limiter.hit_anonymous("b")  # other addresses are counted apart
    limiter.close()
