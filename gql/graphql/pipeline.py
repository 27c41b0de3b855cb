"""What happens to an operation around execution: cached parsing and validation, and errors
translated to the contract's `extensions.code` (unexpected ones masked and logged)."""

import logging
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field

from cachetools import LRUCache
from graphql import (
    ASTValidationRule,
    DocumentNode,
    GraphQLEnumType,
    GraphQLError,
    GraphQLSyntaxError,
    parse,
    validate,
)
from strawberry.extensions import SchemaExtension
from strawberry.schema.validation_rules.maybe_null import MaybeNullValidationRule
from strawberry.schema.validation_rules.one_of import OneOfInputValidationRule

from gql.errors import DomainError, RateLimited, Unavailable

logger = logging.getLogger(__name__)

# What Strawberry's `validate_document` adds to the rules it is given.
_STRAWBERRY_RULES = (MaybeNullValidationRule, OneOfInputValidationRule)
_UNKNOWN_ENUM_VALUE = re.compile(r"Value '[^']*' does not exist in '(\w+)' enum\.")


@dataclass(slots=True)
class _Entry:
    document: DocumentNode
    size: int
    errors: list[GraphQLError] | None = field(default=None)


class DocumentCache:
    """Parsed documents and their validation errors, keyed by the query text.

    Keyed by text rather than by AST: hashing a document AST on every hit costs more than the
    lookup saves. Bounded in entries and in the total length of their texts, so neither many
    unique texts nor a few huge ones can grow memory without limit.
    """

    def __init__(self, maxsize: int, max_bytes: int) -> None:
        self._entries: LRUCache[str, _Entry] = LRUCache(
            maxsize=max(max_bytes, 1), getsizeof=lambda entry: entry.size
        )
        self._max_entries = maxsize
        self._max_bytes = max_bytes
        self.enabled = maxsize > 0 and max_bytes > 0

    def get(self, query: str) -> _Entry | None:
        return self._entries.get(query) if self.enabled else None

    def put(self, query: str, entry: _Entry) -> None:
        if not self.enabled or entry.size > self._max_bytes:
            return
        self._entries[query] = entry
        while len(self._entries) > self._max_entries:
            self._entries.popitem()

    @property
    def size(self) -> int:
        """The total length of the cached texts."""
        return int(self._entries.currsize)


class GatewayExtension(SchemaExtension):
    """Created per operation (pass a factory), sharing one `DocumentCache`."""

    def __init__(
        self,
        cache: DocumentCache,
        rules: tuple[type[ASTValidationRule], ...],
        max_tokens: int,
        *,
        hide_suggestions: bool = False,
    ) -> None:
        self._cache = cache
        self._rules = rules
        self._max_tokens = max_tokens
        # With introspection off, "Did you mean …" and the list of enum values would rebuild
        # the schema for anyone who guesses names.
        self._hide_suggestions = hide_suggestions
        self._entry: _Entry | None = None
        self._validation_errors: list[GraphQLError] = []

    def on_parse(self) -> Iterator[None]:
        ctx = self.execution_context
        # Also applies when Strawberry parses a document this cache could not.
        ctx.parse_options["max_tokens"] = self._max_tokens
        if ctx.query is not None and ctx.graphql_document is None:
            entry = self._cache.get(ctx.query)
            if entry is None:
                try:
                    entry = _Entry(
                        document=parse(ctx.query, **ctx.parse_options), size=len(ctx.query)
                    )
                except GraphQLError:
                    # Left to Strawberry's own parse, which reports the syntax error.
                    yield
                    return
                self._cache.put(ctx.query, entry)
            self._entry = entry
            ctx.graphql_document = entry.document
        yield

    def on_validate(self) -> Iterator[None]:
        ctx = self.execution_context
        entry = self._entry
        if entry is not None and ctx.graphql_document is entry.document:
            if entry.errors is None:
                entry.errors = validate(
                    ctx.schema._schema,
                    entry.document,
                    (*ctx.validation_rules, *self._rules, *_STRAWBERRY_RULES),
                    hide_suggestions=self._hide_suggestions,
                )
            ctx.pre_execution_errors = list(entry.errors)
            self._validation_errors = entry.errors
        yield
        if ctx.pre_execution_errors and not self._validation_errors:
            self._validation_errors = list(ctx.pre_execution_errors)

    def get_results(self) -> dict[str, object]:
        """Entries that resolvers put in `GatewayContext.extensions` (e.g. a partial sync)."""
        extensions = getattr(self.execution_context.context, "extensions", None)
        return dict(extensions) if isinstance(extensions, dict) else {}

    def on_operation(self) -> Iterator[None]:
        yield
        result = self.execution_context.result
        if result is None or not result.errors:
            return
        result.errors = [self._translate(error) for error in result.errors]
        self._set_retry_after(result.errors)

    def _translate(self, error: GraphQLError) -> GraphQLError:
        original = error.original_error
        if isinstance(original, DomainError):
            return error
        if isinstance(error, GraphQLSyntaxError):
            return _with_code(error, "GRAPHQL_PARSE_FAILED")
        if error.message == "Validation aborted.":
            # graphql-core gives up on documents too costly to check (e.g. one field repeated
            # hundreds of times) with no reason; say what to change.
            return _with_code(
                error,
                "GRAPHQL_VALIDATION_FAILED",
                "The document exceeds the limit on validation work, for example because it "
                "repeats the same field many times: remove the duplicates.",
            )
        if any(error is v for v in self._validation_errors):
            return _with_code(error, "GRAPHQL_VALIDATION_FAILED", self._enum_hint(error.message))
        if error.path is None and (original is None or isinstance(original, GraphQLError)):
            # Variables that do not fit their declared types, caught before execution.
            return _with_code(error, "BAD_USER_INPUT", self._enum_hint(error.message))
        request_id = uuid.uuid4().hex
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

    def _enum_hint(self, message: str) -> str:
        match = _UNKNOWN_ENUM_VALUE.search(message)
        if match is None or self._hide_suggestions:
            return message
        enum_type = self.execution_context.schema._schema.get_type(match.group(1))
        if not isinstance(enum_type, GraphQLEnumType):
            return message
        allowed = ", ".join(enum_type.values)
        return f"{message} Allowed values: {allowed}."

    def _set_retry_after(self, errors: list[GraphQLError]) -> None:
        delays = [
            e.original_error.retry_after
            for e in errors
            if isinstance(e.original_error, RateLimited | Unavailable)
        ]
        response = getattr(self.execution_context.context, "response", None)
        if delays and response is not None and hasattr(response, "headers"):
            response.headers["Retry-After"] = str(max(delays))


def _with_code(error: GraphQLError, code: str, message: str | None = None) -> GraphQLError:
    return GraphQLError(
        message or error.message,
        nodes=error.nodes,
        source=error.source,
        positions=error.positions,
        path=error.path,
        original_error=error.original_error,
        extensions={**(error.extensions or {}), "code": code},
    )
