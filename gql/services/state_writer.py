"""The one write path of the domain lifecycle.

`StateWriter.apply` is the seam every status change goes through: in one transaction it reads
the row, asks `transitions.decide`, writes the decision as a compare-and-set on the row's
version, and queues or drops the jobs the decision implies on the same connection, so a crash
can never separate a row change from its check or clean-up.
"""

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import asyncpg

from gql.db import domains as repo
from gql.db import queue
from gql.db.engine import Database
from gql.models import DomainRecord
from gql.services.events import change_for, record_change
from gql.services.transitions import Cause, Decision, Event, FollowUp, decide
from gql.settings import Settings


@dataclass(frozen=True, slots=True)
class Applied:
    """What `apply` did: the row as it now stands (for a delete, the row that was deleted;
    None when there is no such row) and the decision."""

    record: DomainRecord | None
    decision: Decision | None
    taken: bool = False
    """The provider verified the name, but another account holds it: the row failed."""
    check_queued: bool = False


def _now() -> datetime:
    return datetime.now(UTC)


class StateWriter:
    def __init__(self, db: Database, settings: Settings) -> None:
        self._db = db
        self._schedule = [m * 60 for m in settings.poll_schedule_minutes]
        self.window = timedelta(minutes=settings.poll_window_minutes)

    async def apply(
        self,
        event: Event,
        *,
        domain_id: uuid.UUID,
        owner_id: uuid.UUID | None = None,
        seen: DomainRecord | None = None,
        attempt: int = 0,
    ) -> Applied:
        """Decide and write one event for one domain (scoped to `owner_id` when given).

        `seen` is the row as the caller read it before asking the provider: the write is a
        compare-and-set on its version; when the row changed meanwhile, the event is decided
        again against the newer row, which is then read under a row lock. `attempt` is the
        poller step that produced a POLLER event.
        """
        async with self._db.transaction() as conn:
            current = seen
            for lock in (False, True):
                if current is None or lock:
                    current = await self._read(conn, domain_id, owner_id, lock=lock)
                if current is None:
                    return Applied(None, None)
                decision = decide(current, event, now=_now(), window=self.window)
                if decision.is_noop:
                    return Applied(current, decision)
                applied = await self._write(conn, current, event, decision)
                if applied.record is not None:
                    queued = await self._follow_up(conn, applied, event, attempt)
                    after = None if decision.deletes else applied.record
                    await record_change(conn, before=current, after=after, change=change_for(event))
                    return Applied(applied.record, applied.decision, applied.taken, queued)
            raise AssertionError("a row read under its lock changed before it was written")

    async def create(
        self,
        event: Event,
        *,
        user_id: uuid.UUID,
        domain: str,
        agentmail_domain_id: str,
    ) -> DomainRecord | None:
        """Store a domain the provider created; None when the user already has that name."""
        decision = decide(None, event, now=_now(), window=self.window)
        assert decision.status is not None
        async with self._db.transaction() as conn:
            record = await repo.insert_one(
                conn,
                user_id=user_id,
                domain=domain,
                agentmail_domain_id=agentmail_domain_id,
                status=decision.status,
                reason=decision.reason,
                records=decision.records,
            )
            if record is not None:
                await record_change(conn, before=None, after=record, change=change_for(event))
            return record

    async def _read(
        self,
        conn: asyncpg.Connection,
        domain_id: uuid.UUID,
        owner_id: uuid.UUID | None,
        *,
        lock: bool,
    ) -> DomainRecord | None:
        if owner_id is None:
            return await repo.get_by_id(conn, domain_id=domain_id, lock=lock)
        return await repo.get_by_id_and_owner(
            conn, domain_id=domain_id, user_id=owner_id, lock=lock
        )

    async def _write(
        self, conn: asyncpg.Connection, current: DomainRecord, event: Event, decision: Decision
    ) -> Applied:
        """The compare-and-set; a record of None means the row was not at `current`'s version."""
        if decision.deletes:
            return Applied(await repo.delete_if_version(conn, current=current), decision)
        try:
            async with conn.transaction():  # a savepoint, so a refusal leaves ours usable
                written = await repo.compare_and_set(
                    conn,
                    current=current,
                    new=decision.applied_to(current),
                    releases_check=decision.releases_check,
                )
            return Applied(written, decision)
        except asyncpg.UniqueViolationError:
            taken = decide(
                current, Event(Cause.TAKEN, answer=event.answer), now=_now(), window=self.window
            )
            written = await repo.compare_and_set(
                conn,
                current=current,
                new=taken.applied_to(current),
                releases_check=taken.releases_check,
            )
            return Applied(written, taken, taken=True)

    async def _follow_up(
        self, conn: asyncpg.Connection, applied: Applied, event: Event, attempt: int
    ) -> bool:
        """Queue or drop the jobs of a written decision; whether a check was queued."""
        record, decision = applied.record, applied.decision
        assert record is not None
        assert decision is not None
        queued = False
        if FollowUp.CANCEL_CHECKS in decision.follow_ups:
            await queue.cancel_checks(conn, domain_id=record.id)
        if FollowUp.QUEUE_CLEANUP in decision.follow_ups:
            await queue.defer_cleanup(
                conn, provider_domain_id=record.agentmail_domain_id or record.domain
            )
        if FollowUp.QUEUE_CHECK in decision.follow_ups:
            next_attempt = attempt + 1 if event.cause is Cause.POLLER else 0
            queued = await queue.defer_check(
                conn,
                domain_id=record.id,
                attempt=next_attempt,
                delay_seconds=self.delay_before(record, next_attempt),
            )
        return queued

    def delay_before(self, record: DomainRecord, attempt: int) -> float:
        """Seconds until check number `attempt`: its step, capped by what is left of the window."""
        step = self._schedule[min(attempt, len(self._schedule) - 1)]
        started = record.verification_started_at or record.updated_at
        remaining = (started + self.window - _now()).total_seconds()
        return max(0.0, min(step, remaining))
