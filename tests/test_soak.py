"""A bounded soak of the lifecycle: random overrides (REST and GraphQL), verify triggers,
polls, syncs, creates and deletes by two accounts (three names shared between them), with
provider faults (5xx, 403, slow answers, flickering statuses), against two `gql-gateway worker`
processes, one of which is killed (SIGKILL) half-way. Then the provider settles every domain,
the dead worker's checks are recovered as the periodic task would, and every invariant of
`tests/lifecycle/invariants.py` is asserted on every row: nothing is left stuck.
"""

import asyncio
import os
import random
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from gql.app import create_app
from gql.db.engine import Database
from tests.conftest import running, session_token
from tests.fakes import FakeAgentMail
from tests.lifecycle.invariants import assert_invariants, assert_no_silent_changes, rows
from tests.test_lifecycle import lifecycle_settings
from tests.test_poller import worker_env, worker_process

SOAK_SECONDS = 12
# How long the settled provider may take to settle every row. A check that finds its domain
# still held by the killed worker's job tries again after 30 s, a check that failed after 60 s:
# the bound must cover those; the wait ends as soon as nothing is verifying.
SETTLE_SECONDS = 90
WINDOW = timedelta(minutes=60)
FIELDS = "id domain status statusReason verifiedAt updatedAt"
CREATE = f"mutation C($d: String!) {{ createEmailDomain(domain: $d) {{ {FIELDS} }} }}"
VERIFY = (
    "mutation V($id: UUID!, $p: Boolean!) {"
    f" verifyEmailDomain(id: $id, poll: $p) {{ {FIELDS} }} }}"
)
OVERRIDE = (
    "mutation O($id: UUID!, $s: DomainStatusInput!) {"
    f" updateEmailDomainStatus(id: $id, status: $s) {{ {FIELDS} }} }}"
)
DELETE = "mutation D($id: UUID!) { deleteEmailDomain(id: $id) { success } }"
LIST = f"query L {{ emailDomains(first: 100, sync: true) {{ edges {{ node {{ {FIELDS} }} }} }} }}"
PROVIDER_STATES = [
    ("VERIFIED", None),
    ("FAILED", "ses_dkim_failed"),
    ("VERIFYING", "ses_dkim_pending"),
    ("FAILED", "ses_dkim_temporary_failure"),
    ("INVALID", "dns_records_invalid"),
]


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeAgentMail]:
    with FakeAgentMail(api_key="test") as server:
        yield server


class Account:
    def __init__(self, client: httpx.AsyncClient, names: list[str]) -> None:
        self.id = uuid.uuid4()
        self.client = client
        self.names = names
        self.headers = {"Authorization": f"Bearer {session_token(self.id)}"}
        self.ids: dict[str, str] = {}

    async def gql(self, query: str, **variables: Any) -> dict[str, Any]:
        response = await self.client.post(
            "/graphql", json={"query": query, "variables": variables}, headers=self.headers
        )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        for error in body.get("errors") or []:
            # Expected answers under faults; never an internal error.
            assert error["extensions"]["code"] in {
                "PROVIDER_UNAVAILABLE",
                "PROVIDER_MISCONFIGURED",
                "BAD_USER_INPUT",
                "CONFLICT",
                "NOT_FOUND",
            }, body
        return body

    async def act(self, rng: random.Random, fake: FakeAgentMail) -> None:
        name = rng.choice(self.names)
        domain_id = self.ids.get(name)
        if domain_id is None:
            body = await self.gql(CREATE, d=name)
            if body.get("data"):
                self.ids[name] = body["data"]["createEmailDomain"]["id"]
            return
        roll = rng.random()
        if roll < 0.25:
            status = rng.choice(["pending", "verifying", "failed"])
            if rng.random() < 0.5:
                response = await self.client.patch(
                    f"/api/email/domains/{domain_id}", json={"status": status}, headers=self.headers
                )
                assert response.status_code in (200, 404), response.text
            else:
                await self.gql(OVERRIDE, id=domain_id, s=status.upper())
        elif roll < 0.45:
            await self.gql(VERIFY, id=domain_id, p=rng.random() < 0.5)
        elif roll < 0.55:
            await self.gql(LIST)
        elif roll < 0.62:
            body = await self.gql(DELETE, id=domain_id)
            if body.get("data"):
                del self.ids[name]
        elif roll < 0.85 and fake.domain(name) is not None:
            status, reason = rng.choice(PROVIDER_STATES)
            fake.set_status(name, status, reason)
        else:
            fault = rng.choice(["503", "403", "slow"])
            path = f"/v0/domains/{name}"
            if fault == "503":
                fake.fail_next(1, 503, method="GET", path=path)
            elif fault == "403":
                fake.fail_next(1, 403, method="GET", path=path)
            else:
                fake.delay_next(1, 0.5, path=f"{path}*")


