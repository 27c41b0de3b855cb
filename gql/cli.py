"""`gql-gateway`: serve the API and manage its database, keys and schema."""

import argparse
import asyncio
import gc
import json
import logging.config
import os
import shutil
import sys
import tempfile
import uuid
from collections.abc import Awaitable, Callable
from contextlib import ExitStack
from pathlib import Path
from typing import TypeVar

import uvicorn
from starlette.applications import Starlette

from gql.app import create_app
from gql.db.embedded import embedded_database
from gql.db.migrate import upgrade
from gql.errors import DomainError
from gql.graphql.schema import build_schema
from gql.http_limits import guarded_http_protocol
from gql.observability.endpoint import MetricsListener
from gql.observability.logs import logging_config
from gql.observability.metrics import MULTIPROC_ENV
from gql.observability.tracing import TracingUnavailable
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


def _positive(value: str) -> int:
    if not value.isdigit() or int(value) < 1:
        raise argparse.ArgumentTypeError(f"{value!r} is not a positive whole number")
    return int(value)


def _this_command() -> str:
    """How to run this program again from the current directory, as it was started.

    `make run` starts `.venv/bin/gql-gateway`, which is not on PATH: a hint naming plain
    `gql-gateway` would not run there.
    """
    script = Path(sys.argv[0]).absolute()
    if script.name != "gql-gateway":
        return f"{_shortest(Path(sys.executable))} -m gql"
    on_path = shutil.which("gql-gateway")
    if on_path is not None and Path(on_path).resolve() == script.resolve():
        return "gql-gateway"
    return _shortest(script)


def _shortest(path: Path) -> str:
    """`path` relative to the current directory when it lies below it, else absolute."""
    absolute = path.absolute()
    if absolute.is_relative_to(Path.cwd()):
        return str(absolute.relative_to(Path.cwd()))
    return str(absolute)


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
            f"Demo user {user}. A new key: {_this_command()} keys create --user {user}\n",
            file=sys.stderr,
        )


def _metrics_listener(stack: ExitStack, settings: Settings, port: int | None) -> None:
    if port is None or not settings.metrics:
        return
    assert settings.database_url is not None
    listener = MetricsListener(settings, settings.database_url, host=settings.host, port=port)
    listener.start()
    stack.callback(listener.stop)


def _run_uvicorn(
    target: Starlette | str, settings: Settings, host: str, port: int, workers: int = 1
) -> None:
    """Serve `target`: an app, or (for several processes) the import string of a factory."""
    uvicorn.run(
        target,
        factory=isinstance(target, str),
        workers=workers,
        host=host,
        port=port,
        log_level=settings.log_level.lower(),
        log_config=logging_config(level=settings.log_level, json=settings.json_logs),
        # The gateway logs each request itself (ACCESS_LOG), with its request id.
        access_log=False,
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


def _serve_processes(settings: Settings, host: str, port: int, workers: int) -> None:
    """N processes on one port: uvicorn starts each from `create_app()`, which reads its
    settings from the environment, so what this process resolved goes there first. Their
    metrics meet in one multi-process directory."""
    assert settings.database_url is not None
    os.environ["DATABASE_URL"] = settings.database_url
    with ExitStack() as stack:
        if not os.environ.get(MULTIPROC_ENV):
            directory = tempfile.mkdtemp(prefix="gql-gateway-metrics-")
            stack.callback(shutil.rmtree, directory, ignore_errors=True)
            os.environ[MULTIPROC_ENV] = directory
        _metrics_listener(stack, settings, settings.metrics_port)
        _run_uvicorn("gql.app:create_app", settings, host, port, workers)


def cmd_serve(settings: Settings, args: argparse.Namespace) -> int:
    host, port = args.host or settings.host, args.port or settings.port
    if settings.database_url is None:
        url = embedded_database(settings.data_dir)
        settings = settings.model_copy(update={"database_url": url})
        _with_services(settings, lambda services: _demo(services, f"http://{host}:{port}"))
    if args.workers > 1:
        _serve_processes(settings, host, port, args.workers)
        return 0
    app = create_app(settings)
    # Move start-up objects out of the collector's reach: full collections over the imported
    # modules otherwise cause the worst request latencies.
    gc.collect()
    gc.freeze()
    with ExitStack() as stack:
        _metrics_listener(stack, settings, settings.metrics_port)
        _run_uvicorn(app, settings, host, port)
    return 0


def cmd_worker(settings: Settings, args: argparse.Namespace) -> int:
    settings = settings.model_copy(update={"database_url": _database_url(settings)})
    with ExitStack() as stack:
        _metrics_listener(stack, settings, settings.worker_metrics_port)
        _with_services(settings, lambda services: services.worker.run(handle_signals=True))
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


def cmd_zones_bind(settings: Settings, args: argparse.Namespace) -> int:
    binding = _with_services(settings, lambda s: s.zones.bind(args.zone, args.user))
    print(f"bound zone {binding.zone_name} ({binding.zone_id}) to user {binding.user_id}")
    return 0


def cmd_zones_unbind(settings: Settings, args: argparse.Namespace) -> int:
    binding = _with_services(settings, lambda s: s.zones.unbind(args.zone, args.user))
    print(f"unbound zone {binding.zone_name} ({binding.zone_id}) from user {binding.user_id}")
    return 0


def cmd_zones_list(settings: Settings, args: argparse.Namespace) -> int:
    for binding in _with_services(settings, lambda s: s.zones.bindings(args.user)):
        print(
            f"{binding.zone_name}  {binding.zone_id}  user {binding.user_id}  "
            f"bound {binding.created_at.isoformat()}"
        )
    return 0


def _zones_parser(commands: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    zones = commands.add_parser(
        "zones", help="bind zones of CLOUDFLARE_API_TOKEN to accounts, so records are published"
    )
    zone_commands = zones.add_subparsers(dest="zones_command", required=True, metavar="ACTION")
    bind = zone_commands.add_parser("bind", help="connect a zone to an account")
    bind.add_argument("--zone", required=True, help="zone name (e.g. acme.com) or zone id")
    bind.add_argument("--user", type=_user, required=True, help="account's user UUID")
    bind.set_defaults(run=cmd_zones_bind)
    unbind = zone_commands.add_parser("unbind", help="disconnect a zone from an account")
    unbind.add_argument("--zone", required=True, help="zone name or zone id")
    unbind.add_argument("--user", type=_user, required=True, help="account's user UUID")
    unbind.set_defaults(run=cmd_zones_unbind)
    listing = zone_commands.add_parser("list", help="list bindings (of one account with --user)")
    listing.add_argument("--user", type=_user, help="only this account's zones")
    listing.set_defaults(run=cmd_zones_list)


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
    serve.add_argument(
        "--workers",
        type=_positive,
        default=1,
        help="processes serving the one port (default 1); each runs a poller unless WORKER=false",
    )
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

    _zones_parser(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    settings = Settings()
    logging.config.dictConfig(logging_config(level=settings.log_level, json=settings.json_logs))
    try:
        code: int = args.run(settings, args)
    except (DomainError, TracingUnavailable) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return code
