"""OpenTelemetry spans, recorded with the SDK's in-memory exporter: the GraphQL server span
(semantic conventions), HTTP, database and provider spans, and the trace carried into a job."""

import logging
import subprocess
import sys
import uuid
from collections.abc import Iterator, Mapping

import asyncpg
import httpx
import orjson
import pytest
from graphql import parse
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from opentelemetry.util.types import AnyValue

from gql.app import create_app
from gql.db.engine import driver_dsn
from gql.observability.logs import ContextFilter
from gql.observability.tracing import sanitized_document
from gql.providers.retry import RetryableStatus, with_retries
from gql.settings import Settings
from tests.conftest import make_settings, running
from tests.helpers import MakeOwner
from tests.ops.processes import fresh_database

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"


class _WhileRecording(SpanProcessor):
    """Forwards finished spans only while a tracing test runs (the provider stays global)."""

    def __init__(self, inner: SpanProcessor) -> None:
        self.inner = inner
        self.active = False

    def on_end(self, span: ReadableSpan) -> None:
        if self.active:
            self.inner.on_end(span)

    def on_start(self, span: Span, parent_context: object = None) -> None:
        return None


_exporter = InMemorySpanExporter()
_switch = _WhileRecording(SimpleSpanProcessor(_exporter))


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = TracerProvider()
        provider.add_span_processor(_switch)
        trace.set_tracer_provider(provider)
    _exporter.clear()
    _switch.active = True
    try:
        yield _exporter
    finally:
        _switch.active = False
        _exporter.clear()


def named(exporter: InMemorySpanExporter, name: str) -> list[ReadableSpan]:
    return [s for s in exporter.get_finished_spans() if s.name == name]


def attributes(span: ReadableSpan) -> Mapping[str, AnyValue]:
    """A finished span's attributes: typed as optional, but a finished span always has a mapping."""
    assert span.attributes is not None
    return span.attributes


async def test_a_graphql_operation_is_a_server_span_with_its_children(
    spans: InMemorySpanExporter, client: httpx.AsyncClient, make_owner: MakeOwner
) -> None:
    owner = await make_owner(["pending"])
    domain_id = owner.domains[0].id
    query = (
        f'mutation Override {{ updateEmailDomainStatus(id: "{domain_id}", status: FAILED)'
        " { status } }"
    )
    response = await client.post(
        "/graphql", json={"query": query}, headers={**owner.headers, "traceparent": TRACEPARENT}
    )
    assert "errors" not in response.json(), response.text

    (http,) = named(spans, "POST /graphql")
    assert http.kind is SpanKind.SERVER
    assert format(http.context.trace_id, "032x") == TRACE_ID
    assert attributes(http)["http.route"] == "/graphql"
    assert attributes(http)["http.response.status_code"] == 200

    (operation,) = named(spans, "mutation")
    assert operation.parent is not None
    assert operation.parent.span_id == http.context.span_id
    assert attributes(operation)["graphql.operation.type"] == "mutation"
    assert attributes(operation)["graphql.operation.name"] == "Override"
    document = str(attributes(operation)["graphql.document"])
    assert "updateEmailDomainStatus" in document
    assert str(domain_id) not in document, "literal values are removed"

    (update,) = named(spans, "UPDATE email_domains")
    assert update.kind is SpanKind.CLIENT
    assert attributes(update)["db.system.name"] == "postgresql"
    assert "$1" in str(attributes(update)["db.query.text"])
    assert str(domain_id) not in str(attributes(update)["db.query.text"])
    assert format(update.context.trace_id, "032x") == TRACE_ID


async def test_log_lines_carry_the_trace_id(
    spans: InMemorySpanExporter, client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    seen: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record)

    handler = Keep()
    handler.addFilter(ContextFilter())
    request_logger = logging.getLogger("gql.request")
    request_logger.addHandler(handler)
    try:
        with caplog.at_level(logging.INFO, logger="gql.request"):
            await client.get("/healthz", headers={"traceparent": TRACEPARENT})
    finally:
        request_logger.removeHandler(handler)
    (record,) = seen
    assert record.trace_id == TRACE_ID  # type: ignore[attr-defined]


