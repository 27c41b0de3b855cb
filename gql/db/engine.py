"""The connection pool, and the one place that turns lost connections into `Unavailable`.

Statements are built with SQLAlchemy Core in the repositories and compiled once; they run on
an asyncpg pool directly. Going through SQLAlchemy's execution layer at run time doubled the
gateway's CPU per request (docs/performance.md), while the statements themselves stay typed,
named and checked against the tables.
"""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import orjson
from sqlalchemy.engine import make_url

from gql.errors import Unavailable
from gql.observability.db import PoolMetrics
from gql.settings import Settings

# Errors that mean "the database is not there right now" rather than "the query is wrong".
_UNAVAILABLE = (
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.CannotConnectNowError,
    asyncpg.TooManyConnectionsError,
    asyncpg.AdminShutdownError,
    asyncpg.QueryCanceledError,
)


def driver_dsn(url: str) -> str:
    """The asyncpg DSN for a `postgresql+asyncpg://` URL."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def _dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


async def _init_connection(conn: asyncpg.Connection) -> None:
    await conn.set_type_codec("jsonb", encoder=_dumps, decoder=orjson.loads, schema="pg_catalog")


async def _keep_session(conn: asyncpg.Connection) -> None:
    """Nothing to reset when a connection returns to the pool.

    Pooled connections never LISTEN, open cursors or change session settings, and asyncpg still
    rolls back an open transaction itself; its default reset would cost a round trip per request.
    """


class Database:
    """Hands out pooled connections; a repository call is normally one statement on one."""

    def __init__(self, url: str, settings: Settings) -> None:
        self._dsn = driver_dsn(url)
        self._settings = settings
        self._pool: asyncpg.Pool | None = None
        self._pool_metrics = PoolMetrics()

    async def open(self) -> None:
        """Create the pool. It connects lazily, so a database that is down at start-up only
        makes requests fail with 503 until it comes back."""
        s = self._settings
        self._pool = await asyncpg.create_pool(
            self._dsn,
            min_size=0,
            max_size=s.db_pool_size,
            init=_init_connection,
            reset=_keep_session,
            timeout=s.db_connect_timeout,
            server_settings={
                "application_name": "gql-gateway",
                "statement_timeout": str(s.db_statement_timeout_ms),
            },
        )

    @asynccontextmanager
    async def connect(self) -> AsyncIterator[asyncpg.Connection]:
        """A pooled connection in autocommit mode; connection loss surfaces as `Unavailable`.

        A single statement is atomic on its own, so no BEGIN/COMMIT round trips are spent on it.
        """
        if self._pool is None:
            raise RuntimeError("Database.open() was not awaited")
        try:
            async with self._pool_metrics.acquire(
                self._pool, self._settings.db_pool_timeout
            ) as conn:
                yield conn
        except _UNAVAILABLE as exc:
            raise Unavailable(
                "The database is unavailable; nothing was changed. Retry shortly."
            ) from exc

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[asyncpg.Connection]:
        """A connection inside one transaction: committed on success, rolled back on error."""
        async with self.connect() as conn, conn.transaction():
            yield conn

    async def ping(self) -> None:
        async with self.connect() as conn:
            await conn.execute("SELECT 1")

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None
            self._pool_metrics.closed()
