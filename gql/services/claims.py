"""One holder per name, and the DNS claim that moves a name to another account.

While an account holds a name (a row of it in any status), another account's create of the name
is a CONFLICT that says how to claim it: publish a TXT record at `_gateway-claim.<name>` whose
value is derived from the claimant's account and the name (an HMAC keyed with CLAIM_SECRET), so
only someone who controls the name's DNS can publish it. When the gateway sees the value, the
holder's row steps aside (`failed`, `claimed_by_another_account`) and the claimant's create runs
as any create does. Before that, nothing the claimant does reaches the holder's provider domain.
"""

import hashlib
import hmac
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import asyncpg

from gql.db import claims as repo
from gql.db.engine import Database
from gql.errors import Conflict
from gql.models import Change, DomainRecord, EventCause, Principal
from gql.observability.request_id import current_request_id
from gql.providers.dns_resolver import TxtResolver
from gql.services.events import actor_of, record_change
from gql.services.names import normalise_domain
from gql.services.state_writer import StateWriter
from gql.services.transitions import CLAIMED_REASON, Cause, Event
from gql.settings import Settings

logger = logging.getLogger(__name__)

CLAIM_LABEL = "_gateway-claim"
CLAIM_PREFIX = "gateway-claim="
# Development and tests only: production refuses to start without CLAIM_SECRET.
_DEVELOPMENT_KEY = b"email-domain-gateway development claim key"


@dataclass(frozen=True, slots=True)
class Challenge:
    """The TXT record that proves control of `domain`'s DNS for one account."""

    domain: str
    record_name: str
    record_value: str
    record_type: str = "TXT"

    def instructions(self) -> str:
        return (
            f'publish a TXT record at {self.record_name} with the value "{self.record_value}" '
            f'in the DNS of {self.domain}, then call claimEmailDomain(domain: "{self.domain}")'
        )

    def extension(self) -> dict[str, object]:
        return {
            "domain": self.domain,
            "recordType": self.record_type,
            "recordName": self.record_name,
            "recordValue": self.record_value,
            "mutation": "claimEmailDomain",
        }


class NameHeld(Conflict):
    """Another account holds the name; `extensions.claim` says how to claim it."""

    def __init__(self, message: str, challenge: Challenge) -> None:
        super().__init__(message)
        self.challenge = challenge

    @property
    def extensions(self) -> dict[str, object]:
        return {"code": self.graphql_code, "claim": self.challenge.extension()}


class NameGuard:
    """The checks the lifecycle makes so that a name has one holder."""

    def __init__(self, settings: Settings) -> None:
        secret = settings.claim_secret
        self._key = _DEVELOPMENT_KEY if secret is None else secret.get_secret_value().encode()

    def challenge(self, user_id: uuid.UUID, domain: str) -> Challenge:
        digest = hmac.new(self._key, f"{user_id}:{domain}".encode(), hashlib.sha256)
        return Challenge(
            domain=domain,
            record_name=f"{CLAIM_LABEL}.{domain}",
            record_value=CLAIM_PREFIX + digest.hexdigest()[:32],
        )

    def held(self, principal: Principal, domain: str) -> NameHeld:
        challenge = self.challenge(principal.user_id, domain)
        return NameHeld(
            f"{domain} is held by another account. To claim it, {challenge.instructions()}; "
            "the name then moves to your account and the other account's domain becomes failed.",
            challenge,
        )

    async def refuse_if_held(
        self, conn: asyncpg.Connection, principal: Principal, domain: str
    ) -> None:
        """Raise `NameHeld` when another account holds `domain`."""
        holder = await repo.holder(conn, domain=domain)
        if holder is not None and holder.user_id != principal.user_id:
            raise self.held(principal, domain)

    def refuse_released(self, record: DomainRecord) -> None:
        """A row that lost its name to a claim never reaches the provider again."""
        if record.released_at is not None:
            raise Conflict(
                f"Another account claimed {record.domain} by proving control of its DNS, so "
                f"this domain no longer verifies. To take it back, "
                f"{self.challenge(record.user_id, record.domain).instructions()}."
            )


class ClaimService:
    def __init__(
        self,
        db: Database,
        resolver: TxtResolver,
        guard: NameGuard,
        create: Callable[[Principal, str], Awaitable[DomainRecord]],
        writer: StateWriter,
    ) -> None:
        """`create` is the lifecycle's create, which a proven claim ends with."""
        self._db = db
        self._resolver = resolver
        self._guard = guard
        self._create = create
        self._writer = writer

    def challenge(self, principal: Principal, raw_name: str) -> Challenge:
        """What the caller must publish to claim `raw_name`."""
        return self._guard.challenge(principal.user_id, normalise_domain(raw_name))

    async def claim(self, principal: Principal, raw_name: str) -> DomainRecord:
        """Move a name to the caller once its DNS shows the caller's challenge.

        A name nobody holds is simply created; a name the caller holds is returned as it is.
        """
        name = normalise_domain(raw_name)
        async with self._db.connect() as conn:
            holder = await repo.holder(conn, domain=name)
        if holder is not None and holder.user_id == principal.user_id:
            return holder
        if holder is not None:
            await self._proven(principal, name)
            # The holder's row steps aside through the state machine: failed, released, its
            # checks dropped and its event recorded, in one transaction.
            released = await self._writer.apply(
                Event(Cause.CLAIMED, actor=actor_of(principal)), domain_id=holder.id, seen=holder
            )
            if (
                released.record is None
                or released.decision is None
                or not released.decision.changed
            ):
                raise Conflict(f"{name} changed hands while it was being claimed: claim it again.")
            logger.info(
                "%s claimed by user %s from user %s (%s)",
                name,
                principal.user_id,
                holder.user_id,
                CLAIMED_REASON,
            )
        async with self._db.transaction() as conn:
            # The claimant's own row that once lost this name goes, so the create can add it.
            dropped = await repo.drop_released(conn, user_id=principal.user_id, domain=name)
            if dropped is not None:
                change = Change(EventCause.CLAIM, actor_of(principal), current_request_id())
                await record_change(conn, before=dropped, after=None, change=change)
        return await self._create(principal, name)

    async def _proven(self, principal: Principal, name: str) -> None:
        challenge = self._guard.challenge(principal.user_id, name)
        seen = await self._resolver.txt(challenge.record_name)
        if challenge.record_value in seen:
            return
        found = (
            "no TXT record is published there yet"
            if not seen
            else f"the TXT values there are {', '.join(repr(v) for v in seen[:5])}"
        )
        raise NameHeld(
            f"The claim of {name} is not proven: {found}. To claim it, "
            f"{challenge.instructions()} again (new records can take a few minutes to be "
            "visible to the gateway's resolvers).",
            challenge,
        )
