"""Every query on `email_domains`."""

import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from functools import cache
from typing import Any

import asyncpg
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from gql.db.queue import ACTIVE, CHECK_TASK, jobs
from gql.db.statements import Statement, compile_statement
from gql.db.tables import email_domains as t
from gql.models import Cursor, DnsRecord, DomainPage, DomainRecord, Status

_COLUMNS = tuple(t.c)
_OWNED = (t.c.id == sa.bindparam("domain_id"), t.c.user_id == sa.bindparam("owner_id"))
_BY_ID_AND_OWNER = sa.select(*_COLUMNS).where(*_OWNED)
_GET = compile_statement(_BY_ID_AND_OWNER)
_GET_LOCKED = compile_statement(_BY_ID_AND_OWNER.with_for_update())


def _dns_records(raw: Iterable[Mapping[str, Any]]) -> tuple[DnsRecord, ...]:
    return tuple(
        DnsRecord(
            type=str(r["type"]),
            name=str(r["name"]),
            value=str(r["value"]),
            priority=None if r.get("priority") is None else int(r["priority"]),
            status=None if r.get("status") is None else str(r["status"]),
        )
        for r in raw
    )


def to_record(row: asyncpg.Record | Mapping[str, Any]) -> DomainRecord:
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
        version=row["version"],
    )


async def get_by_id_and_owner(
    conn: asyncpg.Connection, *, domain_id: uuid.UUID, user_id: uuid.UUID, lock: bool = False
) -> DomainRecord | None:
    """The user's domain; `lock` holds it (FOR UPDATE) until the transaction ends."""
    stmt = _GET_LOCKED if lock else _GET
    row = await stmt.fetchrow(conn, domain_id=domain_id, owner_id=user_id)
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


_BY_ID_QUERY = sa.select(*_COLUMNS).where(t.c.id == sa.bindparam("domain_id"))
_BY_ID = compile_statement(_BY_ID_QUERY)
_BY_ID_LOCKED = compile_statement(_BY_ID_QUERY.with_for_update())
_BY_NAME = compile_statement(
    sa.select(*_COLUMNS).where(
        t.c.user_id == sa.bindparam("owner_id"), t.c.domain == sa.bindparam("name")
    )
)
_new_records = sa.bindparam("records", type_=t.c.dns_records.type)
_INSERT_ONE = compile_statement(
    postgresql.insert(t)
    .values(
        user_id=sa.bindparam("owner_id"),
        domain=sa.bindparam("name"),
        agentmail_domain_id=sa.bindparam("provider_id"),
        status=sa.bindparam("new_status"),
        status_reason=sa.bindparam("reason"),
        dns_records=_new_records,
    )
    .on_conflict_do_nothing(index_elements=[t.c.user_id, t.c.domain])
    .returning(*_COLUMNS)
)
_CAS = (t.c.id == sa.bindparam("domain_id"), t.c.version == sa.bindparam("expected_version"))
_WRITE = compile_statement(
    sa.update(t)
    .where(*_CAS)
    .values(
        status=sa.bindparam("new_status", type_=sa.String),
        status_reason=sa.bindparam("reason", type_=sa.String),
        dns_records=_new_records,
        verified_at=sa.bindparam("verified_at", type_=t.c.verified_at.type),
        verification_started_at=sa.bindparam("started_at", type_=t.c.updated_at.type),
        last_checked_at=sa.bindparam("checked_at", type_=t.c.updated_at.type),
        updated_at=sa.bindparam("updated_at", type_=t.c.updated_at.type),
        released_at=sa.bindparam("released_at", type_=t.c.updated_at.type),
        version=t.c.version + 1,
        check_job_id=sa.case(
            (sa.bindparam("release", type_=sa.Boolean), sa.null()), else_=t.c.check_job_id
        ),
    )
    .returning(*_COLUMNS)
)
_DELETE = compile_statement(sa.delete(t).where(*_CAS).returning(*_COLUMNS))


async def get_by_id(
    conn: asyncpg.Connection, *, domain_id: uuid.UUID, lock: bool = False
) -> DomainRecord | None:
    """Any user's domain: for background work that acts on behalf of the owner."""
    row = await (_BY_ID_LOCKED if lock else _BY_ID).fetchrow(conn, domain_id=domain_id)
    return None if row is None else to_record(row)


async def get_by_name_and_owner(
    conn: asyncpg.Connection, *, user_id: uuid.UUID, domain: str
) -> DomainRecord | None:
    row = await _BY_NAME.fetchrow(conn, owner_id=user_id, name=domain)
    return None if row is None else to_record(row)


