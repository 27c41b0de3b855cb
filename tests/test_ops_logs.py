"""Structured logs from a real `gql-gateway serve`: one JSON line per request and per job."""

import os
import subprocess
import uuid
from typing import Any

import httpx

from tests.helpers import free_port
from tests.ops.processes import GATEWAY, base_env, eventually, fresh_database, gateway

CREATE = """
mutation AddDomain($domain: String!) { createEmailDomain(domain: $domain) { id status } }
"""


def create_key(env: dict[str, str], user: uuid.UUID) -> str:
    done = subprocess.run(
        [GATEWAY, "keys", "create", "--user", str(user)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


async def test_one_json_line_per_request_and_per_job(database_url: str) -> None:
    port = free_port()
    async with fresh_database(database_url) as url:
        env = base_env(url, WORKER="true", POLL_WINDOW_MINUTES="5")
        user = uuid.uuid4()
        key = create_key({**os.environ, **env}, user)
        base = f"http://127.0.0.1:{port}"
        async with gateway(
            "serve", "--port", str(port), env=env, ready=f"{base}/healthz"
        ) as process:
            # A "flaky" sandbox name stays verifying, so the poller checks it.
            name = f"flaky-{uuid.uuid4().hex[:8]}.com"
            async with httpx.AsyncClient(base_url=base) as client:
                response = await client.post(
                    "/graphql",
                    json={
                        "query": CREATE,
                        "operationName": "AddDomain",
                        "variables": {"domain": name},
                    },
                    headers={"Authorization": f"Bearer {key}", "X-Request-ID": "logs-create-1"},
                )
            domain = response.json()["data"]["createEmailDomain"]
            assert domain["status"] == "VERIFYING", response.text

            def request_line() -> list[dict[str, Any]]:
                return [
                    r
                    for r in process.records()
                    if r.get("logger") == "gql.request" and r.get("request_id") == "logs-create-1"
                ]

            async def requested() -> list[dict[str, Any]]:
                return request_line()

            (line,) = await eventually(requested)
            assert line["level"] == "INFO"
            assert line["method"] == "POST"
            assert line["route"] == "/graphql"
            assert line["status"] == 200
            assert line["duration_ms"] > 0
            assert line["user_id"] == str(user)
            assert line["operation_name"] == "AddDomain"
            assert line["operation_type"] == "mutation"
            assert line["outcome"] == "ok"
            assert "trace_id" in line
            assert name not in str(line), "the log line carries no variables"

            async def checked() -> list[dict[str, Any]]:
                return [
                    r
                    for r in process.records()
                    if r.get("logger") == "gql.job"
                    and r.get("task") == "check_domain"
                    and r.get("domain_id") == domain["id"]
                ]

            job = (await eventually(checked))[0]
            assert job["outcome"] == "ok"
            assert job["duration_ms"] > 0
            assert job["request_id"] == f"job-{job['job_id']}"
