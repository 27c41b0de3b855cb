"""The domain lifecycle at the caller's request: create, verify, sync and delete.

Every status change goes through `StateWriter.apply` (the state machine); this module decides
which provider calls to make and what to answer.
"""

import asyncio
import logging
import uuid
from dataclasses import dataclass

import asyncpg

from gql.db import domains as repo
from gql.db.engine import Database
from gql.errors import Conflict, DomainError, NotFound
from gql.models import DomainRecord, Principal
from gql.providers.verification import (
    ProviderDomain,
    ProviderRejected,
    ProviderUnavailable,
    VerificationProvider,
)
from gql.services.claims import NameGuard
from gql.services.dns import DnsService
from gql.services.events import actor_of
from gql.services.names import normalise_domain
from gql.services.state_writer import Applied, StateWriter
from gql.services.transitions import Answer, Cause, Event
from gql.settings import Settings

logger = logging.getLogger(__name__)

_TAKEN = (
    "Another account has already verified {name}; the first account to verify a domain keeps "
    "it. Ask that account to delete it, or use another domain."
)
_LIMIT = (
    "This account already has {count} domains, the most one account may have "
    "(MAX_DOMAINS_PER_ACCOUNT = {limit}). Delete a domain you no longer use, then add {name}."
)


@dataclass(frozen=True, slots=True)
class SyncResult:
    records: tuple[DomainRecord, ...]
    failed_ids: tuple[uuid.UUID, ...]

    @property
    def partial(self) -> bool:
        return bool(self.failed_ids)


def answer_of(live: ProviderDomain) -> Answer:
    return Answer(status=live.status, reason=live.reason, records=live.records)


def _client_id(user_id: uuid.UUID, domain: str) -> str:
    # Stable per (user, name): a retried create replays at the provider instead of duplicating.
    return str(uuid.uuid5(user_id, domain))


def _not_found(domain_id: uuid.UUID) -> NotFound:
    return NotFound(f"No email domain with id {domain_id} was found for this account.")


