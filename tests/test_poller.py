"""The verification poller's guarantees, with real `gql-gateway worker` processes where the
guarantee is about processes.

1. Schedule: checks follow each other with a growing `attempt`, each queued with the configured
   step (one check per run of due jobs when the step is not yet due), capped by what is left of
   the verification window.
2. At most one check of a domain at a time, across two worker processes (advisory lock plus
   procrastinate's queueing lock).
3. No scheduled check is lost when a worker dies mid-check (stalled-job recovery), nor left
   `doing` when a queueing lock blocks its retry.
4. A worker stops within a bounded time on SIGTERM, and cleanly.

Every test starts and ends with an empty job queue: the worker processes would otherwise run
checks other test modules left queued.
"""

import asyncio
import os
import signal
import sys
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any, TypeVar

import pytest
from starlette.requests import Request
from starlette.responses import Response

from gql.db import domains as domains_repo
from gql.db import queue
from gql.db.engine import Database
from gql.models import DomainRecord, Principal, Status
from gql.services.container import Services, open_services
from gql.settings import Settings
from tests.conftest import create_domains, make_settings
from tests.fakes import FakeAgentMail
from tests.fakes.server import Handler

T = TypeVar("T")

GATEWAY = Path(sys.executable).with_name("gql-gateway")
RETRY_LOCKED_SECONDS = 30  # gql.services.poller.RETRY_LOCKED_SECONDS
SIGTERM_BOUND_SECONDS = 15


# -- a fake AgentMail that also times each request ---------------------------------------------


@dataclass(frozen=True)
class Span:
    method: str
    path: str
    start: float
    end: float


class TimedAgentMail(FakeAgentMail):
    """FakeAgentMail recording when each request started and was answered (monotonic clock)."""

    def __init__(self) -> None:
        super().__init__(api_key="test")
        self.spans: list[Span] = []
        self._open: Counter[tuple[str, str]] = Counter()

    def _endpoint(self, handler: Handler) -> Handler:
        inner = super()._endpoint(handler)

        async def endpoint(request: Request) -> Response:
            key = (request.method.upper(), request.url.path)
            start = time.monotonic()
            with self._lock:
                self._open[key] += 1
            try:
                return await inner(request)
            finally:
                with self._lock:
                    self._open[key] -= 1
                    self.spans.append(Span(*key, start, time.monotonic()))

        return endpoint

    def in_flight(self, method: str, path: str) -> int:
        with self._lock:
            return self._open[(method.upper(), path)]

    def spans_to(self, method: str, path: str) -> list[Span]:
        with self._lock:
            return sorted(
                (s for s in self.spans if s.method == method.upper() and s.path == path),
                key=lambda s: s.start,
            )

    def reset(self) -> None:
        with self._lock:
            super().reset()
            self.spans.clear()
            self._open.clear()


def get_path(domain: DomainRecord) -> str:
    return f"/v0/domains/{domain.agentmail_domain_id}"


# -- fixtures and helpers -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def agentmail_server() -> Iterator[TimedAgentMail]:
    with TimedAgentMail() as fake:
        yield fake


@pytest.fixture
async def agentmail(
    agentmail_server: TimedAgentMail, db: Database
) -> AsyncIterator[TimedAgentMail]:
    agentmail_server.reset()
    await _empty_queue(db)
    yield agentmail_server
    await _empty_queue(db)


async def _empty_queue(db: Database) -> None:
    async with db.connect() as conn:
        await conn.execute("DELETE FROM procrastinate_jobs")
        await conn.execute("DELETE FROM procrastinate_periodic_defers")
        await conn.execute("DELETE FROM procrastinate_workers")
        # The sweeper would queue checks again for domains other tests left verifying.
        await conn.execute(
            "UPDATE email_domains SET status = 'failed', status_reason = 'test_isolation'"
            " WHERE status = 'verifying'"
        )


def poller_settings(database_url: str, fake: FakeAgentMail, **overrides: Any) -> Settings:
    return make_settings(
        database_url,
        agentmail_api_key="test",
        agentmail_base_url=fake.url,
        provider_timeout_seconds=5,
        **overrides,
    )


