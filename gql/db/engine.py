"""The async engine and the one place that turns lost connections into `Unavailable`."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
import sqlalchemy.exc
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from gql.errors import Unavailable
from gql.settings import Settings

# Errors that mean "the database is not there right now" rather than "the query is wrong".
_UNAVAILABLE_DRIVER_ERRORS = (
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
    asyncpg.TooManyConnectionsError,
    asyncpg.AdminShutdownError,
    asyncpg.QueryCanceledError,
    asyncpg.InterfaceError,
)


def create_engine(url: str, settings: Settings) -> AsyncEngine:
    return create_async_engine(
        url,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        # Fail fast with 503 when the pool is exhausted instead of queueing requests forever.
        pool_timeout=settings.db_pool_timeout,
        # No pre-ping: it costs a round trip per request. A dead connection fails one request
        # with 503 and is discarded by the pool, so service comes back without a restart.
        pool_pre_ping=False,
        # Every repository call is a single statement, which PostgreSQL runs atomically; an
        # explicit BEGIN/COMMIT would triple the round trips. Multi-statement work uses
        # `Database.transaction()`.
        isolation_level="AUTOCOMMIT",
        # In autocommit mode there is no transaction to roll back when a connection goes back
        # to the pool; skipping the rollback saves work on every request.
        skip_autocommit_rollback=True,
        connect_args={
            "timeout": settings.db_connect_timeout,
            "server_settings": {
                "application_name": "gql-gateway",
                "statement_timeout": str(settings.db_statement_timeout_ms),
            },
        },
    )


def _is_unavailable(exc: BaseException) -> bool:
    if isinstance(exc, sqlalchemy.exc.TimeoutError):
        return True
    if isinstance(exc, sqlalchemy.exc.DBAPIError):
        if exc.connection_invalidated:
            return True
        original = getattr(exc.orig, "__cause__", None) or exc.orig
        return isinstance(original, _UNAVAILABLE_DRIVER_ERRORS)
    return isinstance(exc, _UNAVAILABLE_DRIVER_ERRORS)


class Database:
    """Hands out connections; a repository call is one statement on one of them."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    @asynccontextmanager
    async def connect(self) -> AsyncIterator[AsyncConnection]:
        """An autocommit connection; connection loss surfaces as `Unavailable`."""
        try:
            async with self.engine.connect() as conn:
                yield conn
        except Exception as exc:
            if _is_unavailable(exc):
                raise Unavailable(
                    "The database is unavailable; nothing was changed. Retry shortly."
                ) from exc
            raise

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncConnection]:
        """A connection inside one transaction: committed on success, rolled back on error."""
        async with self.connect() as conn:
            tx_conn = await conn.execution_options(isolation_level="READ COMMITTED")
            async with tx_conn.begin():
                yield tx_conn

    async def ping(self) -> None:
        async with self.connect() as conn:
            await conn.exec_driver_sql("SELECT 1")

    async def dispose(self) -> None:
        await self.engine.dispose()
