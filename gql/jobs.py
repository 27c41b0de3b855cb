"""Background work on PostgreSQL with procrastinate: the verification poller, clean-ups and
the sweeper.

Each domain has at most one pending check, enforced by procrastinate's `queueing_lock`
(`domain:<id>`): a running check queues its successor under the same lock (allowed, since a
running job no longer holds it), and a verify that finds a check already queued collapses into
that chain. Jobs that go with a status change are queued by the state machine on its own
connection (`gql.db.queue`), in the transaction of the change. Checks of one domain never
overlap across processes: a check marks the row with its job id. A worker killed mid-check
leaves its job `doing`; the periodic `retry_stalled_jobs` task puts it back in the queue, and
the periodic sweeper queues a check for any verifying domain left without one.
"""

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Awaitable, Callable

from procrastinate import App, JobContext, PsycopgConnector, RetryStrategy
from procrastinate.exceptions import AlreadyEnqueued, UniqueViolation
from procrastinate.jobs import Status

from gql.db.queue import CHECK_TASK, CLEANUP_TASK, QUEUE, check_lock

logger = logging.getLogger(__name__)

SHUTDOWN_GRACE_SECONDS = 10.0
RETRY_FAILED_CHECK_SECONDS = 60
CheckHandler = Callable[[uuid.UUID, int, int], Awaitable[None]]
CleanupHandler = Callable[[str], Awaitable[None]]
SweepHandler = Callable[[], Awaitable[int]]


class JobQueue:
    """Schedules domain checks and provider clean-ups, and runs them in a worker."""

    def __init__(self, dsn: str, *, pool_timeout: float) -> None:
        # min_size=0: opening does not wait for the database, like the request pool.
        connector = PsycopgConnector(conninfo=dsn, min_size=0, max_size=4, timeout=pool_timeout)
        self.app = App(connector=connector)
        self._check: CheckHandler | None = None
        self._cleanup: CleanupHandler | None = None
        self._sweep: SweepHandler | None = None

        @self.app.task(name=CHECK_TASK, queue=QUEUE, pass_context=True)
        async def check_domain(context: JobContext, domain_id: str, attempt: int) -> None:
            if self._check is None:
                raise RuntimeError("no check handler installed")
            domain = uuid.UUID(domain_id)
            assert context.job.id is not None
            try:
                await self._check(domain, attempt, context.job.id)
            except BaseException:
                # A check that fails or is aborted (the database gone mid-check, a shutdown)
                # queues its own retry, so the domain's chain survives; if a check is already
                # queued for the domain, that one stands. The job itself ends as failed.
                logger.exception("check of domain %s failed; retrying later", domain_id)
                with contextlib.suppress(Exception):
                    await asyncio.shield(
                        self.schedule_check(
                            domain, attempt=attempt, delay_seconds=RETRY_FAILED_CHECK_SECONDS
                        )
                    )
                raise

        # Clean-up after a delete: retried with backoff for about an hour, then logged as failed.
        @self.app.task(
            name=CLEANUP_TASK,
            queue=QUEUE,
            retry=RetryStrategy(max_attempts=8, exponential_wait=2),
        )
        async def cleanup_domain(provider_domain_id: str) -> None:
            if self._cleanup is None:
                raise RuntimeError("no clean-up handler installed")
            await self._cleanup(provider_domain_id)

        @self.app.periodic(cron="* * * * *")
        @self.app.task(name="retry_stalled_jobs", queue=QUEUE, queueing_lock="retry_stalled_jobs")
        async def retry_stalled_jobs(timestamp: int) -> None:
            for job in await self.app.job_manager.get_stalled_jobs():
                logger.warning("re-queueing stalled job %s (%s)", job.id, job.task_name)
                try:
                    await self.app.job_manager.retry_job(job)
                except UniqueViolation:
                    # The domain was queued again meanwhile: that check stands, this one ends.
                    await self.app.job_manager.finish_job(
                        job=job, status=Status.FAILED, delete_job=False
                    )
                except Exception:
                    logger.exception("could not re-queue stalled job %s", job.id)

        # The sweeper: repairs what a crash left (see `gql.services.poller.Poller.sweep`).
        @self.app.periodic(cron="* * * * *")
        @self.app.task(name="sweep_domains", queue=QUEUE, queueing_lock="sweep_domains")
        async def sweep_domains(timestamp: int) -> None:
            if self._sweep is None:
                raise RuntimeError("no sweep handler installed")
            await self._sweep()

        self._check_domain = check_domain

    def handle_with(
        self, *, check: CheckHandler, cleanup: CleanupHandler, sweep: SweepHandler
    ) -> None:
        self._check = check
        self._cleanup = cleanup
        self._sweep = sweep

    async def open(self) -> None:
        await self.app.open_async()

    async def close(self) -> None:
        await self.app.close_async()

    async def schedule_check(
        self, domain_id: uuid.UUID, *, attempt: int, delay_seconds: float
    ) -> bool:
        """Queue a check; False when one is already queued for the domain (it stands)."""
        try:
            await self._check_domain.configure(
                queueing_lock=check_lock(domain_id),
                schedule_in={"seconds": max(0, round(delay_seconds))},
            ).defer_async(domain_id=str(domain_id), attempt=attempt)
        except AlreadyEnqueued:
            return False
        return True

    async def cancel_checks(self, domain_id: uuid.UUID) -> None:
        """Drop the domain's queued check, if any (a running one finds the row gone)."""
        jobs = await self.app.job_manager.list_jobs_async(
            queueing_lock=check_lock(domain_id), status="todo"
        )
        for job in jobs:
            if job.id is not None:
                await self.app.job_manager.cancel_job_by_id_async(job.id, delete_job=True)

    async def run_worker(self, *, wait: bool = True, handle_signals: bool = False) -> None:
        """Work the queue until cancelled (or, with `wait=False`, until nothing is due).

        With `handle_signals`, SIGINT/SIGTERM stop it gracefully: running checks finish (up to
        `SHUTDOWN_GRACE_SECONDS`), then the worker exits; what it could not finish stays queued.
        """
        await self.app.run_worker_async(
            queues=[QUEUE],
            wait=wait,
            install_signal_handlers=handle_signals,
            # Draining (tests, one-off runs) takes jobs one at a time, so a check that queues an
            # immediately due successor is picked up before the worker decides it is done.
            concurrency=4 if wait else 1,
            shutdown_graceful_timeout=SHUTDOWN_GRACE_SECONDS,
        )
