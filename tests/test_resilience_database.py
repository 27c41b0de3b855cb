"""The gateway across a PostgreSQL restart, and what a database failure tells the caller.

Against a private embedded server that the tests stop and start (`PrivateServer`): under load a
restart gives only 200s and 503 `unavailable` answers (never a 500 or a dropped connection), the
in-process worker comes back by itself and works the queue again, and `/readyz` says what is down
while it is. Against the test database: an error inside `Database.connect` says "nothing was
changed" only when that is true, and `open_services` closes what it opened when it fails.
"""

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from gql.db.engine import Database
from gql.db.migrate import upgrade
from gql.errors import Unavailable
from gql.jobs import JobQueue
from gql.providers.agentmail import AgentMailProvider
from gql.providers.cloudflare import CloudflareDns
from gql.services.container import open_services
from tests.conftest import make_settings
from tests.helpers import MakeOwner
from tests.test_database_faults import (
    PrivateServer,
    admin_connect,
    app_on,
    gql_update,
    new_owner,
    rest_patch,
    wait_until,
)

GATEWAY = str(Path(sys.executable).with_name("gql-gateway"))
CREATE = "mutation Create($d: String!) { createEmailDomain(domain: $d) { id status } }"
ONE = "query One($id: UUID!) { emailDomain(id: $id) { id status } }"
UPDATE_SQL = "UPDATE email_domains SET status = 'failed' WHERE id = $1"
# Quick restarts: the tests wait for the worker to come back, not for production's backoff.
SUPERVISION = {"worker_restart_seconds": 0.2, "worker_restart_max_seconds": 1.0}


@pytest.fixture
async def private_server(embedded_dir: Path) -> AsyncIterator[PrivateServer]:
    pg = await asyncio.to_thread(PrivateServer, embedded_dir / "restart")
    try:
        await asyncio.to_thread(upgrade, pg.url)
        yield pg
    finally:
        await asyncio.to_thread(pg.destroy)


async def readiness(client: httpx.AsyncClient) -> tuple[int, dict[str, Any]]:
    response = await client.get("/readyz")
    body: dict[str, Any] = response.json()
    return response.status_code, body


async def graphql(
    client: httpx.AsyncClient, query: str, headers: dict[str, str], **variables: Any
) -> dict[str, Any]:
    response = await client.post(
        "/graphql", json={"query": query, "variables": variables}, headers=headers
    )
    assert response.status_code in (200, 503), response.text
    body: dict[str, Any] = response.json()
    return body


# --- finding: a restart stopped the worker for good, and readiness did not notice ----------


@pytest.mark.embedded
async def test_the_worker_comes_back_after_a_restart_and_readyz_says_when_it_is_down(
    private_server: PrivateServer,
) -> None:
    pg = private_server
    overrides = {"worker": True, "sandbox_verify_seconds": 0.2, **SUPERVISION}
    async with (
        asyncio.timeout(90),
        app_on(pg.url, db_connect_timeout=1, **overrides) as (
            client,
            svc,
        ),
    ):
        _, headers, _ = await new_owner(svc, ["pending"])

        async def worker_is(*statuses: str) -> bool:
            _, body = await readiness(client)
            return body["checks"]["worker"]["status"] in statuses

        await wait_until(lambda: worker_is("running"), within=10)
        assert (await readiness(client))[0] == 200

        await asyncio.to_thread(pg.stop)
        status, body = await readiness(client)
        assert status == 503, body
        assert body["error"]["code"] == "unavailable"
        assert body["checks"]["database"]["status"] == "unavailable"
        # The worker loses its connection too; readiness names it and why until it is back.
        await wait_until(lambda: worker_is("down", "waiting"), within=15, every=0.2)
        status, body = await readiness(client)
        assert status == 503, body
        assert body["checks"]["worker"]["reason"], body
        assert "worker" in body["error"]["message"], body

        await asyncio.to_thread(pg.start)

        async def ready() -> bool:
            status, body = await readiness(client)
            return status == 200 and body["checks"]["worker"]["status"] == "running"

        await wait_until(ready, within=20, every=0.2)
        assert (await readiness(client))[1]["checks"]["worker"]["restarts"] >= 1

        # And it works the queue again: the sandbox verifies a new domain through the poller.
        created = await graphql(client, CREATE, headers, d=f"acme-{uuid.uuid4().hex[:8]}.com")
        assert "errors" not in created, created
        domain_id = created["data"]["createEmailDomain"]["id"]

        async def verified() -> bool:
            body = await graphql(client, ONE, headers, id=domain_id)
            return bool(body["data"]["emailDomain"]["status"] == "VERIFIED")

        # A bound on a background path (a check queued, picked up, answered), generous because
        # it is no timing claim: a loaded two-core machine has taken longer than 20 s.
        await wait_until(verified, within=60, every=0.2)


