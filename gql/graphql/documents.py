"""Parsed and validated documents, cached by their text."""

from dataclasses import dataclass, field

from cachetools import LRUCache
from graphql import ASTValidationRule, DocumentNode, GraphQLError, GraphQLSchema, parse
from strawberry.schema.schema import validate_document

from gql.graphql.compiled import PlanCache


@dataclass(slots=True)
class Entry:
    """One document: its AST, its validation errors once checked, and its compiled plans."""

    document: DocumentNode
    errors: list[GraphQLError] | None = field(default=None)
    plans: PlanCache = field(default_factory=PlanCache)

    def validate(
        self, schema: GraphQLSchema, rules: tuple[type[ASTValidationRule], ...]
    ) -> list[GraphQLError]:
        if self.errors is None:
            self.errors = validate_document(schema, self.document, rules)
        return self.errors


class DocumentCache:
    """Parsed documents and their validation errors, keyed by the query text.

    Keyed by text rather than by AST: hashing a document AST on every hit costs more than the
    lookup saves. Bounded, so unique query texts cannot grow memory without limit. Documents
    that must never be evicted (trusted documents) are pinned.
    """

    def __init__(self, maxsize: int, max_tokens: int) -> None:
        self._entries: LRUCache[str, Entry] = LRUCache(maxsize=max(maxsize, 1))
        self._pinned: dict[str, Entry] = {}
        self.enabled = maxsize > 0
        self.max_tokens = max_tokens

    def get(self, query: str) -> Entry | None:
        pinned = self._pinned.get(query)
        if pinned is not None:
            return pinned
        return self._entries.get(query) if self.enabled else None

    def put(self, query: str, entry: Entry) -> None:
        if self.enabled:
            self._entries[query] = entry

    def pin(self, query: str, entry: Entry) -> None:
        self._pinned[query] = entry

    def trust(
        self, query: str, schema: GraphQLSchema, rules: tuple[type[ASTValidationRule], ...]
    ) -> list[GraphQLError]:
        """Parse, validate and compile a trusted document now, and keep it for good.

        Raises `GraphQLSyntaxError`; returns the validation errors (nothing is kept then).
        """
        entry = Entry(document=parse(query, max_tokens=self.max_tokens))
        errors = entry.validate(schema, rules)
        if not errors:
            entry.plans.precompile(schema, entry.document)
            self.pin(query, entry)
        return errors

    def parse(self, query: str) -> Entry:
        """The cached entry for `query`, parsing it on a miss; raises `GraphQLSyntaxError`."""
        entry = self.get(query)
        if entry is None:
            entry = Entry(document=parse(query, max_tokens=self.max_tokens))
            self.put(query, entry)
        return entry
