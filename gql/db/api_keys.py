"""Every query on `api_keys`."""

import uuid

import asyncpg
import sqlalchemy as sa

from gql.db.statements import compile_statement
from gql.db.tables import api_keys as t
from gql.models import ApiKeyInfo

_INFO_COLUMNS = (t.c.id, t.c.user_id, t.c.prefix, t.c.created_at, t.c.revoked_at)

_INSERT = compile_statement(
    sa.insert(t)
    .values(
        user_id=sa.bindparam("owner_id"),
        prefix=sa.bindparam("key_prefix"),
        key_hash=sa.bindparam("hash"),
    )
    .returning(*_INFO_COLUMNS)
)
_ACTIVE_KEY = compile_statement(
    sa.select(t.c.user_id, t.c.id).where(
        t.c.key_hash == sa.bindparam("hash"), t.c.revoked_at.is_(None)
    )
)
_LIST = compile_statement(
    sa.select(*_INFO_COLUMNS)
    .where(t.c.user_id == sa.bindparam("owner_id"))
    .order_by(t.c.created_at)
)
_REVOKE = compile_statement(
    sa.update(t)
    .where(t.c.id == sa.bindparam("key_id"))
    .values(revoked_at=sa.func.coalesce(t.c.revoked_at, sa.func.now()))
    .returning(*_INFO_COLUMNS)
)
_FIRST_USER = compile_statement(sa.select(t.c.user_id).order_by(t.c.created_at).limit(1))


def _info(row: asyncpg.Record) -> ApiKeyInfo:
    return ApiKeyInfo(
        id=row["id"],
        user_id=row["user_id"],
        prefix=row["prefix"],
        created_at=row["created_at"],
        revoked_at=row["revoked_at"],
    )


async def insert(
    conn: asyncpg.Connection, *, user_id: uuid.UUID, prefix: str, key_hash: str
) -> ApiKeyInfo:
    row = await _INSERT.fetchrow(conn, owner_id=user_id, key_prefix=prefix, hash=key_hash)
    assert row is not None
    return _info(row)


async def active_key(
    conn: asyncpg.Connection, *, key_hash: str
) -> tuple[uuid.UUID, uuid.UUID] | None:
    """The owner and id of an active key."""
    row = await _ACTIVE_KEY.fetchrow(conn, hash=key_hash)
    return None if row is None else (row["user_id"], row["id"])


async def list_for_user(conn: asyncpg.Connection, *, user_id: uuid.UUID) -> list[ApiKeyInfo]:
    return [_info(r) for r in await _LIST.fetch(conn, owner_id=user_id)]


async def revoke(conn: asyncpg.Connection, *, key_id: uuid.UUID) -> ApiKeyInfo | None:
    """Revoke a key (idempotent); None when there is no such key."""
    row = await _REVOKE.fetchrow(conn, key_id=key_id)
    return None if row is None else _info(row)


async def first_user(conn: asyncpg.Connection) -> uuid.UUID | None:
    """The owner of the oldest key, if any key exists."""
    row = await _FIRST_USER.fetchrow(conn)
    return None if row is None else row["user_id"]
