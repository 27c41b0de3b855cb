"""Every query on who holds a name: the one row per name whose `released_at` is null."""

import uuid

import asyncpg
import sqlalchemy as sa

from gql.db.domains import to_record
from gql.db.statements import compile_statement
from gql.db.tables import email_domains as t
from gql.models import DomainRecord

_HOLDER = compile_statement(
    sa.select(*t.c).where(t.c.domain == sa.bindparam("name"), t.c.released_at.is_(None))
)
_DROP_RELEASED = compile_statement(
    sa.delete(t)
    .where(
        t.c.user_id == sa.bindparam("owner_id"),
        t.c.domain == sa.bindparam("name"),
        t.c.released_at.is_not(None),
    )
    .returning(*t.c)
)


async def holder(conn: asyncpg.Connection, *, domain: str) -> DomainRecord | None:
    """The row that holds `domain`, whoever owns it."""
    row = await _HOLDER.fetchrow(conn, name=domain)
    return None if row is None else to_record(row)


async def drop_released(
    conn: asyncpg.Connection, *, user_id: uuid.UUID, domain: str
) -> DomainRecord | None:
    """Delete the user's row of `domain` that lost the name to a claim; the deleted row."""
    row = await _DROP_RELEASED.fetchrow(conn, owner_id=user_id, name=domain)
    return None if row is None else to_record(row)
