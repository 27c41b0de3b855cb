"""The Starlette application: `create_app(settings)` builds everything; nothing at import time."""

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route, WebSocketRoute

from gql.db.embedded import embedded_database
from gql.errors import DomainError, Unavailable
from gql.graphql import ide
from gql.graphql.context import AdmitFirst
from gql.graphql.persisted import PersistedDocuments, load_manifest
from gql.graphql.schema import build_schema
from gql.graphql.view import GatewayGraphQL
from gql.http_limits import BodySizeLimit, RequestTimeLimit
from gql.observability.endpoint import metrics
from gql.observability.http import ObservabilityMiddleware
from gql.observability.metrics import process_exiting
from gql.observability.request_id import HEADER, ensure_request_id
from gql.observability.tracing import configure_tracing
from gql.rest.domains import patch_email_domain
from gql.rest.openapi import openapi_document
from gql.rest.responses import error_response, json_response
from gql.services.container import SANDBOX_NOTICE, Services, open_services
from gql.settings import Settings

logger = logging.getLogger(__name__)

_ALL_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


async def healthz(request: Request) -> Response:
    """Liveness: the process answers."""
    return json_response({"status": "ok"})


async def readyz(request: Request) -> Response:
    """Readiness, per component: the database answers, its schema is the revision this code
    expects, and the queue worker (when this process runs one) is not down. 503 says which is
    not, and why."""
    services: Services = request.app.state.services
    checks: dict[str, dict[str, object]] = {}
    problems: list[str] = []
    try:
        schema = await services.db.schema()
    except DomainError:
        unreachable = "the database cannot be reached"
        checks["database"] = {"status": "unavailable", "reason": unreachable}
        checks["schema"] = {"status": "unknown", "reason": unreachable}
        problems.append(f"database: {unreachable}")
    else:
        checks["database"] = {"status": "ok"}
        checks["schema"] = {
            "status": schema.status,
            "revision": schema.current,
            "expected": schema.expected,
        }
        if schema.status != "ok":
            checks["schema"]["reason"] = schema.hint
        if schema.behind:
            problems.append(f"schema: {schema.hint}")
    worker = services.worker.state
    checks["worker"] = {"status": worker.status, "restarts": worker.restarts}
    if worker.reason is not None:
        checks["worker"]["reason"] = worker.reason
    if not worker.healthy:
        problems.append(f"worker {worker.status}: {worker.reason}")
    if not problems:
        return json_response({"status": "ok", "checks": checks})
    error = {"code": "unavailable", "message": "; ".join(problems)}
    return json_response(
        {"status": "unavailable", "error": error, "checks": checks},
        503,
        {"Retry-After": str(Unavailable.retry_after)},
    )


async def openapi(request: Request) -> Response:
    """The OpenAPI description of the REST shim."""
    return json_response(openapi_document())


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    codes = {404: "not_found", 405: "method_not_allowed"}
    code = codes.get(exc.status_code, "bad_request")
    message = "No such endpoint: see /graphql and PATCH /api/email/domains/{id}."
    if exc.status_code != 404:
        message = str(exc.detail)
    return error_response(exc.status_code, code, message, dict(exc.headers or {}))


async def _unexpected_error(request: Request, exc: Exception) -> Response:
    request_id = ensure_request_id()
    logger.error("unexpected error (request %s)", request_id, exc_info=exc)
    return error_response(
        500, "internal_error", f"Unexpected error. Reference: {request_id}.", {HEADER: request_id}
    )


def _metrics_here(settings: Settings) -> bool:
    return settings.metrics and settings.metrics_port is None


async def _report_schema(services: Services) -> None:
    """Say at start-up what readiness will say: a schema behind this code cannot serve."""
    try:
        schema = await services.db.schema()
    except DomainError:
        logger.warning("the database cannot be reached at start-up; requests answer 503 until then")
        return
    if schema.behind:
        logger.error("%s Until then /readyz and every data request answer 503.", schema.hint)


def create_app(settings: Settings | None = None) -> Starlette:
    """Build the gateway. With no DATABASE_URL, an embedded PostgreSQL is started on startup."""
    settings = settings or Settings()
    configure_tracing(settings)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        url = settings.database_url
        if url is None:
            url = await asyncio.to_thread(embedded_database, settings.data_dir)
        async with open_services(url, settings) as services:
            app.state.services = services
            if services.sandbox:
                logger.warning(SANDBOX_NOTICE)
            await _report_schema(services)
            await services.events.hub.start()
            worker = asyncio.create_task(services.worker.run()) if settings.worker else None
            try:
                yield
            finally:
                await services.events.hub.stop()
                if worker is not None:
                    services.worker.stop()
                    await worker
                process_exiting()

    schema = build_schema(settings)
    trusted = (
        load_manifest(settings.graphql_trusted_documents)
        if settings.graphql_trusted_documents
        else {}
    )
    schema.trust(trusted)
    graphql = GatewayGraphQL(
        schema,
        settings,
        persisted=PersistedDocuments(
            trusted,
            apq_size=settings.graphql_apq_cache_size,
            trusted_only=settings.graphql_trusted_documents_only,
        ),
    )
    middleware = [
        Middleware(ObservabilityMiddleware, access_log=settings.access_log),
        # Host names this gateway answers for (ALLOWED_HOSTS); never a redirect to another.
        Middleware(TrustedHostMiddleware, allowed_hosts=settings.allowed_hosts, www_redirect=False),
        Middleware(
            RequestTimeLimit,
            seconds=settings.request_timeout_seconds,
            provider_calls=settings.provider_calls_per_request,
            provider_concurrency=settings.provider_concurrency,
            graphql_paths=frozenset({"/graphql"}),
        ),
    ]
    if settings.cors_origins:
        middleware.append(
            Middleware(
                CORSMiddleware,
                allow_origins=settings.cors_origins,
                allow_methods=["GET", "POST", "PATCH"],
                allow_headers=["Authorization", "Content-Type", HEADER],
                expose_headers=["Retry-After", HEADER],
                max_age=600,
            )
        )
    app = Starlette(
        routes=[
            Route(
                "/graphql",
                AdmitFirst(BodySizeLimit(graphql, settings.max_body_bytes)),
                methods=_ALL_METHODS,
            ),
            WebSocketRoute("/graphql", graphql),
            *([Route("/graphql/ide/{version}/{name}", ide.asset)] if settings.graphiql else []),
            Route("/api/email/domains/{id}", patch_email_domain, methods=_ALL_METHODS),
            Route("/api/openapi.json", openapi),
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            *([Route("/metrics", metrics)] if _metrics_here(settings) else []),
        ],
        middleware=middleware,
        exception_handlers={HTTPException: _http_error, Exception: _unexpected_error},
        lifespan=lifespan,
    )
    # No redirect to a path with or without a trailing slash: its URL would be built from the
    # request's Host header. Such a path is answered 404 like any unknown one.
    app.router.redirect_slashes = False
    app.state.settings = settings
    app.state.schema = schema
    return app