@asynccontextmanager
async def poller(
    database_url: str, fake: FakeAgentMail, **overrides: Any
) -> AsyncIterator[Services]:
    """The gateway's services in this process, talking to the fake AgentMail."""
    async with open_services(database_url, poller_settings(database_url, fake, **overrides)) as s:
        yield s


async def start_verifying(
    services: Services,
    db: Database,
    fake: FakeAgentMail,
    count: int,
    *,
    script: list[str] | None = None,
) -> list[DomainRecord]:
    """`count` domains put into `verifying` by the real verify path (queues their first check);
    `script` is what the provider's successive reads show after the verify."""
    user_id = uuid.uuid4()
    principal = Principal(user_id=user_id, via="api_key")
    records = await create_domains(db, user_id, ["pending"] * count)
    verifying = []
    for record in records:
        fake.add_domain(record.domain)
        if script:
            fake.script_verification(record.domain, script)
        verifying.append(await services.lifecycle.verify(principal, record.id, poll=False))
    assert all(r.status is Status.VERIFYING for r in verifying)
    return verifying


@dataclass(frozen=True)
class Job:
    id: int
    status: str
    args: dict[str, Any]
    scheduled_at: datetime | None
    queueing_lock: str | None
    worker_id: int | None
    attempts: int


async def check_jobs(db: Database, domain_id: uuid.UUID) -> list[Job]:
    """The domain's `check_domain` jobs, oldest first."""
    async with db.connect() as conn:
        rows = await conn.fetch(
            "SELECT id, status::text AS status, args, scheduled_at, queueing_lock, worker_id,"
            " attempts FROM procrastinate_jobs"
            " WHERE task_name = 'check_domain' AND args->>'domain_id' = $1 ORDER BY id",
            str(domain_id),
        )
    return [Job(**dict(row)) for row in rows]


async def drop_checks(db: Database, domain_id: uuid.UUID) -> None:
    async with db.connect() as conn:
        await queue.cancel_checks(conn, domain_id=domain_id)


async def only_todo(db: Database, domain_id: uuid.UUID) -> Job:
    todo = [j for j in await check_jobs(db, domain_id) if j.status == "todo"]
    assert len(todo) == 1, f"expected exactly one queued check for {domain_id}, got {todo}"
    return todo[0]


async def drain(services: Services) -> None:
    """Run the due checks in this process until none is due (bounded, so a chain that never
    ends fails the test instead of hanging it)."""
    async with asyncio.timeout(30):
        await services.jobs.run_worker(wait=False)


async def make_due(db: Database, job: Job) -> None:
    async with db.connect() as conn:
        await conn.execute(
            "UPDATE procrastinate_jobs SET scheduled_at = now() WHERE id = $1", job.id
        )


async def eventually(
    probe: Callable[[], Awaitable[T | None]], *, within: float, what: Callable[[], str]
) -> T:
    deadline = time.monotonic() + within
    while True:
        value = await probe()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {within}s waiting for {what()}")
        await asyncio.sleep(0.05)


def calling(fake: TimedAgentMail, path: str) -> Callable[[], Awaitable[int]]:
    """A probe for `eventually`: how many GETs of `path` are inside the fake right now."""

    async def probe() -> int:
        return fake.in_flight("GET", path)

    return probe


# -- worker processes ---------------------------------------------------------------------------


def worker_env(database_url: str, fake: FakeAgentMail) -> dict[str, str]:
    # Hermetic: no setting leaks in from the environment running the tests.
    fields = {name.upper() for name in Settings.model_fields}
    env = {k: v for k, v in os.environ.items() if k.upper() not in fields}
    env.update(
        DATABASE_URL=database_url,
        AGENTMAIL_API_KEY="test",
        AGENTMAIL_BASE_URL=fake.url,
        POLL_SCHEDULE_MINUTES="[0,0,0]",
        POLL_WINDOW_MINUTES="60",
        PROVIDER_TIMEOUT_SECONDS="5",
        LOG_LEVEL="WARNING",
        ENVIRONMENT="test",
    )
    return env


