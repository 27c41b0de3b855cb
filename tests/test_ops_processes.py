"""Many processes on one database: two `serve` processes and a separate `gql-gateway worker`
carry a sandbox domain through its lifecycle, and `serve --workers 2` answers from both
processes with metrics summed over them."""

import asyncio
import os
import uuid
from typing import Any

import httpx

from tests.helpers import free_port
from tests.ops.processes import base_env, eventually, fresh_database, gateway
from tests.test_ops_logs import create_key
from tests.test_ops_metrics import sample

CREATE = "mutation Add($d: String!) { createEmailDomain(domain: $d) { id status } }"
VERIFY = "mutation Verify($id: UUID!) { verifyEmailDomain(id: $id) { status } }"
READ = "query Read($id: UUID!) { emailDomain(id: $id) { status statusReason } }"


async def graphql(base: str, key: str, query: str, **variables: Any) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=base, timeout=20) as client:
        response = await client.post(
            "/graphql",
            json={"query": query, "variables": variables},
            headers={"Authorization": f"Bearer {key}"},
        )
    body: dict[str, Any] = response.json()
    assert "errors" not in body, body
    data: dict[str, Any] = body["data"]
    return data


async def test_two_gateways_and_a_worker_verify_a_sandbox_domain(database_url: str) -> None:
    async with fresh_database(database_url) as url:
        # The gateways run no poller: only the separate worker can settle the domain.
        env = base_env(url, WORKER="false", SANDBOX_VERIFY_SECONDS="2", POLL_WINDOW_MINUTES="5")
        key = create_key({**os.environ, **env}, uuid.uuid4())
        first_port, second_port, worker_port = free_port(), free_port(), free_port()
        second_metrics_port = free_port()
        first, second = f"http://127.0.0.1:{first_port}", f"http://127.0.0.1:{second_port}"
        worker_metrics = f"http://127.0.0.1:{worker_port}/metrics"
        second_metrics = f"http://127.0.0.1:{second_metrics_port}/metrics"
        async with (
            gateway("serve", "--port", str(first_port), env=env, ready=f"{first}/readyz"),
            # The second gateway serves its metrics on a port of their own.
            gateway(
                "serve",
                "--port",
                str(second_port),
                env={**env, "METRICS_PORT": str(second_metrics_port)},
                ready=f"{second}/readyz",
            ),
            gateway(
                "worker", env={**env, "WORKER_METRICS_PORT": str(worker_port)}, ready=worker_metrics
            ) as worker,
        ):
            name = f"acme-{uuid.uuid4().hex[:8]}.com"
            created = (await graphql(first, key, CREATE, d=name))["createEmailDomain"]
            assert created["status"] == "VERIFYING"
            verified = (await graphql(second, key, VERIFY, id=created["id"]))["verifyEmailDomain"]
            assert verified["status"] == "VERIFYING"

            async def settled() -> bool:
                read = (await graphql(first, key, READ, id=created["id"]))["emailDomain"]
                return bool(read["status"] == "VERIFIED")

            await eventually(settled, seconds=60)
            checks = [
                r
                for r in worker.records()
                if r.get("logger") == "gql.job" and r.get("domain_id") == created["id"]
            ]
            assert checks, worker.output()
            assert all(r["outcome"] == "ok" for r in checks)
            async with httpx.AsyncClient() as client:
                text = (await client.get(worker_metrics)).text
            assert sample(text, "gateway_domain_checks_total", outcome="verified") == 1
            assert sample(text, "gateway_jobs_total", task="check_domain", outcome="ok") >= 1
            async with httpx.AsyncClient() as client:
                assert (await client.get(f"{second}/metrics")).status_code == 404
                text = (await client.get(second_metrics)).text
            mutations = sample(
                text,
                "graphql_operations_total",
                operation_name="Verify",
                operation_type="mutation",
                outcome="ok",
            )
            assert mutations == 1


async def test_serve_with_two_workers_answers_from_both_and_sums_metrics(database_url: str) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = base_env(database_url, WORKER="false")
    async with gateway(
        "serve", "--port", str(port), "--workers", "2", env=env, ready=f"{base}/healthz"
    ) as process:
        sent = 0

        async def one(path: str) -> httpx.Response:
            # A connection per request, so the kernel may hand each to either process.
            async with httpx.AsyncClient(base_url=base) as client:
                return await client.get(path)

        def pids(path: str) -> set[int]:
            return {
                r["process"]
                for r in process.records()
                if r.get("logger") == "gql.request" and r.get("path") == path
            }

        while len(pids("/api/openapi.json")) < 2:
            assert sent < 400, "every request went to one process"
            responses = await asyncio.gather(*(one("/api/openapi.json") for _ in range(20)))
            assert all(r.status_code == 200 for r in responses)
            sent += len(responses)
            await asyncio.sleep(0.2)

        labels = {"http_route": "/api/openapi.json", "http_response_status_code": "200"}
        scrapes = 0
        while len(pids("/metrics")) < 2:
            assert scrapes < 200, "every scrape went to one process"
            response = await one("/metrics")
            scrapes += 1
            # Whichever process answers, it reports the requests both of them served.
            assert (
                sample(response.text, "http_server_request_duration_seconds_count", **labels)
                == sent
            )


async def test_serve_with_workers_reports_their_sum_on_its_metrics_port(database_url: str) -> None:
    port, metrics_port = free_port(), free_port()
    base = f"http://127.0.0.1:{port}"
    listener = f"http://127.0.0.1:{metrics_port}/metrics"
    env = base_env(database_url, WORKER="false", METRICS_PORT=str(metrics_port))
    async with (
        gateway("serve", "--port", str(port), "--workers", "2", env=env, ready=f"{base}/healthz"),
        httpx.AsyncClient(base_url=base) as client,
    ):
        assert (await client.get("/metrics")).status_code == 404
        for _ in range(10):
            assert (await client.get("/api/openapi.json")).status_code == 200
        text = (await client.get(listener)).text
    labels = {"http_route": "/api/openapi.json", "http_response_status_code": "200"}
    assert sample(text, "http_server_request_duration_seconds_count", **labels) == 10
