"""Background work on PostgreSQL with procrastinate: the verification poller and clean-ups.

Each domain has at most one pending check, enforced by procrastinate's `queueing_lock`
(`domain:<id>`): a running check schedules its successor under the same lock (allowed, since a
running job no longer holds it), and a verify that finds a check already queued collapses into
that chain. Checks of one domain never overlap across processes: the check itself holds a
PostgreSQL advisory lock on the domain. A worker killed mid-check leaves its job `doing`; the
periodic `retry_stalled_jobs` task puts it back in the queue, so no scheduled check is lost.
"""

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Awaitable, Callable

from procrastinate import App, PsycopgConnector, RetryStrategy
from procrastinate.exceptions import AlreadyEnqueued, UniqueViolation
from procrastinate.jobs import Status
from procrastinate.worker import Worker

from gql.observability.jobs import job_middleware, trace_args

logger = logging.getLogger(__name__)

QUEUE = "domains"
SHUTDOWN_GRACE_SECONDS = 10.0
STOP_REPEAT_SECONDS = 0.5
RETRY_FAILED_CHECK_SECONDS = 60
CheckHandler = Callable[[uuid.UUID, int], Awaitable[None]]
CleanupHandler = Callable[[str], Awaitable[None]]


def _queueing_lock(domain_id: uuid.UUID) -> str:
    return f"domain:{domain_id}"


class JobQueue:
    """Schedules domain checks and provider clean-ups, and runs them in a worker."""

    def __init__(self, dsn: str, *, pool_timeout: float) -> None:
        # min_size=0: opening does not wait for the database, like the request pool.
        connector = PsycopgConnector(conninfo=dsn, min_size=0, max_size=4, timeout=pool_timeout)
        self.app = App(connector=connector)
        self._check: CheckHandler | None = None
        self._cleanup: CleanupHandler | None = None

        @self.app.task(name="check_domain", queue=QUEUE)
        async def check_domain(domain_id: str, attempt: int) -> None:
            if self._check is None:
                raise RuntimeError("no check handler installed")
            domain = uuid.UUID(domain_id)
            try:
                await self._check(domain, attempt)
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
            name="cleanup_domain",
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

        self._check_domain = check_domain
        self._cleanup_domain = cleanup_domain

    def handle_with(self, *, check: CheckHandler, cleanup: CleanupHandler) -> None:
        self._check = check
        self._cleanup = cleanup

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
                queueing_lock=_queueing_lock(domain_id),
                schedule_in={"seconds": max(0, round(delay_seconds))},
            ).defer_async(domain_id=str(domain_id), attempt=attempt, **trace_args())
        except AlreadyEnqueued:
            return False
        return True

    async def schedule_cleanup(self, provider_domain_id: str) -> None:
        await self._cleanup_domain.defer_async(
            provider_domain_id=provider_domain_id, **trace_args()
        )

    async def cancel_checks(self, domain_id: uuid.UUID) -> None:
        """Drop the domain's queued check, if any (a running one finds the row gone)."""
        jobs = await self.app.job_manager.list_jobs_async(
            queueing_lock=_queueing_lock(domain_id), status="todo"
        )
        for job in jobs:
            if job.id is not None:
                await self.app.job_manager.cancel_job_by_id_async(job.id, delete_job=True)

    async def run_worker(self, *, wait: bool = True, stop: asyncio.Event | None = None) -> None:
        """Work the queue until `stop` is set or the task is cancelled (or, with `wait=False`,
        until nothing is due); a failure of the worker itself is raised (see `gql.supervision`).

        Stopping is graceful: running checks finish (up to `SHUTDOWN_GRACE_SECONDS`), then the
        worker unregisters; what it could not finish stays queued. It is asked through the
        worker's stop event rather than by cancellation alone, since a cancellation can be lost
        while the worker starts up: on Python 3.11 `asyncio.wait_for`, which psycopg's pool uses,
        drops one that lands as the awaited call completes, and the worker then runs on.
        """
        if stop is None:
            stop = asyncio.Event()
        worker = Worker(
            app=self.app,
            queues=[QUEUE],
            wait=wait,
            install_signal_handlers=False,
            # Draining (tests, one-off runs) takes jobs one at a time, so a check that queues an
            # immediately due successor is picked up before the worker decides it is done.
            concurrency=4 if wait else 1,
            shutdown_graceful_timeout=SHUTDOWN_GRACE_SECONDS,
            worker_middleware=[job_middleware],
        )
        # procrastinate's Worker.run and Worker.stop carry no annotations.
        running = asyncio.ensure_future(worker.run())  # type: ignore[no-untyped-call]
        stop_requested = asyncio.ensure_future(stop.wait())
        try:
            await asyncio.wait({running, stop_requested}, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            await _stop_gracefully(worker, running)
            raise
        finally:
            stop_requested.cancel()
        await _stop_gracefully(worker, running)
        running.result()


async def _stop_gracefully(worker: Worker, running: asyncio.Future[None]) -> None:
    """Ask until the worker has stopped: a request that lands before its first step is reset."""
    try:
        while not running.done():
            worker.stop()  # type: ignore[no-untyped-call]
            await asyncio.wait({running}, timeout=STOP_REPEAT_SECONDS)
    except BaseException:
        running.cancel()
        raise
