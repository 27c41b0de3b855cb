"""The load generator: `python -m bench.load < plan.json` prints one JSON line per measurement.

It runs in its own process, apart from the servers, and drives the gateway and the baseline
identically: closed-loop keep-alive HTTP/1.1 connections to 127.0.0.1 (one request in flight
on each), written as bare asyncio protocols on uvloop so the client needs little of the CPU it
shares with the servers. Each measurement is a warm-up, then a timed run bounded both in time
and in request count; the latency of a request is from writing it to reading the last byte of
its response. The client's own garbage collector is paused during runs, so its pauses do not
show up as server latency.
"""

import asyncio
import gc
import json
import math
import os
import socket
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypedDict, cast

import asyncpg

from bench.workloads import RequestSource, Workload, workloads

HOST = "127.0.0.1"
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


class TargetPlan(TypedDict):
    port: int
    pid: int


class ProfilePlan(TypedDict):
    py_spy: str
    directory: str
    rate: int
    concurrency: list[int]


class Plan(TypedDict):
    targets: dict[str, TargetPlan]
    postmaster_pid: int | None
    database_dsn: str
    token: str
    jwt: str
    domain_ids: list[str]
    workloads: list[str]
    concurrency: list[int]
    warmup: float
    duration: float
    max_requests: int
    profile: ProfilePlan | None


@dataclass(slots=True)
class _Phase:
    """One closed-loop run over a set of connections, until its deadline or request budget."""

    source: RequestSource
    deadline: int
    max_requests: int
    done: asyncio.Future[None]
    sent: int = 0
    active: int = 0
    errors: int = 0
    received_bytes: int = 0
    first_error: str | None = None
    started: int = 0
    finished: int = 0
    latencies: list[int] = field(default_factory=list)

    def start(self, connections: list["_Connection"]) -> None:
        self.started = time.perf_counter_ns()
        for connection in connections:
            if self.sent >= self.max_requests:
                break
            self.sent += 1
            self.active += 1
            connection.send(self)
        if self.active == 0:
            self.done.set_result(None)

    def completed(self, connection: "_Connection", status: int, body: bytes, now: int) -> None:
        self.latencies.append(now - connection.sent_at)
        self.received_bytes += len(body)
        if status != 200 or not any(fragment in body for fragment in connection.expect):
            self.errors += 1
            if self.first_error is None:
                self.first_error = f"HTTP {status}: {body[:400].decode(errors='replace')}"
        if now < self.deadline and self.sent < self.max_requests:
            self.sent += 1
            connection.send(self)
            return
        self.active -= 1
        if self.active == 0:
            self.finished = now
            self.done.set_result(None)

    def failed(self, error: Exception) -> None:
        if not self.done.done():
            self.done.set_exception(error)


class _Connection(asyncio.Protocol):
    """A keep-alive HTTP/1.1 connection with at most one request in flight."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.phase: _Phase | None = None
        self.expect: tuple[bytes, ...] = ()
        self.sent_at = 0
        self._buffer = bytearray()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def send(self, phase: _Phase) -> None:
        assert self.transport is not None
        self.phase = phase
        request, self.expect = phase.source()
        self.sent_at = time.perf_counter_ns()
        self.transport.write(request)

    def data_received(self, data: bytes) -> None:
        buffer = self._buffer
        buffer += data
        end = buffer.find(b"\r\n\r\n")
        if end < 0:
            return
        head = bytes(buffer[:end]).lower()
        at = head.find(b"\r\ncontent-length:")
        if at < 0:
            self._fail(ConnectionError("response without Content-Length"))
            return
        line_end = head.find(b"\r\n", at + 2)
        length = int(head[at + 17 : line_end if line_end >= 0 else len(head)])
        total = end + 4 + length
        if len(buffer) < total:
            return
        now = time.perf_counter_ns()
        body = bytes(buffer[end + 4 : total])
        del buffer[:total]
        assert self.phase is not None
        self.phase.completed(self, int(head[9:12]), body, now)

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail(ConnectionError(f"the server closed the connection ({exc})"))

    def _fail(self, error: Exception) -> None:
        if self.phase is not None:
            self.phase.failed(error)


async def _run_phase(
    connections: list[_Connection], source: RequestSource, seconds: float, max_requests: int
) -> _Phase:
    loop = asyncio.get_running_loop()
    phase = _Phase(
        source=source,
        deadline=time.perf_counter_ns() + int(seconds * 1e9),
        max_requests=max_requests,
        done=loop.create_future(),
    )
    phase.start(connections)
    await asyncio.wait_for(phase.done, timeout=seconds + 30)
    for connection in connections:
        connection.phase = None
    return phase


def _stat(pid: int | str) -> list[str] | None:
    """The fields of /proc/PID/stat after the command name (the state is the first)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()


