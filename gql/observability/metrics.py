"""Prometheus metrics, named as users of OpenTelemetry, GraphQL Yoga and Hasura know them.

Metrics live in prometheus-client's default registry. When `PROMETHEUS_MULTIPROC_DIR` is set
before this module is first imported (`serve --workers N` sets it), every process writes its
values to files there and any process's `/metrics` answers with the sum over all of them.
Queue depth and poller lag are read from the database at scrape time instead: they describe
the shared queue, not one process.
"""

import os
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from prometheus_client.registry import Collector

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
UNMATCHED_ROUTE = "unmatched"
OUTCOME_OK = "ok"
OUTCOME_ERROR = "error"

HTTP_DURATION = Histogram(
    "http_server_request_duration_seconds",
    "Duration of HTTP requests, by route template and status (OpenTelemetry's "
    "http.server.request.duration).",
    ["http_request_method", "http_route", "http_response_status_code"],
)

GRAPHQL_OPERATIONS = Counter(
    "graphql_operations",
    "GraphQL operations by operation name, type and outcome (ok, error, invalid).",
    ["operation_name", "operation_type", "outcome"],
)
GRAPHQL_PARSE = Histogram(
    "graphql_envelop_phase_parse",
    "Seconds spent parsing GraphQL documents (cache hits included).",
    ["operation_name", "operation_type"],
)
GRAPHQL_VALIDATE = Histogram(
    "graphql_envelop_phase_validate",
    "Seconds spent validating GraphQL documents (cache hits included).",
    ["operation_name", "operation_type"],
)
GRAPHQL_EXECUTE = Histogram(
    "graphql_envelop_phase_execute",
    "Seconds spent executing GraphQL operations.",
    ["operation_name", "operation_type"],
)
GRAPHQL_ERRORS = Counter(
    "graphql_envelop_error_result",
    "GraphQL errors in results, by extensions.code.",
    ["operation_name", "operation_type", "code"],
)
ACTIVE_SUBSCRIPTIONS = Gauge(
    "graphql_active_subscriptions",
    "Subscriptions currently open (Hasura's hasura_active_subscriptions).",
    multiprocess_mode="livesum",
)

DB_CONNECTIONS = Gauge(
    "db_client_connection_count",
    "Pooled database connections by state (used, idle).",
    ["db_client_connection_state"],
    multiprocess_mode="livesum",
)
DB_PENDING = Gauge(
    "db_client_connection_pending_requests",
    "Requests waiting for a pooled database connection.",
    multiprocess_mode="livesum",
)
DB_DURATION = Histogram(
    "db_client_operation_duration_seconds",
    "Duration of database statements, by operation and table.",
    ["db_operation_name", "db_collection_name"],
)

JOBS = Counter(
    "gateway_jobs",
    "Background jobs run by this worker, by task and outcome (ok, error).",
    ["task", "outcome"],
)
JOB_DURATION = Histogram(
    "gateway_job_duration_seconds", "Duration of background jobs, by task.", ["task"]
)
JOB_START_DELAY = Histogram(
    "gateway_job_start_delay_seconds",
    "How late jobs started after the time they were scheduled for, by task.",
    ["task"],
    buckets=(0.1, 0.5, 1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600),
)
CHECKS = Counter(
    "gateway_domain_checks",
    "Poller checks by outcome: the status stored (verified, failed, verifying, pending), "
    "no_answer (provider unavailable), timeout (window closed).",
    ["outcome"],
)

PROVIDER_CALLS = Counter(
    "gateway_provider_requests",
    "Calls to AgentMail and Cloudflare by provider, operation and outcome (ok, error, "
    "unavailable after retries).",
    ["provider", "operation", "outcome"],
)
PROVIDER_DURATION = Histogram(
    "gateway_provider_request_duration_seconds",
    "Duration of provider calls, retries and their waits included.",
    ["provider", "operation"],
)
PROVIDER_RETRIES = Counter(
    "gateway_provider_retries",
    "Provider attempts that were retried (429, 5xx, timeouts).",
    ["provider", "operation"],
)

RATE_LIMITED = Counter(
    "gateway_rate_limit_refusals",
    "Requests refused by a rate limit, by limit (user, anonymous).",
    ["limit"],
)


def multiprocess() -> bool:
    return bool(os.environ.get(MULTIPROC_ENV))


def process_exiting() -> None:
    """Drop this process's live gauges from the shared files (multi-process mode)."""
    if multiprocess():
        mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]


@asynccontextmanager
async def subscription_open() -> AsyncIterator[None]:
    """Count a subscription as active while the block runs."""
    ACTIVE_SUBSCRIPTIONS.inc()
    try:
        yield
    finally:
        ACTIVE_SUBSCRIPTIONS.dec()


@dataclass(frozen=True, slots=True)
class QueueStats:
    """The shared job queue as read at scrape time."""

    depth: dict[tuple[str, str], int]
    lag_seconds: dict[str, float]


class _QueueCollector(Collector):
    def __init__(self, stats: QueueStats) -> None:
        self._stats = stats

    def collect(self) -> Iterable[GaugeMetricFamily]:
        depth = GaugeMetricFamily(
            "gateway_job_queue_depth",
            "Jobs in the shared queue by task and status (todo, doing, failed, …).",
            labels=["task", "status"],
        )
        for (task, status), count in sorted(self._stats.depth.items()):
            depth.add_metric([task, status], count)
        lag = GaugeMetricFamily(
            "gateway_poller_lag_seconds",
            "How long the most overdue job of each task has been due without starting.",
            labels=["task"],
        )
        for task, seconds in sorted(self._stats.lag_seconds.items()):
            lag.add_metric([task], seconds)
        yield depth
        yield lag


def render(stats: QueueStats | None) -> tuple[bytes, str]:
    """The exposition text: this process's metrics (or every process's, in multi-process
    mode), plus the shared queue's depth and lag when `stats` were read."""
    registry: CollectorRegistry = REGISTRY
    if multiprocess() or stats is not None:
        registry = CollectorRegistry(auto_describe=True)
        if multiprocess():
            MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        else:
            registry.register(_Everything())
        if stats is not None:
            registry.register(_QueueCollector(stats))
    return generate_latest(registry), CONTENT_TYPE_LATEST


class _Everything(Collector):
    """The default registry's metrics, inside a registry of one scrape."""

    def collect(self) -> Iterable[Metric]:
        return REGISTRY.collect()
