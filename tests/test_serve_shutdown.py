"""`gql-gateway serve` under SIGTERM: the request in flight finishes, then the process exits."""

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import asyncpg
import httpx

from gql.db.engine import driver_dsn
from tests.helpers import MakeOwner, free_port

GATEWAY = str(Path(sys.executable).with_name("gql-gateway"))


async def _wait_until_ready(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 20
    async with httpx.AsyncClient() as client:
        while time.monotonic() < deadline:
            assert process.poll() is None, "the gateway exited during start-up"
            try:
                if (await client.get(f"{url}/readyz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)
    raise AssertionError("the gateway did not become ready")


async def test_sigterm_lets_the_request_in_flight_finish(
    database_url: str, make_owner: MakeOwner
) -> None:
    owner = await make_owner(["pending"])
    domain = owner.domains[0]
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "LOG_LEVEL": "WARNING",
        "ACCESS_LOG": "false",
        "AGENTMAIL_API_KEY": "unused",
    }
    process = subprocess.Popen(
        [GATEWAY, "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    admin = await asyncpg.connect(driver_dsn(database_url))
    try:
        await _wait_until_ready(url, process)
        lock = admin.transaction()
        await lock.start()
        await admin.execute("SELECT 1 FROM email_domains WHERE id = $1 FOR UPDATE", domain.id)
        async with httpx.AsyncClient(timeout=20) as client:
            in_flight = asyncio.create_task(
                client.patch(
                    f"{url}/api/email/domains/{domain.id}",
                    json={"status": "failed"},
                    headers=owner.headers,
                )
            )
            while not await admin.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'gql-gateway'"
                " AND wait_event_type = 'Lock'"
            ):
                await asyncio.sleep(0.05)
            process.send_signal(signal.SIGTERM)
            await asyncio.sleep(0.5)
            assert process.poll() is None, "the gateway exited with a request in flight"
            await lock.rollback()
            response = await in_flight
        assert response.status_code == 200, response.text
        assert response.json()["domain"]["status"] == "failed"
        began = time.monotonic()
        while process.poll() is None and time.monotonic() - began < 15:
            await asyncio.sleep(0.1)
        # uvicorn shuts down gracefully, then re-raises the signal it caught.
        assert process.returncode in (0, -signal.SIGTERM), (
            process.stderr.read().decode() if process.stderr else ""
        )
    finally:
        await admin.close()
        if process.poll() is None:
            process.kill()
        process.wait(timeout=10)
        if process.stderr is not None:
            process.stderr.close()