def _process_cpu_seconds(pid: int) -> float | None:
    fields = _stat(pid)
    return None if fields is None else (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS


def _postgres_cpu_seconds(postmaster: int | None) -> float | None:
    """CPU time of the PostgreSQL server: its main process, the backends it has reaped (which
    count the connections opened and closed during a run) and those still running."""
    main = None if postmaster is None else _stat(postmaster)
    if main is None:
        return None
    ticks = sum(int(v) for v in main[11:15])
    for entry in Path("/proc").iterdir():
        fields = _stat(entry.name) if entry.name.isdigit() else None
        if fields is not None and int(fields[1]) == postmaster:
            ticks += int(fields[11]) + int(fields[12])
    return ticks / _CLOCK_TICKS


def _machine_ticks() -> tuple[int, int] | None:
    """(busy, total) jiffies summed over all CPUs."""
    try:
        first = Path("/proc/stat").read_text().splitlines()[0]
    except OSError:
        return None
    values = [int(v) for v in first.split()[1:9]]
    idle = values[3] + values[4]
    return sum(values) - idle, sum(values)


def _percentile(ordered: list[int], q: float) -> float:
    rank = max(0, min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1))
    return ordered[rank] / 1e6


@dataclass(frozen=True, slots=True)
class _CpuSnapshot:
    client: float
    server: float | None
    postgres: float | None
    machine: tuple[int, int] | None

    @classmethod
    def take(cls, server: int, postmaster: int | None) -> "_CpuSnapshot":
        return cls(
            client=time.process_time(),
            server=_process_cpu_seconds(server),
            postgres=_postgres_cpu_seconds(postmaster),
            machine=_machine_ticks(),
        )


def _cores(start: float | None, end: float | None, seconds: float) -> float | None:
    return None if start is None or end is None else (end - start) / seconds


def _cpu_cores(
    before: _CpuSnapshot, after: _CpuSnapshot, seconds: float
) -> dict[str, float | None]:
    """Cores kept busy during a run: the client, the measured server, PostgreSQL, the machine,
    and everything else on it (other work sharing the machine makes a run less reliable)."""
    cores = {
        "client": _cores(before.client, after.client, seconds),
        "server": _cores(before.server, after.server, seconds),
        "postgres": _cores(before.postgres, after.postgres, seconds),
        "machine": None,
        "other": None,
    }
    if before.machine is not None and after.machine is not None:
        busy = after.machine[0] - before.machine[0]
        total = after.machine[1] - before.machine[1]
        machine = (os.cpu_count() or 1) * busy / total if total else 0.0
        cores["machine"] = machine
        if cores["server"] is not None and cores["postgres"] is not None:
            known = (cores["client"] or 0.0) + cores["server"] + cores["postgres"]
            cores["other"] = max(0.0, machine - known)
    return cores


