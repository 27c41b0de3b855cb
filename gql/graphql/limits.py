"""One validation rule that refuses expensive documents before anything else checks them.

Depth, aliases, the node estimate and introspection depth are measured in one walk of each
operation in which every fragment is measured once and remembered, so the work is linear in the
size of the document however often its fragments spread each other (a document in which each of
30 fragments spreads the next one twice stands for 2³⁰ selections but costs 30 measurements).
The rule runs on the document node, before graphql-core's own rules visit anything, and a refusal
stops the validation there: the spec's rules are never run on a document over a limit.

- depth: nesting of fields with sub-selections; introspection fields (`__schema`, `__type`) are
  not counted, they have their own limit (GraphiQL's standard introspection query is 13 deep);
- aliases: aliased fields, counted once per spread of the fragment that holds them;
- nodes: every field counts 1, multiplied by the page sizes of the lists around it (`first`, its
  default when absent, or the maximum page size when it comes from a variable or is larger);
- fragment spreads: written in the document, whatever they expand to.
"""

from collections.abc import Mapping
from dataclasses import dataclass

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLNamedType,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    IntValueNode,
    Node,
    OperationDefinitionNode,
    SelectionSetNode,
    ValidationContext,
    ValidationRule,
    get_named_type,
)
from graphql.validation.validate import ValidationAbortedError

from gql.services.domains import MAX_PAGE_SIZE
from gql.settings import Settings

__all__ = ["validation_rules"]

# Counts saturate here: past it the exact number says nothing a refusal needs.
_CAP = 10**9
_INTROSPECTION_ROOTS = frozenset({"__schema", "__type"})


@dataclass(frozen=True, slots=True)
class _Cost:
    depth: int = 0  # nesting, introspection fields excluded
    plain_depth: int = 0  # nesting of every field
    introspection_depth: int = 0  # the deepest `__schema` / `__type` selection inside
    aliases: int = 0
    nodes: int = 0


_NOTHING = _Cost()


@dataclass(frozen=True, slots=True)
class _Limits:
    depth: int
    aliases: int
    nodes: int
    introspection_depth: int
    fragment_spreads: int


class _Refused(Exception):
    def __init__(self, message: str, node: Node | None) -> None:
        super().__init__(message)
        self.message = message
        self.node = node


def _page_size(field: FieldNode, default: object) -> int:
    for argument in field.arguments or ():
        if argument.name.value == "first":
            if isinstance(argument.value, IntValueNode):
                # Beyond the maximum, the service or the Int type refuses it with a clearer error.
                return min(max(0, int(argument.value.value)), MAX_PAGE_SIZE)
            return MAX_PAGE_SIZE
    return default if isinstance(default, int) else 1


class _Measure:
    """Measures selection sets; each fragment once, whatever the number of its spreads."""

    def __init__(self, schema: GraphQLSchema, document: DocumentNode, limits: _Limits) -> None:
        self._schema = schema
        self._limits = limits
        self._fragments: Mapping[str, FragmentDefinitionNode] = {
            d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
        }
        self._done: dict[str, _Cost] = {}
        self._visiting: set[str] = set()
        # Deeper than this, one of the two depth limits is exceeded whatever the fields are;
        # stopping here also keeps the recursion far from Python's limit.
        self._max_nesting = limits.depth + limits.introspection_depth + 2

    def selection_set(
        self, parent: GraphQLNamedType | None, selection_set: SelectionSetNode | None, level: int
    ) -> _Cost:
        if selection_set is None:
            return _NOTHING
        if level > self._max_nesting:
            raise _Refused(
                f"The document nests fields more than {self._max_nesting} levels deep; the "
                f"maximum operation depth is {self._limits.depth}.",
                selection_set,
            )
        depth = plain = introspection = aliases = nodes = 0
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                cost = self._field(parent, selection, level)
            elif isinstance(selection, InlineFragmentNode):
                condition = selection.type_condition
                inner = self._schema.get_type(condition.name.value) if condition else parent
                cost = self.selection_set(inner, selection.selection_set, level)
            elif isinstance(selection, FragmentSpreadNode):
                cost = self._fragment(selection.name.value, level)
            else:
                continue
            depth = max(depth, cost.depth)
            plain = max(plain, cost.plain_depth)
            introspection = max(introspection, cost.introspection_depth)
            aliases = min(_CAP, aliases + cost.aliases)
            nodes = min(_CAP, nodes + cost.nodes)
        return _Cost(depth, plain, introspection, aliases, nodes)

    def _field(self, parent: GraphQLNamedType | None, field: FieldNode, level: int) -> _Cost:
        name = field.name.value
        definition = parent.fields.get(name) if isinstance(parent, GraphQLObjectType) else None
        multiplier = 1
        child_type: GraphQLNamedType | None = None
        if definition is not None:
            first = definition.args.get("first")
            if first is not None:
                multiplier = _page_size(field, first.default_value)
            child_type = get_named_type(definition.type)
        inner = self.selection_set(child_type, field.selection_set, level + 1)
        plain = 1 + inner.plain_depth
        counted = field.selection_set is not None and not name.startswith("__")
        return _Cost(
            depth=1 + inner.depth if counted else 0,
            plain_depth=plain,
            introspection_depth=max(
                inner.introspection_depth, plain if name in _INTROSPECTION_ROOTS else 0
            ),
            aliases=min(_CAP, inner.aliases + (1 if field.alias else 0)),
            nodes=min(_CAP, 1 + multiplier * inner.nodes),
        )

    def _fragment(self, name: str, level: int) -> _Cost:
        if (done := self._done.get(name)) is not None:
            return done
        fragment = self._fragments.get(name)
        if fragment is None or name in self._visiting:
            return _NOTHING  # unknown or cyclic: graphql-core's own rules report those
        self._visiting.add(name)
        inner = self._schema.get_type(fragment.type_condition.name.value)
        # Measured at the level of its first spread; the nesting guard may stop a later,
        # deeper spread of it early, never a document within the depth limits.
        cost = self.selection_set(inner, fragment.selection_set, level)
        self._visiting.discard(name)
        self._done[name] = cost
        return cost


