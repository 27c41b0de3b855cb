"""Database metrics and spans: pool occupancy, waiting requests, and each statement."""

import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache

import asyncpg
from prometheus_client import Histogram

from gql.observability import tracing
from gql.observability.metrics import DB_CONNECTIONS, DB_DURATION, DB_PENDING

_USED = DB_CONNECTIONS.labels("used")
_IDLE = DB_CONNECTIONS.labels("idle")
_TABLE = re.compile(r"\b(?:FROM|INTO|UPDATE)\s+([A-Za-z_][A-Za-z0-9_.]*)", re.IGNORECASE)


def statement_labels(sql: str) -> tuple[str, str]:
    """The operation (`SELECT`, `UPDATE`, …) and first table of a statement, for its metric
    labels and span name."""
    words = sql.split(None, 1)
    operation = words[0].upper() if words else "UNKNOWN"
    table = _TABLE.search(sql)
    return operation, table.group(1) if table else ""


class PoolMetrics:
    """Counts one pool's connections in the process-wide gauges (in use, idle, waiting).

    Gauges move by differences, so several pools in one process add up instead of overwriting
    each other.
    """

    def __init__(self) -> None:
        self._idle = 0

    def _track_idle(self, pool: asyncpg.Pool) -> None:
        idle = pool.get_idle_size()
        _IDLE.inc(idle - self._idle)
        self._idle = idle

    def waiting(self) -> None:
        """A caller starts waiting for a connection."""
        DB_PENDING.inc()

    def waited(self, pool: asyncpg.Pool, *, acquired: bool) -> None:
        """The wait ended, with a connection or without one."""
        DB_PENDING.dec()
        if acquired:
            _USED.inc()
        self._track_idle(pool)

    def released(self, pool: asyncpg.Pool) -> None:
        _USED.dec()
        self._track_idle(pool)

    def closed(self) -> None:
        _IDLE.dec(self._idle)
        self._idle = 0


@cache
def _duration(labels: tuple[str, str]) -> Histogram:
    # One entry per compiled statement's labels: a fixed set.
    return DB_DURATION.labels(*labels)


@contextmanager
def observe_statement(labels: tuple[str, str], sql: str) -> Iterator[None]:
    operation, table = labels
    began = time.perf_counter()
    try:
        with tracing.span(
            f"{operation} {table}".strip(),
            kind="client",
            attributes={
                "db.system.name": "postgresql",
                "db.operation.name": operation,
                "db.collection.name": table,
                "db.query.text": sql,
            },
        ):
            yield
    finally:
        _duration(labels).observe(time.perf_counter() - began)
