"""Errors translated to the contract's `extensions.code`; unexpected ones masked and logged."""

import logging
import re
from collections.abc import Sequence

from graphql import GraphQLEnumType, GraphQLError, GraphQLSchema, GraphQLSyntaxError

from gql.errors import DomainError, RateLimited, Unavailable
from gql.observability.request_id import ensure_request_id

logger = logging.getLogger(__name__)

_UNKNOWN_ENUM_VALUE = re.compile(r"Value '[^']*' does not exist in '(\w+)' enum\.")

PARSE_FAILED = "GRAPHQL_PARSE_FAILED"
VALIDATION_FAILED = "GRAPHQL_VALIDATION_FAILED"
BAD_USER_INPUT = "BAD_USER_INPUT"


def translate(
    error: GraphQLError,
    schema: GraphQLSchema,
    validation_errors: Sequence[GraphQLError],
    *,
    hide_suggestions: bool,
) -> GraphQLError:
    """The error a client sees: domain errors as raised, the rest given a code or masked.

    With `hide_suggestions` (introspection off) enum errors do not list the allowed values.
    """
    original = error.original_error
    if isinstance(original, DomainError):
        return error
    if isinstance(error, GraphQLSyntaxError):
        return with_code(error, PARSE_FAILED)
    if error.message == "Validation aborted.":
        # graphql-core gives up on documents too costly to check (e.g. one field repeated
        # hundreds of times) with no reason; say what to change.
        return with_code(
            error,
            VALIDATION_FAILED,
            "The document exceeds the limit on validation work, for example because it "
            "repeats the same field many times: remove the duplicates.",
        )
    if any(error is v for v in validation_errors):
        return with_code(
            error, VALIDATION_FAILED, _enum_hint(schema, error.message, hide_suggestions)
        )
    if error.path is None and (original is None or isinstance(original, GraphQLError)):
        # Variables that do not fit their declared types, caught before execution.
        return with_code(error, BAD_USER_INPUT, _enum_hint(schema, error.message, hide_suggestions))
    request_id = ensure_request_id()
    logger.error(
        "unexpected error in GraphQL operation (request %s) at %s",
        request_id,
        error.path,
        exc_info=original or error,
    )
    return GraphQLError(
        f"Unexpected error. Reference: {request_id}.",
        nodes=error.nodes,
        source=error.source,
        positions=error.positions,
        path=error.path,
        extensions={"code": "INTERNAL_SERVER_ERROR", "requestId": request_id},
    )


def retry_after(errors: Sequence[GraphQLError]) -> int | None:
    """The longest `Retry-After` the errors ask for, if any asks."""
    delays = [
        e.original_error.retry_after
        for e in errors
        if isinstance(e.original_error, RateLimited | Unavailable)
    ]
    return max(delays) if delays else None


def _enum_hint(schema: GraphQLSchema, message: str, hide_suggestions: bool) -> str:
    match = _UNKNOWN_ENUM_VALUE.search(message)
    if match is None or hide_suggestions:
        return message
    enum_type = schema.get_type(match.group(1))
    if not isinstance(enum_type, GraphQLEnumType):
        return message
    allowed = ", ".join(enum_type.values)
    return f"{message} Allowed values: {allowed}."


def with_code(error: GraphQLError, code: str, message: str | None = None) -> GraphQLError:
    return GraphQLError(
        message or error.message,
        nodes=error.nodes,
        source=error.source,
        positions=error.positions,
        path=error.path,
        original_error=error.original_error,
        extensions={**(error.extensions or {}), "code": code},
    )
