"""Every query on `domain_events`, and the dedicated connection that listens for new ones."""

import uuid
from collections.abc import Callable, Mapping
from datetime import datetime
from functools import cache
from typing import Any

import asyncpg
import sqlalchemy as sa

from gql.db.domains import dns_records_json, to_record
from gql.db.statements import Statement, compile_statement
from gql.db.tables import domain_events as t
from gql.models import DomainEvent, DomainRecord, EventCause, EventKind, Status

CHANNEL = "gql_domain_events"
LISTENER_APPLICATION_NAME = "gql-gateway-listener"

_COLUMNS = tuple(t.c)
_ABOVE_EVERY_ID = 2**63 - 1  # the largest bigint

# Event ids are taken under this transaction-level lock, held until the writer commits, so ids
# become visible in commit order and "every event after id N" never skips a late commit. It is
# taken after the transaction's row changes (which hold their rows' locks), always in that
# order, so no two writers ever wait for each other the other way round.
_ORDER_LOCK = 0x67716C_65766E74  # "gql" "evnt"

_inserted = (
    sa.insert(t)
    .from_select(
        [
            "domain_id",
            "user_id",
            "kind",
            "from_status",
            "to_status",
            "reason",
            "cause",
            "actor",
            "request_id",
            "created_at",
            "domain",
        ],
        sa.select(
            sa.bindparam("domain_id", type_=sa.Uuid),
            sa.bindparam("owner_id", type_=sa.Uuid),
            sa.bindparam("kind", type_=sa.String),
            sa.bindparam("from_status", type_=sa.String),
            sa.bindparam("to_status", type_=sa.String),
            sa.bindparam("reason", type_=sa.String),
            sa.bindparam("cause", type_=sa.String),
            sa.bindparam("actor", type_=sa.String),
            sa.bindparam("request_id", type_=sa.String),
            sa.func.clock_timestamp(),
            sa.bindparam("snapshot", type_=t.c.domain.type),
        ).where(sa.func.pg_advisory_xact_lock(_ORDER_LOCK).is_not(None)),
    )
    .returning(t.c.id)
    .cte("inserted")
)
# One round trip: the row, and the notification that carries only its id (sent at commit).
_APPEND = compile_statement(
    sa.select(
        _inserted.c.id, sa.func.pg_notify(CHANNEL, sa.cast(_inserted.c.id, sa.Text))
    ).select_from(_inserted)
)
_LATEST_ID = compile_statement(sa.select(sa.func.coalesce(sa.func.max(t.c.id), 0)))
_AFTER = compile_statement(
    sa.select(*_COLUMNS)
    .where(t.c.id > sa.bindparam("after_id", type_=sa.BigInteger))
    .order_by(t.c.id)
    .limit(sa.bindparam("limit", type_=sa.Integer))
)
_PRUNE = compile_statement(
    sa.delete(t).where(
        t.c.id.in_(
            sa.select(t.c.id)
            .where(t.c.created_at < sa.bindparam("before", type_=t.c.created_at.type))
            .limit(sa.bindparam("limit", type_=sa.Integer))
        )
    )
)
_PING = compile_statement(sa.select(sa.literal(1)))


def _snapshot(record: DomainRecord) -> dict[str, Any]:
    return {
        "id": str(record.id),
        "user_id": str(record.user_id),
        "domain": record.domain,
        "agentmail_domain_id": record.agentmail_domain_id,
        "status": record.status.value,
        "dns_records": dns_records_json(record.dns_records),
        "verified_at": _iso(record.verified_at),
        "created_at": _iso(record.created_at),
        "updated_at": _iso(record.updated_at),
        "status_reason": record.status_reason,
        "verification_started_at": _iso(record.verification_started_at),
        "last_checked_at": _iso(record.last_checked_at),
        "released_at": _iso(record.released_at),
        "version": record.version,
    }


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _from_snapshot(raw: Mapping[str, Any]) -> DomainRecord:
    def when(key: str) -> datetime | None:
        value = raw.get(key)
        return None if value is None else datetime.fromisoformat(value)

    return to_record(
        {
            **raw,
            "id": uuid.UUID(raw["id"]),
            "user_id": uuid.UUID(raw["user_id"]),
            "verified_at": when("verified_at"),
            "created_at": when("created_at"),
            "updated_at": when("updated_at"),
            "verification_started_at": when("verification_started_at"),
            "last_checked_at": when("last_checked_at"),
            "released_at": when("released_at"),
        }
    )


