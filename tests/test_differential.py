"""Compiled plans against graphql-core, the oracle: thousands of generated documents and the
hand-written edge cases run through both paths over the same data, and the answers (data,
errors with message, path, locations and extensions, response extensions, key order) must be
byte-for-byte identical."""

import re
import uuid
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import graphql
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis_graphql import Mode, mutations, queries
from starlette.requests import Request
from starlette.responses import Response
from strawberry.http import process_result

from gql.errors import InvalidInput, NotFound, RateLimited, Unauthenticated
from gql.graphql.context import GatewayContext
from gql.graphql.schema import build_schema
from gql.models import DnsRecord, DomainPage, DomainRecord, Principal, Status
from gql.services.dns import PublishedRecords
from gql.services.domains import encode_cursor
from gql.services.lifecycle import SyncResult
from tests.conftest import make_settings

SDL = (Path(__file__).parents[1] / "schema.graphql").read_text()
USER = uuid.UUID("6f1d2c9e-4b7a-4d3e-9a51-0c8b2e7f1a11")
TOKEN = "Bearer pk_live_differential"
BASE = datetime(2026, 11, 30, 12, 0, 0, 123456, tzinfo=UTC)


def _record(i: int, status: Status, **changes: Any) -> DomainRecord:
    name = f"d{i}.example.com"
    record = DomainRecord(
        id=uuid.UUID(int=0x1000 + i),
        user_id=USER,
        domain=name,
        agentmail_domain_id=None if i % 3 == 0 else f"am-{i}",
        status=status,
        dns_records=(
            DnsRecord("TXT", name, "v=spf1 include:spf.agentmail.to ~all", None),
            DnsRecord("MX", name, "inbound-smtp.agentmail.to", 10),
        ),
        verified_at=BASE if status is Status.VERIFIED else None,
        created_at=BASE - timedelta(hours=i),
        updated_at=BASE - timedelta(minutes=i, microseconds=i * 7 % 2),
        status_reason=None if status is Status.VERIFIED else "dns_records_missing",
        last_checked_at=BASE if i % 2 else None,
    )
    return replace(record, **changes)


RECORDS = [_record(i, s) for i, s in enumerate([*Status, Status.PENDING])]
# Values no real row holds, to reach graphql-core's error paths: nulls where the schema
# promises none, an Int out of range, a String that is not one, an unknown enum value.
BROKEN = [
    _record(
        10,
        Status.PENDING,
        dns_records=(
            DnsRecord("TXT", "x", "y", None),
            DnsRecord("MX", None, "y", 1),  # type: ignore[arg-type]
        ),
    ),
    _record(11, Status.FAILED, domain=None),
    _record(12, Status.VERIFYING, dns_records=(DnsRecord("MX", "x", "y", 2**40),)),
    _record(13, Status.PENDING, domain=1234, agentmail_domain_id=True),
    _record(14, Status.PENDING, dns_records=None),
]
KNOWN_IDS = [r.id for r in RECORDS + BROKEN]
MISSING = uuid.UUID(int=0xDEAD)
FAILING = uuid.UUID(int=0xFA11)
LIMITED = uuid.UUID(int=0x1133)


class _Access:
    async def admit(self, authorization: str | None, client: str) -> Principal:
        if authorization != TOKEN:
            raise Unauthenticated("Send `Authorization: Bearer <token>`.")
        return Principal(user_id=USER, via="api_key")


