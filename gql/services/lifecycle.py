"""The domain lifecycle: create, verify, poll, sync and delete through the providers."""

import asyncio
import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import asyncpg

from gql.db import domains as repo
from gql.db.engine import Database
from gql.errors import Conflict, NotFound
from gql.jobs import JobQueue
from gql.models import DomainRecord, Principal, Status
from gql.observability.metrics import CHECKS
from gql.providers.verification import (
    ProviderDomain,
    ProviderRejected,
    ProviderUnavailable,
    VerificationProvider,
)
from gql.services.claims import NameGuard
from gql.services.dns import DnsService
from gql.services.names import normalise_domain
from gql.services.status_mapping import map_provider_status
from gql.settings import Settings

logger = logging.getLogger(__name__)

_TAKEN = (
    "Another account has already verified {name}; the first account to verify a domain keeps "
    "it. Ask that account to delete it, or use another domain."
)
_RETRY_LOCKED_SECONDS = 30


@dataclass(frozen=True, slots=True)
class SyncResult:
    records: tuple[DomainRecord, ...]
    failed_ids: tuple[uuid.UUID, ...]

    @property
    def partial(self) -> bool:
        return bool(self.failed_ids)


def _client_id(user_id: uuid.UUID, domain: str) -> str:
    # Stable per (user, name): a retried create replays at the provider instead of duplicating.
    return str(uuid.uuid5(user_id, domain))


