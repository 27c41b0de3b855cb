"""Validation rules that refuse expensive documents before anything executes.

Depth and aliases use Strawberry's rules; the token limit is a parser option; the node estimate
is ours: every field counts 1 (a field that calls a provider counts its cost, `FIELD_COST` and
`SYNC_COST_PER_DOMAIN`), multiplied by the page sizes of the lists around it (`first`, its
default when absent, or the maximum when it comes from a variable).
"""

from collections.abc import Mapping

from graphql import (
    BooleanValueNode,
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLNamedType,
    GraphQLObjectType,
    InlineFragmentNode,
    IntValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    ValidationContext,
    ValidationRule,
    get_named_type,
)
from strawberry.extensions.max_aliases import create_validator as max_aliases_rule
from strawberry.extensions.query_depth_limiter import create_validator as max_depth_rule

from gql.services.domains import MAX_PAGE_SIZE
from gql.settings import Settings

__all__ = ["validation_rules"]

# Fields that call a provider count by what they cost: `publishedRecords` looks up the zone and
# lists its records at Cloudflare; `emailDomains(sync: true)` asks AgentMail once per domain.
FIELD_COST = {("Domain", "publishedRecords"): 25}
SYNC_COST_PER_DOMAIN = 10


def _fragments(document: DocumentNode) -> dict[str, FragmentDefinitionNode]:
    return {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}


def _follow(
    selection: object,
    fragments: Mapping[str, FragmentDefinitionNode],
    visiting: frozenset[str],
) -> tuple[FragmentDefinitionNode, frozenset[str]] | None:
    """The fragment a spread names, unless it is unknown or cyclic (other rules report those)."""
    if not isinstance(selection, FragmentSpreadNode):
        return None
    name = selection.name.value
    fragment = fragments.get(name)
    if fragment is None or name in visiting:
        return None
    return fragment, visiting | {name}


def _syncs(field: FieldNode) -> bool:
    """`sync: true`, or a variable that may be true."""
    for argument in field.arguments or ():
        if argument.name.value == "sync":
            return not (isinstance(argument.value, BooleanValueNode) and not argument.value.value)
    return False


def _page_size(field: FieldNode, default: object) -> int:
    for argument in field.arguments or ():
        if argument.name.value == "first":
            if isinstance(argument.value, IntValueNode):
                return max(0, int(argument.value.value))
            return MAX_PAGE_SIZE
    return default if isinstance(default, int) else 1


def _estimate(
    context: ValidationContext,
    parent: GraphQLNamedType | None,
    selection_set: SelectionSetNode | None,
    fragments: Mapping[str, FragmentDefinitionNode],
    visiting: frozenset[str],
) -> int:
    if selection_set is None:
        return 0
    total = 0
    for selection in selection_set.selections:
        if isinstance(selection, FieldNode):
            field_def = (
                parent.fields.get(selection.name.value)
                if isinstance(parent, GraphQLObjectType)
                else None
            )
            multiplier = 1
            own = 1
            child_type: GraphQLNamedType | None = None
            if field_def is not None:
                first = field_def.args.get("first")
                if first is not None:
                    multiplier = _page_size(selection, first.default_value)
                child_type = get_named_type(field_def.type)
                assert parent is not None
                own = FIELD_COST.get((parent.name, selection.name.value), 1)
                if "sync" in field_def.args and _syncs(selection):
                    own += multiplier * SYNC_COST_PER_DOMAIN
            total += own + multiplier * _estimate(
                context, child_type, selection.selection_set, fragments, visiting
            )
        elif isinstance(selection, InlineFragmentNode):
            condition = selection.type_condition
            inner = context.schema.get_type(condition.name.value) if condition else parent
            total += _estimate(context, inner, selection.selection_set, fragments, visiting)
        elif (followed := _follow(selection, fragments, visiting)) is not None:
            fragment, inner_visiting = followed
            inner = context.schema.get_type(fragment.type_condition.name.value)
            total += _estimate(context, inner, fragment.selection_set, fragments, inner_visiting)
    return total


def max_nodes_rule(max_nodes: int) -> type[ValidationRule]:
    class MaxNodes(ValidationRule):
        def __init__(self, context: ValidationContext) -> None:
            super().__init__(context)
            definitions = context.document.definitions
            fragments = _fragments(context.document)
            for operation in definitions:
                if not isinstance(operation, OperationDefinitionNode):
                    continue
                root = context.schema.get_root_type(operation.operation)
                nodes = _estimate(context, root, operation.selection_set, fragments, frozenset())
                if nodes > max_nodes:
                    context.report_error(
                        GraphQLError(
                            f"This operation could return about {nodes} nodes; the limit is "
                            f"{max_nodes}. Ask for fewer items with `first` or fewer fields.",
                            operation,
                        )
                    )

    return MaxNodes


def _introspection_depth(
    selection_set: SelectionSetNode | None,
    fragments: Mapping[str, FragmentDefinitionNode],
    visiting: frozenset[str],
) -> int:
    if selection_set is None:
        return 0
    deepest = 0
    for selection in selection_set.selections:
        if isinstance(selection, FieldNode):
            depth = 1 + _introspection_depth(selection.selection_set, fragments, visiting)
        elif isinstance(selection, InlineFragmentNode):
            depth = _introspection_depth(selection.selection_set, fragments, visiting)
        elif (followed := _follow(selection, fragments, visiting)) is not None:
            fragment, inner_visiting = followed
            depth = _introspection_depth(fragment.selection_set, fragments, inner_visiting)
        else:
            continue
        deepest = max(deepest, depth)
    return deepest


def max_introspection_depth_rule(limit: int) -> type[ValidationRule]:
    """Strawberry's depth rule skips `__` fields; nested `ofType` chains are limited here.

    The standard introspection query that GraphiQL and code generators send is 13 deep.
    """

    class MaxIntrospectionDepth(ValidationRule):
        def enter_field(self, node: FieldNode, *_args: object) -> None:
            if node.name.value not in ("__schema", "__type"):
                return
            fragments = _fragments(self.context.document)
            depth = 1 + _introspection_depth(node.selection_set, fragments, frozenset())
            if depth > limit:
                self.report_error(
                    GraphQLError(
                        f"This introspection query is {depth} levels deep; the maximum "
                        f"introspection depth is {limit}.",
                        node,
                    )
                )

    return MaxIntrospectionDepth


def validation_rules(settings: Settings) -> tuple[type[ValidationRule], ...]:
    return (
        max_depth_rule(settings.graphql_max_depth, should_ignore=None),
        max_introspection_depth_rule(settings.graphql_max_introspection_depth),
        max_aliases_rule(settings.graphql_max_aliases),
        max_nodes_rule(settings.graphql_max_nodes),
    )
