"""Parsed and validated documents, cached by their text."""

from dataclasses import dataclass, field

from cachetools import LRUCache
from graphql import ASTValidationRule, DocumentNode, GraphQLError, GraphQLSchema, parse, validate
from strawberry.schema.validation_rules.maybe_null import MaybeNullValidationRule
from strawberry.schema.validation_rules.one_of import OneOfInputValidationRule

from gql.graphql.compiled import PlanCache

# What Strawberry's `validate_document` adds to the rules it is given.
_STRAWBERRY_RULES = (MaybeNullValidationRule, OneOfInputValidationRule)


@dataclass(slots=True)
class Entry:
    """One document: its AST, its validation errors once checked, and its compiled plans."""

    document: DocumentNode
    size: int
    errors: list[GraphQLError] | None = field(default=None)
    plans: PlanCache = field(default_factory=PlanCache)

    def validate(
        self,
        schema: GraphQLSchema,
        rules: tuple[type[ASTValidationRule], ...],
        *,
        hide_suggestions: bool,
    ) -> list[GraphQLError]:
        if self.errors is None:
            self.errors = validate(
                schema,
                self.document,
                (*rules, *_STRAWBERRY_RULES),
                hide_suggestions=hide_suggestions,
            )
        return self.errors


class DocumentCache:
    """Parsed documents and their validation errors, keyed by the query text.

    Keyed by text rather than by AST: hashing a document AST on every hit costs more than the
    lookup saves. Bounded in entries and in the total length of their texts, so neither many
    unique texts nor a few huge ones can grow memory without limit. Trusted documents are
    pinned: they never leave.
    """

    def __init__(self, maxsize: int, max_bytes: int, max_tokens: int) -> None:
        self._entries: LRUCache[str, Entry] = LRUCache(
            maxsize=max(max_bytes, 1), getsizeof=lambda entry: entry.size
        )
        self._pinned: dict[str, Entry] = {}
        self._max_entries = maxsize
        self._max_bytes = max_bytes
        self.enabled = maxsize > 0 and max_bytes > 0
        self.max_tokens = max_tokens

    def get(self, query: str) -> Entry | None:
        pinned = self._pinned.get(query)
        if pinned is not None:
            return pinned
        return self._entries.get(query) if self.enabled else None

    def put(self, query: str, entry: Entry) -> None:
        if not self.enabled or entry.size > self._max_bytes:
            return
        self._entries[query] = entry
        while len(self._entries) > self._max_entries:
            self._entries.popitem()

    @property
    def size(self) -> int:
        """The total length of the cached texts (pinned ones apart)."""
        return int(self._entries.currsize)

    def trust(
        self, query: str, schema: GraphQLSchema, rules: tuple[type[ASTValidationRule], ...]
    ) -> list[GraphQLError]:
        """Parse, validate and compile a trusted document now, and keep it for good.

        Raises `GraphQLSyntaxError`; returns the validation errors (nothing is kept then).
        """
        entry = self._parse(query)
        errors = entry.validate(schema, rules, hide_suggestions=False)
        if not errors:
            entry.plans.precompile(schema, entry.document)
            self._pinned[query] = entry
        return errors

    def parse(self, query: str) -> Entry:
        """The cached entry for `query`, parsing it on a miss; raises `GraphQLSyntaxError`."""
        entry = self.get(query)
        if entry is None:
            entry = self._parse(query)
            self.put(query, entry)
        return entry

    def _parse(self, query: str) -> Entry:
        return Entry(document=parse(query, max_tokens=self.max_tokens), size=len(query))