class LifecycleService:
    """Every step a caller asks for that talks to the verification provider."""

    def __init__(
        self,
        db: Database,
        provider: VerificationProvider,
        dns: DnsService,
        writer: StateWriter,
        settings: Settings,
    ) -> None:
        self._db = db
        self._provider = provider
        self._dns = dns
        self._writer = writer
        self._max_domains = settings.max_domains_per_account
        self._names = NameGuard(settings)

    async def create(self, principal: Principal, raw_name: str) -> DomainRecord:
        """Add a sending domain: at the provider, stored with its records, then verified.

        The same user adding the same name again gets the existing domain back.
        """
        name = normalise_domain(raw_name)
        async with self._db.connect() as conn:
            existing = await repo.get_by_name_and_owner(
                conn, user_id=principal.user_id, domain=name
            )
            if existing is not None:
                return existing
            await self._names.refuse_if_held(conn, principal, name)
            count = await repo.count(conn, user_id=principal.user_id, status=None)
        if count >= self._max_domains:
            raise Conflict(_LIMIT.format(count=count, limit=self._max_domains, name=name))
        live = await self._provider.create(name, client_id=_client_id(principal.user_id, name))
        try:
            record = await self._writer.create(
                Event(Cause.CREATE, answer=answer_of(live), actor=actor_of(principal)),
                user_id=principal.user_id,
                domain=name,
                agentmail_domain_id=live.domain_id,
            )
        except asyncpg.UniqueViolationError:  # another account's create of the name won
            raise self._names.held(principal, name) from None
        if record is None:  # a concurrent create of the same name won
            async with self._db.connect() as conn:
                record = await repo.get_by_name_and_owner(
                    conn, user_id=principal.user_id, domain=name
                )
            if record is None:
                raise NotFound(f"{name} was deleted while it was being added; add it again.")
            return record
        await self._dns.publish(record)
        return await self._trigger(record, creating=True, actor=actor_of(principal))

    async def _apply(
        self, event: Event, record: DomainRecord, *, seen: DomainRecord | None = None
    ) -> Applied:
        applied = await self._writer.apply(
            event, domain_id=record.id, owner_id=record.user_id, seen=seen
        )
        if applied.record is None:
            raise NotFound(f"Email domain {record.id} was deleted meanwhile.")
        return applied

    async def _trigger(self, record: DomainRecord, *, creating: bool, actor: str) -> DomainRecord:
        """Mark verifying (a new window, a check queued, in one transaction), ask the provider
        to re-check, and store what it says.

        When the provider refuses, the domain is `pending` (verification_not_started) and the
        refusal is raised. When it cannot be asked, a trigger stays `verifying` with its check
        queued and says so; a create answers `pending`, to be verified again.
        """
        started = (await self._apply(Event(Cause.VERIFY, actor=actor), record)).record
        assert started is not None
        provider_id = started.agentmail_domain_id or started.domain
        try:
            await self._provider.verify(provider_id)
        except (ProviderRejected, ProviderUnavailable) as error:
            if creating or isinstance(error, ProviderRejected):
                refused = (
                    await self._apply(Event(Cause.VERIFY_REFUSED, actor=actor), started)
                ).record
                assert refused is not None
                if creating:
                    # The domain exists at the provider and its records are stored: the create
                    # is finished, only its verification did not start.
                    return refused
                raise
            raise type(error)(
                f"{error.message} The domain stays verifying: it is checked again in the "
                "background, or trigger the verification again later."
            ) from error
        try:
            live = await self._provider.get(provider_id)
        except ProviderUnavailable as error:
            # The verification was triggered; the queued check reads its outcome.
            logger.warning("reading %s after its verify failed: %s", provider_id, error.message)
            return started
        if live is None:
            return started
        return await self._store(Event(Cause.VERIFY, answer=answer_of(live), actor=actor), started)

    async def _store(self, event: Event, record: DomainRecord) -> DomainRecord:
        applied = await self._apply(event, record, seen=record)
        if applied.taken:
            raise Conflict(_TAKEN.format(name=record.domain))
        assert applied.record is not None
        return applied.record

    async def _owned(self, principal: Principal, domain_id: uuid.UUID) -> DomainRecord:
        async with self._db.connect() as conn:
            record = await repo.get_by_id_and_owner(
                conn, domain_id=domain_id, user_id=principal.user_id
            )
        if record is None:
            raise _not_found(domain_id)
        return record

    async def verify(
        self, principal: Principal, domain_id: uuid.UUID, *, poll: bool
    ) -> DomainRecord:
        """Trigger (default): mark verifying, ask the provider to re-check, store the live
        status and records, and keep the poller going. Poll: only read the live status."""
        record = await self._owned(principal, domain_id)
        self._names.refuse_released(record)
        if not poll:
            return await self._trigger(record, creating=False, actor=actor_of(principal))
        live = await self._provider.get(record.agentmail_domain_id or record.domain)
        if live is None:
            return record
        return await self._store(
            Event(Cause.POLL, answer=answer_of(live), actor=actor_of(principal)), record
        )

    async def sync(self, principal: Principal, records: tuple[DomainRecord, ...]) -> SyncResult:
        """Refresh listed domains from the provider (a few at a time: the request's budget
        bounds its provider calls).

        Any failure for one domain (the provider, the database, the budget) keeps that row as
        it was and lists its id as failed; the others are refreshed.
        """

        async def refresh(record: DomainRecord) -> DomainRecord | None:
            try:
                live = await self._provider.get(record.agentmail_domain_id or record.domain)
                if live is None:
                    return record
                applied = await self._writer.apply(
                    Event(Cause.SYNC, answer=answer_of(live), actor=actor_of(principal)),
                    domain_id=record.id,
                    owner_id=record.user_id,
                    seen=record,
                )
            except DomainError as error:
                logger.warning("sync of domain %s failed: %s", record.id, error.message)
                return None
            return applied.record

        refreshed = await asyncio.gather(*(refresh(r) for r in records))
        pairs = list(zip(refreshed, records, strict=True))
        return SyncResult(
            records=tuple(new or old for new, old in pairs),
            failed_ids=tuple(old.id for new, old in pairs if new is None),
        )

    async def delete(self, principal: Principal, domain_id: uuid.UUID) -> DomainRecord:
        """Remove the row, drop its checks and queue the provider clean-up, in one transaction."""
        applied = await self._writer.apply(
            Event(Cause.DELETE, actor=actor_of(principal)),
            domain_id=domain_id,
            owner_id=principal.user_id,
        )
        if applied.record is None:
            raise _not_found(domain_id)
        return applied.record

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
