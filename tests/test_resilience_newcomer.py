"""What a newcomer sees on `make run`: real `gql-gateway serve` processes on a fresh data folder.

One SANDBOX warning (the demo set-up and the server used to log one each), no XDG_RUNTIME_DIR
warning (platformdirs warned on every command when the session had none), and a hint for a new
key that runs as printed from where `serve` was started (it named `gql-gateway`, which `make run`
does not put on PATH).
"""

import asyncio
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.helpers import free_port

GATEWAY = Path(sys.executable).with_name("gql-gateway")


def _newcomer_env(data_dir: Path) -> dict[str, str]:
    """A login without a runtime directory (CI, containers, `su`), in sandbox mode."""
    unset = {"XDG_RUNTIME_DIR", "DATABASE_URL", "AGENTMAIL_API_KEY", "CLOUDFLARE_API_TOKEN"}
    env = {k: v for k, v in os.environ.items() if k not in unset}
    env.update({"DATA_DIR": str(data_dir), "ACCESS_LOG": "false"})
    return env


async def _serve_once(cwd: Path, data_dir: Path) -> str:
    """Start `serve` as `make run` does, wait until it is ready, stop it; its stderr."""
    port = free_port()
    log = cwd / f"serve-{port}.log"
    command = [str(GATEWAY), "serve", "--port", str(port)]
    with log.open("wb") as sink:
        process = subprocess.Popen(
            command, cwd=cwd, env=_newcomer_env(data_dir), stdout=sink, stderr=sink
        )
    try:
        deadline = time.monotonic() + 60
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            while True:
                assert process.poll() is None, f"serve exited:\n{log.read_text()}"
                assert time.monotonic() < deadline, f"serve never got ready:\n{log.read_text()}"
                try:
                    if (await client.get("/readyz")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.2)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait(timeout=10)
    return log.read_text()


async def test_make_run_twice_warns_once_and_prints_a_key_command_that_runs(
    embedded_dir: Path,
) -> None:
    data_dir = embedded_dir / ".data"
    first = await _serve_once(embedded_dir, data_dir)
    assert first.count("SANDBOX MODE") == 1, first
    assert "XDG_RUNTIME_DIR" not in first, first
    assert "The key is shown only this once." in first, first

    second = await _serve_once(embedded_dir, data_dir)
    assert second.count("SANDBOX MODE") == 1, second
    assert "XDG_RUNTIME_DIR" not in second, second
    hint = re.search(r"A new key: (.+) keys create --user ([0-9a-f-]{36})", second)
    assert hint is not None, second

    # The hint runs as printed, from the folder `serve` was started in, with this PATH.
    created = await asyncio.to_thread(
        subprocess.run,
        [*shlex.split(hint.group(1)), "keys", "create", "--user", hint.group(2)],
        cwd=embedded_dir,
        env=_newcomer_env(data_dir),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert created.returncode == 0, created.stderr
    assert created.stdout.startswith("pk_live_"), created.stdout
    assert "XDG_RUNTIME_DIR" not in created.stderr, created.stderr
    assert "SANDBOX" not in created.stderr, created.stderr
