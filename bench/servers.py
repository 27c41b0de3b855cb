"""One server subprocess: `python -m bench.servers KIND --port N --database-url URL`, KIND being
`gateway` (compiled plans on, the default), `gateway_core` (plans off: plain graphql-core) or
`baseline`.

Every server goes through `serve()`, so they run with identical uvicorn settings — the ones
`gql-gateway serve` uses, with the access log off.
"""

import argparse
import gc
import secrets

import uvicorn
from starlette.applications import Starlette

from bench.baseline import create_baseline_app
from bench.database import plain_dsn
from gql.app import create_app
from gql.settings import Settings

HOST = "127.0.0.1"
# High enough never to refuse a benchmark request, so the limiter is still paid for on each one.
RATE_LIMIT = "100000000/minute"


def gateway_settings(database_url: str, *, compiled_plans: bool = True) -> Settings:
    """The gateway's production defaults (and environment), but for what the benchmark sets."""
    return Settings(
        _env_file=None,
        environment="production",
        database_url=database_url,
        claim_secret=secrets.token_urlsafe(32),
        rate_limit=RATE_LIMIT,
        access_log=False,
        log_level="WARNING",
        graphql_compiled_plans=compiled_plans,
    )


def serve(app: Starlette, port: int) -> None:
    # As `gql-gateway serve` does: keep start-up objects out of the collector's full passes.
    gc.collect()
    gc.freeze()
    uvicorn.run(
        app,
        host=HOST,
        port=port,
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=10,
    )


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.servers")
    parser.add_argument("kind", choices=["gateway", "gateway_core", "baseline"])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--database-url", required=True, help="postgresql+asyncpg:// URL")
    args = parser.parse_args()
    settings = gateway_settings(args.database_url, compiled_plans=args.kind == "gateway")
    if args.kind != "baseline":
        app = create_app(settings)
    else:
        # The same number of database connections as the gateway may hold.
        app = create_baseline_app(
            plain_dsn(args.database_url),
            min_size=settings.db_pool_size,
            max_size=settings.db_pool_size + settings.db_max_overflow,
        )
    serve(app, args.port)


if __name__ == "__main__":
    main()
