"""What the job queue holds, for the metrics: depth by task and status, and how overdue it is."""

import asyncpg
import sqlalchemy as sa

from gql.db.statements import compile_statement
from gql.observability.metrics import QueueStats

# procrastinate's own table, which the gateway reads but does not model.
_jobs = sa.table(
    "procrastinate_jobs",
    sa.column("task_name", sa.String),
    sa.column("status", sa.String),
    sa.column("scheduled_at", sa.DateTime(timezone=True)),
)

_DEPTH = compile_statement(
    sa.select(_jobs.c.task_name, _jobs.c.status, sa.func.count().label("jobs")).group_by(
        _jobs.c.task_name, _jobs.c.status
    )
)

# A todo job without `scheduled_at` was due when it was queued; its lateness is not known here.
_LAG = compile_statement(
    sa.select(
        _jobs.c.task_name,
        sa.func.extract("epoch", sa.func.now() - sa.func.min(_jobs.c.scheduled_at)).label("lag"),
    )
    .where(_jobs.c.status == sa.literal_column("'todo'"), _jobs.c.scheduled_at <= sa.func.now())
    .group_by(_jobs.c.task_name)
)


async def read_queue_stats(conn: asyncpg.Connection) -> QueueStats:
    depth = {(r["task_name"], r["status"]): r["jobs"] for r in await _DEPTH.fetch(conn)}
    lag = {r["task_name"]: max(0.0, float(r["lag"])) for r in await _LAG.fetch(conn)}
    return QueueStats(depth=depth, lag_seconds=lag)