@dataclass
class WorkerProcess:
    proc: asyncio.subprocess.Process
    log: Path
    worker_id: int = 0

    def stderr(self) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return f"--- stderr of worker pid {self.proc.pid} ---\n{text[-4000:]}"

    async def exited_within(self, seconds: float) -> bool:
        try:
            await asyncio.wait_for(self.proc.wait(), seconds)
        except TimeoutError:
            return False
        return True


async def _worker_ids(db: Database) -> set[int]:
    async with db.connect() as conn:
        return {r["id"] for r in await conn.fetch("SELECT id FROM procrastinate_workers")}


@asynccontextmanager
async def worker_process(
    db: Database, env: dict[str, str], log: Path
) -> AsyncIterator[WorkerProcess]:
    """A `gql-gateway worker` subprocess, yielded once it has registered in the database;
    always terminated (then killed) on exit."""
    known = await _worker_ids(db)
    with log.open("wb") as sink:
        proc = await asyncio.create_subprocess_exec(
            GATEWAY, "worker", env=env, cwd=log.parent, stdout=sink, stderr=sink
        )
    worker = WorkerProcess(proc, log)
    try:

        async def registered() -> set[int] | None:
            if proc.returncode is not None:
                pytest.fail(f"worker exited with {proc.returncode}\n{worker.stderr()}")
            return (await _worker_ids(db)) - known or None

        (worker.worker_id,) = await eventually(
            registered, within=20, what=lambda: f"the worker to register\n{worker.stderr()}"
        )
        yield worker
    finally:
        if proc.returncode is None:
            proc.terminate()
            if not await worker.exited_within(10):
                proc.kill()
        await proc.wait()


# -- 1. schedule --------------------------------------------------------------------------------


async def test_zero_minute_steps_check_back_to_back_with_a_growing_attempt(
    database_url: str, db: Database, agentmail: TimedAgentMail
) -> None:
    async with poller(database_url, agentmail, poll_schedule_minutes=[0, 0, 0]) as services:
        # verify's own read shows the first step; the poller's checks walk the rest.
        script = ["VERIFYING"] * 4 + ["VERIFIED"]
        [domain] = await start_verifying(services, db, agentmail, 1, script=script)
        path = get_path(domain)
        assert agentmail.calls("GET", path) == 1

        first = await only_todo(db, domain.id)
        assert first.args == {"domain_id": str(domain.id), "attempt": 0}
        assert first.queueing_lock == f"domain:{domain.id}"

        before = datetime.now(UTC)
        await drain(services)
        after = datetime.now(UTC)

        jobs = await check_jobs(db, domain.id)
        assert [j.args["attempt"] for j in jobs] == [0, 1, 2, 3]
        assert [j.status for j in jobs] == ["succeeded"] * 4
        assert {j.queueing_lock for j in jobs} == {f"domain:{domain.id}"}
        for successor in jobs[1:]:  # a 0-minute step is due as soon as it is queued
            assert successor.scheduled_at is not None
            assert before <= successor.scheduled_at <= after
        assert agentmail.calls("GET", path) == 1 + 4, "one provider call per check"
        async with db.connect() as conn:
            stored = await domains_repo.get_by_id(conn, domain_id=domain.id)
        assert stored is not None
        assert stored.status is Status.VERIFIED


