"""Hostile documents are refused before anything executes, with a message naming the limit.

Every refusal is checked through HTTP: the code in `extensions.code`, no `data`, a message that
says which limit was hit, a quick answer, and no resolver run (`watch` records every service
call a resolver could make). Every limit also has a case just under it that is answered.
"""

import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from graphql import GraphQLSyntaxError, get_introspection_query, parse
from graphql.language import Lexer, Source, TokenKind
from starlette.applications import Starlette

import gql.db.domains as domains_repo
from gql.app import create_app
from gql.services.container import Services
from tests.conftest import Owner, make_settings, running
from tests.helpers import MakeOwner

FAST = 2.0  # seconds: a refusal must not cost more than this
MAX_TOKENS = 2000
MAX_ALIASES = 15

ONE = "query One($id: UUID!) { emailDomain(id: $id) { id status } }"
UPDATE = (
    "mutation Update($id: UUID!, $status: DomainStatusInput!) {"
    " updateEmailDomainStatus(id: $id, status: $status) { id status } }"
)


@dataclass
class Gateway:
    app: Starlette
    client: httpx.AsyncClient

    @property
    def services(self) -> Services:
        services: Services = self.app.state.services
        return services


@pytest.fixture
def gateway(app: Starlette, client: httpx.AsyncClient) -> Gateway:
    return Gateway(app, client)


@pytest.fixture(scope="module")
async def small_limits(database_url: str) -> AsyncIterator[Gateway]:
    """A gateway whose depth and node limits are small enough to reach with real fields."""
    app = create_app(make_settings(database_url, graphql_max_nodes=200, graphql_max_depth=4))
    async with running(app) as client:
        yield Gateway(app, client)


@pytest.fixture(scope="module")
async def locked_down(database_url: str) -> AsyncIterator[Gateway]:
    app = create_app(make_settings(database_url, introspection=False, graphiql=False))
    async with running(app) as client:
        yield Gateway(app, client)


def watch(monkeypatch: pytest.MonkeyPatch, services: Services) -> list[str]:
    """Record (and still perform) every call a resolver could make; empty means none ran."""
    calls: list[str] = []

    def spy(owner: object, name: str, label: str) -> None:
        original = getattr(owner, name)

        async def recorded(*args: Any, **kwargs: Any) -> Any:
            calls.append(label)
            return await original(*args, **kwargs)

        monkeypatch.setattr(owner, name, recorded)

    spy(services.access, "admit", "admit")
    for name in ("find", "list_page", "count", "override_status"):
        spy(services.domains, name, f"domains.{name}")
    for name in ("create", "verify", "delete", "sync"):
        spy(services.lifecycle, name, f"lifecycle.{name}")
    spy(domains_repo, "list_page", "db.list_page")
    return calls


async def post(
    client: httpx.AsyncClient,
    query: str,
    headers: dict[str, str] | None = None,
    variables: dict[str, Any] | None = None,
) -> tuple[dict[str, Any], float]:
    started = time.perf_counter()
    response = await client.post(
        "/graphql", json={"query": query, "variables": variables or {}}, headers=headers or {}
    )
    elapsed = time.perf_counter() - started
    assert response.status_code == 200, response.text[:500]
    body: dict[str, Any] = response.json()
    return body, elapsed


def assert_refused(body: dict[str, Any], code: str, pattern: str) -> None:
    """Refused as a whole with `code`, and at least one message matches `pattern`."""
    assert body.get("data") is None, str(body)[:500]
    errors = body.get("errors") or []
    assert errors, body
    assert {e["extensions"]["code"] for e in errors} == {code}, errors[:5]
    messages = [e["message"] for e in errors]
    assert any(re.search(pattern, m) for m in messages), messages[:5]


def assert_answered(body: dict[str, Any]) -> dict[str, Any]:
    assert "errors" not in body, body["errors"][:5]
    data: dict[str, Any] = body["data"]
    return data


def tokens(query: str) -> int:
    """Tokens as the parser's `max_tokens` counts them (end of file excluded)."""
    lexer, count = Lexer(Source(query)), 0
    while lexer.advance().kind != TokenKind.EOF:
        count += 1
    return count


