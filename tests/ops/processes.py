"""Real gateway processes for the operations tests: a database of their own, free ports, and
the JSON log lines they write."""

import asyncio
import json
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import httpx
from sqlalchemy.engine import make_url

from gql.db.engine import driver_dsn
from gql.db.migrate import upgrade

T = TypeVar("T")

GATEWAY = str(Path(sys.executable).with_name("gql-gateway"))


@asynccontextmanager
async def fresh_database(database_url: str) -> AsyncIterator[str]:
    """A migrated database of its own beside the session's, so that worker processes see no
    job other tests left queued."""
    name = f"gql_ops_{uuid.uuid4().hex[:12]}"
    admin = driver_dsn(make_url(database_url).set(database="postgres").render_as_string(False))

    async def run(sql: str) -> None:
        conn = await asyncpg.connect(admin)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    await run(f'CREATE DATABASE "{name}"')
    url = make_url(database_url).set(database=name).render_as_string(hide_password=False)
    await asyncio.to_thread(upgrade, url)
    try:
        yield url
    finally:
        await run(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class Process:
    """A `gql-gateway` subprocess whose stderr is collected line by line."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        full = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
        self.popen = subprocess.Popen(
            [GATEWAY, *args],
            env={**full, **env},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.popen.stderr is not None
        for line in self.popen.stderr:
            self.lines.append(line.rstrip("\n"))

    def records(self) -> list[dict[str, Any]]:
        """The JSON log records written so far (other lines are skipped)."""
        found = []
        for line in list(self.lines):
            if line.startswith("{"):
                found.append(json.loads(line))
        return found

    def output(self) -> str:
        return "\n".join(self.lines)

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(timeout=10)
        self._reader.join(timeout=5)
        if self.popen.stderr is not None:
            self.popen.stderr.close()


def base_env(database_url: str, **extra: str) -> dict[str, str]:
    env = {
        "DATABASE_URL": database_url,
        "ENVIRONMENT": "test",
        "LOG_FORMAT": "json",
        "LOG_LEVEL": "INFO",
        "API_KEY_CACHE_SECONDS": "0",
        "AGENTMAIL_API_KEY": "",
        "POLL_SCHEDULE_MINUTES": "[0.02]",
        "SANDBOX_VERIFY_SECONDS": "0",
    }
    env.update(extra)
    return env


@asynccontextmanager
async def gateway(*args: str, env: dict[str, str], ready: str | None) -> AsyncIterator[Process]:
    """Start `gql-gateway ARGS`; with `ready`, wait until that URL answers 200."""
    process = Process(list(args), env)
    try:
        if ready is not None:
            await wait_until_ready(ready, process)
        yield process
    finally:
        process.stop()


async def wait_until_ready(url: str, process: Process, *, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    async with httpx.AsyncClient() as client:
        while time.monotonic() < deadline:
            if process.popen.poll() is not None:
                raise AssertionError(f"the process exited:\n{process.output()}")
            try:
                if (await client.get(url)).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)
    raise AssertionError(f"{url} did not answer:\n{process.output()}")


async def eventually(
    probe: Callable[[], Awaitable[T]], *, seconds: float = 30, interval: float = 0.2
) -> T:
    """Poll `probe()` (async) until it returns something truthy."""
    deadline = time.monotonic() + seconds
    while True:
        value = await probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(interval)
