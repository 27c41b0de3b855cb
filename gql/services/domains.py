"""Reading custom sending domains and overriding their cached status."""

import base64
import binascii
import uuid
from datetime import UTC, datetime

from gql.db import domains as repo
from gql.db.engine import Database
from gql.errors import InvalidInput, NotFound
from gql.models import (
    OVERRIDABLE_STATUSES,
    Cursor,
    DomainPage,
    DomainRecord,
    Principal,
    Status,
)

MAX_PAGE_SIZE = 100
DEFAULT_PAGE_SIZE = 50
_ALLOWED = ", ".join(s.value for s in OVERRIDABLE_STATUSES)


def parse_override_status(value: object) -> Status:
    """The status a client asked to set, or `InvalidInput` saying what is allowed."""
    if value == Status.VERIFIED.value:
        raise InvalidInput(
            "`verified` cannot be set by a status override: only the provider's verification "
            "can mark a domain verified. Trigger it with the verify operation "
            "(verifyEmailDomain) instead, or send one of: " + _ALLOWED + "."
        )
    if not isinstance(value, str) or value not in {s.value for s in OVERRIDABLE_STATUSES}:
        raise InvalidInput(f"`status` must be one of: {_ALLOWED}.")
    return Status(value)


def encode_cursor(record: DomainRecord) -> str:
    raw = f"{record.created_at.isoformat()}|{record.id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> Cursor:
    """The position a cursor from `encode_cursor` names, or `InvalidInput` for anything else
    (including a forged one whose time cannot be moved to UTC, such as year 1 at +23:59)."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        created_at, domain_id = raw.split("|")
        moment = datetime.fromisoformat(created_at)
        if moment.tzinfo is None:
            raise ValueError("a cursor's time has an offset")
        parsed = Cursor(created_at=moment.astimezone(UTC), id=uuid.UUID(domain_id))
    except (ValueError, OverflowError, binascii.Error, UnicodeDecodeError):
        raise InvalidInput(
            "`after` is not a cursor from this API: pass an `endCursor` or `cursor` "
            "returned by emailDomains, or omit it to start from the newest domain."
        ) from None
    return parsed


class DomainService:
    """Owner-scoped reads and the status override; every call is one database round trip."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def find(self, principal: Principal, domain_id: uuid.UUID) -> DomainRecord | None:
        """The caller's domain, or None when it does not exist or belongs to someone else."""
        async with self._db.connect() as conn:
            return await repo.get_owned(conn, domain_id=domain_id, user_id=principal.user_id)

    async def list_page(
        self,
        principal: Principal,
        *,
        first: int | None,
        after: str | None,
        status: Status | None,
    ) -> DomainPage:
        """A page of the caller's domains (`first`, default 50), newest first, after a cursor."""
        if first is None:
            first = DEFAULT_PAGE_SIZE
        if not 0 <= first <= MAX_PAGE_SIZE:
            raise InvalidInput(f"`first` must be between 0 and {MAX_PAGE_SIZE}.")
        cursor = None if after is None else decode_cursor(after)
        async with self._db.connect() as conn:
            return await repo.list_page(
                conn, user_id=principal.user_id, first=first, after=cursor, status=status
            )

    async def count(self, principal: Principal, *, status: Status | None) -> int:
        async with self._db.connect() as conn:
            return await repo.count(conn, user_id=principal.user_id, status=status)

    async def override_status(
        self, principal: Principal, domain_id: uuid.UUID, status: Status
    ) -> DomainRecord:
        """Override the cached status without touching the provider or DNS.

        `verified` is refused; setting the current status is a no-op that returns the row with
        `updated_at` unchanged; a change moves `updated_at` forward and keeps `verified_at`.
        """
        if status is Status.VERIFIED:
            parse_override_status(status.value)
        async with self._db.connect() as conn:
            record = await repo.set_status(
                conn, domain_id=domain_id, user_id=principal.user_id, status=status
            )
        if record is None:
            raise NotFound(f"No email domain with id {domain_id} was found for this account.")
        return record
