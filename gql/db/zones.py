"""Every query on zones connected to accounts: users' tokens, bindings, publications."""

import uuid
from dataclasses import dataclass
from datetime import datetime

import asyncpg
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from gql.db.statements import compile_statement
from gql.db.tables import cloudflare_tokens as tokens
from gql.db.tables import dns_publications as publications
from gql.db.tables import zone_bindings as bindings


@dataclass(frozen=True, slots=True)
class StoredToken:
    user_id: uuid.UUID
    token_encrypted: bytes
    token_id: str
    hint: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Binding:
    zone_id: str
    zone_name: str
    user_id: uuid.UUID
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Publication:
    domain: str
    user_id: uuid.UUID
    zone_id: str
    zone_name: str
    via: str


_insert_token = postgresql.insert(tokens).values(
    user_id=sa.bindparam("owner_id"),
    token_encrypted=sa.bindparam("encrypted", type_=sa.LargeBinary),
    token_id=sa.bindparam("token_id"),
    hint=sa.bindparam("hint"),
)
_PUT_TOKEN = compile_statement(
    _insert_token.on_conflict_do_update(
        index_elements=[tokens.c.user_id],
        set_={
            "token_encrypted": _insert_token.excluded.token_encrypted,
            "token_id": _insert_token.excluded.token_id,
            "hint": _insert_token.excluded.hint,
            "created_at": sa.func.now(),
        },
    ).returning(*tokens.c)
)
_GET_TOKEN = compile_statement(
    sa.select(*tokens.c).where(tokens.c.user_id == sa.bindparam("owner_id"))
)
_DELETE_TOKEN = compile_statement(
    sa.delete(tokens).where(tokens.c.user_id == sa.bindparam("owner_id")).returning(*tokens.c)
)


def _token(row: asyncpg.Record) -> StoredToken:
    return StoredToken(
        user_id=row["user_id"],
        token_encrypted=bytes(row["token_encrypted"]),
        token_id=row["token_id"],
        hint=row["hint"],
        created_at=row["created_at"],
    )


async def put_token(
    conn: asyncpg.Connection, *, user_id: uuid.UUID, encrypted: bytes, token_id: str, hint: str
) -> StoredToken:
    """Store the account's token, replacing the one it had."""
    row = await _PUT_TOKEN.fetchrow(
        conn, owner_id=user_id, encrypted=encrypted, token_id=token_id, hint=hint
    )
    assert row is not None
    return _token(row)


async def get_token(conn: asyncpg.Connection, *, user_id: uuid.UUID) -> StoredToken | None:
    row = await _GET_TOKEN.fetchrow(conn, owner_id=user_id)
    return None if row is None else _token(row)


async def delete_token(conn: asyncpg.Connection, *, user_id: uuid.UUID) -> StoredToken | None:
    row = await _DELETE_TOKEN.fetchrow(conn, owner_id=user_id)
    return None if row is None else _token(row)


_BIND = compile_statement(
    postgresql.insert(bindings)
    .values(
        zone_id=sa.bindparam("zone_id"),
        zone_name=sa.bindparam("zone_name"),
        user_id=sa.bindparam("owner_id"),
    )
    .on_conflict_do_update(
        index_elements=[bindings.c.zone_id, bindings.c.user_id],
        set_={"zone_name": sa.bindparam("zone_name")},
    )
    .returning(*bindings.c)
)
_UNBIND = compile_statement(
    sa.delete(bindings)
    .where(
        bindings.c.zone_id == sa.bindparam("zone_id"),
        bindings.c.user_id == sa.bindparam("owner_id"),
    )
    .returning(*bindings.c)
)
_ORDER = (bindings.c.zone_name, bindings.c.created_at)
_BINDINGS_OF = compile_statement(
    sa.select(*bindings.c).where(bindings.c.user_id == sa.bindparam("owner_id")).order_by(*_ORDER)
)
_ALL_BINDINGS = compile_statement(sa.select(*bindings.c).order_by(*_ORDER))


def _binding(row: asyncpg.Record) -> Binding:
    return Binding(
        zone_id=row["zone_id"],
        zone_name=row["zone_name"],
        user_id=row["user_id"],
        created_at=row["created_at"],
    )


async def bind(
    conn: asyncpg.Connection, *, zone_id: str, zone_name: str, user_id: uuid.UUID
) -> Binding:
    row = await _BIND.fetchrow(conn, zone_id=zone_id, zone_name=zone_name, owner_id=user_id)
    assert row is not None
    return _binding(row)


async def unbind(conn: asyncpg.Connection, *, zone_id: str, user_id: uuid.UUID) -> Binding | None:
    row = await _UNBIND.fetchrow(conn, zone_id=zone_id, owner_id=user_id)
    return None if row is None else _binding(row)


async def bindings_of(conn: asyncpg.Connection, *, user_id: uuid.UUID | None) -> list[Binding]:
    """One account's bound zones, or every binding when `user_id` is None."""
    if user_id is None:
        return [_binding(r) for r in await _ALL_BINDINGS.fetch(conn)]
    return [_binding(r) for r in await _BINDINGS_OF.fetch(conn, owner_id=user_id)]


_PUBLISHED = compile_statement(
    postgresql.insert(publications)
    .values(
        domain=sa.bindparam("name"),
        user_id=sa.bindparam("owner_id"),
        zone_id=sa.bindparam("zone_id"),
        zone_name=sa.bindparam("zone_name"),
        via=sa.bindparam("via"),
    )
    .on_conflict_do_nothing(
        index_elements=[publications.c.domain, publications.c.user_id, publications.c.zone_id]
    )
)
_PUBLICATIONS = compile_statement(
    sa.select(*publications.c).where(publications.c.domain == sa.bindparam("name"))
)
_FORGET = compile_statement(
    sa.delete(publications).where(
        publications.c.domain == sa.bindparam("name"),
        publications.c.user_id == sa.bindparam("owner_id"),
        publications.c.zone_id == sa.bindparam("zone_id"),
    )
)


async def record_publication(conn: asyncpg.Connection, publication: Publication) -> None:
    await _PUBLISHED.fetch(
        conn,
        name=publication.domain,
        owner_id=publication.user_id,
        zone_id=publication.zone_id,
        zone_name=publication.zone_name,
        via=publication.via,
    )


async def publications_of(conn: asyncpg.Connection, *, domain: str) -> list[Publication]:
    return [
        Publication(
            domain=r["domain"],
            user_id=r["user_id"],
            zone_id=r["zone_id"],
            zone_name=r["zone_name"],
            via=r["via"],
        )
        for r in await _PUBLICATIONS.fetch(conn, name=domain)
    ]


async def forget_publication(conn: asyncpg.Connection, publication: Publication) -> None:
    await _FORGET.fetch(
        conn, name=publication.domain, owner_id=publication.user_id, zone_id=publication.zone_id
    )
