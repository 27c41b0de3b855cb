"""`python -m bench`: set up, run the load generator against both servers, report, clean up."""

import argparse
import contextlib
import hashlib
import json
import os
import platform
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from importlib.metadata import version
from pathlib import Path
from typing import IO, Any

import httpx
import jwt

from bench import report
from bench.database import (
    DEFAULT_SERVER_URL,
    BenchDatabase,
    Seed,
    create,
    drop,
    postmaster_pid,
    seed,
    server_version,
)
from bench.load import Plan, ProfilePlan
from bench.servers import HOST
from bench.stacks import summarize
from bench.workloads import LIST_QUERY, LIST_QUERY_HASH
from gql.settings import Settings

RESULTS = Path(__file__).parent / "results"
WORKLOADS = (
    "rest_patch",
    "rest_patch_jwt",
    "graphql_mutation",
    "graphql_mutation_jwt",
    "graphql_list",
    "graphql_list_jwt",
    "graphql_list_persisted",
)
SERVERS = ("gateway", "gateway_core", "baseline")
_SECRET_SETTINGS = frozenset({"JWT_SECRET", "JWT_PUBLIC_KEY", "DATABASE_URL"})
PACKAGES = (
    "strawberry-graphql",
    "graphql-core",
    "starlette",
    "uvicorn",
    "uvloop",
    "httptools",
    "sqlalchemy",
    "asyncpg",
    "orjson",
)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Benchmark the gateway against a hand-written Starlette + asyncpg endpoint. "
        f"Uses the PostgreSQL server at BENCH_DATABASE_URL (default {DEFAULT_SERVER_URL}), "
        "or the embedded one when that is not reachable.",
    )
    parser.add_argument("--duration", type=float, default=3.0, help="seconds per timed run")
    parser.add_argument("--warmup", type=float, default=1.0, help="seconds of warm-up per run")
    parser.add_argument(
        "--concurrency",
        type=lambda s: [int(c) for c in s.split(",")],
        default=[16, 64],
        help="comma-separated connection counts (default 16,64)",
    )
    parser.add_argument(
        "--workloads",
        type=lambda s: s.split(","),
        default=list(WORKLOADS),
        help=f"comma-separated subset of {','.join(WORKLOADS)}",
    )
    parser.add_argument("--domains", type=int, default=200, help="domains to seed (default 200)")
    parser.add_argument(
        "--max-requests",
        type=int,
        default=1_000_000,
        help="upper bound on the requests of one timed run",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="sample the gateway with py-spy during its timed runs (slows them down)",
    )
    parser.add_argument(
        "--profile-concurrency",
        type=lambda s: [int(c) for c in s.split(",")],
        default=[16],
        help="concurrencies at which to profile (default 16)",
    )
    parser.add_argument("--py-spy", help="path to py-spy (default: found on PATH or beside python)")
    parser.add_argument(
        "--no-graphql-core",
        action="store_true",
        help="skip the second gateway (compiled plans off) that GraphQL workloads also run on",
    )
    return parser


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def _start_server(
    kind: str, database: BenchDatabase, log: IO[bytes], env: dict[str, str]
) -> "tuple[subprocess.Popen[bytes], int]":
    port = _free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bench.servers",
            kind,
            "--port",
            str(port),
            "--database-url",
            database.url,
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, **env},
    )
    return process, port


def _wait_ready(process: "subprocess.Popen[bytes]", port: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server on port {port} exited with {process.returncode}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"http://{HOST}:{port}/healthz", timeout=1).status_code == 200:
                return
        time.sleep(0.2)
    raise RuntimeError(f"server on port {port} did not answer within {timeout} s")


def _stop(process: "subprocess.Popen[bytes]") -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@contextlib.contextmanager
def _servers(
    database: BenchDatabase, logs: Path, kinds: list[str], env: dict[str, str]
) -> Iterator[dict[str, tuple[int, int]]]:
    """The servers running; yields {kind: (port, pid)}."""
    started: list[subprocess.Popen[bytes]] = []
    ports: dict[str, tuple[int, int]] = {}
    try:
        for kind in kinds:
            with (logs / f"{kind}.log").open("wb") as log:
                process, port = _start_server(kind, database, log, env)
            started.append(process)
            _wait_ready(process, port)
            ports[kind] = (port, process.pid)
        yield ports
    finally:
        for process in started:
            _stop(process)


def _session_token(user_id: str, secret: str) -> str:
    claims = {"sub": user_id, "exp": datetime.now(UTC) + timedelta(hours=2)}
    return jwt.encode(claims, secret, "HS256")


def _register_persisted(ports: dict[str, tuple[int, int]], token: str) -> None:
    """Send the list's text once with its hash, as an APQ client does after its first miss."""
    body = {
        "query": LIST_QUERY,
        "extensions": {"persistedQuery": {"version": 1, "sha256Hash": LIST_QUERY_HASH}},
    }
    for kind, (port, _pid) in ports.items():
        if kind != "baseline":
            answer = httpx.post(
                f"http://{HOST}:{port}/graphql",
                json=body,
                headers={"Authorization": f"Bearer {token}"},
                timeout=30,
            )
            answer.raise_for_status()


def _py_spy(explicit: str | None) -> str:
    candidates = [explicit, shutil.which("py-spy"), str(Path(sys.executable).parent / "py-spy")]
    for candidate in candidates:
        if candidate and Path(candidate).is_file():
            return candidate
    raise SystemExit("--profile needs py-spy: `pip install py-spy`, or pass --py-spy PATH")


