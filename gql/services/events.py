"""Domain events: recorded with every change, paged as history, streamed to subscribers."""

import base64
import binascii
import logging
import uuid
from collections.abc import AsyncGenerator
from datetime import UTC, datetime, timedelta

import asyncpg
from procrastinate import App

from gql.db import domains as domains_repo
from gql.db import events as repo
from gql.db.engine import Database
from gql.errors import DomainError, InvalidInput, NotFound
from gql.models import (
    Change,
    DomainEvent,
    DomainRecord,
    EventCause,
    EventKind,
    EventPage,
    Principal,
)
from gql.observability.request_id import current_request_id
from gql.services.notifications import EventHub
from gql.services.transitions import Cause, Event
from gql.settings import Settings

logger = logging.getLogger(__name__)

MAX_HISTORY_PAGE = 100
DEFAULT_HISTORY_PAGE = 20
_CATCH_UP_PAGE = 100
_PRUNE_BATCH = 10_000


def actor_of(principal: Principal) -> str:
    """Who an event names as the actor: the API key or session behind the call."""
    return principal.actor or f"user:{principal.user_id}"


# The state machine's causes, as events name them: a refused trigger is part of the verify,
# the sweeper's repair part of the poller's work.
_EVENT_CAUSES = {
    Cause.CREATE: EventCause.CREATE,
    Cause.OVERRIDE: EventCause.OVERRIDE,
    Cause.VERIFY: EventCause.VERIFY,
    Cause.VERIFY_REFUSED: EventCause.VERIFY,
    Cause.POLL: EventCause.POLL,
    Cause.SYNC: EventCause.SYNC,
    Cause.POLLER: EventCause.POLLER,
    Cause.SWEEP: EventCause.POLLER,
    Cause.TIMEOUT: EventCause.TIMEOUT,
    Cause.CLAIMED: EventCause.CLAIM,
    Cause.DELETE: EventCause.DELETE,
}


def change_for(event: Event) -> Change:
    """The cause and actor a state-machine event's change is recorded with."""
    return Change(_EVENT_CAUSES[event.cause], event.actor, current_request_id())


def _kind(before: DomainRecord | None, after: DomainRecord | None) -> EventKind | None:
    if before is None:
        return None if after is None else EventKind.CREATED
    if after is None:
        return EventKind.DELETED
    if (before.status, before.status_reason, before.verified_at) != (
        after.status,
        after.status_reason,
        after.verified_at,
    ):
        return EventKind.STATUS_CHANGED
    if before.dns_records != after.dns_records:
        return EventKind.RECORDS_CHANGED
    # Anything else a caller sees moves `updated_at`: it is recorded too.
    return EventKind.STATUS_CHANGED if before.updated_at != after.updated_at else None


async def record_change(
    conn: asyncpg.Connection,
    *,
    before: DomainRecord | None,
    after: DomainRecord | None,
    change: Change,
) -> int | None:
    """Append the event for one write of a domain, in the writer's transaction.

    Call it after the row change, on the same connection, before the commit: the event and the
    change commit together or not at all. A transaction that changes several domains makes all
    its row changes first and records their events last (the first event takes the lock that
    orders event ids; a row lock taken after it could deadlock with another writer). A write
    that changed nothing a caller can see records nothing. `status_changed` covers a new status
    or reason (records may have changed with it); `records_changed` is a change of the records
    alone. The event id, or None.
    """
    kind = _kind(before, after)
    if kind is None:
        return None
    domain = after if after is not None else before
    assert domain is not None
    return await repo.append(
        conn,
        kind=kind,
        domain=domain,
        from_status=None if before is None else before.status,
        cause=change.cause,
        actor=change.actor,
        request_id=change.request_id,
    )


class SubscriberTooSlow(DomainError):
    """The client did not read events as fast as they came; its subscription was ended."""

    http_status = 429
    rest_code = "subscriber_too_slow"
    graphql_code = "SUBSCRIBER_TOO_SLOW"

    def __init__(self, message: str, *, resume_after: int | None) -> None:
        super().__init__(message)
        self.resume_after = resume_after

    @property
    def extensions(self) -> dict[str, object]:
        resume = None if self.resume_after is None else str(self.resume_after)
        return {"code": self.graphql_code, "resumeAfter": resume}


def encode_history_cursor(event: DomainEvent) -> str:
    return base64.urlsafe_b64encode(f"event:{event.id}".encode()).decode().rstrip("=")