def of_type_chain(levels: int) -> str:
    return "ofType { " * levels + "name" + " }" * levels


def introspect_type(selection: str) -> str:
    return '{ __type(name: "Domain") { fields { type { ' + selection + " } } } }"


def of_type_fragments(levels: int) -> str:
    """`{ __type { ...T0 } }` where each fragment nests one `ofType` and spreads the next."""
    fragments = [f"fragment T{i} on __Type {{ ofType {{ ...T{i + 1} }} }}" for i in range(levels)]
    fragments.append(f"fragment T{levels} on __Type {{ name }}")
    return '{ __type(name: "Domain") { ...T0 } } ' + " ".join(fragments)


# --- depth ------------------------------------------------------------------------------------

DEPTH_WITH_LIMIT = r"(?i)depth\D*\d+"  # names the depth limit and its value


async def test_deep_introspection_nesting_is_refused(
    gateway: Gateway, make_owner: MakeOwner, monkeypatch: pytest.MonkeyPatch
) -> None:
    owner = await make_owner(["pending"])
    calls = watch(monkeypatch, gateway.services)
    query = introspect_type(of_type_chain(40))
    body, elapsed = await post(gateway.client, query, owner.headers)
    assert_refused(body, "GRAPHQL_VALIDATION_FAILED", DEPTH_WITH_LIMIT)
    assert elapsed < FAST
    assert calls == []


async def test_deep_nesting_through_fragments_is_refused(
    gateway: Gateway, make_owner: MakeOwner, monkeypatch: pytest.MonkeyPatch
) -> None:
    owner = await make_owner(["pending"])
    calls = watch(monkeypatch, gateway.services)
    body, elapsed = await post(gateway.client, of_type_fragments(40), owner.headers)
    assert_refused(body, "GRAPHQL_VALIDATION_FAILED", DEPTH_WITH_LIMIT)
    assert elapsed < FAST
    assert calls == []


async def test_introspection_at_depth_ten_and_the_standard_query_are_answered(
    gateway: Gateway,
) -> None:
    # __type, fields, type and seven ofType: depth 10 exactly.
    query = introspect_type(of_type_chain(7))
    data = assert_answered((await post(gateway.client, query))[0])
    assert data["__type"]["fields"]
    # What GraphiQL and code generators send (nine nested ofType) must keep working.
    body, _ = await post(gateway.client, get_introspection_query(descriptions=True))
    names = {t["name"] for t in assert_answered(body)["__schema"]["types"]}
    assert {"Domain", "DomainConnection", "DomainStatusInput"} <= names


DEEP_FIELDS = (
    "{ emailDomains(first: 10) { edges { node { publishedRecords { records { id } } } } } }"
)
DEEP_FRAGMENTS = (
    "fragment N on Domain { publishedRecords { ...R } }"
    " fragment R on PublishedRecords { records { id } }"
    " { emailDomains(first: 10) { edges { node { ...N } } } }"
)
AT_DEPTH_FIELDS = "{ emailDomains(first: 10) { edges { node { dnsRecords { type } } } } }"
AT_DEPTH_FRAGMENTS = (
    "fragment N on Domain { ...D } fragment D on Domain { dnsRecords { type } }"
    " { emailDomains(first: 10) { edges { node { ...N } } } }"
)


@pytest.mark.parametrize("query", [DEEP_FIELDS, DEEP_FRAGMENTS], ids=["fields", "fragments"])
async def test_nesting_beyond_the_configured_depth_is_refused(
    small_limits: Gateway, make_owner: MakeOwner, monkeypatch: pytest.MonkeyPatch, query: str
) -> None:
    owner = await make_owner(["pending"])
    calls = watch(monkeypatch, small_limits.services)
    body, elapsed = await post(small_limits.client, query, owner.headers)
    assert_refused(body, "GRAPHQL_VALIDATION_FAILED", r"maximum operation depth of 4\b")
    assert elapsed < FAST
    assert calls == []