class LifecycleService:
    """Every step that talks to the verification provider."""

    def __init__(
        self,
        db: Database,
        provider: VerificationProvider,
        dns: DnsService,
        jobs: JobQueue,
        settings: Settings,
    ) -> None:
        self._db = db
        self._provider = provider
        self._dns = dns
        self._jobs = jobs
        self._schedule = [m * 60 for m in settings.poll_schedule_minutes]
        self._window = timedelta(minutes=settings.poll_window_minutes)
        self._names = NameGuard(settings)
        jobs.handle_with(check=self.check, cleanup=self.cleanup_provider)

    async def _owned(self, principal: Principal, domain_id: uuid.UUID) -> DomainRecord:
        async with self._db.connect() as conn:
            record = await repo.get_owned(conn, domain_id=domain_id, user_id=principal.user_id)
        if record is None:
            raise NotFound(f"No email domain with id {domain_id} was found for this account.")
        return record

    async def _store(
        self, record: DomainRecord, live: ProviderDomain, *, verifying: bool
    ) -> DomainRecord:
        if record.released_at is not None:
            return record  # claimed by another account: its provider answers are not this row's
        status = map_provider_status(
            live.status, live.reason, current=record.status, verifying=verifying
        )
        try:
            async with self._db.connect() as conn:
                stored = await repo.apply_check(
                    conn,
                    domain_id=record.id,
                    status=status,
                    reason=live.reason,
                    records=live.records,
                )
        except asyncpg.UniqueViolationError:
            async with self._db.connect() as conn:
                stored = await repo.apply_check(
                    conn,
                    domain_id=record.id,
                    status=Status.FAILED,
                    reason="verified_by_another_account",
                    records=live.records,
                )
            if stored is not None:
                await self._jobs.cancel_checks(record.id)
            raise Conflict(_TAKEN.format(name=record.domain)) from None
        if stored is None:
            raise NotFound(f"Email domain {record.id} was deleted meanwhile.")
        return stored

    async def _schedule_first_check(self, record: DomainRecord) -> None:
        if record.status is Status.VERIFYING:
            await self._jobs.schedule_check(record.id, attempt=0, delay_seconds=self._schedule[0])

    async def create(self, principal: Principal, raw_name: str) -> DomainRecord:
        """Add a sending domain: at the provider, stored with its records, then verified.

        The same user adding the same name again gets the existing domain back.
        """
        name = normalise_domain(raw_name)
        async with self._db.connect() as conn:
            existing = await repo.get_by_name(conn, user_id=principal.user_id, domain=name)
            if existing is not None:
                return existing
            await self._names.refuse_if_held(conn, principal, name)
        live = await self._provider.create(name, client_id=_client_id(principal.user_id, name))
        try:
            async with self._db.connect() as conn:
                record = await repo.insert_one(
                    conn,
                    user_id=principal.user_id,
                    domain=name,
                    agentmail_domain_id=live.domain_id,
                    status=Status.PENDING,
                    reason=live.reason,
                    records=live.records,
                )
                if record is None:  # a concurrent create of the same name won
                    record = await repo.get_by_name(conn, user_id=principal.user_id, domain=name)
                    assert record is not None
                    return record
        except asyncpg.UniqueViolationError:  # another account's create of the name won
            raise self._names.held(principal, name) from None
        await self._dns.publish(record)
        try:
            return await self._trigger(principal, record)
        except (ProviderUnavailable, ProviderRejected):
            # The domain exists at the provider and its records are stored: the create is
            # finished, only its verification did not start. It stays pending, to be verified
            # again; creating it again returns it.
            async with self._db.connect() as conn:
                pending = await repo.apply_check(
                    conn,
                    domain_id=record.id,
                    status=Status.PENDING,
                    reason="verification_not_started",
                    records=None,
                )
            assert pending is not None
            return pending

    async def _trigger(self, principal: Principal, record: DomainRecord) -> DomainRecord:
        """Pre-mark verifying, ask the provider to re-check, store its answer, keep polling.

        If the provider cannot be asked, the domain is put back as it was and the error raised.
        """
        async with self._db.connect() as conn:
            started = await repo.start_verification(
                conn, domain_id=record.id, user_id=principal.user_id
            )
        if started is None:
            raise NotFound(f"Email domain {record.id} was deleted meanwhile.")
        provider_id = started.agentmail_domain_id or started.domain
        try:
            await self._provider.verify(provider_id)
            live = await self._provider.get(provider_id)
        except (ProviderUnavailable, ProviderRejected):
            async with self._db.connect() as conn:
                await repo.apply_check(
                    conn,
                    domain_id=record.id,
                    status=record.status,
                    reason=record.status_reason,
                    records=None,
                )
            raise
        stored = started if live is None else await self._store(started, live, verifying=True)
        await self._schedule_first_check(stored)
        return stored

    async def verify(
        self, principal: Principal, domain_id: uuid.UUID, *, poll: bool
    ) -> DomainRecord:
        """Trigger (default): mark verifying, ask the provider to re-check, store the live
        status and records, and keep the poller going. Poll: only read the live status."""
        record = await self._owned(principal, domain_id)
        self._names.refuse_released(record)
        if not poll:
            return await self._trigger(principal, record)
        live = await self._provider.get(record.agentmail_domain_id or record.domain)
        if live is None:
            return record
        return await self._store(record, live, verifying=record.status is Status.VERIFYING)

    async def check(self, domain_id: uuid.UUID, attempt: int) -> None:
        """One poller step for a verifying domain; schedules the next one while needed.

        The next check is queued after this one's transaction ends, so it never finds the
        domain's lock still held by its predecessor.
        """
        async with self._db.transaction() as conn:
            if await repo.try_lock(conn, domain_id=domain_id):
                next_attempt, delay = (
                    attempt + 1,
                    await self._check_locked(conn, domain_id, attempt),
                )
            else:
                next_attempt, delay = attempt, _RETRY_LOCKED_SECONDS
        if delay is not None:
            await self._jobs.schedule_check(domain_id, attempt=next_attempt, delay_seconds=delay)

    async def _check_locked(
        self, conn: asyncpg.Connection, domain_id: uuid.UUID, attempt: int
    ) -> float | None:
        """Ask the provider and store its answer; the delay before the next check, if any."""
        record = await repo.get_by_id(conn, domain_id=domain_id)
        if record is None or record.status is not Status.VERIFYING:
            return None
        started = record.verification_started_at or record.updated_at
        deadline = started + self._window
        if datetime.now(UTC) >= deadline:
            await repo.apply_check(
                conn,
                domain_id=domain_id,
                status=Status.FAILED,
                reason="verification_timeout",
                records=None,
            )
            logger.info("domain %s not verified within the window: failed", domain_id)
            CHECKS.labels("timeout").inc()
            return None
        try:
            live = await self._provider.get(record.agentmail_domain_id or record.domain)
        except (ProviderUnavailable, ProviderRejected) as error:
            logger.warning("check of domain %s got no answer: %s", domain_id, error.message)
            live = None
        if live is not None:
            try:
                record = await self._store(record, live, verifying=True)
            except Conflict:
                return None
        CHECKS.labels("no_answer" if live is None else record.status.value).inc()
        if record.status is not Status.VERIFYING:
            return None
        step = self._schedule[min(attempt + 1, len(self._schedule) - 1)]
        remaining = (deadline - datetime.now(UTC)).total_seconds()
        return max(0.0, min(step, remaining))

    async def sync(self, principal: Principal, records: tuple[DomainRecord, ...]) -> SyncResult:
        """Refresh listed domains from the provider; a failure keeps that row's cached status."""

        async def refresh(record: DomainRecord) -> DomainRecord | None:
            try:
                live = await self._provider.get(record.agentmail_domain_id or record.domain)
                if live is None:
                    return record
                return await self._store(record, live, verifying=record.status is Status.VERIFYING)
            except (ProviderUnavailable, Conflict, NotFound) as error:
                logger.warning("sync of domain %s failed: %s", record.id, error)
                return None

        refreshed = await asyncio.gather(*(refresh(r) for r in records))
        return SyncResult(
            records=tuple(new or old for new, old in zip(refreshed, records, strict=True)),
            failed_ids=tuple(
                old.id for new, old in zip(refreshed, records, strict=True) if new is None
            ),
        )

    async def delete(self, principal: Principal, domain_id: uuid.UUID) -> DomainRecord:
        """Remove the row now; provider clean-up is best effort (logged, safe to retry)."""
        async with self._db.connect() as conn:
            record = await repo.delete_owned(conn, domain_id=domain_id, user_id=principal.user_id)
        if record is None:
            raise NotFound(f"No email domain with id {domain_id} was found for this account.")
        await self._jobs.cancel_checks(domain_id)
        await self._jobs.schedule_cleanup(record.agentmail_domain_id or record.domain)
        return record

    async def cleanup_provider(self, provider_domain_id: str) -> None:
        """Delete the domain at the provider unless another account still uses it."""
        async with self._db.connect() as conn:
            if await repo.provider_domain_in_use(conn, agentmail_domain_id=provider_domain_id):
                logger.info("%s is still used by another account: kept", provider_domain_id)
                return
        await self._provider.delete(provider_domain_id)
        await self._dns.cleanup(provider_domain_id)
        logger.info(
            "deleted %s at %s and its published records", provider_domain_id, self._provider.name
        )