async def test_next_check_waits_the_configured_step_capped_by_the_remaining_window(
    database_url: str, db: Database, agentmail: TimedAgentMail
) -> None:
    schedule_minutes, window_minutes = [0, 5, 15], 30
    async with poller(
        database_url,
        agentmail,
        poll_schedule_minutes=schedule_minutes,
        poll_window_minutes=window_minutes,
    ) as services:
        [domain] = await start_verifying(services, db, agentmail, 1)
        path = get_path(domain)

        async def run_due_check(job: Job) -> tuple[Job, datetime, datetime]:
            await make_due(db, job)
            before = datetime.now(UTC)
            await drain(services)
            after = datetime.now(UTC)
            return await only_todo(db, domain.id), before, after

        job = await only_todo(db, domain.id)
        # attempt 0 -> 1 waits step 1 (5 min), 1 -> 2 step 2 (15 min), then the last step repeats
        for attempt, step_minutes in ((1, 5), (2, 15), (3, 15)):
            gets = agentmail.calls("GET", path)
            job, before, after = await run_due_check(job)
            assert agentmail.calls("GET", path) == gets + 1
            assert job.args["attempt"] == attempt
            assert job.scheduled_at is not None
            step = timedelta(minutes=step_minutes)
            assert before + step <= job.scheduled_at <= after + step, (attempt, job.scheduled_at)

        # Only 5 minutes of the window left: the next check is at the deadline, not in 15.
        async with db.connect() as conn:
            started = await conn.fetchval(
                "UPDATE email_domains SET verification_started_at = now() - interval '25 minutes'"
                " WHERE id = $1 RETURNING verification_started_at",
                domain.id,
            )
        deadline = started + timedelta(minutes=window_minutes)
        job, _, _ = await run_due_check(job)
        assert job.args["attempt"] == 4
        assert job.scheduled_at is not None
        assert abs((job.scheduled_at - deadline).total_seconds()) <= 1.5, (
            job.scheduled_at,
            deadline,
        )

        # Past the window: failed without asking the provider, and the chain ends.
        async with db.connect() as conn:
            await conn.execute(
                "UPDATE email_domains SET verification_started_at = now() - interval '31 minutes'"
                " WHERE id = $1",
                domain.id,
            )
        gets = agentmail.calls("GET", path)
        await make_due(db, job)
        await drain(services)
        assert agentmail.calls("GET", path) == gets
        assert not [j for j in await check_jobs(db, domain.id) if j.status in ("todo", "doing")]
        async with db.connect() as conn:
            stored = await domains_repo.get_by_id(conn, domain_id=domain.id)
        assert stored is not None
        assert (stored.status, stored.status_reason) == (Status.FAILED, "verification_timeout")


# -- 2. at most one check of a domain at a time --------------------------------------------------


async def test_a_check_of_a_locked_domain_reschedules_without_calling_the_provider(
    database_url: str, db: Database, agentmail: TimedAgentMail
) -> None:
    async with poller(database_url, agentmail) as services:
        locked, other = await start_verifying(services, db, agentmail, 2)
        for domain in (locked, other):
            await drop_checks(db, domain.id)  # only what check() queues is seen
        gets = agentmail.calls("GET", get_path(locked))

        async with db.connect() as conn:  # a check of another process, still running
            running_job = await conn.fetchval(
                "INSERT INTO procrastinate_jobs (queue_name, task_name, status, args)"
                " VALUES ('elsewhere', 'check_domain', 'doing', '{}') RETURNING id"
            )
            assert await domains_repo.claim_check(conn, domain_id=locked.id, job_id=running_job)
        before = datetime.now(UTC)
        await services.poller.check(locked.id, 2, job_id=running_job + 1)
        after = datetime.now(UTC)

        assert agentmail.calls("GET", get_path(locked)) == gets, "the provider was called"
        retry = await only_todo(db, locked.id)
        assert retry.args == {"domain_id": str(locked.id), "attempt": 2}
        assert retry.queueing_lock == f"domain:{locked.id}"
        assert retry.scheduled_at is not None
        wait = timedelta(seconds=RETRY_LOCKED_SECONDS)
        assert before + wait <= retry.scheduled_at <= after + wait + timedelta(seconds=1)

        # The mark is per domain: another domain is checked meanwhile.
        other_gets = agentmail.calls("GET", get_path(other))
        await services.poller.check(other.id, 0, job_id=running_job + 2)
        assert agentmail.calls("GET", get_path(other)) == other_gets + 1

        async with db.connect() as conn:  # the other process's check ends
            await conn.execute(
                "UPDATE procrastinate_jobs SET status = 'succeeded' WHERE id = $1", running_job
            )
        # Released: the next check calls the provider and moves the chain on.
        await drop_checks(db, locked.id)
        await services.poller.check(locked.id, 2, job_id=running_job + 3)
        assert agentmail.calls("GET", get_path(locked)) == gets + 1
        assert (await only_todo(db, locked.id)).args["attempt"] == 3