@pytest.mark.parametrize(
    "query", [AT_DEPTH_FIELDS, AT_DEPTH_FRAGMENTS], ids=["fields", "fragments"]
)
async def test_nesting_at_the_configured_depth_is_answered(
    small_limits: Gateway, make_owner: MakeOwner, query: str
) -> None:
    owner = await make_owner(["pending"])
    body, _ = await post(small_limits.client, query, owner.headers)
    (edge,) = assert_answered(body)["emailDomains"]["edges"]
    assert {r["type"] for r in edge["node"]["dnsRecords"]} >= {"MX"}


# --- aliases ----------------------------------------------------------------------------------


def aliased(count: int) -> str:
    fields = " ".join(f"a{i}: emailDomain(id: $id) {{ id }}" for i in range(count))
    return f"query Aliased($id: UUID!) {{ {fields} }}"


async def test_sixteen_aliases_are_refused(
    gateway: Gateway, make_owner: MakeOwner, monkeypatch: pytest.MonkeyPatch
) -> None:
    owner = await make_owner(["pending"])
    calls = watch(monkeypatch, gateway.services)
    body, elapsed = await post(
        gateway.client, aliased(MAX_ALIASES + 1), owner.headers, {"id": str(owner.domains[0].id)}
    )
    assert_refused(body, "GRAPHQL_VALIDATION_FAILED", r"16 aliases found\. Allowed: 15")
    assert elapsed < FAST
    assert calls == []


async def test_alias_flood_and_aliases_hidden_in_fragments_are_refused(
    gateway: Gateway, make_owner: MakeOwner, monkeypatch: pytest.MonkeyPatch
) -> None:
    owner = await make_owner(["pending"])
    calls = watch(monkeypatch, gateway.services)
    flood = "{ " + " ".join(f"a{i}: __typename" for i in range(600)) + " }"
    assert tokens(flood) <= MAX_TOKENS  # the alias rule, not the token limit, must refuse it
    body, elapsed = await post(gateway.client, flood, owner.headers)
    assert_refused(body, "GRAPHQL_VALIDATION_FAILED", r"600 aliases found\. Allowed: 15")
    assert elapsed < FAST

    inside = " ".join(f"f{i}: id" for i in range(8))
    outside = " ".join(f"o{i}: emailDomain(id: $id) {{ id }}" for i in range(8))
    hidden = (
        f"query Hidden($id: UUID!) {{ {outside} emailDomain(id: $id) {{ ...F }} }}"
        f" fragment F on Domain {{ {inside} }}"
    )
    body, _ = await post(gateway.client, hidden, owner.headers, {"id": str(owner.domains[0].id)})
    assert_refused(body, "GRAPHQL_VALIDATION_FAILED", r"16 aliases found\. Allowed: 15")
    assert calls == []


async def test_fifteen_aliases_are_answered(
    gateway: Gateway, make_owner: MakeOwner, monkeypatch: pytest.MonkeyPatch
) -> None:
    owner = await make_owner(["pending"])
    calls = watch(monkeypatch, gateway.services)
    domain_id = str(owner.domains[0].id)
    body, _ = await post(gateway.client, aliased(MAX_ALIASES), owner.headers, {"id": domain_id})
    data = assert_answered(body)
    assert data == {f"a{i}": {"id": domain_id} for i in range(MAX_ALIASES)}
    assert calls.count("domains.find") == MAX_ALIASES


# --- tokens: duplicated fields and directive floods -------------------------------------------

TOKEN_LIMIT = r"more than 2000 tokens"


async def test_thousands_of_duplicated_fields_are_cut_by_the_token_limit(
    gateway: Gateway, make_owner: MakeOwner, monkeypatch: pytest.MonkeyPatch
) -> None:
    owner = await make_owner(["pending"])
    calls = watch(monkeypatch, gateway.services)
    query = "query One($id: UUID!) { emailDomain(id: $id) { " + "id " * 20_000 + "} }"
    body, elapsed = await post(
        gateway.client, query, owner.headers, {"id": str(owner.domains[0].id)}
    )
    assert_refused(body, "GRAPHQL_PARSE_FAILED", TOKEN_LIMIT)
    assert elapsed < FAST
    assert calls == []