def _run_load(plan: Plan) -> list[dict[str, Any]]:
    """The load generator, in its own process; prints each measurement as it arrives."""
    process = subprocess.Popen(
        [sys.executable, "-m", "bench.load"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdin is not None
    assert process.stdout is not None
    process.stdin.write(json.dumps(plan))
    process.stdin.close()
    results = []
    for line in process.stdout:
        result = json.loads(line)
        results.append(result)
        errors = f", {result['errors']} errors" if result["errors"] else ""
        sessions = result["db_sessions_opened"]
        opened = f", {sessions} new DB connections" if sessions else ""
        print(
            f"  {result['workload']:<17} {result['target']:<8} c={result['concurrency']:<3} "
            f"{result['rps']:8.0f} req/s  p50 {result['p50_ms']:6.2f} ms  "
            f"p99 {result['p99_ms']:6.2f} ms{errors}{opened}",
            file=sys.stderr,
            flush=True,
        )
    if process.wait() != 0:
        raise RuntimeError(f"the load generator failed with exit code {process.returncode}")
    return results


def _git(*args: str) -> str:
    return subprocess.run(["git", *args], capture_output=True, text=True, check=True).stdout


def _git_state() -> dict[str, Any] | None:
    """The commit measured and how the working tree differed from it: a benchmark is often run
    on uncommitted changes. The difference in the gateway's code is kept in full."""
    try:
        commit = _git("rev-parse", "HEAD").strip()
        changed = _git("diff", "HEAD", "--name-only").split()
        diff = _git("diff", "HEAD")
        gateway_diff = _git("diff", "HEAD", "--", "gql")
    except (OSError, subprocess.CalledProcessError):
        return None
    return {
        "commit": commit,
        "changed_files": changed,
        "diff_sha256": hashlib.sha256(diff.encode()).hexdigest() if changed else None,
        "gql_diff": gateway_diff or None,
    }


def _cpu_model() -> str | None:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return None


def _gateway_environment() -> dict[str, str]:
    """Settings the gateway reads from the environment (secrets left out)."""
    names = {name.upper() for name in Settings.model_fields} - _SECRET_SETTINGS
    return {name: value for name, value in os.environ.items() if name in names}


def _environment(database: BenchDatabase) -> dict[str, Any]:
    return {
        "gateway_environment": _gateway_environment(),
        "cpus": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "packages": {name: version(name) for name in PACKAGES},
        "postgresql": server_version(database),
        "database": "embedded" if database.embedded else "server",
        "git": _git_state(),
    }


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    unknown = set(args.workloads) - set(WORKLOADS)
    if unknown:
        raise SystemExit(f"unknown workloads: {', '.join(sorted(unknown))}")
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    RESULTS.mkdir(exist_ok=True)
    profile: ProfilePlan | None = None
    if args.profile:
        directory = RESULTS / f"{stamp}-profile"
        directory.mkdir()
        profile = {
            "py_spy": _py_spy(args.py_spy),
            "directory": str(directory),
            "rate": 500,
            "concurrency": args.profile_concurrency,
        }

    server_url = os.environ.get("BENCH_DATABASE_URL") or DEFAULT_SERVER_URL
    database = create(server_url)
    where = "embedded PostgreSQL" if database.embedded else "PostgreSQL server"
    print(f"database {database.name} on the {where}", file=sys.stderr)
    try:
        data: Seed = seed(database, args.domains)
        print(f"seeded {len(data.domain_ids)} domains for user {data.user_id}", file=sys.stderr)
        secret = secrets.token_urlsafe(48)
        kinds = ["gateway", "baseline"] if args.no_graphql_core else list(SERVERS)
        with (
            tempfile.TemporaryDirectory(prefix="gql-bench-logs-") as logs,
            _servers(database, Path(logs), kinds, {"JWT_SECRET": secret}) as ports,
        ):
            _register_persisted(ports, data.api_key)
            plan: Plan = {
                "targets": {k: {"port": p, "pid": pid} for k, (p, pid) in ports.items()},
                "postmaster_pid": postmaster_pid(database),
                "database_dsn": database.dsn,
                "token": data.api_key,
                "jwt": _session_token(str(data.user_id), secret),
                "domain_ids": [str(i) for i in data.domain_ids],
                "workloads": args.workloads,
                "concurrency": args.concurrency,
                "warmup": args.warmup,
                "duration": args.duration,
                "max_requests": args.max_requests,
                "profile": profile,
            }
            try:
                results = _run_load(plan)
            except Exception:
                for log in sorted(Path(logs).glob("*.log")):
                    print(f"--- {log.name}\n{log.read_text()[-4000:]}", file=sys.stderr)
                raise
        environment = _environment(database)
    finally:
        drop(database)

    output = RESULTS / f"{stamp}.json"
    settings = {k: v for k, v in vars(args).items() if k != "py_spy"}
    output.write_text(
        json.dumps(
            {
                "started": stamp,
                "settings": settings,
                "environment": environment,
                "results": results,
            },
            indent=2,
        )
    )
    print()
    print(report.markdown_table(results))
    print(report.verdicts(results))
    print(report.cpu_table(results))
    print(report.interference(results), end="")
    print(f"results written to {output}", file=sys.stderr)
    if profile is not None:
        for path in sorted(Path(profile["directory"]).glob("*.txt")):
            summary = summarize(path)
            path.with_suffix(".summary").write_text(summary)
            print(summary)
    return 0