async def test_two_worker_processes_never_check_one_domain_at_the_same_time(
    database_url: str, db: Database, agentmail: TimedAgentMail, tmp_path: Path
) -> None:
    # More chains than one worker's concurrency (4), so both workers must take some, and
    # fewer than both together (8), so a contending check is picked up at once.
    domains_count = 6
    env = worker_env(database_url, agentmail)
    async with poller(database_url, agentmail) as services:
        # Each domain's first check stays queued: the workers take them as they start (one
        # worker's concurrency cannot take all), and their sweeper, which queues a check for a
        # verifying domain that has none, has nothing to add that could race the test's own.
        domains = await start_verifying(services, db, agentmail, domains_count)
        agentmail.delay_next(10_000, 0.3, method="GET", path="/v0/domains/*")
        started = time.monotonic()

        async with (
            worker_process(db, env, tmp_path / "a.log") as a,
            worker_process(db, env, tmp_path / "b.log") as b,
        ):

            def logs() -> str:
                return f"{a.stderr()}\n{b.stderr()}"

            await asyncio.sleep(2)  # the chains run freely (0-minute steps)

            # Contention: queue another check of a domain while one of its checks is inside
            # the provider call; a worker picks it up at once and must not call the provider.
            contended: set[uuid.UUID] = set()
            until = time.monotonic() + 3
            while len(contended) < domains_count and time.monotonic() < until:
                for d in domains:
                    if (
                        d.id not in contended
                        and agentmail.in_flight("GET", get_path(d))
                        and await services.jobs.schedule_check(d.id, attempt=0, delay_seconds=0)
                    ):
                        contended.add(d.id)
                await asyncio.sleep(0.02)
            await asyncio.sleep(1)

            async with db.connect() as conn:
                by_worker = dict(
                    await conn.fetch(
                        "SELECT worker_id, count(*) FROM procrastinate_jobs"
                        " WHERE task_name = 'check_domain' AND status = 'succeeded'"
                        " GROUP BY worker_id"
                    )
                )
                bounced = await conn.fetchval(
                    "SELECT count(*) FROM procrastinate_jobs WHERE task_name = 'check_domain'"
                    " AND status = 'todo' AND scheduled_at > now() + interval '20 seconds'"
                )
        await asyncio.sleep(0.5)  # let GETs cut off by the stop finish on the fake's side

        assert contended, f"no contention was produced\n{logs()}"
        for d in domains:
            spans = [s for s in agentmail.spans_to("GET", get_path(d)) if s.start > started]
            assert spans, f"{d.domain} was never checked\n{logs()}"
            for earlier, later in pairwise(spans):
                assert later.start >= earlier.end, (
                    f"two checks of {d.domain} overlapped: {earlier} and {later}\n{logs()}"
                )
        assert bounced >= 1, f"no check ever found its domain locked\n{logs()}"
        assert by_worker.get(a.worker_id, 0) > 0, f"worker A did no check: {by_worker}\n{logs()}"
        assert by_worker.get(b.worker_id, 0) > 0, f"worker B did no check: {by_worker}\n{logs()}"


# -- 3. no scheduled check is lost when a worker dies -------------------------------------------


