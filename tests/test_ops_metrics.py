"""Prometheus metrics on /metrics, read back through HTTP after the work they count."""

import uuid

import asyncpg
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from gql.app import create_app
from gql.db.engine import driver_dsn
from gql.observability import graphql as graphql_metrics
from gql.observability.metrics import subscription_open
from gql.providers.retry import RetryableStatus, with_retries
from gql.providers.verification import ProviderUnavailable
from tests.conftest import make_settings, running
from tests.ops.processes import fresh_database

LIST = "query ListMine { emailDomains { totalCount } }"


def sample(text: str, name: str, **labels: str) -> float:
    """The value of one sample (0 when absent)."""
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                return float(s.value)
    return 0.0


async def scrape(client: httpx.AsyncClient, **headers: str) -> str:
    response = await client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return response.text


async def test_http_requests_by_route_template_and_status(client, make_owner):
    owner = await make_owner(["pending"])
    labels = {
        "http_request_method": "PATCH",
        "http_route": "/api/email/domains/{id}",
        "http_response_status_code": "200",
    }
    name = "http_server_request_duration_seconds_count"
    before = sample(await scrape(client), name, **labels)
    response = await client.patch(
        f"/api/email/domains/{owner.domains[0].id}",
        json={"status": "failed"},
        headers=owner.headers,
    )
    assert response.status_code == 200
    text = await scrape(client)
    assert sample(text, name, **labels) == before + 1
    assert str(owner.domains[0].id) not in text, "raw paths never become labels"
    await client.get("/no/such/page")
    invented = f"BREW{uuid.uuid4().hex[:6].upper()}"
    assert (await client.request(invented, "/healthz")).status_code == 405
    text = await scrape(client)
    assert sample(text, name, http_route="unmatched", http_response_status_code="404") >= 1
    assert sample(text, name, http_request_method="_OTHER", http_route="/healthz") >= 1
    assert invented not in text, "methods a client invents never become labels"


async def test_graphql_operations_phases_and_errors(client, make_owner):
    owner = await make_owner()
    secret = f"literal-{uuid.uuid4().hex}"
    ok = {"operation_name": "ListMine", "operation_type": "query"}
    before = await scrape(client)
    assert (
        "errors"
        not in (await client.post("/graphql", json={"query": LIST}, headers=owner.headers)).json()
    )
    refused = await client.post("/graphql", json={"query": LIST})
    assert refused.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    invalid = await client.post(
        "/graphql", json={"query": f'query Bad {{ emailDomain(id: "{secret}") {{ nope }} }}'}
    )
    assert invalid.json()["errors"]
    after = await scrape(client)

    def grew(name: str, **labels: str) -> float:
        return sample(after, name, **labels) - sample(before, name, **labels)

    assert grew("graphql_operations_total", outcome="ok", **ok) == 1
    assert grew("graphql_operations_total", outcome="error", **ok) == 1
    assert grew("graphql_operations_total", operation_name="Bad", outcome="invalid") == 1
    assert grew("graphql_envelop_error_result_total", code="UNAUTHENTICATED", **ok) == 1
    assert (
        grew(
            "graphql_envelop_error_result_total",
            operation_name="Bad",
            code="GRAPHQL_VALIDATION_FAILED",
        )
        >= 1
    )
    for phase in ("parse", "validate", "execute"):
        assert grew(f"graphql_envelop_phase_{phase}_count", **ok) == 2
    assert secret not in after, "no query text reaches the metrics"


async def test_operation_names_past_the_bound_are_counted_as_other(client, monkeypatch):
    monkeypatch.setattr(graphql_metrics, "MAX_OPERATION_NAMES", len(graphql_metrics._names))
    name = f"Unseen{uuid.uuid4().hex}"
    await client.post("/graphql", json={"query": f"query {name} {{ __typename }}"})
    text = await scrape(client)
    assert name not in text
    assert sample(text, "graphql_operations_total", operation_name="(other)") >= 1


