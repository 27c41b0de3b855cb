"""Keeps the queue worker running, and says how it is.

procrastinate stops a worker for good when one of its side tasks fails — the LISTEN connection
dropped by a PostgreSQL restart is enough ("Side task listener failed … Stopped worker"). The
supervisor starts it again with exponential backoff (tenacity) after any failure, waits while the
database is unreachable or its schema is behind this code, and keeps a `WorkerState` that
`/readyz` reports. A worker that ran for longer than the longest backoff starts its next attempt
at once: the backoff measures one outage, not the life of the process. It is stopped through
`stop()` (the app's shutdown, or SIGINT/SIGTERM for `gql-gateway worker`), never by cancellation
alone (see `JobQueue.run_worker`).
"""

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, wait_exponential

from gql.db.engine import Database
from gql.errors import DomainError
from gql.jobs import JobQueue

logger = logging.getLogger(__name__)

WorkerStatus = Literal["off", "starting", "running", "waiting", "down", "stopped"]


@dataclass(frozen=True, slots=True)
class WorkerState:
    """`off` (not run by this process), `starting`, `running`, `waiting` (for the database or
    its schema), `down` (failed, restarting after `reason`), or `stopped` (shut down)."""

    status: WorkerStatus
    reason: str | None = None
    restarts: int = 0

    @property
    def healthy(self) -> bool:
        return self.status in ("off", "starting", "running")


class _NotReady(Exception):
    """The database cannot run the worker yet; the message says why."""


class _Stopped(Exception):
    """The worker returned although nobody asked it to stop."""


class WorkerSupervisor:
    """Runs `JobQueue.run_worker` until stopped, starting it again after every failure."""

    def __init__(
        self,
        jobs: JobQueue,
        db: Database,
        *,
        backoff_seconds: float,
        max_backoff_seconds: float,
    ) -> None:
        self._jobs = jobs
        self._db = db
        self._backoff = backoff_seconds
        self._max_backoff = max_backoff_seconds
        self._state = WorkerState("off")
        self._stop = asyncio.Event()

    @property
    def state(self) -> WorkerState:
        return self._state

    def stop(self) -> None:
        """Ask the worker to stop gracefully; `run` returns once it has."""
        self._stop.set()

    async def run(self, *, handle_signals: bool = False) -> None:
        """Work the queue until `stop()`; with `handle_signals`, SIGINT and SIGTERM call it.

        A second signal gets the default behaviour, so an impatient operator can still kill it.
        """
        with self._stop_on_signals() if handle_signals else contextlib.nullcontext():
            try:
                await self._supervise()
            finally:
                self._state = WorkerState("stopped", "the worker was stopped", self._state.restarts)

    @contextlib.contextmanager
    def _stop_on_signals(self) -> Iterator[None]:
        loop = asyncio.get_running_loop()
        signals = (signal.SIGINT, signal.SIGTERM)

        def stop() -> None:
            logger.info("stop requested: finishing running checks")
            for sig in signals:
                loop.remove_signal_handler(sig)
            self.stop()

        for sig in signals:
            loop.add_signal_handler(sig, stop)
        try:
            yield
        finally:
            for sig in signals:
                loop.remove_signal_handler(sig)

    async def _supervise(self) -> None:
        while not self._stop.is_set():
            retrying = AsyncRetrying(
                retry=retry_if_exception_type(Exception),
                stop=lambda _: self._stop.is_set(),
                wait=wait_exponential(multiplier=self._backoff, max=self._max_backoff),
                sleep=self._pause,
                before_sleep=self._before_restart,
                reraise=True,
            )
            try:
                async for attempt in retrying:
                    with attempt:
                        await self._run_once()
            except Exception:
                if not self._stop.is_set():
                    raise

    async def _run_once(self) -> None:
        """One life of the worker. Returns when stopped or after a long healthy run; raises
        after a short one, or while the database cannot run it."""
        if self._stop.is_set():
            return
        self._set("starting")
        try:
            schema = await self._db.schema()
        except DomainError as error:
            raise _NotReady("the database cannot be reached") from error
        if schema.behind:
            raise _NotReady(schema.hint)
        started = time.monotonic()
        self._set("running")
        try:
            await self._jobs.run_worker(stop=self._stop)
        except Exception as error:
            failure: Exception = error
        else:
            if self._stop.is_set():
                return
            failure = _Stopped("the worker stopped after its database connection failed")
        if time.monotonic() - started < self._max_backoff:
            raise failure
        self._set("down", _reason(failure))
        logger.warning("worker stopped (%s); starting it again", _reason(failure))

    async def _pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._stop.wait()

    def _before_restart(self, retry_state: RetryCallState) -> None:
        assert retry_state.outcome is not None
        assert retry_state.next_action is not None
        error = retry_state.outcome.exception()
        assert error is not None
        status: WorkerStatus = "waiting" if isinstance(error, _NotReady) else "down"
        self._set(status, _reason(error))
        log = logger.warning if status == "waiting" else logger.error
        log(
            "worker %s: %s; next attempt in %.1f s",
            status,
            _reason(error),
            retry_state.next_action.sleep,
            exc_info=None if status == "waiting" else error,
        )

    def _set(self, status: WorkerStatus, reason: str | None = None) -> None:
        restarts = self._state.restarts + (status == "starting" and self._state.status != "off")
        self._state = WorkerState(status, reason, restarts)


def _reason(error: BaseException) -> str:
    return str(error) or type(error).__name__
