"""Plain values passed between layers: what services return and transports render."""

import enum
import uuid
from dataclasses import dataclass
from datetime import datetime


class Status(enum.StrEnum):
    PENDING = "pending"
    VERIFYING = "verifying"
    VERIFIED = "verified"
    FAILED = "failed"


OVERRIDABLE_STATUSES = (Status.PENDING, Status.VERIFYING, Status.FAILED)


@dataclass(frozen=True, slots=True)
class DnsRecord:
    type: str
    name: str
    value: str
    priority: int | None
    status: str | None = None  # VALID | MISSING | INVALID, as the provider last reported it


@dataclass(frozen=True, slots=True)
class DomainRecord:
    id: uuid.UUID
    user_id: uuid.UUID
    domain: str
    agentmail_domain_id: str | None
    status: Status
    dns_records: tuple[DnsRecord, ...]
    verified_at: datetime | None
    created_at: datetime
    updated_at: datetime
    status_reason: str | None = None
    verification_started_at: datetime | None = None
    last_checked_at: datetime | None = None
    # Set when another account claimed the name: the row stays, but no longer holds it.
    released_at: datetime | None = None
    version: int = 0


@dataclass(frozen=True, slots=True)
class Cursor:
    """Position after which the next page starts (newest first)."""

    created_at: datetime
    id: uuid.UUID


@dataclass(frozen=True, slots=True)
class DomainPage:
    records: tuple[DomainRecord, ...]
    has_next_page: bool


@dataclass(frozen=True, slots=True)
class ApiKeyInfo:
    id: uuid.UUID
    user_id: uuid.UUID
    prefix: str
    created_at: datetime
    revoked_at: datetime | None


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: every read and write is scoped to `user_id`."""

    user_id: uuid.UUID
    via: str
    actor: str | None = None  # "api_key:<key id>" or "session:<subject>"; recorded in events


class EventKind(enum.StrEnum):
    CREATED = "created"
    STATUS_CHANGED = "status_changed"
    RECORDS_CHANGED = "records_changed"
    DELETED = "deleted"


class EventCause(enum.StrEnum):
    """What made a domain change."""

    CREATE = "create"
    OVERRIDE = "override"
    VERIFY = "verify"
    POLL = "poll"
    SYNC = "sync"
    POLLER = "poller"
    TIMEOUT = "timeout"
    CLAIM = "claim"
    DELETE = "delete"


SYSTEM_ACTOR = "system"


@dataclass(frozen=True, slots=True)
class Change:
    """Why a write happens and on whose behalf: the cause and actor of the events it records."""

    cause: EventCause
    actor: str
    request_id: str | None = None


@dataclass(frozen=True, slots=True)
class DomainEvent:
    """One stored change of a domain, with the domain as it was right after it."""

    id: int
    domain_id: uuid.UUID
    user_id: uuid.UUID
    kind: EventKind
    from_status: Status | None
    to_status: Status | None
    reason: str | None
    cause: EventCause
    actor: str
    request_id: str | None
    created_at: datetime
    domain: DomainRecord


@dataclass(frozen=True, slots=True)
class EventPage:
    events: tuple[DomainEvent, ...]
    has_next_page: bool