# --- finding: a restart under load gave 500s and a dropped connection -----------------------


@pytest.mark.embedded
async def test_a_restart_under_load_answers_only_200_or_503(
    private_server: PrivateServer,
) -> None:
    pg = private_server
    outcomes: Counter[str] = Counter()
    failures: list[str] = []
    async with (
        asyncio.timeout(90),
        app_on(pg.url, db_connect_timeout=1, db_pool_timeout=1, db_pool_size=4) as (client, svc),
    ):
        _, headers, domains = await new_owner(svc, ["pending"] * 4)
        restarting = True

        async def load(domain_id: uuid.UUID, via: str) -> None:
            statuses = ("pending", "verifying", "failed")
            i = 0
            while restarting:
                i += 1
                status = statuses[i % 3]
                try:
                    if via == "rest":
                        response = await rest_patch(client, domain_id, status, headers)
                        code = response.json().get("error", {}).get("code", "ok")
                        outcome = f"rest {response.status_code} {code}"
                    else:
                        response = await gql_update(client, domain_id, status, headers)
                        errors = response.json().get("errors", [])
                        codes = sorted({e["extensions"]["code"] for e in errors}) or ["ok"]
                        outcome = f"graphql {response.status_code} {','.join(codes)}"
                except Exception as error:  # a dropped connection surfaces here
                    outcome = f"{via} raised {type(error).__name__}: {error}"
                outcomes[outcome] += 1
                if outcome not in {
                    "rest 200 ok",
                    "rest 503 unavailable",
                    "graphql 200 ok",
                    "graphql 200 SERVICE_UNAVAILABLE",
                    "graphql 503 SERVICE_UNAVAILABLE",
                }:
                    failures.append(outcome)
                await asyncio.sleep(0.005)

        workers = [
            asyncio.create_task(load(d.id, via)) for d in domains for via in ("rest", "graphql")
        ]
        await asyncio.sleep(0.5)
        for _ in range(2):
            await asyncio.to_thread(pg.stop)
            await asyncio.sleep(0.3)
            await asyncio.to_thread(pg.start)
            await asyncio.sleep(0.5)

        async def serving() -> bool:
            return (await rest_patch(client, domains[0].id, "failed", headers)).status_code == 200

        await wait_until(serving, within=10, every=0.1)
        restarting = False
        await asyncio.gather(*workers)
    assert not failures, f"{Counter(failures)} among {dict(outcomes)}"
    assert outcomes["rest 503 unavailable"] > 0, dict(outcomes)
    assert outcomes["rest 200 ok"] > 0, dict(outcomes)


# --- finding: every failure inside Database.connect was "nothing was changed" ---------------


async def status_of(db: Database, domain_id: uuid.UUID) -> str:
    async with db.connect() as conn:
        status: str = await conn.fetchval(
            "SELECT status FROM email_domains WHERE id = $1", domain_id
        )
    return status


async def update_then_raise(db: Database, domain_id: uuid.UUID) -> None:
    async with db.connect() as conn:
        await conn.execute(UPDATE_SQL, domain_id)
        raise TimeoutError("the caller's own deadline")


async def update_then_lose_the_connection(
    connection: Any, domain_id: uuid.UUID, database_url: str
) -> None:
    admin = await admin_connect(database_url)
    try:
        async with connection as conn:
            await conn.execute(UPDATE_SQL, domain_id)
            pid = await conn.fetchval("SELECT pg_backend_pid()")
            await admin.execute("SELECT pg_terminate_backend($1)", pid)
            await asyncio.sleep(0.2)
            await conn.execute("SELECT 1")
    finally:
        await admin.close()


async def test_the_callers_own_timeout_after_an_update_is_not_relabelled(
    db: Database, make_owner: MakeOwner
) -> None:
    domain_id = (await make_owner(["pending"])).domains[0].id
    with pytest.raises(TimeoutError, match="the caller's own deadline"):
        await update_then_raise(db, domain_id)
    assert await status_of(db, domain_id) == "failed"


