"""Every query on `sandbox_domains`, the sandbox provider's state."""

from dataclasses import dataclass

import asyncpg
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from gql.db.statements import compile_statement
from gql.db.tables import sandbox_domains as t


@dataclass(frozen=True, slots=True)
class SandboxEntry:
    domain: str
    # Seconds since verification was last requested, by the database's clock (so every
    # process and machine agrees); None when it never was.
    verifying_for: float | None


_RETURNING = (
    t.c.domain,
    sa.func.extract("epoch", sa.func.clock_timestamp() - t.c.verify_requested_at).label(
        "verifying_for"
    ),
)

_insert = postgresql.insert(t)

# A replayed create keeps the original entry.
_CREATE = compile_statement(
    _insert.values(domain=sa.bindparam("name"), client_id=sa.bindparam("client"))
    .on_conflict_do_update(
        index_elements=[t.c.domain],
        set_={"client_id": sa.func.coalesce(t.c.client_id, _insert.excluded.client_id)},
    )
    .returning(*_RETURNING)
)

# A domain the sandbox has not seen (created before its state lived here) is taken as created
# and verifying from now on, so a restart never strands a domain that was verifying.
_SEEN = compile_statement(
    _insert.values(domain=sa.bindparam("name"), verify_requested_at=sa.func.clock_timestamp())
    .on_conflict_do_update(
        index_elements=[t.c.domain], set_={"verify_requested_at": t.c.verify_requested_at}
    )
    .returning(*_RETURNING)
)

_VERIFY = compile_statement(
    _insert.values(domain=sa.bindparam("name"), verify_requested_at=sa.func.clock_timestamp())
    .on_conflict_do_update(
        index_elements=[t.c.domain],
        set_={"verify_requested_at": _insert.excluded.verify_requested_at},
    )
    .returning(*_RETURNING)
)

_DELETE = compile_statement(
    sa.delete(t).where(t.c.domain == sa.bindparam("name")).returning(t.c.domain)
)


def _entry(row: asyncpg.Record | None) -> SandboxEntry:
    assert row is not None
    elapsed = row["verifying_for"]
    return SandboxEntry(row["domain"], None if elapsed is None else float(elapsed))


async def create(conn: asyncpg.Connection, *, domain: str, client_id: str) -> SandboxEntry:
    return _entry(await _CREATE.fetchrow(conn, name=domain, client=client_id))


async def seen(conn: asyncpg.Connection, *, domain: str) -> SandboxEntry:
    return _entry(await _SEEN.fetchrow(conn, name=domain))


async def request_verification(conn: asyncpg.Connection, *, domain: str) -> SandboxEntry:
    return _entry(await _VERIFY.fetchrow(conn, name=domain))


async def delete(conn: asyncpg.Connection, *, domain: str) -> None:
    await _DELETE.fetchrow(conn, name=domain)