class _Domains:
    """Stateless: the same request always gets the same answer, on either path."""

    def __init__(self, records: list[DomainRecord]) -> None:
        self.records = records

    async def find(self, principal: Principal, domain_id: uuid.UUID) -> DomainRecord | None:
        if domain_id == FAILING:
            raise RuntimeError("connection reset")
        if domain_id == LIMITED:
            raise RateLimited("Too many requests: retry later.", retry_after=7)
        return next((r for r in self.records if r.id == domain_id), None)

    async def list_page(
        self, principal: Principal, *, first: int | None, after: str | None, status: Status | None
    ) -> DomainPage:
        size = 50 if first is None else first
        if not 0 <= size <= 100:
            raise InvalidInput("`first` must be between 0 and 100.")
        rows = [r for r in self.records if status is None or r.status is status]
        if after is not None:
            cursors = [encode_cursor(r) for r in rows]
            if after not in cursors:
                raise InvalidInput("`after` is not a cursor from this list.")
            rows = rows[cursors.index(after) + 1 :]
        return DomainPage(records=tuple(rows[:size]), has_next_page=len(rows) > size)

    async def count(self, principal: Principal, *, status: Status | None) -> int:
        if status is Status.FAILED:
            raise RuntimeError("count failed")
        return sum(1 for r in self.records if status is None or r.status is status)

    async def override_status(
        self, principal: Principal, domain_id: uuid.UUID, status: Status
    ) -> DomainRecord:
        record = await self.find(principal, domain_id)
        if record is None:
            raise NotFound("No such domain: check the id.")
        return replace(record, status=status)


class _Lifecycle:
    def __init__(self, domains: _Domains) -> None:
        self.domains = domains

    async def create(self, principal: Principal, raw_name: str) -> DomainRecord:
        if not raw_name or " " in raw_name:
            raise InvalidInput("Send a domain name such as acme.com.")
        return replace(self.domains.records[0], domain=raw_name.lower())

    async def verify(
        self, principal: Principal, domain_id: uuid.UUID, *, poll: bool
    ) -> DomainRecord:
        record = await self.domains.override_status(principal, domain_id, Status.VERIFYING)
        return replace(record, status_reason="polled" if poll else None)

    async def delete(self, principal: Principal, domain_id: uuid.UUID) -> DomainRecord:
        return await self.domains.override_status(principal, domain_id, Status.FAILED)

    async def sync(self, principal: Principal, records: tuple[DomainRecord, ...]) -> SyncResult:
        return SyncResult(records=records, failed_ids=tuple(r.id for r in records[:1]))


class _Dns:
    async def published(self, record: DomainRecord) -> PublishedRecords:
        if record.status is Status.FAILED:
            raise RuntimeError("cloudflare exploded")
        return PublishedRecords(
            checked=False, zone_id=None, zone_name=None, error="not configured", records=()
        )


class FakeServices:
    def __init__(self, records: list[DomainRecord]) -> None:
        self.access = _Access()
        self.domains = _Domains(records)
        self.lifecycle = _Lifecycle(self.domains)
        self.dns = _Dns()
        self.sandbox = False


SERVICES = FakeServices(RECORDS + BROKEN)
SETTINGS = {"graphql_max_depth": 20, "graphql_max_aliases": 100, "graphql_max_nodes": 10**7}
PLANS = build_schema(make_settings("postgresql://unused/x", **SETTINGS))
ORACLE = build_schema(
    make_settings("postgresql://unused/x", graphql_compiled_plans=False, **SETTINGS)
)
_REQUEST_ID = re.compile(rb"[0-9a-f]{32}")


def _context(token: str | None) -> GatewayContext:
    headers = [] if token is None else [(b"authorization", token.encode())]
    scope = {"type": "http", "method": "POST", "path": "/graphql", "headers": headers,
             "client": ("127.0.0.1", 1234), "query_string": b""}  # fmt: skip
    return GatewayContext(Request(scope), Response(), SERVICES)  # type: ignore[arg-type]


async def _answer(
    schema: Any, query: str, variables: Mapping[str, Any] | None, token: str | None
) -> tuple[bytes, str | None]:
    context = _context(token)
    result = await schema.execute(
        query, variable_values=dict(variables or {}), context_value=context
    )
    body = orjson.dumps(process_result(result))
    return _REQUEST_ID.sub(b"<id>", body), context.response.headers.get("retry-after")


async def assert_same(
    query: str, variables: Mapping[str, Any] | None = None, token: str | None = TOKEN
) -> bytes:
    expected = await _answer(ORACLE, query, variables, token)
    actual = await _answer(PLANS, query, variables, token)
    assert actual == expected, f"\n{query}\n{variables}"
    return actual[0]