async def test_a_connection_lost_after_an_update_says_the_outcome_is_unknown(
    db: Database, make_owner: MakeOwner, database_url: str
) -> None:
    domain_id = (await make_owner(["pending"])).domains[0].id
    with pytest.raises(Unavailable) as raised:
        await update_then_lose_the_connection(db.connect(), domain_id, database_url)
    assert "nothing was changed" not in raised.value.message, raised.value.message
    assert "may or may not" in raised.value.message, raised.value.message
    # The UPDATE had committed: "nothing was changed" would have been a lie.
    assert await status_of(db, domain_id) == "failed"


async def test_a_connection_lost_inside_a_transaction_changed_nothing_and_says_so(
    db: Database, make_owner: MakeOwner, database_url: str
) -> None:
    domain_id = (await make_owner(["pending"])).domains[0].id
    with pytest.raises(Unavailable, match="nothing was changed"):
        await update_then_lose_the_connection(db.transaction(), domain_id, database_url)
    assert await status_of(db, domain_id) == "pending"


async def test_an_unreachable_database_changed_nothing_and_says_so() -> None:
    url = "postgresql+asyncpg://postgres@127.0.0.1:1/postgres"
    db = Database(url, make_settings(url, db_connect_timeout=1, db_pool_timeout=1))
    await db.open()
    try:
        started = time.monotonic()
        with pytest.raises(Unavailable, match="nothing was changed"):
            async with db.connect():
                pass
        assert time.monotonic() - started < 3
    finally:
        await db.close()


# --- finding: open_services leaked the provider clients when it could not open --------------


async def test_open_services_closes_the_provider_clients_when_the_job_pool_cannot_open(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    closed: list[str] = []
    close_agentmail, close_cloudflare = AgentMailProvider.close, CloudflareDns.close

    async def agentmail_closed(self: AgentMailProvider) -> None:
        closed.append("agentmail")
        await close_agentmail(self)

    async def cloudflare_closed(self: CloudflareDns) -> None:
        closed.append("cloudflare")
        await close_cloudflare(self)

    async def job_pool_fails(self: JobQueue) -> None:
        raise OSError("could not open the job queue's pool")

    monkeypatch.setattr(AgentMailProvider, "close", agentmail_closed)
    monkeypatch.setattr(CloudflareDns, "close", cloudflare_closed)
    monkeypatch.setattr(JobQueue, "open", job_pool_fails)
    settings = make_settings(database_url, agentmail_api_key="key", cloudflare_api_token="token")
    with pytest.raises(OSError, match="job queue"):
        async with open_services(database_url, settings):
            pytest.fail("open_services yielded without a job queue")
    assert sorted(closed) == ["agentmail", "cloudflare"]


@pytest.mark.embedded
async def test_a_separate_worker_survives_a_restart(
    private_server: PrivateServer, tmp_path: Path
) -> None:
    pg = private_server
    env = {
        **os.environ,
        "DATABASE_URL": pg.url,
        "AGENTMAIL_API_KEY": "unused",
        "WORKER_RESTART_SECONDS": "0.2",
        "WORKER_RESTART_MAX_SECONDS": "1",
    }
    log = tmp_path / "worker.log"
    with log.open("wb") as sink:
        process = subprocess.Popen([GATEWAY, "worker"], env=env, stdout=sink, stderr=sink)

    async def newest_worker() -> int:
        admin = await admin_connect(pg.url)
        try:
            newest = await admin.fetchval("SELECT coalesce(max(id), 0) FROM procrastinate_workers")
            return int(newest)
        finally:
            await admin.close()

    try:

        async def registered() -> bool:
            assert process.poll() is None, log.read_text()
            return await newest_worker() > 0

        await wait_until(registered, within=30, every=0.2)
        first = await newest_worker()
        await asyncio.to_thread(pg.stop)
        await asyncio.sleep(2)
        await asyncio.to_thread(pg.start)

        async def registered_again() -> bool:
            assert process.poll() is None, f"the worker exited:\n{log.read_text()}"
            with contextlib.suppress(OSError, asyncpg.PostgresError):
                return await newest_worker() > first
            return False

        await wait_until(registered_again, within=30, every=0.2)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
    assert process.returncode == 0, log.read_text()
