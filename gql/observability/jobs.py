"""Background jobs: one log line, metrics and a span per job, and the trace that queued it.

A job queued while a span is current carries that span's W3C traceparent in its arguments
(`trace_args()`); the worker middleware takes it out again before the task runs and links the
job's span to it, so a poller check leads back to the request that scheduled it.
"""

import logging
import time
from datetime import UTC, datetime
from typing import Any

from procrastinate.job_context import JobContext
from procrastinate.middleware import AsyncCallNext
from procrastinate.worker import Worker

from gql.observability import tracing
from gql.observability.logs import JOB_LOGGER
from gql.observability.metrics import (
    JOB_DURATION,
    JOB_START_DELAY,
    JOBS,
    OUTCOME_ERROR,
    OUTCOME_OK,
)
from gql.observability.request_id import bind

logger = logging.getLogger(JOB_LOGGER)

TRACE_ARG = tracing.TRACEPARENT


def trace_args() -> dict[str, str]:
    """Extra job arguments carrying the current trace (none without a current span)."""
    traceparent = tracing.current_traceparent()
    return {} if traceparent is None else {TRACE_ARG: traceparent}


async def job_middleware(call_next: AsyncCallNext, context: JobContext, worker: Worker) -> Any:
    """procrastinate worker middleware wrapping every job."""
    job = context.job
    task = job.task_name
    traceparent = job.task_kwargs.pop(TRACE_ARG, None)
    domain_id = job.task_kwargs.get("domain_id")
    # A job's log lines share a reference, as a request's do.
    bind(f"job-{job.id}")
    if job.scheduled_at is not None:
        delay = (datetime.now(UTC) - job.scheduled_at).total_seconds()
        JOB_START_DELAY.labels(task).observe(max(0.0, delay))
    outcome = OUTCOME_ERROR
    began = time.perf_counter()
    attributes: dict[str, str | int] = {"messaging.system": "procrastinate", "job.task": task}
    if job.id is not None:
        attributes["messaging.message.id"] = str(job.id)
    with tracing.span(
        f"process {task}",
        kind="consumer",
        attributes=attributes,
        link_to=traceparent if isinstance(traceparent, str) else None,
    ) as span:
        try:
            result = await call_next()
            outcome = OUTCOME_OK
            return result
        except BaseException as error:
            tracing.mark_error(span, type(error).__name__)
            raise
        finally:
            duration = time.perf_counter() - began
            JOBS.labels(task, outcome).inc()
            JOB_DURATION.labels(task).observe(duration)
            duration_ms = round(duration * 1000, 3)
            logger.info(
                f"{task} {outcome} in {duration_ms:g} ms",
                extra={
                    "task": task,
                    "job_id": job.id,
                    "domain_id": domain_id,
                    "outcome": outcome,
                    "duration_ms": duration_ms,
                },
            )