def token_budget_document(total: int) -> str:
    """A document of exactly `total` tokens: 15 aliased `emailDomain` fields of repeated ids."""
    head, groups = "query Budget($id: UUID!) {", MAX_ALIASES
    group = "a{}: emailDomain(id: $id) {{ {}}}"
    fixed = tokens(head + "}") + groups * tokens(group.format(0, ""))
    each, extra = divmod(total - fixed, groups)
    ids = [each + (1 if i < extra else 0) for i in range(groups)]
    query = head + " ".join(group.format(i, "id " * n) for i, n in enumerate(ids)) + "}"
    assert tokens(query) == total
    return query


async def test_a_document_of_exactly_the_token_limit_is_answered(
    gateway: Gateway, make_owner: MakeOwner
) -> None:
    owner = await make_owner(["pending"])
    domain_id = str(owner.domains[0].id)
    body, elapsed = await post(
        gateway.client, token_budget_document(MAX_TOKENS), owner.headers, {"id": domain_id}
    )
    assert assert_answered(body) == {f"a{i}": {"id": domain_id} for i in range(MAX_ALIASES)}
    assert elapsed < FAST
    body, _ = await post(
        gateway.client, token_budget_document(MAX_TOKENS + 1), owner.headers, {"id": domain_id}
    )
    assert_refused(body, "GRAPHQL_PARSE_FAILED", TOKEN_LIMIT)


async def test_repeated_fields_under_the_token_limit_are_answered_or_name_their_limit(
    gateway: Gateway, make_owner: MakeOwner
) -> None:
    """1,990 tokens of one repeated field: under every configured limit, cheap to answer."""
    owner = await make_owner(["pending"])
    query = "query One($id: UUID!) { emailDomain(id: $id) { " + "id " * 1978 + "} }"
    assert MAX_TOKENS - 20 < tokens(query) <= MAX_TOKENS
    body, elapsed = await post(
        gateway.client, query, owner.headers, {"id": str(owner.domains[0].id)}
    )
    assert elapsed < FAST
    if "errors" in body:  # refusing is acceptable only with a message that names the limit
        assert_refused(body, "GRAPHQL_VALIDATION_FAILED", r"(?i)limit|at most|allowed")
    else:
        assert body["data"]["emailDomain"] == {"id": str(owner.domains[0].id)}


@pytest.mark.parametrize(
    "selection",
    [
        "id" + " @include(if: true)" * 400,  # one field, hundreds of directives
        "id @include(if: true) " * 400,  # hundreds of fields, one directive each
    ],
    ids=["stacked", "spread"],
)
async def test_directive_floods_are_cut_by_the_token_limit(
    gateway: Gateway, make_owner: MakeOwner, monkeypatch: pytest.MonkeyPatch, selection: str
) -> None:
    owner = await make_owner(["pending"])
    calls = watch(monkeypatch, gateway.services)
    query = f"query One($id: UUID!) {{ emailDomain(id: $id) {{ {selection} }} }}"
    body, elapsed = await post(
        gateway.client, query, owner.headers, {"id": str(owner.domains[0].id)}
    )
    assert_refused(body, "GRAPHQL_PARSE_FAILED", TOKEN_LIMIT)
    assert elapsed < FAST
    assert calls == []


async def test_repeated_directive_under_the_token_limit_is_refused_with_bounded_errors(
    gateway: Gateway, make_owner: MakeOwner, monkeypatch: pytest.MonkeyPatch
) -> None:
    owner = await make_owner(["pending"])
    calls = watch(monkeypatch, gateway.services)
    query = (
        "query One($id: UUID!) { emailDomain(id: $id) { id" + " @include(if: true)" * 250 + " } }"
    )
    assert tokens(query) <= MAX_TOKENS
    body, elapsed = await post(
        gateway.client, query, owner.headers, {"id": str(owner.domains[0].id)}
    )
    assert_refused(body, "GRAPHQL_VALIDATION_FAILED", r"directive '@include' can only be used once")
    assert len(body["errors"]) <= 101  # graphql-core stops after 100 validation errors
    assert elapsed < FAST
    assert calls == []


