"""The hand-written endpoint the gateway is compared with: Starlette, an asyncpg pool, orjson.

It does the same work per request as the gateway without its layers: bearer API key (looked up
once, then cached in memory, as the gateway caches keys), JSON body, one `UPDATE … RETURNING`
(or one SELECT of a page) and the row rendered as JSON. No rate limit, no error contract.
"""

import hashlib
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

_COLUMNS = (
    "id, user_id, domain, agentmail_domain_id, status, dns_records, "
    "verified_at, created_at, updated_at"
)
_UPDATE = (
    "UPDATE email_domains SET status = $3, updated_at = clock_timestamp() "
    f"WHERE id = $1 AND user_id = $2 RETURNING {_COLUMNS}"
)
_LIST = (
    f"SELECT {_COLUMNS} FROM email_domains WHERE user_id = $1 "
    "ORDER BY created_at DESC, id DESC LIMIT $2"
)
_KEY_USER = "SELECT user_id FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL"
_SETTABLE = frozenset({"pending", "verifying", "failed"})


def _json(body: object, status: int = 200) -> Response:
    return Response(
        orjson.dumps(body, option=orjson.OPT_UTC_Z),
        status_code=status,
        media_type="application/json",
    )


def _row(row: asyncpg.Record) -> dict[str, Any]:
    return {
        "id": str(row["id"]),
        "user_id": str(row["user_id"]),
        "domain": row["domain"],
        "agentmail_domain_id": row["agentmail_domain_id"],
        "status": row["status"],
        "dns_records": row["dns_records"],
        "verified_at": row["verified_at"],
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
    }


async def _init_connection(conn: asyncpg.Connection) -> None:
    await conn.set_type_codec(
        "jsonb", schema="pg_catalog", encoder=orjson.dumps, decoder=orjson.loads, format="text"
    )


async def _keep_session(conn: asyncpg.Connection) -> None:
    """Release without asyncpg's default reset query (`RESET ALL`, `UNLISTEN *`, …): these
    connections never change session state, and the gateway's pool (in autocommit) sends
    nothing on release either, so both make one round trip per request."""


class _Keys:
    """API key → owner, read from the database on first use and then kept in memory."""

    def __init__(self) -> None:
        self._users: dict[str, uuid.UUID] = {}

    async def user(self, pool: asyncpg.Pool, authorization: str | None) -> uuid.UUID | None:
        if not authorization or not authorization.startswith("Bearer "):
            return None
        key = authorization[7:]
        user_id = self._users.get(key)
        if user_id is None:
            key_hash = hashlib.sha256(key.encode()).hexdigest()
            user_id = await pool.fetchval(_KEY_USER, key_hash)
            if user_id is None:
                return None
            self._users[key] = user_id
        return user_id


def create_baseline_app(dsn: str, *, min_size: int, max_size: int) -> Starlette:
    """The baseline app, with a pool of `min_size` to `max_size` connections."""
    keys = _Keys()
    pools: list[asyncpg.Pool] = []

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        pool = await asyncpg.create_pool(
            dsn,
            min_size=min_size,
            max_size=max_size,
            init=_init_connection,
            reset=_keep_session,
            server_settings={"application_name": "bench-baseline", "statement_timeout": "5000"},
        )
        pools.append(pool)
        try:
            yield
        finally:
            await pool.close()

    async def patch_domain(request: Request) -> Response:
        pool = pools[0]
        user_id = await keys.user(pool, request.headers.get("authorization"))
        if user_id is None:
            return _json({"error": "unauthorized"}, 401)
        try:
            body = orjson.loads(await request.body())
            domain_id = uuid.UUID(request.path_params["id"])
        except (orjson.JSONDecodeError, ValueError):
            return _json({"error": "bad request"}, 400)
        if (
            not isinstance(body, dict)
            or body.keys() != {"status"}
            or body["status"] not in _SETTABLE
        ):
            return _json({"error": "validation_error"}, 422)
        row = await pool.fetchrow(_UPDATE, domain_id, user_id, body["status"])
        if row is None:
            return _json({"error": "not_found"}, 404)
        return _json({"domain": _row(row)})

    async def list_domains(request: Request) -> Response:
        pool = pools[0]
        user_id = await keys.user(pool, request.headers.get("authorization"))
        if user_id is None:
            return _json({"error": "unauthorized"}, 401)
        try:
            first = int(request.query_params.get("first", "50"))
        except ValueError:
            return _json({"error": "bad request"}, 400)
        rows = await pool.fetch(_LIST, user_id, max(0, min(first, 100)))
        return _json({"domains": [_row(r) for r in rows]})

    async def healthz(request: Request) -> Response:
        return _json({"status": "ok"})

    return Starlette(
        routes=[
            Route("/api/email/domains/{id}", patch_domain, methods=["PATCH"]),
            Route("/domains", list_domains, methods=["GET"]),
            Route("/healthz", healthz),
        ],
        lifespan=lifespan,
    )
