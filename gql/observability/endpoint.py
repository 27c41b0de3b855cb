"""`/metrics`: on the gateway's own port, or on a listener of its own (METRICS_PORT, and
WORKER_METRICS_PORT for `gql-gateway worker`)."""

import hmac
import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gql.db.engine import Database
from gql.db.queue_stats import read_queue_stats
from gql.errors import DomainError
from gql.observability.metrics import QueueStats, render
from gql.rest.responses import error_response
from gql.settings import Settings

logger = logging.getLogger(__name__)

_UNAUTHORIZED = "Send `Authorization: Bearer <METRICS_TOKEN>` to read the metrics."


def _authorized(request: Request, settings: Settings) -> bool:
    if settings.metrics_token is None:
        return True
    expected = f"Bearer {settings.metrics_token.get_secret_value()}"
    given = request.headers.get("authorization", "")
    return hmac.compare_digest(given.encode(), expected.encode())


async def _queue_stats(db: Database) -> QueueStats | None:
    try:
        async with db.connect() as conn:
            return await read_queue_stats(conn)
    except DomainError:
        # The process's own metrics are still worth a scrape while the database is away.
        return None


async def metrics_response(request: Request, db: Database, settings: Settings) -> Response:
    if not _authorized(request, settings):
        return error_response(401, "unauthorized", _UNAUTHORIZED, {"WWW-Authenticate": "Bearer"})
    body, content_type = render(await _queue_stats(db))
    return Response(body, headers={"Content-Type": content_type})


async def metrics(request: Request) -> Response:
    """The gateway's `/metrics` route."""
    return await metrics_response(
        request, request.app.state.services.db, request.app.state.settings
    )


def metrics_app(settings: Settings, database_url: str) -> Starlette:
    """An app serving only `/metrics`, with one database connection for the queue's figures."""
    db = Database(database_url, settings.model_copy(update={"db_pool_size": 1}))

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await db.open()
        try:
            yield
        finally:
            await db.close()

    async def endpoint(request: Request) -> Response:
        return await metrics_response(request, db, settings)

    return Starlette(routes=[Route("/metrics", endpoint)], lifespan=lifespan)


class MetricsListener:
    """`metrics_app` on its own port, in a thread with its own event loop, so it neither shares
    signal handling with the process's main loop nor waits behind its work."""

    def __init__(self, settings: Settings, database_url: str, *, host: str, port: int) -> None:
        config = uvicorn.Config(
            metrics_app(settings, database_url),
            host=host,
            port=port,
            log_config=None,
            access_log=False,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="metrics", daemon=True)
        self._where = f"http://{host}:{port}/metrics"

    def start(self) -> None:
        self._thread.start()
        logger.info("metrics on %s", self._where)

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)