def _count_spreads(document: DocumentNode, limit: int) -> None:
    spreads = 0
    pending: list[SelectionSetNode] = [
        d.selection_set
        for d in document.definitions
        if isinstance(d, OperationDefinitionNode | FragmentDefinitionNode)
    ]
    while pending:
        for selection in pending.pop().selections:
            if isinstance(selection, FragmentSpreadNode):
                spreads += 1
                if spreads > limit:
                    raise _Refused(
                        f"This document has more than {limit} fragment spreads; the limit is "
                        f"{limit}. Spread each fragment once and select its fields there.",
                        selection,
                    )
            elif (
                isinstance(selection, FieldNode | InlineFragmentNode)
                and selection.selection_set is not None
            ):
                pending.append(selection.selection_set)


def _check(context: ValidationContext, limits: _Limits) -> None:
    document = context.document
    _count_spreads(document, limits.fragment_spreads)
    measure = _Measure(context.schema, document, limits)
    aliases = 0
    for operation in document.definitions:
        if not isinstance(operation, OperationDefinitionNode):
            continue
        root = context.schema.get_root_type(operation.operation)
        cost = measure.selection_set(root, operation.selection_set, 0)
        if cost.depth > limits.depth:
            name = operation.name.value if operation.name else "anonymous"
            raise _Refused(f"'{name}' exceeds maximum operation depth of {limits.depth}", operation)
        if cost.introspection_depth > limits.introspection_depth:
            raise _Refused(
                f"This introspection query is {cost.introspection_depth} levels deep; the "
                f"maximum introspection depth is {limits.introspection_depth}.",
                operation,
            )
        aliases = min(_CAP, aliases + cost.aliases)
        if aliases > limits.aliases:
            raise _Refused(f"{aliases} aliases found. Allowed: {limits.aliases}", operation)
        if cost.nodes > limits.nodes:
            shown = f"about {cost.nodes}" if cost.nodes < _CAP else f"more than {_CAP}"
            raise _Refused(
                f"This operation could return {shown} nodes; the limit is {limits.nodes}. "
                "Ask for fewer items with `first` or fewer fields.",
                operation,
            )


def cost_limits_rule(limits: _Limits) -> type[ValidationRule]:
    class CostLimits(ValidationRule):
        def enter_document(self, *_args: object) -> None:
            try:
                _check(self.context, limits)
            except _Refused as refused:
                # Raised, not reported: graphql-core ends the validation here and returns this
                # error alone, so no other rule walks a document that is over a limit.
                raise ValidationAbortedError(refused.message, refused.node) from None

    return CostLimits


def validation_rules(settings: Settings) -> tuple[type[ValidationRule], ...]:
    return (
        cost_limits_rule(
            _Limits(
                depth=settings.graphql_max_depth,
                aliases=settings.graphql_max_aliases,
                nodes=settings.graphql_max_nodes,
                introspection_depth=settings.graphql_max_introspection_depth,
                fragment_spreads=settings.graphql_max_fragment_spreads,
            )
        ),
    )
