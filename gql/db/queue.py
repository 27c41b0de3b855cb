"""The job queue's rows, written on the caller's connection so that a row change and the jobs
it implies commit (or roll back) together.

procrastinate defers a job with its SQL function `procrastinate_defer_jobs_v1`; calling it here,
on asyncpg, inside the state machine's transaction, is what its own `defer_async` does on its
psycopg pool, minus the second connection. Its insert trigger notifies the workers at commit.
"""

import uuid

import asyncpg
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

from gql.db.statements import compile_statement

QUEUE = "domains"
CHECK_TASK = "check_domain"
CLEANUP_TASK = "cleanup_domain"

jobs = sa.table(
    "procrastinate_jobs",
    sa.column("id", sa.BigInteger),
    sa.column("task_name", sa.String),
    sa.column("queueing_lock", sa.String),
    sa.column("status", sa.String),
)
# procrastinate's job status is an enum type: compared with literals, never with VARCHAR binds.
TODO: sa.ColumnElement[str] = sa.literal_column("'todo'")
ACTIVE: tuple[sa.ColumnElement[str], ...] = (TODO, sa.literal_column("'doing'"))


def check_lock(domain_id: uuid.UUID) -> str:
    """The queueing lock of a domain's checks: at most one of them waits in the queue."""
    return f"domain:{domain_id}"


_DEFER = compile_statement(
    sa.text(
        "SELECT procrastinate_defer_jobs_v1(ARRAY[ROW("
        ":queue, :task, 0, NULL, :queueing_lock, :args,"
        " clock_timestamp() + make_interval(secs => :delay)"
        ")::procrastinate_job_to_defer_v1])"
    ).bindparams(
        sa.bindparam("queue", type_=sa.String),
        sa.bindparam("task", type_=sa.String),
        sa.bindparam("queueing_lock", type_=sa.String),
        sa.bindparam("args", type_=JSONB),
        sa.bindparam("delay", type_=sa.Float),
    )
)
_CANCEL_CHECKS = compile_statement(
    sa.delete(jobs).where(
        jobs.c.task_name == CHECK_TASK,
        jobs.c.queueing_lock == sa.bindparam("queueing_lock"),
        jobs.c.status == TODO,
    )
)


async def defer_check(
    conn: asyncpg.Connection, *, domain_id: uuid.UUID, attempt: int, delay_seconds: float
) -> bool:
    """Queue a check of the domain; False when one is already queued (that one stands)."""
    try:
        async with conn.transaction():  # a savepoint: a duplicate must not abort the caller's
            await _DEFER.fetchrow(
                conn,
                queue=QUEUE,
                task=CHECK_TASK,
                queueing_lock=check_lock(domain_id),
                args={"domain_id": str(domain_id), "attempt": attempt},
                delay=max(0.0, float(round(delay_seconds))),
            )
    except asyncpg.UniqueViolationError:
        return False
    return True


async def cancel_checks(conn: asyncpg.Connection, *, domain_id: uuid.UUID) -> None:
    """Drop the domain's queued check, if any (a running one finds the row changed)."""
    await _CANCEL_CHECKS.fetch(conn, queueing_lock=check_lock(domain_id))


async def defer_cleanup(conn: asyncpg.Connection, *, provider_domain_id: str) -> None:
    await _DEFER.fetchrow(
        conn,
        queue=QUEUE,
        task=CLEANUP_TASK,
        queueing_lock=None,
        args={"provider_domain_id": provider_domain_id},
        delay=0.0,
    )