def _event(row: Mapping[str, Any]) -> DomainEvent:
    return DomainEvent(
        id=row["id"],
        domain_id=row["domain_id"],
        user_id=row["user_id"],
        kind=EventKind(row["kind"]),
        from_status=None if row["from_status"] is None else Status(row["from_status"]),
        to_status=None if row["to_status"] is None else Status(row["to_status"]),
        reason=row["reason"],
        cause=EventCause(row["cause"]),
        actor=row["actor"],
        request_id=row["request_id"],
        created_at=row["created_at"],
        domain=_from_snapshot(row["domain"]),
    )


async def append(
    conn: asyncpg.Connection,
    *,
    kind: EventKind,
    domain: DomainRecord,
    from_status: Status | None,
    cause: EventCause,
    actor: str,
    request_id: str | None,
) -> int:
    """Store one event in the caller's transaction and notify listeners at its commit."""
    row = await _APPEND.fetchrow(
        conn,
        domain_id=domain.id,
        owner_id=domain.user_id,
        kind=kind.value,
        from_status=None if from_status is None else from_status.value,
        to_status=None if kind is EventKind.DELETED else domain.status.value,
        reason=domain.status_reason,
        cause=cause.value,
        actor=actor,
        request_id=request_id,
        snapshot=_snapshot(domain),
    )
    assert row is not None
    return int(row["id"])


async def latest_id(conn: asyncpg.Connection) -> int:
    row = await _LATEST_ID.fetchrow(conn)
    assert row is not None
    return int(row[0])


async def after(conn: asyncpg.Connection, *, after_id: int, limit: int) -> list[DomainEvent]:
    """Every user's events after `after_id`, oldest first (what a process fans out)."""
    return [_event(r) for r in await _AFTER.fetch(conn, after_id=after_id, limit=limit)]


@cache
def _scoped_statement(*, newest_first: bool, by_domain: bool, bounded: bool) -> Statement:
    conditions: list[sa.ColumnElement[bool]] = [t.c.user_id == sa.bindparam("owner_id")]
    if by_domain:
        conditions.append(t.c.domain_id == sa.bindparam("domain_id"))
    position = sa.bindparam("position", type_=sa.BigInteger)
    conditions.append(t.c.id < position if newest_first else t.c.id > position)
    if bounded:
        conditions.append(t.c.id <= sa.bindparam("until", type_=sa.BigInteger))
    order = t.c.id.desc() if newest_first else t.c.id
    return compile_statement(
        sa.select(*_COLUMNS)
        .where(*conditions)
        .order_by(order)
        .limit(sa.bindparam("limit", type_=sa.Integer))
    )


async def history(
    conn: asyncpg.Connection,
    *,
    user_id: uuid.UUID,
    domain_id: uuid.UUID,
    before_id: int | None,
    limit: int,
) -> list[DomainEvent]:
    """One owned domain's events, newest first, older than `before_id` when given."""
    stmt = _scoped_statement(newest_first=True, by_domain=True, bounded=False)
    rows = await stmt.fetch(
        conn,
        owner_id=user_id,
        domain_id=domain_id,
        position=before_id if before_id is not None else _ABOVE_EVERY_ID,
        limit=limit,
    )
    return [_event(r) for r in rows]


async def owned_between(
    conn: asyncpg.Connection,
    *,
    user_id: uuid.UUID,
    domain_id: uuid.UUID | None,
    after_id: int,
    until_id: int,
    limit: int,
) -> list[DomainEvent]:
    """A user's events (of one domain, when given) with after_id < id <= until_id, oldest first."""
    stmt = _scoped_statement(newest_first=False, by_domain=domain_id is not None, bounded=True)
    values: dict[str, Any] = {
        "owner_id": user_id,
        "position": after_id,
        "until": until_id,
        "limit": limit,
    }
    if domain_id is not None:
        values["domain_id"] = domain_id
    return [_event(r) for r in await stmt.fetch(conn, **values)]


async def prune(conn: asyncpg.Connection, *, before: datetime, limit: int) -> int:
    """Delete up to `limit` events older than `before`; how many went."""
    status: str = await conn.execute(_PRUNE.sql, *_PRUNE.args({"before": before, "limit": limit}))
    return int(status.split()[-1])


async def connect_listener(
    dsn: str, *, connect_timeout: float, on_event: Callable[[int], None]
) -> asyncpg.Connection:
    """A connection of its own (outside the pool) that LISTENs for new event ids."""
    conn = await asyncpg.connect(
        dsn,
        timeout=connect_timeout,
        server_settings={"application_name": LISTENER_APPLICATION_NAME},
    )

    def received(_conn: object, _pid: int, _channel: str, payload: str) -> None:
        on_event(int(payload))

    try:
        await conn.add_listener(CHANNEL, received)
    except BaseException:
        await conn.close()
        raise
    return conn


async def ping(conn: asyncpg.Connection) -> None:
    await _PING.fetchrow(conn)
