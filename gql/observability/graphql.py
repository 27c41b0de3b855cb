"""Per-operation GraphQL observability: the server span (OpenTelemetry's GraphQL conventions),
phase durations, operations and errors by code, and the operation's facts for the request log.

Listed first among the schema's extensions, so it finishes last and sees errors as the client
does (translated to their `extensions.code`).
"""

import threading
import time
from collections.abc import Iterator

from graphql import GraphQLError
from strawberry.extensions import SchemaExtension

from gql.observability import tracing
from gql.observability.logs import note_operation
from gql.observability.metrics import (
    GRAPHQL_ERRORS,
    GRAPHQL_EXECUTE,
    GRAPHQL_OPERATIONS,
    GRAPHQL_PARSE,
    GRAPHQL_VALIDATE,
    OUTCOME_ERROR,
    OUTCOME_OK,
)

ANONYMOUS = "(anonymous)"
OTHER = "(other)"
UNKNOWN_TYPE = "unknown"
OUTCOME_INVALID = "invalid"
# Operation names are chosen by clients; past this many distinct ones per process, further names
# are counted as "(other)" so a client cannot grow the metrics without bound.
MAX_OPERATION_NAMES = 200

_names: set[str] = set()
_names_lock = threading.Lock()


def _bounded(name: str | None) -> str:
    if name is None:
        return ANONYMOUS
    if name in _names:
        return name
    with _names_lock:
        if len(_names) < MAX_OPERATION_NAMES:
            _names.add(name)
            return name
    return OTHER


def _code(error: GraphQLError) -> str:
    code = (error.extensions or {}).get("code")
    return str(code) if code is not None else "UNKNOWN"


class ObservabilityExtension(SchemaExtension):
    """Created per operation (Strawberry is given the class)."""

    def __init__(self) -> None:
        self._phases: dict[str, float] = {}

    def _time(self, phase: str) -> Iterator[None]:
        began = time.perf_counter()
        yield
        self._phases[phase] = self._phases.get(phase, 0.0) + time.perf_counter() - began

    def on_parse(self) -> Iterator[None]:
        yield from self._time("parse")

    def on_validate(self) -> Iterator[None]:
        yield from self._time("validate")

    def on_execute(self) -> Iterator[None]:
        yield from self._time("execute")

    def on_operation(self) -> Iterator[None]:
        ctx = self.execution_context
        with tracing.span("graphql", kind="server") as span:
            yield
            operation_type = UNKNOWN_TYPE
            if ctx.graphql_document is not None:
                try:
                    operation_type = ctx.operation_type.value
                except RuntimeError:
                    operation_type = UNKNOWN_TYPE
            name = ctx.operation_name
            result = ctx.result
            errors = list(result.errors or []) if result is not None else []
            # Strawberry fills `pre_execution_errors` after execution too; what tells a document
            # refused before execution is that it never reached the execute phase.
            if not errors:
                outcome = OUTCOME_OK
            else:
                outcome = OUTCOME_ERROR if "execute" in self._phases else OUTCOME_INVALID
            label = _bounded(name)
            GRAPHQL_OPERATIONS.labels(label, operation_type, outcome).inc()
            for phase, histogram in (
                ("parse", GRAPHQL_PARSE),
                ("validate", GRAPHQL_VALIDATE),
                ("execute", GRAPHQL_EXECUTE),
            ):
                if phase in self._phases:
                    histogram.labels(label, operation_type).observe(self._phases[phase])
            codes = [_code(error) for error in errors]
            for code in codes:
                GRAPHQL_ERRORS.labels(label, operation_type, code).inc()
            note_operation(name, operation_type, outcome)
            if span is not None:
                span.update_name(operation_type)
                span.set_attribute("graphql.operation.type", operation_type)
                if name is not None:
                    span.set_attribute("graphql.operation.name", name)
                if ctx.graphql_document is not None and span.is_recording():
                    span.set_attribute(
                        "graphql.document", tracing.sanitized_document(ctx.graphql_document)
                    )
                if codes:
                    tracing.mark_error(span, codes[0])
