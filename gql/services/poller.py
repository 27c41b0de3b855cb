"""The background half of the lifecycle: scheduled checks, and the sweeper that repairs what a
crash left behind.

A check holds no connection and no transaction while it asks the provider: it marks the row as
being checked by its job (one short statement), releases the connection, asks, then writes the
answer through the state machine, whose compare-and-set notices a row that changed meanwhile.
Checks of one domain never overlap: a check that finds another one running is queued again.
"""

import logging
import uuid
from datetime import UTC, datetime

from gql.db import domains as repo
from gql.db import queue
from gql.db.engine import Database
from gql.errors import DomainError
from gql.models import Status
from gql.observability.metrics import CHECKS
from gql.providers.verification import VerificationProvider
from gql.services.lifecycle import answer_of
from gql.services.state_writer import StateWriter
from gql.services.transitions import Cause, Event, past_window

logger = logging.getLogger(__name__)

RETRY_LOCKED_SECONDS = 30
SWEEP_BATCH = 500


class Poller:
    def __init__(self, db: Database, provider: VerificationProvider, writer: StateWriter) -> None:
        self._db = db
        self._provider = provider
        self._writer = writer

    async def check(self, domain_id: uuid.UUID, attempt: int, *, job_id: int) -> None:
        """One poller step for a verifying domain; the state machine queues the next one."""
        async with self._db.connect() as conn:
            claimed = await repo.claim_check(conn, domain_id=domain_id, job_id=job_id)
            if claimed is None:
                current = await repo.get_by_id(conn, domain_id=domain_id)
                if current is not None and current.status is Status.VERIFYING:
                    logger.info("domain %s is being checked by another job: later", domain_id)
                    await queue.defer_check(
                        conn,
                        domain_id=domain_id,
                        attempt=attempt,
                        delay_seconds=RETRY_LOCKED_SECONDS,
                    )
                return
        if past_window(claimed, now=datetime.now(UTC), window=self._writer.window):
            await self._writer.apply(
                Event(Cause.TIMEOUT), domain_id=domain_id, seen=claimed, attempt=attempt
            )
            logger.info("domain %s not verified within the window: failed", domain_id)
            CHECKS.labels("timeout").inc()
            return
        try:
            live = await self._provider.get(claimed.agentmail_domain_id or claimed.domain)
        except DomainError as error:
            logger.warning("check of domain %s got no answer: %s", domain_id, error.message)
            live = None
        applied = await self._writer.apply(
            Event(Cause.POLLER, answer=None if live is None else answer_of(live)),
            domain_id=domain_id,
            seen=claimed,
            attempt=attempt,
        )
        stored = applied.record
        CHECKS.labels("no_answer" if live is None or stored is None else stored.status.value).inc()

    async def sweep(self) -> int:
        """Fail verifying domains past their window and queue a check for any verifying domain
        that has none (a crash between steps can leave either); each repair is logged."""
        repairs = 0
        cutoff = datetime.now(UTC) - self._writer.window
        async with self._db.connect() as conn:
            overdue = await repo.verifying_started_before(conn, cutoff=cutoff, limit=SWEEP_BATCH)
        for record in overdue:
            applied = await self._writer.apply(
                Event(Cause.TIMEOUT), domain_id=record.id, seen=record
            )
            if applied.record is not None and applied.record.status is Status.FAILED:
                repairs += 1
                logger.warning("sweeper: domain %s was past its window: failed", record.id)
        async with self._db.connect() as conn:
            orphans = await repo.verifying_without_check(conn, limit=SWEEP_BATCH)
        for record in orphans:
            applied = await self._writer.apply(Event(Cause.SWEEP), domain_id=record.id, seen=record)
            if applied.check_queued:
                repairs += 1
                logger.warning("sweeper: domain %s was verifying with no check: queued", record.id)
        return repairs
