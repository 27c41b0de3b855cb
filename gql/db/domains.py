"""Every query on `email_domains`."""

import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from gql.db.tables import email_domains as t
from gql.models import Cursor, DnsRecord, DomainPage, DomainRecord, Status

_COLUMNS = tuple(t.c)

# Built once: the statement is compiled and prepared once per connection, then reused.
_GET = sa.select(*_COLUMNS).where(
    t.c.id == sa.bindparam("domain_id"), t.c.user_id == sa.bindparam("owner_id")
)

# The override in one round trip. The CTE changes the row only when the status differs; when
# it does not (or the row is not the caller's), the second branch returns the row as it is, so
# a no-op leaves `updated_at` alone and writes nothing. `updated_at` moves strictly forward even
# if the clock steps back.
_changed = (
    sa.update(t)
    .where(
        t.c.id == sa.bindparam("domain_id"),
        t.c.user_id == sa.bindparam("owner_id"),
        t.c.status != sa.bindparam("new_status"),
    )
    .values(
        status=sa.bindparam("new_status"),
        updated_at=sa.func.greatest(
            sa.func.clock_timestamp(), t.c.updated_at + sa.text("interval '1 microsecond'")
        ),
    )
    .returning(*_COLUMNS)
    .cte("changed")
)
_SET_STATUS = sa.union_all(
    sa.select(*_changed.c),
    sa.select(*_COLUMNS).where(
        t.c.id == sa.bindparam("domain_id"),
        t.c.user_id == sa.bindparam("owner_id"),
        ~sa.exists(sa.select(_changed.c.id)),
    ),
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


def to_record(row: sa.Row[*tuple[Any, ...]]) -> DomainRecord:
    return DomainRecord(
        id=row.id,
        user_id=row.user_id,
        domain=row.domain,
        agentmail_domain_id=row.agentmail_domain_id,
        status=Status(row.status),
        dns_records=_dns_records(row.dns_records),
        verified_at=row.verified_at,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


async def get_owned(
    conn: AsyncConnection, *, domain_id: uuid.UUID, user_id: uuid.UUID
) -> DomainRecord | None:
    row = (await conn.execute(_GET, {"domain_id": domain_id, "owner_id": user_id})).first()
    return None if row is None else to_record(row)


async def set_status(
    conn: AsyncConnection, *, domain_id: uuid.UUID, user_id: uuid.UUID, status: Status
) -> DomainRecord | None:
    """Set the cached status of an owned domain; None when there is no such owned domain."""
    params = {"domain_id": domain_id, "owner_id": user_id, "new_status": status.value}
    row = (await conn.execute(_SET_STATUS, params)).first()
    return None if row is None else to_record(row)


def _owned_filter(user_id: uuid.UUID, status: Status | None) -> list[sa.ColumnElement[bool]]:
    conditions: list[sa.ColumnElement[bool]] = [t.c.user_id == user_id]
    if status is not None:
        conditions.append(t.c.status == status.value)
    return conditions


async def list_page(
    conn: AsyncConnection,
    *,
    user_id: uuid.UUID,
    first: int,
    after: Cursor | None,
    status: Status | None,
) -> DomainPage:
    """A page of the user's domains, newest first, in one query (records are on the row)."""
    conditions = _owned_filter(user_id, status)
    if after is not None:
        conditions.append(
            sa.tuple_(t.c.created_at, t.c.id) < sa.tuple_(sa.literal(after.created_at), after.id)
        )
    stmt = (
        sa.select(*_COLUMNS)
        .where(*conditions)
        .order_by(t.c.created_at.desc(), t.c.id.desc())
        .limit(first + 1)
    )
    rows = (await conn.execute(stmt)).all()
    return DomainPage(
        records=tuple(to_record(r) for r in rows[:first]), has_next_page=len(rows) > first
    )


async def count(conn: AsyncConnection, *, user_id: uuid.UUID, status: Status | None) -> int:
    stmt = sa.select(sa.func.count()).select_from(t).where(*_owned_filter(user_id, status))
    return int((await conn.execute(stmt)).scalar_one())


async def insert_many(
    conn: AsyncConnection, *, user_id: uuid.UUID, rows: Sequence[Mapping[str, Any]]
) -> list[DomainRecord]:
    """Insert domains for one user (used by `seed`); names the user already has are skipped."""
    stmt = (
        sa.dialects.postgresql.insert(t)
        .values([{**row, "user_id": user_id} for row in rows])
        .on_conflict_do_nothing(index_elements=[t.c.user_id, t.c.domain])
        .returning(*_COLUMNS)
    )
    return [to_record(r) for r in (await conn.execute(stmt)).all()]