async def test_one_directive_per_field_under_the_token_limit_is_answered(
    gateway: Gateway, make_owner: MakeOwner
) -> None:
    owner = await make_owner(["pending"])
    selection = "id @include(if: true) status @skip(if: true) " * 120
    query = f"query One($id: UUID!) {{ emailDomain(id: $id) {{ {selection} }} }}"
    assert MAX_TOKENS - 100 < tokens(query) <= MAX_TOKENS
    body, elapsed = await post(
        gateway.client, query, owner.headers, {"id": str(owner.domains[0].id)}
    )
    assert assert_answered(body) == {"emailDomain": {"id": str(owner.domains[0].id)}}
    assert elapsed < FAST


# --- huge string arguments --------------------------------------------------------------------

HUGE = "a" * 1_000_000
HUGE_REFUSALS = {"GRAPHQL_PARSE_FAILED", "GRAPHQL_VALIDATION_FAILED", "BAD_USER_INPUT"}


async def _assert_huge_after_refused(
    client: httpx.AsyncClient, payload: dict[str, Any], owner: Owner
) -> None:
    started = time.perf_counter()
    response = await client.post("/graphql", json=payload, headers=owner.headers)
    elapsed = time.perf_counter() - started
    assert response.status_code in (200, 413), response.text[:500]
    assert elapsed < FAST
    assert len(response.content) < 10_000  # the string is not echoed back
    body = response.json()
    assert body.get("data") is None, body
    (error,) = body["errors"]
    if response.status_code == 413:  # over MAX_BODY_BYTES: refused before parsing
        assert error["extensions"]["code"] == "PAYLOAD_TOO_LARGE", error
        assert "larger than" in error["message"], error
        return
    assert error["extensions"]["code"] in HUGE_REFUSALS, error
    assert re.search(r"`after`|(?i:limit|too (long|large))", error["message"]), error


async def test_a_one_megabyte_string_literal_is_refused_clearly(
    gateway: Gateway, make_owner: MakeOwner, monkeypatch: pytest.MonkeyPatch
) -> None:
    owner = await make_owner(["pending"])
    calls = watch(monkeypatch, gateway.services)
    query = '{ emailDomains(after: "' + HUGE + '") { totalCount } }'
    await _assert_huge_after_refused(gateway.client, {"query": query}, owner)
    assert "db.list_page" not in calls
    assert "domains.count" not in calls


async def test_a_one_megabyte_string_variable_is_refused_clearly(
    gateway: Gateway, make_owner: MakeOwner, monkeypatch: pytest.MonkeyPatch
) -> None:
    owner = await make_owner(["pending"])
    calls = watch(monkeypatch, gateway.services)
    payload = {
        "query": "query List($after: String) { emailDomains(after: $after) { totalCount } }",
        "variables": {"after": HUGE},
    }
    await _assert_huge_after_refused(gateway.client, payload, owner)
    assert "db.list_page" not in calls


async def test_a_real_cursor_is_answered(gateway: Gateway, make_owner: MakeOwner) -> None:
    owner = await make_owner(["pending", "failed"])
    query = (
        "query List($after: String) { emailDomains(first: 1, after: $after) {"
        " edges { node { id } } pageInfo { endCursor } } }"
    )
    first = assert_answered((await post(gateway.client, query, owner.headers))[0])
    cursor = first["emailDomains"]["pageInfo"]["endCursor"]
    body, _ = await post(gateway.client, query, owner.headers, {"after": cursor})
    (edge,) = assert_answered(body)["emailDomains"]["edges"]
    assert edge["node"]["id"] == str(owner.domains[0].id)


# --- circular fragments -----------------------------------------------------------------------

CYCLE_50 = " ".join(f"fragment C{i} on Domain {{ id ...C{(i + 1) % 50} }}" for i in range(50))


@pytest.mark.parametrize(
    ("fragments", "name"),
    [
        ("fragment C0 on Domain { id ...C0 }", "C0"),
        ("fragment C0 on Domain { id ...C1 } fragment C1 on Domain { status ...C0 }", "C0"),
        (CYCLE_50, "C0"),
    ],
    ids=["self", "mutual", "ring-of-50"],
)
async def test_circular_fragments_are_refused(
    gateway: Gateway,
    make_owner: MakeOwner,
    monkeypatch: pytest.MonkeyPatch,
    fragments: str,
    name: str,
) -> None:
    owner = await make_owner(["pending"])
    calls = watch(monkeypatch, gateway.services)
    query = f"query One($id: UUID!) {{ emailDomain(id: $id) {{ ...{name} }} }} {fragments}"
    body, elapsed = await post(
        gateway.client, query, owner.headers, {"id": str(owner.domains[0].id)}
    )
    assert_refused(body, "GRAPHQL_VALIDATION_FAILED", rf"Cannot spread fragment '{name}' within")
    assert elapsed < FAST
    assert calls == []