def _decode_history_cursor(cursor: str) -> int:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        prefix, _, value = raw.partition(":")
        if prefix != "event":
            raise ValueError(prefix)
        return int(value)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise InvalidInput(
            "`after` is not a statusHistory cursor: pass an `endCursor` or `cursor` returned "
            "by statusHistory, or omit it to start from the newest event."
        ) from None


def parse_event_id(value: str) -> int:
    """An event id as clients send it back (`after`), or a clear error."""
    if not value.isdigit() or len(value) > 19:
        raise InvalidInput(
            '`after` must be the `id` of an event this subscription delivered, e.g. "42".'
        )
    return int(value)


class EventService:
    """History of one domain, live streams of a user's events, and retention."""

    def __init__(self, db: Database, hub: EventHub, settings: Settings) -> None:
        self._db = db
        self.hub = hub
        self._retention = timedelta(days=settings.event_retention_days)

    async def history(
        self, principal: Principal, domain_id: uuid.UUID, *, first: int | None, after: str | None
    ) -> EventPage:
        """The domain's events, newest first (`first`, default 20, at most 100)."""
        if first is None:
            first = DEFAULT_HISTORY_PAGE
        if not 0 <= first <= MAX_HISTORY_PAGE:
            raise InvalidInput(f"`first` must be between 0 and {MAX_HISTORY_PAGE}.")
        before_id = None if after is None else _decode_history_cursor(after)
        async with self._db.connect() as conn:
            events = await repo.history(
                conn,
                user_id=principal.user_id,
                domain_id=domain_id,
                before_id=before_id,
                limit=first + 1,
            )
        return EventPage(events=tuple(events[:first]), has_next_page=len(events) > first)

    async def stream(
        self,
        principal: Principal,
        *,
        domain_id: uuid.UUID | None,
        after: int | None,
        connection: object,
    ) -> AsyncGenerator[DomainEvent, None]:
        """The caller's events (one domain's, with `domain_id`) as they are committed.

        With `after`, the stored events after that id come first, then live ones, each once
        and in order. A one-domain stream ends after the domain's `deleted` event. A consumer
        that falls `subscription_queue_size` events behind is ended with `SubscriberTooSlow`,
        which says where to resume.
        """
        if domain_id is not None:
            async with self._db.connect() as conn:
                owned = await domains_repo.get_by_id_and_owner(
                    conn, domain_id=domain_id, user_id=principal.user_id
                )
            if owned is None:
                raise NotFound(f"No email domain with id {domain_id} was found for this account.")
        subscriber = self.hub.subscribe(
            user_id=principal.user_id, domain_id=domain_id, connection=connection
        )
        last = after
        try:
            while last is not None and last < subscriber.start:
                async with self._db.connect() as conn:
                    page = await repo.owned_between(
                        conn,
                        user_id=principal.user_id,
                        domain_id=domain_id,
                        after_id=last,
                        until_id=subscriber.start,
                        limit=_CATCH_UP_PAGE,
                    )
                for event in page:
                    yield event
                    last = event.id
                    if domain_id is not None and event.kind is EventKind.DELETED:
                        return
                if len(page) < _CATCH_UP_PAGE:
                    break
            while True:
                live = await subscriber.queue.get()
                if live is None:
                    raise SubscriberTooSlow(
                        "Events arrived faster than this subscription read them, so it was "
                        "ended. Subscribe again with `after` set to the last event id you "
                        "received (extensions.resumeAfter) to get the rest.",
                        resume_after=last,
                    )
                yield live
                last = live.id
                if domain_id is not None and live.kind is EventKind.DELETED:
                    return
        finally:
            self.hub.unsubscribe(subscriber)

    async def prune(self) -> int:
        """Delete events older than the retention period; how many went."""
        before = datetime.now(UTC) - self._retention
        total = 0
        while True:
            async with self._db.connect() as conn:
                deleted = await repo.prune(conn, before=before, limit=_PRUNE_BATCH)
            total += deleted
            if deleted < _PRUNE_BATCH:
                return total

    def register_pruning(self, app: App, *, queue: str) -> None:
        """Prune hourly on the job queue (any one worker runs it)."""

        @app.periodic(cron="17 * * * *")
        @app.task(name="prune_domain_events", queue=queue, queueing_lock="prune_domain_events")
        async def prune_domain_events(timestamp: int) -> None:
            deleted = await self.prune()
            if deleted:
                logger.info("pruned %s domain events older than the retention period", deleted)
