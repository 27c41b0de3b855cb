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

# The override in one round trip. The CTE changes the row only when the status differs; when
# it does not (or the row is not the caller's), the second branch returns the row as it is, so
# a no-op leaves `updated_at` alone and writes nothing. `updated_at` moves strictly forward even
# if the clock steps back.
_changed = (
    sa.update(t)
    .where(*_OWNED, t.c.status != sa.bindparam("new_status"))
    .values(
        status=sa.bindparam("new_status"),
        updated_at=sa.func.greatest(
            sa.func.clock_timestamp(), t.c.updated_at + sa.text("interval '1 microsecond'")
        ),
    )
    .returning(*_COLUMNS)
    .cte("changed")
)
_SET_STATUS = compile_statement(
    sa.union_all(
        sa.select(*_changed.c),
        sa.select(*_COLUMNS).where(*_OWNED, ~sa.exists(sa.select(_changed.c.id))),
    )
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