async def test_shared_fragments_without_a_cycle_are_answered(
    gateway: Gateway, make_owner: MakeOwner
) -> None:
    owner = await make_owner(["pending"])
    query = (
        "query One($id: UUID!) { emailDomain(id: $id) { ...A ...B } }"
        " fragment A on Domain { id ...C } fragment B on Domain { ...C status }"
        " fragment C on Domain { domain }"
    )
    body, _ = await post(gateway.client, query, owner.headers, {"id": str(owner.domains[0].id)})
    domain = owner.domains[0]
    assert assert_answered(body)["emailDomain"] == {
        "id": str(domain.id),
        "domain": domain.domain,
        "status": "PENDING",
    }


# --- introspection bombs ----------------------------------------------------------------------

SCHEMA_BOMB = (
    "{ __schema { types { fields { type { fields { type { fields { type { fields {"
    " type { fields { name } } } } } } } } } } } }"
)
FRAGMENT_BOMB = (
    "{ __schema { types { ...F1 } } }"
    " fragment F1 on __Type { fields { type { ...F2 } } interfaces { ...F2 } }"
    " fragment F2 on __Type { fields { type { ...F3 } } possibleTypes { ...F3 } }"
    " fragment F3 on __Type { fields { type { ...F4 } } }"
    " fragment F4 on __Type { fields { name } inputFields { name } }"
)


@pytest.mark.parametrize("query", [SCHEMA_BOMB, FRAGMENT_BOMB], ids=["inline", "fragments"])
async def test_introspection_bombs_are_refused(
    gateway: Gateway, monkeypatch: pytest.MonkeyPatch, query: str
) -> None:
    calls = watch(monkeypatch, gateway.services)
    body, elapsed = await post(gateway.client, query)
    assert_refused(body, "GRAPHQL_VALIDATION_FAILED", r"(?i)introspection depth|depth\D*\d+")
    assert elapsed < FAST
    assert calls == []


async def test_introspection_with_two_levels_of_fields_is_answered(gateway: Gateway) -> None:
    query = "{ __schema { types { name fields { name type { name fields { name } } } } } }"
    body, elapsed = await post(gateway.client, query)
    types = {t["name"]: t for t in assert_answered(body)["__schema"]["types"]}
    assert "publishedRecords" in {f["name"] for f in types["Domain"]["fields"]}
    assert elapsed < FAST


# --- page sizes and the node estimate (graphql_max_nodes=200) ---------------------------------

NODE_LIMIT = r"the limit is 200\b"


async def test_a_page_size_bomb_is_refused(
    small_limits: Gateway, make_owner: MakeOwner, monkeypatch: pytest.MonkeyPatch
) -> None:
    owner = await make_owner(["pending"])
    calls = watch(monkeypatch, small_limits.services)
    query = (
        "{ emailDomains(first: 100) { edges { node { id domain dnsRecords { type value } } } } }"
    )
    body, elapsed = await post(small_limits.client, query, owner.headers)
    # 1 + 100 x (edges, node, id, domain, dnsRecords, type, value)
    assert_refused(body, "GRAPHQL_VALIDATION_FAILED", r"about 701 nodes; " + NODE_LIMIT)
    assert elapsed < FAST
    assert calls == []


async def test_pages_are_counted_at_their_size_up_to_the_node_limit(
    small_limits: Gateway, make_owner: MakeOwner, monkeypatch: pytest.MonkeyPatch
) -> None:
    owner = await make_owner(["pending", "failed"])
    calls = watch(monkeypatch, small_limits.services)
    # 2 + 99 x 2 = 200 exactly: answered.
    body, _ = await post(
        small_limits.client,
        "{ __typename emailDomains(first: 99) { edges { cursor } } }",
        owner.headers,
    )
    assert len(assert_answered(body)["emailDomains"]["edges"]) == 2
    assert "db.list_page" in calls
    calls.clear()
    # 2 + 100 x 2 = 202: refused.
    body, _ = await post(
        small_limits.client,
        "{ __typename emailDomains(first: 100) { edges { cursor } } }",
        owner.headers,
    )
    assert_refused(body, "GRAPHQL_VALIDATION_FAILED", r"about 202 nodes; " + NODE_LIMIT)
    assert calls == []