def _executor(document: graphql.DocumentNode) -> graphql.execution.Executor[Any]:
    executor = graphql.execution.Executor.build(PLANS._schema, document, context_value=None)
    assert not isinstance(executor, list), executor
    return executor


def test_plans_are_used_for_the_operations_they_know() -> None:
    from gql.graphql import compiled

    document = graphql.parse("{ emailDomains { totalCount edges { node { id status } } } }")
    plan = compiled.compile_plan(_executor(document))
    assert [s.key for s in plan.root.steps] == ["emailDomains"]
    introspection = graphql.parse("{ __schema { queryType { name } } }")
    with pytest.raises(compiled.Unsupported):
        compiled.compile_plan(_executor(introspection))


async def test_plans_per_document_are_bounded() -> None:
    from gql.graphql.compiled import MAX_PLANS_PER_DOCUMENT

    names = [f"v{i}" for i in range(6)]
    query = (
        "query("
        + ", ".join(f"${n}: Boolean!" for n in names)
        + ") { emailDomains {"
        + " ".join(f"{n}: totalCount @include(if: ${n})" for n in names)
        + " } }"
    )
    for mask in range(2 ** len(names)):
        variables = {n: bool(mask >> i & 1) for i, n in enumerate(names)}
        await assert_same(query, variables)
    entry = PLANS.documents.get(query)
    assert entry is not None
    assert len(entry.plans._plans) == MAX_PLANS_PER_DOCUMENT


ALL = """
  id userId domain agentmailDomainId status statusReason verifiedAt createdAt updatedAt
  lastCheckedAt dnsRecords { type name value priority } __typename
"""
EDGE_CASES: list[tuple[str, dict[str, Any] | None]] = [
    (
        f"{{ emailDomains {{ totalCount edges {{ cursor node {{ {ALL} }} }} pageInfo {{ hasNextPage"
        " hasPreviousPage startCursor endCursor } } }",
        None,
    ),
    # a null inside a non-null list: propagates to the nearest nullable parent
    (f'{{ emailDomain(id: "{BROKEN[0].id}") {{ id dnsRecords {{ type }} }} }}', None),
    ("query($id: UUID!) { emailDomain(id: $id) { domain status } }", {"id": str(BROKEN[1].id)}),
    (
        f'{{ a: emailDomain(id: "{BROKEN[2].id}") {{ dnsRecords {{ priority }} }}'
        f' b: emailDomain(id: "{RECORDS[0].id}") {{ id }} }}',
        None,
    ),
    (f'{{ emailDomain(id: "{BROKEN[3].id}") {{ domain agentmailDomainId }} }}', None),
    (f'{{ emailDomain(id: "{BROKEN[4].id}") {{ dnsRecords {{ type }} }} }}', None),
    # errors in sibling fields, unexpected ones masked, one with Retry-After
    (
        f'{{ ok: emailDomain(id: "{RECORDS[1].id}") {{ id }}'
        f' bad: emailDomain(id: "{FAILING}") {{ id }}'
        f' limited: emailDomain(id: "{LIMITED}") {{ id }}'
        f' missing: emailDomain(id: "{MISSING}") {{ id }} }}',
        None,
    ),
    ("{ emailDomains(status: FAILED) { totalCount edges { node { id } } } }", None),
    (
        "{ emailDomains { edges { node { domain publishedRecords { cloudflare { checked error }"
        " records { id } } } } } }",
        None,
    ),
    # a null propagating out of a list while other items' resolvers are still running
    (
        "{ emailDomains { edges { node { publishedRecords { cloudflare { checked } } domain"
        " a: publishedRecords { records { id } } } } } }",
        None,
    ),
    ("{ emailDomains(first: 500) { totalCount } }", None),
    ('{ emailDomains(after: "nope") { totalCount } }', None),
    # repeated fields merged, aliases, fragments, inline fragments, __typename
    (
        f'{{ emailDomain(id: "{RECORDS[2].id}") {{ id domain }}'
        f' emailDomain(id: "{RECORDS[2].id}") {{ status dnsRecords {{ type }} }} }}',
        None,
    ),
    (
        "fragment F on Domain { id ...G status } fragment G on Domain { domain __typename }"
        " query { __typename list: emailDomains(first: 2) { edges { node { ...F"
        " ... on Domain { createdAt } ... { updatedAt } } } } }",
        None,
    ),
    # variables with defaults, @skip/@include from variables and literals
    (
        "query($first: Int = 2, $skip: Boolean = false, $inc: Boolean!) { emailDomains(first:"
        " $first) { edges @skip(if: $skip) { cursor } pageInfo @include(if: $inc) { endCursor }"
        " totalCount @include(if: false) } }",
        {"inc": True},
    ),
    (
        "query($first: Int = 2, $skip: Boolean = false, $inc: Boolean!) { emailDomains(first:"
        " $first) { edges @skip(if: $skip) { cursor } pageInfo @include(if: $inc) { endCursor }"
        " totalCount @include(if: false) } }",
        {"skip": True, "inc": False, "first": 1},
    ),
    ("query($s: DomainStatus = VERIFIED) { emailDomains(status: $s) { totalCount } }", None),
    ("query($first: Int) { emailDomains(first: $first) { totalCount } }", {"first": "x"}),
    ("{ emailDomains(sync: true) { edges { node { id } } } }", None),
    # mutations run serially; a failure in one leaves the others' answers
    (
        f'mutation {{ a: updateEmailDomainStatus(id: "{RECORDS[0].id}", status: FAILED)'
        " { id status updatedAt }"
        f' b: updateEmailDomainStatus(id: "{MISSING}", status: PENDING) {{ id }}'
        f' c: deleteEmailDomain(id: "{RECORDS[1].id}") {{ id domain success }} }}',
        None,
    ),
    (
        "mutation($id: UUID!, $s: DomainStatusInput!) { updateEmailDomainStatus(id: $id,"
        f" status: $s) {{ {ALL} }} }}",
        {"id": str(RECORDS[3].id), "s": "VERIFYING"},
    ),
    (
        "mutation($id: UUID!) { updateEmailDomainStatus(id: $id, status: PENDING) { id } }",
        {"id": "not-a-uuid"},
    ),
    (
        'mutation { createEmailDomain(domain: "Acme.COM") { domain }'
        f' verifyEmailDomain(id: "{RECORDS[4].id}", poll: true) {{ statusReason }} }}',
        None,
    ),
    ('mutation { createEmailDomain(domain: "a b") { domain } }', None),
    ("{ __schema { queryType { name } } emailDomains { totalCount } }", None),
    ("query A { __typename } query B { emailDomains { totalCount } }", None),
]


