"""Every query on `email_domains`."""

import uuid
from collections.abc import Iterable, Mapping, Sequence
from functools import cache
from typing import Any

import asyncpg
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from gql.db.statements import Statement, compile_statement
from gql.db.tables import email_domains as t
from gql.models import Cursor, DnsRecord, DomainPage, DomainRecord, Status

_COLUMNS = tuple(t.c)
_OWNED = (t.c.id == sa.bindparam("domain_id"), t.c.user_id == sa.bindparam("owner_id"))

_GET = compile_statement(sa.select(*_COLUMNS).where(*_OWNED))

# The override in one round trip. A single UPDATE, because when it has to wait for a concurrent
# writer PostgreSQL re-reads the newest row version before applying it, so the row it returns is
# always current (a "change only if different, else SELECT" variant answered with stale rows
# under contention). Setting the status the row already has keeps `updated_at`; a change moves
# it strictly forward even if the clock steps back.
_new_status_param = sa.bindparam("new_status", type_=sa.String)
_SET_STATUS = compile_statement(
    sa.update(t)
    .where(*_OWNED)
    .values(
        status=_new_status_param,
        updated_at=sa.case(
            (t.c.status == _new_status_param, t.c.updated_at),
            else_=sa.func.greatest(
                sa.func.clock_timestamp(), t.c.updated_at + sa.text("interval '1 microsecond'")
            ),
        ),
    )
    .returning(*_COLUMNS)
)


def _dns_records(raw: Iterable[Mapping[str, Any]]) -> tuple[DnsRecord, ...]:
    return tuple(
        DnsRecord(
            type=str(r["type"]),
            name=str(r["name"]),
            value=str(r["value"]),
            priority=None if r.get("priority") is None else int(r["priority"]),
        )
        for r in raw
    )