async def test_a_page_size_from_a_variable_is_counted_at_the_maximum(
    small_limits: Gateway, make_owner: MakeOwner, monkeypatch: pytest.MonkeyPatch
) -> None:
    owner = await make_owner(["pending"])
    calls = watch(monkeypatch, small_limits.services)
    query = "query List($n: Int) { __typename emailDomains(first: $n) { edges { cursor } } }"
    body, _ = await post(small_limits.client, query, owner.headers, {"n": 1})
    assert_refused(body, "GRAPHQL_VALIDATION_FAILED", r"about 202 nodes; " + NODE_LIMIT)
    assert calls == []
    # Counted at 100 as well, but 1 + 100 x 1 fits: answered with the page actually asked for.
    query = "query List($n: Int) { emailDomains(first: $n) { totalCount } }"
    body, _ = await post(small_limits.client, query, owner.headers, {"n": 1})
    assert assert_answered(body) == {"emailDomains": {"totalCount": 1}}


async def test_an_absent_page_size_is_counted_at_its_default(
    small_limits: Gateway, make_owner: MakeOwner
) -> None:
    owner = await make_owner(["pending"])
    # 1 + 50 x 3 = 151 fits; 1 + 50 x 5 = 251 does not.
    body, _ = await post(
        small_limits.client, "{ emailDomains { edges { node { id } } } }", owner.headers
    )
    assert len(assert_answered(body)["emailDomains"]["edges"]) == 1
    body, _ = await post(
        small_limits.client,
        "{ emailDomains { edges { node { id domain status } } } }",
        owner.headers,
    )
    assert_refused(body, "GRAPHQL_VALIDATION_FAILED", r"about 251 nodes; " + NODE_LIMIT)


@pytest.mark.parametrize(
    ("argument", "variables", "code", "message"),
    [
        ("101", {}, "BAD_USER_INPUT", r"`first` must be between 0 and 100"),
        ("-1", {}, "BAD_USER_INPUT", r"`first` must be between 0 and 100"),
        ("$n", {"n": 101}, "BAD_USER_INPUT", r"`first` must be between 0 and 100"),
        ("2147483648", {}, "GRAPHQL_VALIDATION_FAILED", r"32-bit"),
        ("$n", {"n": 2**31}, "BAD_USER_INPUT", r"32-bit"),
    ],
    ids=["101", "negative", "variable-101", "beyond-int", "variable-beyond-int"],
)
async def test_a_page_size_over_100_is_refused(
    gateway: Gateway,
    make_owner: MakeOwner,
    monkeypatch: pytest.MonkeyPatch,
    argument: str,
    variables: dict[str, int],
    code: str,
    message: str,
) -> None:
    owner = await make_owner(["pending"])
    calls = watch(monkeypatch, gateway.services)
    query = f"query List($n: Int) {{ emailDomains(first: {argument}) {{ edges {{ cursor }} }} }}"
    if argument != "$n":
        query = query.replace("($n: Int) ", " ")
    body, elapsed = await post(gateway.client, query, owner.headers, variables)
    assert_refused(body, code, message)
    assert elapsed < FAST
    assert "db.list_page" not in calls


async def test_a_page_of_100_is_answered(gateway: Gateway, make_owner: MakeOwner) -> None:
    owner = await make_owner(["pending", "failed", "verifying"])
    body, _ = await post(
        gateway.client, "{ emailDomains(first: 100) { edges { node { id } } } }", owner.headers
    )
    ids = [e["node"]["id"] for e in assert_answered(body)["emailDomains"]["edges"]]
    assert ids == [str(d.id) for d in reversed(owner.domains)]


# --- transport: batching, GET, introspection and GraphiQL switches ----------------------------