async def test_a_check_cut_short_by_a_killed_worker_is_recovered_and_completed(
    database_url: str, db: Database, agentmail: TimedAgentMail, tmp_path: Path
) -> None:
    env = worker_env(database_url, agentmail)
    async with poller(database_url, agentmail) as services:
        [domain] = await start_verifying(services, db, agentmail, 1)
        path = get_path(domain)
        gets = agentmail.calls("GET", path)
        agentmail.delay_next(1, 30, method="GET", path=path)
        manager = services.jobs.app.job_manager
        retry_stalled_jobs = services.jobs.app.tasks["retry_stalled_jobs"]

        async with worker_process(db, env, tmp_path / "a.log") as a:
            await eventually(
                calling(agentmail, path),
                within=10,
                what=lambda: f"worker A to call the provider\n{a.stderr()}",
            )
            [job] = [j for j in await check_jobs(db, domain.id) if j.status == "doing"]
            assert job.worker_id == a.worker_id

            async def periodic_deferred() -> int | None:
                async with db.connect() as conn:
                    return await conn.fetchval(  # type: ignore[no-any-return]
                        "SELECT count(*) FROM procrastinate_jobs"
                        " WHERE task_name = 'retry_stalled_jobs'"
                    )

            # The worker schedules the periodic recovery task itself.
            await eventually(
                periodic_deferred, within=5, what=lambda: "retry_stalled_jobs to be deferred"
            )

            a.proc.kill()
            assert await a.exited_within(5), a.stderr()

        await asyncio.sleep(0.5)
        [job] = await check_jobs(db, domain.id)
        assert (job.status, job.worker_id) == ("doing", a.worker_id), "stuck until recovered"

        # Heartbeat-based: a worker heard from within 30 s is alive, its jobs are left alone.
        await retry_stalled_jobs(timestamp=int(time.time()))
        assert [j.status for j in await check_jobs(db, domain.id)] == ["doing"]

        # Instead of waiting 30 s (plus up to a minute for the cron tick) for the dead worker's
        # heartbeat to age, age it: the project's task then runs exactly as the cron would run
        # it, with procrastinate's default `seconds_since_heartbeat` (30 s).
        async with db.connect() as conn:
            await conn.execute(
                "UPDATE procrastinate_workers SET last_heartbeat = now() - interval '60 seconds'"
                " WHERE id = $1",
                a.worker_id,
            )
        stalled = await manager.get_stalled_jobs()  # the dead worker's sweep may be there too
        assert [j.id for j in stalled if j.task_name == "check_domain"] == [job.id]
        await retry_stalled_jobs(timestamp=int(time.time()))
        [requeued] = await check_jobs(db, domain.id)
        assert requeued.status == "todo"
        assert requeued.args == job.args
        assert requeued.attempts == job.attempts + 1

        async with worker_process(db, env, tmp_path / "b.log") as b:

            async def completed() -> list[Job] | None:
                jobs = await check_jobs(db, domain.id)
                return jobs if jobs[0].status == "succeeded" else None

            jobs = await eventually(
                completed, within=15, what=lambda: f"worker B to finish the check\n{b.stderr()}"
            )
        # A's cut-off call, then B's (B goes on with the chain: the steps are 0 minutes).
        assert agentmail.calls("GET", path) >= gets + 2
        assert [j.args["attempt"] for j in jobs][:2] == [0, 1], "the chain did not go on"
        async with db.connect() as conn:
            stored = await domains_repo.get_by_id(conn, domain_id=domain.id)
        assert stored is not None
        assert stored.last_checked_at is not None


async def test_recovery_survives_a_stalled_check_whose_domain_is_already_queued_again(
    database_url: str, db: Database, agentmail: TimedAgentMail
) -> None:
    """A worker dies mid-check after the domain got a new queued check (a verify meanwhile, or
    the dead check's own successor): the stalled job cannot go back to `todo` under the same
    queueing lock, and that must not stop the recovery of every other stalled check."""
    async with poller(database_url, agentmail) as services:
        first, second = await start_verifying(services, db, agentmail, 2)
        manager = services.jobs.app.job_manager
        dead_worker = await manager.register_worker()
        for _ in range(2):
            assert await manager.fetch_job(queues=["domains"], worker_id=dead_worker)
        assert [j.status for j in await check_jobs(db, first.id)] == ["doing"]
        assert [j.status for j in await check_jobs(db, second.id)] == ["doing"]
        assert await services.jobs.schedule_check(first.id, attempt=0, delay_seconds=600)
        async with db.connect() as conn:
            await conn.execute(
                "UPDATE procrastinate_workers SET last_heartbeat = now() - interval '60 seconds'"
                " WHERE id = $1",
                dead_worker,
            )

        retry_stalled_jobs = services.jobs.app.tasks["retry_stalled_jobs"]
        try:
            await retry_stalled_jobs(timestamp=int(time.time()))
        except Exception as error:
            pytest.fail(f"retry_stalled_jobs raised {type(error).__name__}: {error}")
        finally:
            second_jobs = await check_jobs(db, second.id)
            first_jobs = await check_jobs(db, first.id)
            stalled = list(await manager.get_stalled_jobs())

        assert [j.status for j in second_jobs] == ["todo"], "the other domain's check was lost"
        assert [j.status for j in first_jobs].count("todo") == 1
        assert not stalled, f"stalled jobs left behind: {stalled}"


