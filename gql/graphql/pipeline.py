"""What happens to an operation around execution, as one Strawberry extension: the document
from the cache (`documents`), validated once; executed through its compiled plan when it has
one (`compiled`); errors translated (`errors`); resolvers' extensions merged into the response;
`Retry-After` set when an error asks for it."""

from collections.abc import AsyncIterator, Iterator

from graphql import ASTValidationRule, GraphQLError
from strawberry.extensions import SchemaExtension

from gql.graphql import compiled
from gql.graphql.documents import DocumentCache, Entry
from gql.graphql.errors import retry_after, translate


class GatewayExtension(SchemaExtension):
    """Created per operation (pass a factory), sharing one `DocumentCache`."""

    def __init__(
        self,
        cache: DocumentCache,
        rules: tuple[type[ASTValidationRule], ...],
        *,
        compiled_plans: bool,
        hide_suggestions: bool = False,
    ) -> None:
        self._cache = cache
        self._rules = rules
        self._compiled_plans = compiled_plans
        # With introspection off, "Did you mean …" and the list of enum values would rebuild
        # the schema for anyone who guesses names.
        self._hide_suggestions = hide_suggestions
        self._entry: Entry | None = None
        self._validation_errors: list[GraphQLError] = []

    def on_parse(self) -> Iterator[None]:
        ctx = self.execution_context
        # Also applies when Strawberry parses a document this cache could not.
        ctx.parse_options["max_tokens"] = self._cache.max_tokens
        if ctx.query is not None and ctx.graphql_document is None:
            try:
                entry = self._cache.parse(ctx.query)
            except GraphQLError:
                # Left to Strawberry's own parse, which reports the syntax error.
                yield
                return
            self._entry = entry
            ctx.graphql_document = entry.document
        yield

    def on_validate(self) -> Iterator[None]:
        ctx = self.execution_context
        entry = self._entry
        if entry is not None and ctx.graphql_document is entry.document:
            errors = entry.validate(
                ctx.schema._schema,
                (*ctx.validation_rules, *self._rules),
                hide_suggestions=self._hide_suggestions,
            )
            ctx.pre_execution_errors = list(errors)
            self._validation_errors = errors
        yield
        if ctx.pre_execution_errors and not self._validation_errors:
            self._validation_errors = list(ctx.pre_execution_errors)

    async def on_execute(self) -> AsyncIterator[None]:
        ctx = self.execution_context
        entry = self._entry
        if (
            self._compiled_plans
            and entry is not None
            and ctx.graphql_document is entry.document
            and ctx.result is None
        ):
            result = await compiled.execute(
                entry.plans,
                ctx.schema._schema,
                entry.document,
                root_value=ctx.root_value,
                context_value=ctx.context,
                variable_values=ctx.variables,
                operation_name=ctx.operation_name,
                hide_suggestions=self._hide_suggestions,
            )
            if result is not None:
                ctx.result = result
        yield

    def get_results(self) -> dict[str, object]:
        """Entries that resolvers put in `GatewayContext.extensions` (e.g. a partial sync)."""
        extensions = getattr(self.execution_context.context, "extensions", None)
        return dict(extensions) if isinstance(extensions, dict) else {}

    def on_operation(self) -> Iterator[None]:
        yield
        ctx = self.execution_context
        result = ctx.result
        if result is None or not result.errors:
            return
        schema = ctx.schema._schema
        result.errors = [
            translate(e, schema, self._validation_errors, hide_suggestions=self._hide_suggestions)
            for e in result.errors
        ]
        delay = retry_after(result.errors)
        response = getattr(ctx.context, "response", None)
        if delay is not None and response is not None and hasattr(response, "headers"):
            response.headers["Retry-After"] = str(delay)
