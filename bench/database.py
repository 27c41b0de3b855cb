"""The benchmark's own database: created, migrated and seeded with the project's code, dropped."""

import asyncio
import uuid
from dataclasses import dataclass
from pathlib import Path

import asyncpg
from sqlalchemy.engine import make_url

from gql.db.embedded import start_embedded
from gql.db.migrate import upgrade
from gql.services.container import open_services
from gql.settings import Settings, asyncpg_url

DEFAULT_SERVER_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


def plain_dsn(url: str) -> str:
    """The URL as asyncpg itself takes it (`postgresql://`, no `+asyncpg`)."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@dataclass(frozen=True, slots=True)
class BenchDatabase:
    name: str
    url: str
    """SQLAlchemy URL (`postgresql+asyncpg://`), as the gateway's DATABASE_URL."""
    admin_dsn: str
    """The server's maintenance database, from which the bench database is created and dropped."""
    embedded: bool

    @property
    def dsn(self) -> str:
        return plain_dsn(self.url)


@dataclass(frozen=True, slots=True)
class Seed:
    user_id: uuid.UUID
    api_key: str
    domain_ids: list[uuid.UUID]


async def _reachable(dsn: str) -> bool:
    try:
        conn = await asyncpg.connect(dsn, timeout=3)
    except (OSError, TimeoutError, asyncpg.PostgresError):
        return False
    await conn.close()
    return True


async def _admin(dsn: str, sql: str) -> None:
    conn = await asyncpg.connect(dsn, timeout=10)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def create(server_url: str) -> BenchDatabase:
    """A new, migrated database on `server_url`, or, if that server cannot be reached, on the
    embedded server in the gateway's data folder (DATA_DIR, default `.data`)."""
    server = asyncpg_url(server_url)
    embedded = not asyncio.run(_reachable(plain_dsn(server)))
    if embedded:
        server = start_embedded(Settings().data_dir)
    name = f"gql_bench_{uuid.uuid4().hex[:12]}"
    admin_dsn = plain_dsn(server)
    asyncio.run(_admin(admin_dsn, f'CREATE DATABASE "{name}"'))
    url = make_url(server).set(database=name).render_as_string(hide_password=False)
    upgrade(url)
    return BenchDatabase(name=name, url=url, admin_dsn=admin_dsn, embedded=embedded)


def drop(database: BenchDatabase) -> None:
    asyncio.run(
        _admin(database.admin_dsn, f'DROP DATABASE IF EXISTS "{database.name}" WITH (FORCE)')
    )


def server_version(database: BenchDatabase) -> str:
    async def fetch() -> str:
        conn = await asyncpg.connect(database.dsn, timeout=10)
        try:
            return str(await conn.fetchval("SHOW server_version"))
        finally:
            await conn.close()

    return asyncio.run(fetch())


def _parent_pid(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return int(stat.rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return None


def postmaster_pid(database: BenchDatabase) -> int | None:
    """The PostgreSQL server's main process, when it runs on this machine (to count its CPU)."""

    async def parent_of_backend() -> int | None:
        conn = await asyncpg.connect(database.dsn, timeout=10)
        try:
            # Asked while the backend still exists: it ends with the connection.
            return _parent_pid(int(await conn.fetchval("SELECT pg_backend_pid()")))
        finally:
            await conn.close()

    parent = asyncio.run(parent_of_backend())
    if parent is None:
        return None
    try:
        comm = Path(f"/proc/{parent}/comm").read_text().strip()
    except OSError:
        return None
    return parent if comm == "postgres" else None


def seed(database: BenchDatabase, domains: int) -> Seed:
    """One user with `domains` sample domains and an API key, made by the project's services."""
    settings = Settings(_env_file=None, database_url=database.url)

    async def run() -> Seed:
        async with open_services(database.url, settings) as services:
            user_id = uuid.uuid4()
            records = await services.seed.seed(user_id, domains)
            key, _ = await services.api_keys.create(user_id)
        return Seed(user_id=user_id, api_key=key, domain_ids=[r.id for r in records])

    return asyncio.run(run())
