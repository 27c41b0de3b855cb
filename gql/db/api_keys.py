"""Every query on `api_keys`."""

import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from gql.db.tables import api_keys as t
from gql.models import ApiKeyInfo

_INFO_COLUMNS = (t.c.id, t.c.user_id, t.c.prefix, t.c.created_at, t.c.revoked_at)

_ACTIVE_USER = sa.select(t.c.user_id).where(
    t.c.key_hash == sa.bindparam("key_hash"), t.c.revoked_at.is_(None)
)


def _info(row: sa.Row[*tuple[Any, ...]]) -> ApiKeyInfo:
    return ApiKeyInfo(
        id=row.id,
        user_id=row.user_id,
        prefix=row.prefix,
        created_at=row.created_at,
        revoked_at=row.revoked_at,
    )


async def insert(
    conn: AsyncConnection, *, user_id: uuid.UUID, prefix: str, key_hash: str
) -> ApiKeyInfo:
    stmt = (
        sa.insert(t)
        .values(user_id=user_id, prefix=prefix, key_hash=key_hash)
        .returning(*_INFO_COLUMNS)
    )
    return _info((await conn.execute(stmt)).one())


async def active_user(conn: AsyncConnection, *, key_hash: str) -> uuid.UUID | None:
    user_id: uuid.UUID | None = (
        await conn.execute(_ACTIVE_USER, {"key_hash": key_hash})
    ).scalar_one_or_none()
    return user_id


async def list_for_user(conn: AsyncConnection, *, user_id: uuid.UUID) -> list[ApiKeyInfo]:
    stmt = sa.select(*_INFO_COLUMNS).where(t.c.user_id == user_id).order_by(t.c.created_at)
    return [_info(r) for r in (await conn.execute(stmt)).all()]


async def revoke(conn: AsyncConnection, *, key_id: uuid.UUID) -> ApiKeyInfo | None:
    """Revoke a key (idempotent); None when there is no such key."""
    stmt = (
        sa.update(t)
        .where(t.c.id == key_id)
        .values(revoked_at=sa.func.coalesce(t.c.revoked_at, sa.func.now()))
        .returning(*_INFO_COLUMNS)
    )
    row = (await conn.execute(stmt)).first()
    return None if row is None else _info(row)


async def first_user(conn: AsyncConnection) -> uuid.UUID | None:
    """The owner of the oldest key, if any key exists."""
    stmt = sa.select(t.c.user_id).order_by(t.c.created_at).limit(1)
    user_id: uuid.UUID | None = (await conn.execute(stmt)).scalar_one_or_none()
    return user_id
