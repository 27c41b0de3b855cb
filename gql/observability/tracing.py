"""OpenTelemetry spans, when the `tracing` extra is installed (`pip install '.[tracing]'`).

Without it every function here is a no-op and nothing from OpenTelemetry is imported. With it,
spans go to whatever tracer provider the process has: the one `TRACING=true` installs (OTLP over
HTTP, configured by the standard `OTEL_EXPORTER_OTLP_*` variables) or one set up by
`opentelemetry-instrument`. Until a provider is set, no span is started at all: the API's
non-recording spans would still cost several microseconds each, on every statement.
"""

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Literal

from graphql import (
    DocumentNode,
    FloatValueNode,
    IntValueNode,
    Node,
    StringValueNode,
    Visitor,
    print_ast,
    visit,
)

try:
    from opentelemetry import propagate, trace
    from opentelemetry.trace import Link, SpanKind, StatusCode

    AVAILABLE = True
except ImportError:
    AVAILABLE = False

if TYPE_CHECKING:
    from opentelemetry.trace import Span

    from gql.settings import Settings

TRACER_NAME = "gql-gateway"
TRACEPARENT = "traceparent"
Kind = Literal["server", "client", "consumer", "internal"]
Attributes = Mapping[str, str | int | float | bool]


class TracingUnavailable(RuntimeError):
    """TRACING=true without the `tracing` extra."""


def configure_tracing(settings: "Settings") -> None:
    """With TRACING=true, export spans over OTLP unless the process already has a provider."""
    if not settings.tracing:
        return
    if not AVAILABLE:
        raise TracingUnavailable(
            "TRACING=true needs OpenTelemetry: install the gateway with its tracing extra, "
            "pip install 'email-domain-gateway[tracing]'."
        )
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    if isinstance(trace.get_tracer_provider(), TracerProvider):
        return
    service = os.environ.get("OTEL_SERVICE_NAME", TRACER_NAME)
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)


def _tracing() -> bool:
    return AVAILABLE and not isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider)


def _kind(kind: Kind) -> "SpanKind":
    return {
        "server": SpanKind.SERVER,
        "client": SpanKind.CLIENT,
        "consumer": SpanKind.CONSUMER,
        "internal": SpanKind.INTERNAL,
    }[kind]


@contextmanager
def span(
    name: str,
    *,
    kind: Kind = "internal",
    attributes: Attributes | None = None,
    carrier: Mapping[str, str] | None = None,
    link_to: str | None = None,
) -> Iterator["Span | None"]:
    """A span around the block (None without OpenTelemetry); an escaping exception is recorded.

    `carrier` (incoming HTTP headers) makes the span a child of the caller's trace; `link_to` (a
    W3C traceparent) links it to the span that queued the work.
    """
    if not _tracing():
        yield None
        return
    parent = propagate.extract(carrier) if carrier is not None else None
    links = []
    if link_to is not None:
        linked = trace.get_current_span(propagate.extract({TRACEPARENT: link_to}))
        if linked.get_span_context().is_valid:
            links.append(Link(linked.get_span_context()))
    tracer = trace.get_tracer(TRACER_NAME)
    with tracer.start_as_current_span(
        name, context=parent, kind=_kind(kind), attributes=attributes, links=links
    ) as current:
        yield current


def mark_error(current: "Span | None", error_type: str) -> None:
    if current is not None and AVAILABLE:
        current.set_status(StatusCode.ERROR)
        current.set_attribute("error.type", error_type)


def current_trace_id() -> str | None:
    if not _tracing():
        return None
    context = trace.get_current_span().get_span_context()
    return format(context.trace_id, "032x") if context.is_valid else None


def current_traceparent() -> str | None:
    """The W3C traceparent of the current span, to carry into work queued now."""
    if not _tracing():
        return None
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier.get(TRACEPARENT)


class _HideLiterals(Visitor):
    def enter_string_value(self, node: StringValueNode, *_: object) -> Node:
        return StringValueNode(value="?", block=False)

    def enter_int_value(self, node: IntValueNode, *_: object) -> Node:
        return IntValueNode(value="0")

    def enter_float_value(self, node: FloatValueNode, *_: object) -> Node:
        return FloatValueNode(value="0")


def sanitized_document(document: DocumentNode) -> str:
    """The document with string and number literals replaced, so no value a caller typed
    inline (a domain name, an id) reaches the trace; variables never appear in it."""
    return print_ast(visit(document, _HideLiterals()))
