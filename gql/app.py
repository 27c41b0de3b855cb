"""The Starlette application: `create_app(settings)` builds everything; nothing at import time."""

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route, WebSocketRoute

from gql.db.embedded import embedded_database
from gql.errors import DomainError
from gql.graphql.persisted import PersistedDocuments, load_manifest
from gql.graphql.schema import build_schema
from gql.graphql.view import GatewayGraphQL
from gql.http_limits import BodySizeLimit, RequestTimeLimit
from gql.rest.domains import patch_email_domain
from gql.rest.openapi import openapi_document
from gql.rest.responses import domain_error_response, error_response, json_response
from gql.services.container import Services, open_services
from gql.settings import Settings

logger = logging.getLogger(__name__)

_ALL_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


async def healthz(request: Request) -> Response:
    """Liveness: the process answers."""
    return json_response({"status": "ok"})


async def readyz(request: Request) -> Response:
    """Readiness: the database answers."""
    services: Services = request.app.state.services
    try:
        await services.db.ping()
    except DomainError as error:
        return domain_error_response(error)
    return json_response({"status": "ok"})


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
    request_id = uuid.uuid4().hex
    logger.error("unexpected error (request %s)", request_id, exc_info=exc)
    return error_response(500, "internal_error", f"Unexpected error. Reference: {request_id}.")


def create_app(settings: Settings | None = None) -> Starlette:
    """Build the gateway. With no DATABASE_URL, an embedded PostgreSQL is started on startup."""
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        url = settings.database_url
        if url is None:
            url = await asyncio.to_thread(embedded_database, settings.data_dir)
        async with open_services(url, settings) as services:
            app.state.services = services
            worker = asyncio.create_task(services.jobs.run_worker()) if settings.worker else None
            try:
                yield
            finally:
                if worker is not None:
                    worker.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await worker

    schema = build_schema(settings)
    trusted = (
        load_manifest(settings.graphql_trusted_documents)
        if settings.graphql_trusted_documents
        else {}
    )
    schema.trust(trusted)
    graphql = GatewayGraphQL(
        schema,
        persisted=PersistedDocuments(
            trusted,
            apq_size=settings.graphql_apq_cache_size,
            trusted_only=settings.graphql_trusted_documents_only,
        ),
        graphql_ide="graphiql" if settings.graphiql else None,
        allowed_origins=settings.cors_origins,
    )
    middleware = [Middleware(RequestTimeLimit, seconds=settings.request_timeout_seconds)]
    if settings.cors_origins:
        middleware.append(
            Middleware(
                CORSMiddleware,
                allow_origins=settings.cors_origins,
                allow_methods=["GET", "POST", "PATCH"],
                allow_headers=["Authorization", "Content-Type"],
                expose_headers=["Retry-After"],
                max_age=600,
            )
        )
    app = Starlette(
        routes=[
            Route(
                "/graphql",
                BodySizeLimit(graphql, settings.max_body_bytes),
                methods=_ALL_METHODS,
            ),
            WebSocketRoute("/graphql", graphql),
            Route("/api/email/domains/{id}", patch_email_domain, methods=_ALL_METHODS),
            Route("/api/openapi.json", openapi),
            Route("/healthz", healthz),
            Route("/readyz", readyz),
        ],
        middleware=middleware,
        exception_handlers={HTTPException: _http_error, Exception: _unexpected_error},
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.schema = schema
    return app
