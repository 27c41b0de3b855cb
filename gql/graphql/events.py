"""GraphQL types of domain events: what `statusHistory` pages over and subscriptions yield."""

import enum
import uuid
from datetime import datetime

import strawberry

from gql.graphql.types import Domain, DomainStatus, PageInfo
from gql.models import DomainEvent as DomainEventValue
from gql.models import EventPage
from gql.services.events import encode_history_cursor


@strawberry.enum(description="What kind of change an event records.")
class DomainEventKind(enum.Enum):
    CREATED = "created"
    STATUS_CHANGED = "status_changed"
    RECORDS_CHANGED = "records_changed"
    DELETED = "deleted"


@strawberry.enum(description="What made the domain change.")
class DomainEventCause(enum.Enum):
    CREATE = "create"
    OVERRIDE = "override"
    VERIFY = "verify"
    POLL = "poll"
    SYNC = "sync"
    POLLER = "poller"
    TIMEOUT = "timeout"
    CLAIM = "claim"
    DELETE = "delete"


@strawberry.type(description="One change of a domain, stored when it was made.")
class DomainEvent:
    id: strawberry.ID = strawberry.field(
        description=(
            "Increases with every event; pass the last one received as `after` to resume a "
            "subscription without missing or repeating events."
        )
    )
    domain_id: uuid.UUID
    kind: DomainEventKind
    from_status: DomainStatus | None = strawberry.field(
        description="The status before the change; null for CREATED."
    )
    to_status: DomainStatus | None = strawberry.field(
        description="The status after the change; null for DELETED."
    )
    reason: str | None = strawberry.field(description="The status reason after the change.")
    cause: DomainEventCause
    actor: str = strawberry.field(
        description=(
            "Who made the change: api_key:<key id>, session:<user id>, or system (the poller)."
        )
    )
    request_id: str | None = strawberry.field(
        description="The request that made the change, when it came through the API."
    )
    occurred_at: datetime
    domain: Domain = strawberry.field(
        description="The domain as it was right after the change (as it was deleted, for DELETED)."
    )

    @classmethod
    def from_value(cls, event: DomainEventValue) -> "DomainEvent":
        return cls(
            id=strawberry.ID(str(event.id)),
            domain_id=event.domain_id,
            kind=DomainEventKind(event.kind.value),
            from_status=None if event.from_status is None else DomainStatus(event.from_status),
            to_status=None if event.to_status is None else DomainStatus(event.to_status),
            reason=event.reason,
            cause=DomainEventCause(event.cause.value),
            actor=event.actor,
            request_id=event.request_id,
            occurred_at=event.created_at,
            domain=Domain.from_record(event.domain),
        )


@strawberry.type(description="An event and the cursor to continue after it.")
class DomainEventEdge:
    node: DomainEvent
    cursor: str


@strawberry.type(description="A page of a domain's events (Relay connection), newest first.")
class DomainEventConnection:
    edges: list[DomainEventEdge]
    page_info: PageInfo

    @classmethod
    def from_page(cls, page: EventPage) -> "DomainEventConnection":
        edges = [
            DomainEventEdge(node=DomainEvent.from_value(e), cursor=encode_history_cursor(e))
            for e in page.events
        ]
        return cls(
            edges=edges,
            page_info=PageInfo(
                has_next_page=page.has_next_page,
                has_previous_page=False,
                start_cursor=edges[0].cursor if edges else None,
                end_cursor=edges[-1].cursor if edges else None,
            ),
        )