def dns_records_json(records: Sequence[DnsRecord]) -> list[dict[str, Any]]:
    """Records as stored; a record's status only when the provider reported one."""
    return [
        {"type": r.type, "name": r.name, "value": r.value, "priority": r.priority}
        | ({} if r.status is None else {"status": r.status})
        for r in records
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
        records=dns_records_json(records),
    )
    return None if row is None else to_record(row)


async def compare_and_set(
    conn: asyncpg.Connection,
    *,
    current: DomainRecord,
    new: DomainRecord,
    releases_check: bool,
) -> DomainRecord | None:
    """Write `new`'s state over the row, if the row is still `current`'s version.

    None when it is not (changed or deleted meanwhile). Raises `asyncpg.UniqueViolationError`
    when another account already holds the name as verified.
    """
    row = await _WRITE.fetchrow(
        conn,
        domain_id=current.id,
        expected_version=current.version,
        new_status=new.status.value,
        reason=new.status_reason,
        records=dns_records_json(new.dns_records),
        verified_at=new.verified_at,
        started_at=new.verification_started_at,
        checked_at=new.last_checked_at,
        updated_at=new.updated_at,
        released_at=new.released_at,
        release=releases_check,
    )
    return None if row is None else to_record(row)


async def delete_if_version(
    conn: asyncpg.Connection, *, current: DomainRecord
) -> DomainRecord | None:
    """Delete the row if it is still `current`'s version; the deleted row, else None."""
    row = await _DELETE.fetchrow(conn, domain_id=current.id, expected_version=current.version)
    return None if row is None else to_record(row)


_running_check = sa.exists().where(
    jobs.c.id == t.c.check_job_id, jobs.c.status == sa.literal_column("'doing'")
)
_CLAIM_CHECK = compile_statement(
    sa.update(t)
    .where(
        t.c.id == sa.bindparam("domain_id"),
        t.c.status == Status.VERIFYING.value,
        sa.or_(
            t.c.check_job_id.is_(None),
            t.c.check_job_id == sa.bindparam("job_id", type_=sa.BigInteger),
            ~_running_check,
        ),
    )
    .values(check_job_id=sa.bindparam("job_id", type_=sa.BigInteger))
    .returning(*_COLUMNS)
)


async def claim_check(
    conn: asyncpg.Connection, *, domain_id: uuid.UUID, job_id: int
) -> DomainRecord | None:
    """Mark a verifying domain as checked by job `job_id`, unless another check is running.

    The row is returned as claimed; None when it is not verifying, is gone, or is being checked
    by another job that is still running. The mark is not a change of state: the version stays.
    """
    row = await _CLAIM_CHECK.fetchrow(conn, domain_id=domain_id, job_id=job_id)
    return None if row is None else to_record(row)


_has_check = sa.exists().where(
    jobs.c.task_name == CHECK_TASK,
    jobs.c.queueing_lock == sa.func.concat("domain:", sa.cast(t.c.id, sa.Text)),
    jobs.c.status.in_(ACTIVE),
)
_VERIFYING_WITHOUT_CHECK = compile_statement(
    sa.select(*_COLUMNS)
    .where(t.c.status == Status.VERIFYING.value, ~_has_check)
    .limit(sa.bindparam("limit", type_=sa.Integer))
)
_OVERDUE = compile_statement(
    sa.select(*_COLUMNS)
    .where(
        t.c.status == Status.VERIFYING.value,
        sa.func.coalesce(t.c.verification_started_at, t.c.updated_at)
        <= sa.bindparam("cutoff", type_=t.c.updated_at.type),
    )
    .limit(sa.bindparam("limit", type_=sa.Integer))
)


async def verifying_without_check(conn: asyncpg.Connection, *, limit: int) -> list[DomainRecord]:
    """Verifying domains with no check queued or running (what a crash can leave)."""
    return [to_record(r) for r in await _VERIFYING_WITHOUT_CHECK.fetch(conn, limit=limit)]


async def verifying_started_before(
    conn: asyncpg.Connection, *, cutoff: datetime, limit: int
) -> list[DomainRecord]:
    """Verifying domains whose window opened before `cutoff` (overdue for a window that long)."""
    return [to_record(r) for r in await _OVERDUE.fetch(conn, cutoff=cutoff, limit=limit)]


# A row that lost its name to a claim does not keep the provider domain alive.
_IN_USE = compile_statement(
    sa.select(t.c.id)
    .where(t.c.agentmail_domain_id == sa.bindparam("provider_id"), t.c.released_at.is_(None))
    .limit(1)
)


async def provider_domain_in_use(conn: asyncpg.Connection, *, agentmail_domain_id: str) -> bool:
    return await _IN_USE.fetchrow(conn, provider_id=agentmail_domain_id) is not None