async def _start_profiler(
    plan: ProfilePlan, pid: int, seconds: float, output: Path
) -> asyncio.subprocess.Process:
    process = await asyncio.create_subprocess_exec(
        plan["py_spy"],
        "record",
        "--pid",
        str(pid),
        "--rate",
        str(plan["rate"]),
        "--duration",
        str(math.ceil(seconds)),
        "--format",
        "raw",
        "--nonblocking",
        "--output",
        str(output),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    await asyncio.sleep(0.5)  # let it attach before the timed run starts
    return process


async def _sessions(monitor: asyncpg.Connection) -> int:
    """Connections ever opened to the bench database (PostgreSQL's own counter)."""
    query = "SELECT sessions FROM pg_stat_database WHERE datname = current_database()"
    return int(await monitor.fetchval(query))


async def measure(
    plan: Plan, workload: Workload, target: str, concurrency: int, monitor: asyncpg.Connection
) -> dict[str, object]:
    """A warm-up, then one timed run of `workload` against `target` at `concurrency`."""
    loop = asyncio.get_running_loop()
    port, pid = plan["targets"][target]["port"], plan["targets"][target]["pid"]
    make_source = workload.baseline if target == "baseline" else workload.gateway
    source = make_source(port)
    connections: list[_Connection] = []
    try:
        for _ in range(concurrency):
            _, connection = await loop.create_connection(_Connection, HOST, port)
            connections.append(connection)
        check = await _run_phase(connections[:1], source, 5.0, 1)
        if check.errors:
            raise RuntimeError(f"{workload.name} on {target}: {check.first_error}")
        await _run_phase(connections, source, plan["warmup"], plan["max_requests"])

        profile_path, profiler = None, None
        profile = plan["profile"]
        profiled = target != "baseline" and concurrency in (profile or {}).get("concurrency", [])
        if profile is not None and profiled:
            profile_path = (
                Path(profile["directory"]) / f"{workload.name}-{target}-c{concurrency}.txt"
            )
            profiler = await _start_profiler(profile, pid, plan["duration"], profile_path)

        gc.collect()
        gc.disable()
        sessions_before = await _sessions(monitor)
        before = _CpuSnapshot.take(pid, plan["postmaster_pid"])
        phase = await _run_phase(connections, source, plan["duration"], plan["max_requests"])
        after = _CpuSnapshot.take(pid, plan["postmaster_pid"])
        sessions_after = await _sessions(monitor)
        if profiler is not None:
            await asyncio.wait_for(profiler.wait(), timeout=plan["duration"] + 30)
    finally:
        gc.enable()
        for connection in connections:
            if connection.transport is not None:
                connection.phase = None
                connection.transport.close()

    seconds = (phase.finished - phase.started) / 1e9
    ordered = sorted(phase.latencies)
    count = len(ordered)
    cpu = _cpu_cores(before, after, seconds)
    return {
        "workload": workload.name,
        "target": target,
        "concurrency": concurrency,
        "requests": count,
        "errors": phase.errors,
        "first_error": phase.first_error,
        "seconds": seconds,
        "rps": count / seconds,
        "p50_ms": _percentile(ordered, 0.50),
        "p90_ms": _percentile(ordered, 0.90),
        "p99_ms": _percentile(ordered, 0.99),
        "max_ms": ordered[-1] / 1e6,
        "mean_response_bytes": phase.received_bytes / count,
        "cpu_cores": cpu,
        "db_sessions_opened": sessions_after - sessions_before,
        "profile": None if profile_path is None else str(profile_path),
    }


async def run(plan: Plan) -> None:
    domain_ids = [uuid.UUID(i) for i in plan["domain_ids"]]
    every = workloads(domain_ids, plan["token"], plan["jwt"])
    chosen = [w for w in every if w.name in plan["workloads"]]
    monitor = await asyncpg.connect(plan["database_dsn"])
    try:
        for workload in chosen:
            for concurrency in plan["concurrency"]:
                targets = ["gateway", "gateway_core", "baseline"]
                if not workload.graphql or "gateway_core" not in plan["targets"]:
                    targets.remove("gateway_core")
                for target in targets:
                    result = await measure(plan, workload, target, concurrency, monitor)
                    sys.stdout.write(json.dumps(result) + "\n")
                    sys.stdout.flush()
    finally:
        await monitor.close()


def main() -> None:
    plan: Plan = json.load(sys.stdin)
    try:
        import uvloop  # optional: plain asyncio works too, only slower
    except ImportError:
        asyncio.run(run(plan))
        return
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(run(plan))


if __name__ == "__main__":
    main()