async def _status(gateway: Gateway, owner: Owner) -> str:
    body, _ = await post(gateway.client, ONE, owner.headers, {"id": str(owner.domains[0].id)})
    status: str = assert_answered(body)["emailDomain"]["status"]
    return status


async def test_batched_operations_are_refused(
    gateway: Gateway, make_owner: MakeOwner, monkeypatch: pytest.MonkeyPatch
) -> None:
    owner = await make_owner(["pending"])
    calls = watch(monkeypatch, gateway.services)
    operation = {"query": UPDATE, "variables": {"id": str(owner.domains[0].id), "status": "FAILED"}}
    response = await gateway.client.post(
        "/graphql", json=[operation, operation], headers=owner.headers
    )
    assert 400 <= response.status_code < 500, response.text
    assert "batching is not enabled" in response.text.lower()
    assert calls == []
    assert await _status(gateway, owner) == "PENDING"
    # The same operation on its own is executed.
    response = await gateway.client.post("/graphql", json=operation, headers=owner.headers)
    assert response.json()["data"]["updateEmailDomainStatus"]["status"] == "FAILED"


async def test_mutations_over_get_are_refused(
    gateway: Gateway, make_owner: MakeOwner, monkeypatch: pytest.MonkeyPatch
) -> None:
    owner = await make_owner(["pending"])
    calls = watch(monkeypatch, gateway.services)
    variables = f'{{"id": "{owner.domains[0].id}", "status": "FAILED"}}'
    response = await gateway.client.get(
        "/graphql",
        params={"query": UPDATE, "variables": variables},
        headers={**owner.headers, "Accept": "application/json"},
    )
    assert 400 <= response.status_code < 500, response.text
    assert re.search(r"(?i)mutations? (are )?not allowed.*GET", response.text), response.text
    assert calls == []
    assert await _status(gateway, owner) == "PENDING"
    # Queries over GET are still answered.
    response = await gateway.client.get(
        "/graphql",
        params={"query": ONE, "variables": f'{{"id": "{owner.domains[0].id}"}}'},
        headers={**owner.headers, "Accept": "application/json"},
    )
    assert response.json()["data"]["emailDomain"]["status"] == "PENDING"


@pytest.mark.parametrize(
    "query",
    ["{ __schema { queryType { name } } }", '{ __type(name: "Domain") { name } }'],
    ids=["__schema", "__type"],
)
async def test_introspection_can_be_switched_off(
    locked_down: Gateway, gateway: Gateway, query: str
) -> None:
    body, _ = await post(locked_down.client, query)
    assert_refused(body, "GRAPHQL_VALIDATION_FAILED", r"(?i)introspection has been disabled")
    assert assert_answered((await post(gateway.client, query))[0])  # on by default


async def test_with_introspection_off_ordinary_operations_still_work(
    locked_down: Gateway, make_owner: MakeOwner
) -> None:
    owner = await make_owner(["failed"])
    assert assert_answered((await post(locked_down.client, "{ __typename }"))[0]) == {
        "__typename": "Query"
    }
    body, _ = await post(locked_down.client, ONE, owner.headers, {"id": str(owner.domains[0].id)})
    assert assert_answered(body)["emailDomain"]["status"] == "FAILED"


async def test_graphiql_can_be_switched_off(locked_down: Gateway, gateway: Gateway) -> None:
    page = await locked_down.client.get("/graphql", headers={"Accept": "text/html"})
    assert 400 <= page.status_code < 500
    assert "graphiql" not in page.text.lower()
    assert not page.headers.get("content-type", "").startswith("text/html")
    served = await gateway.client.get("/graphql", headers={"Accept": "text/html"})
    assert served.status_code == 200
    assert "graphiql" in served.text.lower()
    answer = await locked_down.client.get(
        "/graphql", params={"query": "{ __typename }"}, headers={"Accept": "*/*"}
    )
    assert answer.json() == {"data": {"__typename": "Query"}}


def test_the_token_helper_counts_like_the_parser() -> None:
    parse(token_budget_document(MAX_TOKENS), max_tokens=MAX_TOKENS)
    with pytest.raises(GraphQLSyntaxError, match="more than 2000 tokens"):
        parse(token_budget_document(MAX_TOKENS + 1), max_tokens=MAX_TOKENS)
