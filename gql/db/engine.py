"""The connection pool, and the one place that turns lost connections into `Unavailable`.

Statements are built with SQLAlchemy Core in the repositories and compiled once; they run on
an asyncpg pool directly. Going through SQLAlchemy's execution layer at run time doubled the
gateway's CPU per request (docs/performance.md), while the statements themselves stay typed,
named and checked against the tables.

What a failure says depends on when it happened. Before a connection was handed out nothing can
have run, so the caller hears "nothing was changed"; inside a transaction the server rolls the
work back, so the same holds. A connection lost after an autocommit statement was sent may have
committed it, so the caller hears that the outcome is unknown.
"""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import orjson
from sqlalchemy.engine import make_url

from gql.db.migrate import SchemaState, schema_state
from gql.errors import Unavailable
from gql.observability.db import PoolMetrics
from gql.settings import Settings

# Errors that mean "the database is not there right now" rather than "the query is wrong".
# InternalClientError is what asyncpg raises for a connection whose protocol failed when the
# server went away ("cannot switch to state 12; protocol is in the failed state").
_LOST = (
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
    asyncpg.CannotConnectNowError,
    asyncpg.TooManyConnectionsError,
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
)
_UNREACHABLE = (OSError, TimeoutError, *_LOST)
# Tables or columns missing: a schema behind the code, unless the revision says otherwise.
_SCHEMA_ERRORS = (asyncpg.UndefinedTableError, asyncpg.UndefinedColumnError)

NOTHING_CHANGED = "The database is unavailable; nothing was changed. Retry shortly."
OUTCOME_UNKNOWN = (
    "The connection to the database was lost during the request; the change may or may not "
    "have been made. Read it again before retrying."
)
STATEMENT_CANCELLED = (
    "The database took too long to answer and the statement was cancelled. Retry shortly."
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


def _connection_lost(conn: asyncpg.Connection, error: BaseException) -> bool:
    """Whether `error`, raised while `conn` was in use, means the connection went away.

    An OSError or TimeoutError from the caller's own work (a provider call, a deadline) is not the
    database's; the driver's own errors are, and so is any error that left the connection closed.
    """
    return isinstance(error, _LOST) or (
        isinstance(error, OSError | TimeoutError) and conn.is_closed()
    )


class Database:
    """Hands out pooled connections; a repository call is normally one statement on one.

    Data connections are handed out only once the schema is at the revision this code expects;
    the check runs once per process, and again if a table or column turns out to be missing.
    """

    def __init__(self, url: str, settings: Settings) -> None:
        self._dsn = driver_dsn(url)
        self._settings = settings
        self._pool: asyncpg.Pool | None = None
        self._pool_metrics = PoolMetrics()
        self._schema_checked = False

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
    async def _acquire(self) -> AsyncIterator[asyncpg.Connection]:
        """A pooled connection; failing to get one is `Unavailable` ("nothing was changed").

        A connection that fails while in use is terminated rather than handed out again, so the
        next request opens a fresh one instead of meeting the same broken socket.
        """
        if self._pool is None:
            raise RuntimeError("Database.open() was not awaited")
        pool, acquired = self._pool, False
        self._pool_metrics.waiting()
        try:
            conn: asyncpg.Connection = await pool.acquire(timeout=self._settings.db_pool_timeout)
            acquired = True
        except (*_UNREACHABLE, asyncpg.QueryCanceledError) as exc:
            raise Unavailable(NOTHING_CHANGED) from exc
        finally:
            self._pool_metrics.waited(pool, acquired=acquired)
        try:
            yield conn
        except BaseException as error:
            if _connection_lost(conn, error):
                conn.terminate()
            raise
        finally:
            try:
                await pool.release(conn)
            except _UNREACHABLE:
                conn.terminate()
            self._pool_metrics.released(pool)

    @asynccontextmanager
    async def _translated(self, conn: asyncpg.Connection, *, if_lost: str) -> AsyncIterator[None]:
        """Turn the driver's failures inside the block into `Unavailable`, saying `if_lost` when
        the connection went away; a missing table or column re-checks the schema's revision."""
        try:
            yield
        except asyncpg.QueryCanceledError as exc:
            raise Unavailable(STATEMENT_CANCELLED) from exc
        except _SCHEMA_ERRORS:
            self._schema_checked = False
            await self._require_schema(conn)
            raise
        except Exception as exc:
            if _connection_lost(conn, exc):
                raise Unavailable(if_lost) from exc
            raise

    @asynccontextmanager
    async def connect(self) -> AsyncIterator[asyncpg.Connection]:
        """A pooled connection in autocommit mode; connection loss surfaces as `Unavailable`.

        A single statement is atomic on its own, so no BEGIN/COMMIT round trips are spent on it.
        """
        async with self._acquire() as conn:
            await self._require_schema(conn)
            async with self._translated(conn, if_lost=OUTCOME_UNKNOWN):
                yield conn

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[asyncpg.Connection]:
        """A connection inside one transaction: committed on success, rolled back on error.

        Until the commit is sent nothing is visible, so a failure before it changed nothing; a
        connection lost during the commit leaves the outcome unknown.
        """
        async with self._acquire() as conn:
            await self._require_schema(conn)
            tx = conn.transaction()
            async with self._translated(conn, if_lost=NOTHING_CHANGED):
                await tx.start()
                try:
                    yield conn
                except BaseException:
                    if not conn.is_closed():
                        await tx.rollback()
                    raise
            async with self._translated(conn, if_lost=OUTCOME_UNKNOWN):
                await tx.commit()

    async def _require_schema(self, conn: asyncpg.Connection) -> None:
        if self._schema_checked:
            return
        async with self._translated(conn, if_lost=NOTHING_CHANGED):
            state = await schema_state(conn)
        if state.behind:
            raise Unavailable(state.hint)
        self._schema_checked = True

    async def schema(self) -> SchemaState:
        """The schema's revision against the one this code expects; `Unavailable` when the
        database does not answer (readiness uses it as its ping)."""
        async with self._acquire() as conn, self._translated(conn, if_lost=NOTHING_CHANGED):
            return await schema_state(conn)

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None
            self._pool_metrics.closed()