@pytest.mark.parametrize(("query", "variables"), EDGE_CASES)
@pytest.mark.parametrize("token", [TOKEN, None])
async def test_edge_cases_answer_exactly_as_graphql_core(
    query: str, variables: dict[str, Any] | None, token: str | None
) -> None:
    await assert_same(query, variables, token)


def _uuid_nodes() -> st.SearchStrategy[graphql.StringValueNode]:
    ids = st.sampled_from([*KNOWN_IDS, MISSING, FAILING, LIMITED]) | st.uuids()
    return ids.map(lambda u: graphql.StringValueNode(value=str(u)))


CUSTOM = {"UUID": _uuid_nodes()}


def _settings(examples: int) -> settings:
    return settings(
        max_examples=examples,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


@_settings(1000)
@given(query=queries(SDL, custom_scalars=CUSTOM, allow_x00=False, codec="utf-8"))
async def test_generated_queries_answer_exactly_as_graphql_core(query: str) -> None:
    await assert_same(query)


@_settings(500)
@given(query=mutations(SDL, custom_scalars=CUSTOM, allow_x00=False, codec="utf-8"))
async def test_generated_mutations_answer_exactly_as_graphql_core(query: str) -> None:
    await assert_same(query)


@_settings(200)
@given(
    query=queries(SDL, custom_scalars=CUSTOM, allow_x00=False, codec="utf-8", mode=Mode.NEGATIVE)
)
async def test_generated_invalid_documents_answer_exactly_as_graphql_core(query: str) -> None:
    await assert_same(query)