async def test_database_statements_and_pool(client, make_owner):
    owner = await make_owner(["pending"])
    labels = {"db_operation_name": "UPDATE", "db_collection_name": "email_domains"}
    name = "db_client_operation_duration_seconds_count"
    before = sample(await scrape(client), name, **labels)
    await client.patch(
        f"/api/email/domains/{owner.domains[0].id}",
        json={"status": "failed"},
        headers=owner.headers,
    )
    text = await scrape(client)
    assert sample(text, name, **labels) == before + 1
    assert sample(text, "db_client_connection_count", db_client_connection_state="idle") >= 1
    assert sample(text, "db_client_connection_count", db_client_connection_state="used") >= 0
    assert "db_client_connection_pending_requests" in text


async def test_rate_limit_refusals(database_url, make_owner):
    app = create_app(make_settings(database_url, rate_limit="1/minute"))
    async with running(app) as client:
        owner = await make_owner()
        before = sample(await scrape(client), "gateway_rate_limit_refusals_total", limit="user")
        for _ in range(2):
            await client.post("/graphql", json={"query": LIST}, headers=owner.headers)
        after = sample(await scrape(client), "gateway_rate_limit_refusals_total", limit="user")
        assert after == before + 1


async def test_provider_calls_retries_and_outcomes(client, settings):
    quick = settings.model_copy(
        update={"provider_backoff_seconds": 0, "provider_max_backoff_seconds": 0}
    )
    attempts = 0

    async def flaky() -> str:
        nonlocal attempts
        attempts += 1
        if attempts == 1:
            raise RetryableStatus(503, None)
        return "answer"

    async def down() -> str:
        raise RetryableStatus(502, None)

    labels = {"provider": "AgentMail", "operation": "get"}
    before = await scrape(client)
    assert await with_retries(flaky, settings=quick, **labels) == "answer"
    with pytest.raises(ProviderUnavailable):
        await with_retries(down, settings=quick, **labels)
    after = await scrape(client)

    def grew(name: str, **extra: str) -> float:
        return sample(after, name, **labels, **extra) - sample(before, name, **labels, **extra)

    assert grew("gateway_provider_requests_total", outcome="ok") == 1
    assert grew("gateway_provider_requests_total", outcome="unavailable") == 1
    assert grew("gateway_provider_retries_total") == 1 + (quick.provider_attempts - 1)
    assert grew("gateway_provider_request_duration_seconds_count") == 2


async def test_queue_depth_and_poller_lag_come_from_the_database(database_url):
    async with fresh_database(database_url) as url:
        app = create_app(make_settings(url))
        async with running(app) as client:
            await app.state.services.jobs.schedule_check(uuid.uuid4(), attempt=0, delay_seconds=0)
            conn = await asyncpg.connect(driver_dsn(url))
            try:
                await conn.execute(
                    "UPDATE procrastinate_jobs SET scheduled_at = now() - interval '90 seconds'"
                )
            finally:
                await conn.close()
            text = await scrape(client)
            depth = sample(text, "gateway_job_queue_depth", task="check_domain", status="todo")
            assert depth == 1
            assert sample(text, "gateway_poller_lag_seconds", task="check_domain") >= 90


async def test_a_metrics_token_protects_the_endpoint(database_url):
    app = create_app(make_settings(database_url, metrics_token="scrape-secret"))
    async with running(app) as client:
        refused = await client.get("/metrics")
        assert refused.status_code == 401
        assert refused.headers["WWW-Authenticate"] == "Bearer"
        assert refused.json()["error"]["code"] == "unauthorized"
        wrong = await client.get("/metrics", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        await scrape(client, Authorization="Bearer scrape-secret")


async def test_metrics_can_be_turned_off_or_moved_off_the_gateway_port(database_url):
    for overrides in ({"metrics": False}, {"metrics_port": 9}):
        async with running(create_app(make_settings(database_url, **overrides))) as client:
            assert (await client.get("/metrics")).status_code == 404


async def test_active_subscriptions_is_a_gauge_other_code_holds_open(client):
    before = sample(await scrape(client), "graphql_active_subscriptions")
    async with subscription_open(), subscription_open():
        assert sample(await scrape(client), "graphql_active_subscriptions") == before + 2
    assert sample(await scrape(client), "graphql_active_subscriptions") == before
