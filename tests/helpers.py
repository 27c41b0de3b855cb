"""Helpers shared by the tests that drive real processes: `gql-gateway serve` on loopback, and
the reference JavaScript clients (graphql-ws, graphql-sse, Apollo Client) under Node.js."""

import asyncio
import contextlib
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

GATEWAY = str(Path(sys.executable).with_name("gql-gateway"))
JS_DIR = Path(__file__).parent / "js"


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Served:
    """A running `gql-gateway serve` process and where it answers."""

    process: subprocess.Popen[bytes]
    url: str
    log: Path

    @property
    def ws_url(self) -> str:
        return self.url.replace("http://", "ws://", 1) + "/graphql"

    def output(self) -> str:
        return self.log.read_text(errors="replace")


async def wait_until_ready(served: Served, *, within: float = 30) -> None:
    deadline = time.monotonic() + within
    async with httpx.AsyncClient() as client:
        while time.monotonic() < deadline:
            if served.process.poll() is not None:
                raise AssertionError(f"the gateway exited during start-up:\n{served.output()}")
            try:
                if (await client.get(f"{served.url}/readyz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)
    raise AssertionError(f"the gateway did not become ready:\n{served.output()}")


@asynccontextmanager
async def serve(
    database_url: str, env: Mapping[str, str] | None = None, *, args: tuple[str, ...] = ()
) -> AsyncIterator[Served]:
    """Run `gql-gateway serve` on a free port against `database_url` until the block ends.

    Defaults suit tests (no poller, quiet logs, generous rate limits); `env` overrides them.
    """
    port = free_port()
    values = {
        **os.environ,
        "DATABASE_URL": database_url,
        "ENVIRONMENT": "test",
        "LOG_LEVEL": "WARNING",
        "ACCESS_LOG": "false",
        "WORKER": "false",
        "RATE_LIMIT": "100000/minute",
        "RATE_LIMIT_ANONYMOUS": "100000/minute",
        **(env or {}),
    }
    with tempfile.NamedTemporaryFile(prefix="serve-", suffix=".log", delete=False) as log:
        log_path = Path(log.name)
        process = subprocess.Popen(
            [GATEWAY, "serve", "--port", str(port), *args],
            env=values,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    served = Served(process=process, url=f"http://127.0.0.1:{port}", log=log_path)
    try:
        await wait_until_ready(served)
        yield served
    finally:
        stop(served.process)
        await asyncio.to_thread(log_path.unlink, missing_ok=True)


def stop(process: subprocess.Popen[bytes], *, timeout: float = 15) -> None:
    """SIGTERM the process group, then SIGKILL it if it has not exited in time."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def js_clients() -> Path:
    """`tests/js` with its pinned npm packages installed (once per lock file)."""
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError("Node.js and npm are needed by these tests: install `nodejs` and `npm`")
    lock = (JS_DIR / "package-lock.json").read_bytes()
    stamp = JS_DIR / "node_modules" / f".installed-{hashlib.sha256(lock).hexdigest()[:16]}"
    if not stamp.exists():
        subprocess.run(
            [npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund"],
            cwd=JS_DIR,
            check=True,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=300,
        )
        stamp.touch()
    return JS_DIR


@dataclass
class NodeClient:
    """A Node.js script from tests/js that prints one JSON object per line on stdout."""

    process: asyncio.subprocess.Process
    lines: asyncio.Queue[dict[str, Any]] = field(default_factory=asyncio.Queue)
    stderr: list[str] = field(default_factory=list)

    async def next(self, *, within: float = 10) -> dict[str, Any]:
        """The next message the script printed; fails after `within` seconds."""
        try:
            return await asyncio.wait_for(self.lines.get(), within)
        except TimeoutError:
            raise AssertionError(
                f"no message from the Node client within {within} s; stderr:\n"
                + "".join(self.stderr)
            ) from None


@asynccontextmanager
async def node_client(script: str, *args: str) -> AsyncIterator[NodeClient]:
    """Run `node tests/js/<script> args…` until the block ends, collecting its JSON lines."""
    cwd = js_clients()
    process = await asyncio.create_subprocess_exec(
        shutil.which("node") or "node",
        script,
        *args,
        cwd=cwd,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    client = NodeClient(process=process)

    async def pump_stdout() -> None:
        assert process.stdout is not None
        async for line in process.stdout:
            if line.strip():
                await client.lines.put(json.loads(line))

    async def pump_stderr() -> None:
        assert process.stderr is not None
        async for line in process.stderr:
            client.stderr.append(line.decode(errors="replace"))

    pumps = [asyncio.create_task(pump_stdout()), asyncio.create_task(pump_stderr())]
    try:
        yield client
    finally:
        if process.returncode is None:
            process.terminate()
            try:
                await asyncio.wait_for(process.wait(), 5)
            except TimeoutError:
                process.kill()
                await process.wait()
        for pump in pumps:
            pump.cancel()
            with contextlib.suppress(asyncio.CancelledError, json.JSONDecodeError):
                await pump


async def events_until(js: NodeClient, kind: str, *, within: float = 15) -> list[dict[str, Any]]:
    """The messages a Node client printed, up to and including the first of `kind`."""
    seen = []
    while True:
        event = await js.next(within=within)
        seen.append(event)
        if event["event"] == kind:
            return seen