async def test_provider_calls_are_client_spans(
    spans: InMemorySpanExporter, settings: Settings
) -> None:
    quick = settings.model_copy(update={"provider_backoff_seconds": 0})
    calls = 0

    async def flaky() -> str:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RetryableStatus(429, 0)
        return "ok"

    await with_retries(flaky, provider="AgentMail", operation="verify", settings=quick)
    (span,) = named(spans, "AgentMail verify")
    assert span.kind is SpanKind.CLIENT
    assert attributes(span)["gateway.provider.attempts"] == 2


async def test_a_poller_check_links_to_the_request_that_scheduled_it(
    spans: InMemorySpanExporter, database_url: str
) -> None:
    async with fresh_database(database_url) as url:
        settings = make_settings(url, poll_schedule_minutes=[0, 10])
        app = create_app(settings)
        async with running(app) as client:
            user = uuid.uuid4()
            key, _ = await app.state.services.api_keys.create(user)
            response = await client.post(
                "/graphql",
                json={
                    "query": "mutation { createEmailDomain(domain: "
                    f'"flaky-{uuid.uuid4().hex[:8]}.com") {{ id status }} }}'
                },
                headers={"Authorization": f"Bearer {key}", "traceparent": TRACEPARENT},
            )
            created = response.json()["data"]["createEmailDomain"]
            assert created["status"] == "VERIFYING"
            conn = await asyncpg.connect(driver_dsn(url))
            try:
                raw = await conn.fetchval(
                    "SELECT args FROM procrastinate_jobs WHERE task_name = 'check_domain'"
                )
            finally:
                await conn.close()
            args = orjson.loads(raw) if isinstance(raw, str | bytes) else raw
            assert args["traceparent"].split("-")[1] == TRACE_ID
            await app.state.services.jobs.run_worker(wait=False)

    (check, *_) = named(spans, "process check_domain")
    assert check.kind is SpanKind.CONSUMER
    assert [format(link.context.trace_id, "032x") for link in check.links] == [TRACE_ID]
    # The check's own work is traced inside it.
    statements = [s for s in spans.get_finished_spans() if s.name.endswith(" email_domains")]
    assert any(s.context.trace_id == check.context.trace_id for s in statements)


def test_sanitized_documents_keep_the_shape_and_drop_literal_values() -> None:
    document = parse(
        'query Q($n: Int) { emailDomains(first: 5, after: "c2VjcmV0") '
        '{ edges { node { id } } } x: emailDomain(id: "abc") { status } y: f(v: 1.5, n: $n) }'
    )
    text = sanitized_document(document)
    assert "c2VjcmV0" not in text
    assert "abc" not in text
    assert "1.5" not in text
    assert "first: 0" in text
    assert "$n" in text
    assert "emailDomains" in text


_WITHOUT_OPENTELEMETRY = """
import asyncio, sys
import importlib.abc

class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name == "opentelemetry" or name.startswith("opentelemetry."):
            raise ImportError(f"blocked: {name}")
        return None

sys.meta_path.insert(0, Block())

import httpx
from gql.app import create_app
from gql.observability import tracing
from gql.observability.tracing import TracingUnavailable
from gql.settings import Settings

async def main() -> None:
    settings = Settings(_env_file=None, environment="test", database_url=sys.argv[1], worker=False)
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            r = await client.post("/graphql", json={"query": "{ __typename }"})
            assert r.status_code == 200 and r.json() == {"data": {"__typename": "Query"}}, r.text
            assert (await client.get("/metrics")).status_code == 200
    try:
        create_app(settings.model_copy(update={"tracing": True}))
    except TracingUnavailable as error:
        print(error)
    assert not tracing.AVAILABLE
    assert not any(m.startswith("opentelemetry") for m in sys.modules)
    print("served without opentelemetry")

asyncio.run(main())
"""


def test_without_the_tracing_extra_nothing_fails_and_nothing_is_imported(database_url: str) -> None:
    done = subprocess.run(
        [sys.executable, "-c", _WITHOUT_OPENTELEMETRY, database_url],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "served without opentelemetry" in done.stdout
    assert "pip install 'email-domain-gateway[tracing]'" in done.stdout