async def test_a_failed_check_is_not_left_doing_when_its_domain_was_queued_again_meanwhile(
    database_url: str, db: Database, agentmail: TimedAgentMail
) -> None:
    """A check fails (the provider refuses the read) while a verify queued the domain again:
    procrastinate's retry of the failed job cannot put it back under the same queueing lock,
    and the job must not stay `doing` (a live worker's `doing` job is never seen as stalled)."""
    async with poller(database_url, agentmail) as services:
        [domain] = await start_verifying(services, db, agentmail, 1)
        path = get_path(domain)
        gets = agentmail.calls("GET", path)
        agentmail.fail_next(1, 503, method="GET", path=path)  # retried after a backoff...
        agentmail.fail_next(1, 400, method="GET", path=path)  # ...then refused: the check fails
        run = asyncio.create_task(drain(services))

        async def first_read_failed() -> bool:
            return agentmail.calls("GET", path) > gets

        await eventually(first_read_failed, within=10, what=lambda: "the check's first read")
        # A verify lands during the provider's backoff: the domain is queued again.
        assert await services.jobs.schedule_check(domain.id, attempt=0, delay_seconds=600)
        await run

        assert agentmail.calls("GET", path) == gets + 2
        jobs = await check_jobs(db, domain.id)
        assert [j.status for j in jobs].count("todo") == 1, jobs
        assert "doing" not in [j.status for j in jobs], f"a check job was left doing: {jobs}"


# -- 4. SIGTERM ---------------------------------------------------------------------------------


async def test_worker_exits_within_a_bounded_time_after_sigterm_even_mid_check(
    database_url: str, db: Database, agentmail: TimedAgentMail, tmp_path: Path
) -> None:
    env = worker_env(database_url, agentmail)
    async with poller(database_url, agentmail) as services:
        [domain] = await start_verifying(services, db, agentmail, 1)
        path = get_path(domain)
        agentmail.delay_next(1, 60, method="GET", path=path)  # a provider call that hangs

        async with worker_process(db, env, tmp_path / "w.log") as w:
            await eventually(
                calling(agentmail, path),
                within=10,
                what=lambda: f"the worker to call the provider\n{w.stderr()}",
            )
            w.proc.send_signal(signal.SIGTERM)
            assert await w.exited_within(SIGTERM_BOUND_SECONDS), (
                f"still running {SIGTERM_BOUND_SECONDS}s after SIGTERM\n{w.stderr()}"
            )

        # Whatever the shutdown did with the cut-off check, the domain keeps a pending one
        # (queued, or `doing` for the stalled-job recovery), never a dead end.
        statuses = [j.status for j in await check_jobs(db, domain.id)]
        assert {"todo", "doing"} & set(statuses), f"the domain's check was lost: {statuses}"


async def test_sigterm_lets_the_running_check_finish_and_unregisters_the_worker(
    database_url: str, db: Database, agentmail: TimedAgentMail, tmp_path: Path
) -> None:
    env = worker_env(database_url, agentmail)
    async with poller(database_url, agentmail) as services:
        [domain] = await start_verifying(services, db, agentmail, 1)
        path = get_path(domain)
        agentmail.delay_next(1, 2, method="GET", path=path)  # a short, ordinary check

        async with worker_process(db, env, tmp_path / "w.log") as w:
            await eventually(
                calling(agentmail, path),
                within=10,
                what=lambda: f"the worker to call the provider\n{w.stderr()}",
            )
            [job] = [j for j in await check_jobs(db, domain.id) if j.status == "doing"]
            w.proc.send_signal(signal.SIGTERM)
            assert await w.exited_within(SIGTERM_BOUND_SECONDS), w.stderr()

        jobs = {j.id: j for j in await check_jobs(db, domain.id)}
        assert w.proc.returncode == 0, (
            f"SIGTERM ended the worker abruptly (exit {w.proc.returncode}), not by a clean "
            f"shutdown; the check job is {jobs[job.id].status!r}\n{w.stderr()}"
        )
        assert jobs[job.id].status == "succeeded", "the in-flight check was not allowed to finish"
        assert [j.args["attempt"] for j in jobs.values() if j.status == "todo"] == [1]
        assert w.worker_id not in await _worker_ids(db), "the worker did not unregister"