async def test_soak_settles_every_domain_and_keeps_every_invariant(
    database_url: str, db: Database, fake: FakeAgentMail, tmp_path: Path
) -> None:
    seed = int.from_bytes(os.urandom(4), "big")
    rng = random.Random(seed)
    async with db.connect() as conn:
        await conn.execute("DELETE FROM procrastinate_jobs")
        await conn.execute(
            "UPDATE email_domains SET status = 'failed', status_reason = 'test_isolation'"
            " WHERE status = 'verifying'"
        )
    fake.reset()
    settings = lifecycle_settings(
        database_url,
        fake.url,
        poll_schedule_minutes=[0.01],
        provider_timeout_seconds=2,
        provider_deadline_seconds=3,
    )
    env = worker_env(database_url, fake)
    env.update(POLL_SCHEDULE_MINUTES="[0.01]", PROVIDER_TIMEOUT_SECONDS="2")
    shared = [f"shared{i}-{uuid.uuid4().hex[:6]}.com" for i in range(3)]
    app = create_app(settings)
    async with (
        running(app) as client,
        worker_process(db, env, tmp_path / "a.log") as a,
        worker_process(db, env, tmp_path / "b.log") as b,
    ):
        accounts = [
            Account(client, [f"a{i}-{uuid.uuid4().hex[:6]}.com" for i in range(10)] + shared),
            Account(client, [f"b{i}-{uuid.uuid4().hex[:6]}.com" for i in range(7)] + shared),
        ]

        def logs() -> str:
            return f"seed={seed}\n{a.stderr()}\n{b.stderr()}"

        started, killed = time.monotonic(), False
        while time.monotonic() - started < SOAK_SECONDS:
            await asyncio.gather(*(rng.choice(accounts).act(rng, fake) for _ in range(6)))
            if not killed and time.monotonic() - started > SOAK_SECONDS / 2:
                a.proc.kill()
                assert await a.exited_within(5), logs()
                killed = True

        # The provider settles every domain; the dead worker's checks are recovered as the
        # periodic retry_stalled_jobs task does once its heartbeat is old enough.
        fake.clear_faults()
        for account in accounts:
            for name in account.names:
                if fake.domain(name) is not None:
                    status, reason = rng.choice(PROVIDER_STATES[:2])
                    fake.set_status(name, status, reason)
        async with db.connect() as conn:
            await conn.execute(
                "UPDATE procrastinate_workers SET last_heartbeat = now() - interval '60 seconds'"
                " WHERE id = $1",
                a.worker_id,
            )
        services = app.state.services
        await services.jobs.app.tasks["retry_stalled_jobs"](timestamp=int(time.time()))
        user_ids = [account.id for account in accounts]

        async def verifying() -> int:
            return sum(1 for r in (await rows(db, user_ids)).values() if r["status"] == "verifying")

        deadline = time.monotonic() + SETTLE_SECONDS
        while await verifying():
            assert time.monotonic() < deadline, f"domains stuck verifying\n{logs()}"
            await asyncio.sleep(0.2)

        before = await assert_invariants(db, window=WINDOW, user_ids=user_ids)
        assert before, "the soak created no domain"
        # Polls and syncs of settled domains are no-ops: nothing is restamped.
        for account in accounts:
            await account.gql(LIST)
            for domain_id in account.ids.values():
                await account.gql(VERIFY, id=domain_id, p=True)
        after = await assert_invariants(db, window=WINDOW, user_ids=user_ids)
        assert_no_silent_changes(before, after)
    assert b.proc.returncode in (0, -15), logs()
