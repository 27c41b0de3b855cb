"""Crashes and the time limit, with real processes: the state a crash leaves is one the state
machine allows, and the sweeper heals what an older crash left, without a restart.

- `serve` killed (SIGKILL) while hundreds of verify triggers are in flight leaves no domain
  verifying without a check (finding 9: it left 13 stuck for good);
- a `gql-gateway worker` sweeps at start: a verifying domain without a check gets one, one past
  its window fails (`verification_timeout`);
- a trigger whose provider hangs past the request's time limit answers before the limit, and
  says the domain stays verifying with a check queued (finding 2: a 503 that said nothing was
  half-done).
"""

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from gql.app import create_app
from gql.db.engine import Database
from tests.conftest import JWT_SECRET, create_domains, running, session_token
from tests.fakes import FakeAgentMail
from tests.helpers import free_port
from tests.lifecycle.invariants import assert_invariants
from tests.test_lifecycle import lifecycle_settings
from tests.test_poller import worker_env, worker_process
from tests.test_serve_shutdown import _wait_until_ready

GATEWAY = str(Path(sys.executable).with_name("gql-gateway"))
WINDOW = timedelta(minutes=60)
VERIFY = "mutation V($id: UUID!) { verifyEmailDomain(id: $id) { status statusReason } }"


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeAgentMail]:
    with FakeAgentMail(api_key="test") as server:
        yield server


async def _no_queued_work(db: Database) -> None:
    async with db.connect() as conn:
        await conn.execute("DELETE FROM procrastinate_jobs")
        # A worker another test ran this minute has taken the minute's sweep: forget it, so
        # this test's worker sweeps as it starts, as a worker does on a quiet database.
        await conn.execute("DELETE FROM procrastinate_periodic_defers")
        await conn.execute(
            "UPDATE email_domains SET status = 'failed', status_reason = 'test_isolation'"
            " WHERE status = 'verifying'"
        )


async def test_serve_killed_during_many_verify_triggers_leaves_no_domain_without_a_check(
    database_url: str, db: Database, fake: FakeAgentMail
) -> None:
    await _no_queued_work(db)
    fake.reset()
    user_id = uuid.uuid4()
    domains = await create_domains(db, user_id, ["pending"] * 200)
    for d in domains:
        fake.add_domain(d.domain)
    fake.delay_next(10_000, 2.0, method="POST", path="/v0/domains/*/verify")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    fields = {"DATABASE_URL", "AGENTMAIL_API_KEY", "AGENTMAIL_BASE_URL", "JWT_SECRET", "WORKER"}
    env = {k: v for k, v in os.environ.items() if k.upper() not in fields}
    env.update(
        DATABASE_URL=database_url,
        AGENTMAIL_API_KEY="test",
        AGENTMAIL_BASE_URL=fake.url,
        JWT_SECRET=JWT_SECRET,
        WORKER="false",
        RATE_LIMIT="100000/minute",
        ENVIRONMENT="test",
        LOG_LEVEL="WARNING",
        ACCESS_LOG="false",
    )
    process = subprocess.Popen(
        [GATEWAY, "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        await _wait_until_ready(url, process)
        headers = {"Authorization": f"Bearer {session_token(user_id)}"}
        limits = httpx.Limits(max_connections=400)
        async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30) as client:

            async def trigger(domain_id: uuid.UUID) -> None:
                with contextlib.suppress(httpx.TransportError):  # killed under it
                    await client.post(
                        "/graphql",
                        json={"query": VERIFY, "variables": {"id": str(domain_id)}},
                        headers=headers,
                    )

            triggers = [asyncio.create_task(trigger(d.id)) for d in domains]
            # Killed while triggers are inside the (slow) provider call, others arriving.
            deadline = time.monotonic() + 20
            while fake.calls("POST", "/v0/domains/*/verify") < 20:
                assert time.monotonic() < deadline, "no trigger reached the provider"
                await asyncio.sleep(0.02)
            process.send_signal(signal.SIGKILL)
            await asyncio.gather(*triggers)
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()
    fake.clear_faults()

    snapshot = await assert_invariants(db, window=WINDOW, user_ids=[user_id])
    started = [r for r in snapshot.values() if r["status"] == "verifying"]
    assert started, "the kill came before any trigger was stored: nothing was tested"


async def test_a_worker_sweeps_what_a_crash_left_at_start(
    database_url: str, db: Database, fake: FakeAgentMail, tmp_path: Path
) -> None:
    await _no_queued_work(db)
    fake.reset()
    user_id = uuid.uuid4()
    orphan, overdue = await create_domains(db, user_id, ["verifying", "verifying"])
    fake.add_domain(orphan.domain)
    fake.add_domain(overdue.domain)
    async with db.connect() as conn:
        await conn.execute(
            "UPDATE email_domains SET verification_started_at = now() - interval '2 hours'"
            " WHERE id = $1",
            overdue.id,
        )
        await conn.execute(
            "UPDATE email_domains SET verification_started_at = now() WHERE id = $1", orphan.id
        )
    env = worker_env(database_url, fake)
    env["POLL_SCHEDULE_MINUTES"] = "[30]"  # the repaired check waits: the test sees it queued

    async with worker_process(db, env, tmp_path / "w.log") as worker:

        async def repaired() -> bool:
            async with db.connect() as conn:
                status: str = await conn.fetchval(
                    "SELECT status FROM email_domains WHERE id = $1", overdue.id
                )
                checks: int = await conn.fetchval(
                    "SELECT count(*) FROM procrastinate_jobs WHERE queueing_lock = $1"
                    " AND status = 'todo'",
                    f"domain:{orphan.id}",
                )
            return status == "failed" and checks == 1

        deadline = time.monotonic() + 20
        while not await repaired():
            assert time.monotonic() < deadline, f"not repaired\n{worker.stderr()}"
            await asyncio.sleep(0.1)
        log = worker.stderr()
    assert f"domain {orphan.id} was verifying with no check: queued" in log
    assert f"domain {overdue.id} was past its window: failed" in log
    snapshot = await assert_invariants(db, window=WINDOW, user_ids=[user_id])
    assert snapshot[overdue.id]["status_reason"] == "verification_timeout"


async def test_a_trigger_whose_provider_hangs_answers_before_the_request_limit(
    database_url: str, db: Database, fake: FakeAgentMail
) -> None:
    await _no_queued_work(db)
    fake.reset()
    settings = lifecycle_settings(
        database_url,
        fake.url,
        request_timeout_seconds=3,
        provider_timeout_seconds=10,
        provider_deadline_seconds=20,
    )
    app = create_app(settings)
    user_id = uuid.uuid4()
    [domain] = await create_domains(db, user_id, ["pending"])
    fake.add_domain(domain.domain)
    fake.delay_next(1, 8, method="POST", path=f"/v0/domains/{domain.domain}/verify")
    headers = {"Authorization": f"Bearer {session_token(user_id)}"}
    async with running(app) as client:
        started = time.monotonic()
        response = await client.post(
            "/graphql",
            json={"query": VERIFY, "variables": {"id": str(domain.id)}},
            headers=headers,
        )
        elapsed = time.monotonic() - started
    assert response.status_code == 200, response.text  # not the time limit's 503
    body = response.json()
    assert elapsed < 3, elapsed
    [error] = body["errors"]
    assert error["extensions"]["code"] == "PROVIDER_UNAVAILABLE"
    assert "stays verifying" in error["message"]
    snapshot = await assert_invariants(db, window=WINDOW, user_ids=[user_id])
    assert snapshot[domain.id]["status"] == "verifying"