def to_record(row: asyncpg.Record) -> DomainRecord:
    return DomainRecord(
        id=row["id"],
        user_id=row["user_id"],
        domain=row["domain"],
        agentmail_domain_id=row["agentmail_domain_id"],
        status=Status(row["status"]),
        dns_records=_dns_records(row["dns_records"]),
        verified_at=row["verified_at"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        status_reason=row["status_reason"],
        verification_started_at=row["verification_started_at"],
        last_checked_at=row["last_checked_at"],
        released_at=row["released_at"],
    )


async def get_owned(
    conn: asyncpg.Connection, *, domain_id: uuid.UUID, user_id: uuid.UUID
) -> DomainRecord | None:
    row = await _GET.fetchrow(conn, domain_id=domain_id, owner_id=user_id)
    return None if row is None else to_record(row)


async def set_status(
    conn: asyncpg.Connection, *, domain_id: uuid.UUID, user_id: uuid.UUID, status: Status
) -> DomainRecord | None:
    """Set the cached status of an owned domain; None when there is no such owned domain."""
    row = await _SET_STATUS.fetchrow(
        conn, domain_id=domain_id, owner_id=user_id, new_status=status.value
    )
    return None if row is None else to_record(row)


def _filter(*, by_status: bool) -> list[sa.ColumnElement[bool]]:
    conditions: list[sa.ColumnElement[bool]] = [t.c.user_id == sa.bindparam("owner_id")]
    if by_status:
        conditions.append(t.c.status == sa.bindparam("status"))
    return conditions


@cache
def _page_statement(*, by_status: bool, after: bool) -> Statement:
    conditions = _filter(by_status=by_status)
    if after:
        conditions.append(
            sa.tuple_(t.c.created_at, t.c.id)
            < sa.tuple_(
                sa.bindparam("after_created_at", type_=t.c.created_at.type),
                sa.bindparam("after_id", type_=t.c.id.type),
            )
        )
    return compile_statement(
        sa.select(*_COLUMNS)
        .where(*conditions)
        .order_by(t.c.created_at.desc(), t.c.id.desc())
        .limit(sa.bindparam("limit", type_=sa.Integer))
    )


@cache
def _count_statement(*, by_status: bool) -> Statement:
    return compile_statement(
        sa.select(sa.func.count()).select_from(t).where(*_filter(by_status=by_status))
    )


async def list_page(
    conn: asyncpg.Connection,
    *,
    user_id: uuid.UUID,
    first: int,
    after: Cursor | None,
    status: Status | None,
) -> DomainPage:
    """A page of the user's domains, newest first, in one query (records are on the row)."""
    stmt = _page_statement(by_status=status is not None, after=after is not None)
    values: dict[str, Any] = {"owner_id": user_id, "limit": first + 1}
    if status is not None:
        values["status"] = status.value
    if after is not None:
        values["after_created_at"] = after.created_at
        values["after_id"] = after.id
    rows = await stmt.fetch(conn, **values)
    return DomainPage(
        records=tuple(to_record(r) for r in rows[:first]), has_next_page=len(rows) > first
    )


async def count(conn: asyncpg.Connection, *, user_id: uuid.UUID, status: Status | None) -> int:
    stmt = _count_statement(by_status=status is not None)
    values: dict[str, Any] = {"owner_id": user_id}
    if status is not None:
        values["status"] = status.value
    row = await stmt.fetchrow(conn, **values)
    assert row is not None
    return int(row[0])


async def insert_many(
    conn: asyncpg.Connection, *, user_id: uuid.UUID, rows: Sequence[Mapping[str, Any]]
) -> list[DomainRecord]:
    """Insert domains for one user (used by `seed`); names the user already has are skipped."""
    stmt = compile_statement(
        postgresql.insert(t)
        .values([{**row, "user_id": user_id} for row in rows])
        .on_conflict_do_nothing(index_elements=[t.c.user_id, t.c.domain])
        .returning(*_COLUMNS)
    )
    return [to_record(r) for r in await stmt.fetch(conn)]


def _forward() -> sa.ColumnElement[Any]:
    return sa.func.greatest(
        sa.func.clock_timestamp(), t.c.updated_at + sa.text("interval '1 microsecond'")
    )


_BY_ID = compile_statement(sa.select(*_COLUMNS).where(t.c.id == sa.bindparam("domain_id")))
_BY_NAME = compile_statement(
    sa.select(*_COLUMNS).where(
        t.c.user_id == sa.bindparam("owner_id"), t.c.domain == sa.bindparam("name")
    )
)
_INSERT_ONE = compile_statement(
    postgresql.insert(t)
    .values(
        user_id=sa.bindparam("owner_id"),
        domain=sa.bindparam("name"),
        agentmail_domain_id=sa.bindparam("provider_id"),
        status=sa.bindparam("new_status"),
        status_reason=sa.bindparam("reason"),
        dns_records=sa.bindparam("records", type_=t.c.dns_records.type),
    )
    .on_conflict_do_nothing(index_elements=[t.c.user_id, t.c.domain])
    .returning(*_COLUMNS)
)
# Neither statement touches a row that lost its name to a claim, even one racing the claim.
_START_VERIFICATION = compile_statement(
    sa.update(t)
    .where(*_OWNED, t.c.released_at.is_(None))
    .values(
        status=Status.VERIFYING.value,
        verification_started_at=sa.func.clock_timestamp(),
        updated_at=_forward(),
    )
    .returning(*_COLUMNS)
)

_new_status = sa.bindparam("new_status", type_=sa.String)
_new_records = sa.bindparam("records", type_=t.c.dns_records.type)
_next_status = sa.func.coalesce(_new_status, t.c.status)
_next_records = sa.func.coalesce(_new_records, t.c.dns_records)
_changes = sa.or_(
    _next_status.is_distinct_from(t.c.status),
    sa.bindparam("reason", type_=sa.String).is_distinct_from(t.c.status_reason),
    _next_records.is_distinct_from(t.c.dns_records),
    _new_status == Status.VERIFIED.value,
)
_APPLY_CHECK = compile_statement(
    sa.update(t)
    .where(t.c.id == sa.bindparam("domain_id"), t.c.released_at.is_(None))
    .values(
        status=_next_status,
        status_reason=sa.bindparam("reason", type_=sa.String),
        dns_records=_next_records,
        last_checked_at=sa.func.clock_timestamp(),
        verified_at=sa.case(
            (_new_status == Status.VERIFIED.value, sa.func.clock_timestamp()),
            else_=t.c.verified_at,
        ),
        updated_at=sa.case((_changes, _forward()), else_=t.c.updated_at),
    )
    .returning(*_COLUMNS)
)
_DELETE_OWNED = compile_statement(sa.delete(t).where(*_OWNED).returning(*_COLUMNS))


async def get_by_id(conn: asyncpg.Connection, *, domain_id: uuid.UUID) -> DomainRecord | None:
    """Any user's domain: for background work that acts on behalf of the owner."""
    row = await _BY_ID.fetchrow(conn, domain_id=domain_id)
    return None if row is None else to_record(row)


async def get_by_name(
    conn: asyncpg.Connection, *, user_id: uuid.UUID, domain: str
) -> DomainRecord | None:
    row = await _BY_NAME.fetchrow(conn, owner_id=user_id, name=domain)
    return None if row is None else to_record(row)


def _records_json(records: Sequence[DnsRecord]) -> list[dict[str, Any]]:
    return [
        {"type": r.type, "name": r.name, "value": r.value, "priority": r.priority} for r in records
    ]


async def insert_one(
    conn: asyncpg.Connection,
    *,
    user_id: uuid.UUID,
    domain: str,
    agentmail_domain_id: str,
    status: Status,
    reason: str | None,
    records: Sequence[DnsRecord],
) -> DomainRecord | None:
    """Insert a new domain; None when the user already has one by that name."""
    row = await _INSERT_ONE.fetchrow(
        conn,
        owner_id=user_id,
        name=domain,
        provider_id=agentmail_domain_id,
        new_status=status.value,
        reason=reason,
        records=_records_json(records),
    )
    return None if row is None else to_record(row)


async def start_verification(
    conn: asyncpg.Connection, *, domain_id: uuid.UUID, user_id: uuid.UUID
) -> DomainRecord | None:
    """Mark an owned domain `verifying` and open a new polling window; None when there is no
    such owned domain or it lost its name to a claim."""
    row = await _START_VERIFICATION.fetchrow(conn, domain_id=domain_id, owner_id=user_id)
    return None if row is None else to_record(row)


async def apply_check(
    conn: asyncpg.Connection,
    *,
    domain_id: uuid.UUID,
    status: Status | None,
    reason: str | None,
    records: Sequence[DnsRecord] | None,
) -> DomainRecord | None:
    """Store what the provider said: a status (None keeps it), its reason and the records.

    `verified_at` is set whenever the provider confirms the domain; `updated_at` moves only when
    something a caller can see changed. Raises `asyncpg.UniqueViolationError` when another
    account already holds the name as verified; None when the row is gone or lost its name to
    a claim.
    """
    row = await _APPLY_CHECK.fetchrow(
        conn,
        domain_id=domain_id,
        new_status=None if status is None else status.value,
        reason=reason,
        records=None if records is None else _records_json(records),
    )
    return None if row is None else to_record(row)


async def delete_owned(
    conn: asyncpg.Connection, *, domain_id: uuid.UUID, user_id: uuid.UUID
) -> DomainRecord | None:
    row = await _DELETE_OWNED.fetchrow(conn, domain_id=domain_id, owner_id=user_id)
    return None if row is None else to_record(row)


_TRY_LOCK = compile_statement(
    sa.select(
        sa.func.pg_try_advisory_xact_lock(
            sa.func.hashtextextended(sa.cast(sa.bindparam("domain_id"), sa.Text), 0)
        )
    )
)


async def try_lock(conn: asyncpg.Connection, *, domain_id: uuid.UUID) -> bool:
    """Take the domain's check lock for the current transaction; False when someone holds it."""
    row = await _TRY_LOCK.fetchrow(conn, domain_id=str(domain_id))
    return bool(row is not None and row[0])


# A row that lost its name to a claim does not keep the provider domain alive.
_IN_USE = compile_statement(
    sa.select(t.c.id)
    .where(t.c.agentmail_domain_id == sa.bindparam("provider_id"), t.c.released_at.is_(None))
    .limit(1)
)


async def provider_domain_in_use(conn: asyncpg.Connection, *, agentmail_domain_id: str) -> bool:
    return await _IN_USE.fetchrow(conn, provider_id=agentmail_domain_id) is not None
