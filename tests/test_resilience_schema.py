"""A database whose schema is behind the code: not ready, and every answer says how to fix it.

With an unmigrated or older `DATABASE_URL` the gateway used to answer `/readyz` 200 while every
data request was an opaque internal error (`relation "api_keys" does not exist`) and the worker
crashed. Now readiness, REST and GraphQL all answer 503 with "schema is at revision X, expected
Y: run `gql-gateway migrate`", `serve` logs it at start-up, the worker waits, and everything
serves once the database is migrated — without a restart.
"""

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from alembic import command
from sqlalchemy.engine import make_url
from starlette.applications import Starlette

from gql.app import create_app
from gql.db.engine import driver_dsn
from gql.db.migrate import alembic_config, expected_revision, upgrade
from tests.conftest import make_settings, running, session_token
from tests.helpers import free_port

GATEWAY = str(Path(sys.executable).with_name("gql-gateway"))
LIST = "{ emailDomains { totalCount } }"
SUPERVISION = {"worker_restart_seconds": 0.2, "worker_restart_max_seconds": 1.0}


@pytest.fixture
async def empty_database(database_url: str) -> AsyncIterator[str]:
    """A database on the test server that nobody has migrated."""
    name = f"gql_unmigrated_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(driver_dsn(database_url))
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        yield make_url(database_url).set(database=name).render_as_string(hide_password=False)
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


def hint(revision: str) -> str:
    return (
        f"The database schema is at revision {revision}, expected {expected_revision()}: "
        "run `gql-gateway migrate`."
    )


def create_app_on(url: str, **overrides: Any) -> Starlette:
    return create_app(make_settings(url, **overrides))


def headers() -> dict[str, str]:
    return {"Authorization": f"Bearer {session_token(uuid.uuid4())}"}


async def wait_for(check: Any, *, within: float) -> None:
    deadline = time.monotonic() + within
    while not await check():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.1)


async def test_an_unmigrated_database_answers_503_with_the_fix_until_it_is_migrated(
    empty_database: str,
) -> None:
    never = hint("none (never migrated)")
    app = create_app_on(empty_database, worker=True, **SUPERVISION)
    async with asyncio.timeout(60), running(app) as client:
        ready = await client.get("/readyz")
        assert ready.status_code == 503, ready.text
        body = ready.json()
        assert body["error"]["code"] == "unavailable"
        assert never in body["error"]["message"]
        assert body["checks"]["database"] == {"status": "ok"}
        assert body["checks"]["schema"] == {
            "status": "behind",
            "revision": None,
            "expected": expected_revision(),
            "reason": never,
        }

        # The worker did not crash: it waits, and readiness says why.
        async def worker_waits() -> bool:
            worker = (await client.get("/readyz")).json()["checks"]["worker"]
            return bool(worker["status"] == "waiting" and worker["reason"] == never)

        await wait_for(worker_waits, within=10)

        rest = await client.patch(
            f"/api/email/domains/{uuid.uuid4()}",
            json={"status": "failed"},
            headers={"Authorization": "Bearer pk_live_" + "a" * 43},
        )
        assert rest.status_code == 503, rest.text
        assert rest.json()["error"] == {"code": "unavailable", "message": never}
        assert rest.headers["retry-after"].isdigit()

        gql = await client.post("/graphql", json={"query": LIST}, headers=headers())
        errors = gql.json()["errors"]
        assert [e["extensions"]["code"] for e in errors] == ["SERVICE_UNAVAILABLE"], gql.text
        assert errors[0]["message"] == never

        await asyncio.to_thread(upgrade, empty_database)

        # The same process serves once the schema is there, its worker included.
        async def ready_again() -> bool:
            response = await client.get("/readyz")
            return bool(
                response.status_code == 200
                and response.json()["checks"]["worker"]["status"] == "running"
            )

        await wait_for(ready_again, within=15)
        gql = await client.post("/graphql", json={"query": LIST}, headers=headers())
        assert gql.json() == {"data": {"emailDomains": {"totalCount": 0}}}, gql.text


async def test_a_database_at_an_older_revision_names_both_revisions(empty_database: str) -> None:
    await asyncio.to_thread(command.upgrade, alembic_config(empty_database), "0002")
    async with running(create_app_on(empty_database)) as client:
        ready = await client.get("/readyz")
        assert ready.status_code == 503, ready.text
        assert ready.json()["checks"]["schema"]["revision"] == "0002"
        assert hint("0002") in ready.json()["error"]["message"]
        gql = await client.post("/graphql", json={"query": LIST}, headers=headers())
        assert gql.json()["errors"][0]["message"] == hint("0002"), gql.text


def _env(url: str) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": url,
        "AGENTMAIL_API_KEY": "unused",
        "WORKER_RESTART_SECONDS": "0.2",
        "WORKER_RESTART_MAX_SECONDS": "1",
        "ACCESS_LOG": "false",
    }


def _spawn(args: list[str], url: str, log: Path) -> subprocess.Popen[bytes]:
    # A file, not a pipe: nobody reads the logs until the end, and a full pipe blocks the writer.
    with log.open("wb") as sink:
        return subprocess.Popen([GATEWAY, *args], env=_env(url), stdout=sink, stderr=sink)


def _stop(process: subprocess.Popen[bytes], log: Path) -> str:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
    return log.read_text()


async def test_serve_logs_the_fix_at_start_up_and_answers_503(
    empty_database: str, tmp_path: Path
) -> None:
    port = free_port()
    log = tmp_path / "serve.log"
    process = _spawn(["serve", "--port", str(port)], empty_database, log)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            deadline = time.monotonic() + 20
            while True:
                assert process.poll() is None, "serve exited on an unmigrated database"
                assert time.monotonic() < deadline, "serve never answered"
                try:
                    ready = await client.get("/readyz")
                    break
                except httpx.TransportError:
                    await asyncio.sleep(0.1)
            assert ready.status_code == 503, ready.text
            assert hint("none (never migrated)") in ready.json()["error"]["message"]
    finally:
        stderr = _stop(process, log)
    assert hint("none (never migrated)") in stderr, stderr
    assert process.returncode in (0, -signal.SIGTERM), stderr


async def test_a_separate_worker_waits_for_the_migration_instead_of_crashing(
    empty_database: str, tmp_path: Path
) -> None:
    log = tmp_path / "worker.log"
    process = _spawn(["worker"], empty_database, log)
    try:

        async def waiting() -> bool:
            assert process.poll() is None, f"the worker exited:\n{log.read_text()}"
            return hint("none (never migrated)") in log.read_text()

        await wait_for(waiting, within=30)
        await asyncio.sleep(1)
        assert process.poll() is None, f"the worker exited:\n{log.read_text()}"
        await asyncio.to_thread(upgrade, empty_database)
        admin = await asyncpg.connect(driver_dsn(empty_database))
        try:

            async def registered() -> bool:
                return bool(await admin.fetchval("SELECT count(*) FROM procrastinate_workers"))

            await wait_for(registered, within=15)
        finally:
            await admin.close()
    finally:
        stderr = _stop(process, log)
    assert hint("none (never migrated)") in stderr, stderr
    assert process.returncode == 0, stderr
