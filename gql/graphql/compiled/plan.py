"""Compiling an operation into a plan: the fields to write, in order, and how to complete each.

Field collection (fragments, inline fragments, merged repeats, `@skip`/`@include`) is done once,
by graphql-core's own `collect_fields`, so the plan agrees with graphql-core by construction.
Whatever the plan does not know raises `Unsupported` and the operation runs on graphql-core.
"""

import enum
from collections.abc import Callable
from dataclasses import dataclass, field
from operator import attrgetter
from typing import Any, Protocol

from graphql import (
    FieldNode,
    GraphQLBoolean,
    GraphQLField,
    GraphQLFieldResolver,
    GraphQLInt,
    GraphQLLeafType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLSchema,
    GraphQLString,
    OperationDefinitionNode,
    OperationType,
    is_leaf_type,
)
from graphql.execution import Executor
from graphql.execution.collect_fields import (
    FieldDetailsList,
    FragmentDetails,
    GroupedFieldSet,
    collect_fields,
    collect_subfields,
)
from graphql.execution.values import VariableValues
from graphql.pyutils import Undefined
from strawberry.schema.schema_converter import GraphQLCoreConverter

__all__ = [
    "Completion",
    "FieldStep",
    "Kind",
    "ObjectPlan",
    "Operation",
    "Plan",
    "Unsupported",
    "compile_plan",
]

_MAX_INT = 2**31 - 1
_MIN_INT = -(2**31)


class Unsupported(Exception):
    """The plan cannot prove it answers like graphql-core; the operation falls back."""


class Fallback(Exception):
    """Raised by a fast writer at the first value that is not plainly valid.

    Fast writers only read attributes and coerce leaves, which have no side effects, so the
    object is then written again by the executor, which reports errors as graphql-core does.
    """


class Kind(enum.Enum):
    NON_NULL = 1
    LIST = 2
    LEAF = 3
    OBJECT = 4


@dataclass(slots=True)
class Completion:
    """How one (wrapped) output type is completed."""

    kind: Kind
    type: GraphQLOutputType
    inner: "Completion | None" = None
    leaf: Callable[[Any], Any] | None = None
    object: "ObjectPlan | None" = None
    may_await: bool = False


@dataclass(slots=True)
class FieldStep:
    """One response key of a selection set: where its value comes from and how it completes."""

    key: str
    parent: GraphQLObjectType
    nodes: list[FieldNode]
    details: FieldDetailsList
    completion: Completion
    field_def: GraphQLField | None = None
    getter: Callable[[Any], Any] | None = None
    resolve: GraphQLFieldResolver | None = None
    typename: str | None = None
    null_message: str = ""
    list_message: str = ""
    # A leaf read straight from an attribute: completed without building a path first.
    fast_leaf: Callable[[Any], Any] | None = None
    may_await: bool = False

    @property
    def has_args(self) -> bool:
        return bool(self.field_def is not None and (self.field_def.args or self.nodes[0].arguments))


@dataclass(slots=True)
class ObjectPlan:
    type: GraphQLObjectType
    steps: list[FieldStep] = field(default_factory=list)
    may_await: bool = False
    # Writes the object when nothing in it fails; see `Fallback`.
    fast: Callable[[Any], dict[str, Any]] | None = None


@dataclass(slots=True)
class Plan:
    root: ObjectPlan
    serial: bool


class Operation(Protocol):
    """What compiling reads: the parts of a graphql-core `Executor` fixed before execution."""

    @property
    def schema(self) -> GraphQLSchema: ...
    @property
    def fragments(self) -> dict[str, FragmentDetails]: ...
    @property
    def variable_values(self) -> VariableValues: ...
    @property
    def operation(self) -> OperationDefinitionNode: ...
    @property
    def hide_suggestions(self) -> bool: ...


def compile_plan(executor: Operation) -> Plan:
    """The plan of the executor's operation for its variables' `@skip`/`@include` values."""
    operation = executor.operation
    if operation.operation is OperationType.SUBSCRIPTION:
        raise Unsupported("subscription")
    root_type = executor.schema.get_root_type(operation.operation)
    if root_type is None:
        raise Unsupported("no root type")
    try:
        collected = collect_fields(
            executor.schema,
            executor.fragments,
            executor.variable_values,
            root_type,
            operation,
            executor.hide_suggestions,
        )
    except RecursionError:
        raise Unsupported("nested too deeply") from None
    if collected.new_defer_usages:
        raise Unsupported("@defer")
    compiler = _Compiler(executor)
    return Plan(
        root=compiler.object_plan(root_type, collected.grouped_field_set),
        serial=operation.operation is OperationType.MUTATION,
    )


class _Compiler:
    def __init__(self, executor: Operation) -> None:
        self.executor = executor

    def object_plan(self, parent: GraphQLObjectType, grouped: GroupedFieldSet) -> ObjectPlan:
        plan = ObjectPlan(type=parent)
        for key, details in grouped.items():
            step = self.field_step(parent, key, details)
            if step is not None:
                plan.steps.append(step)
                plan.may_await = plan.may_await or step.may_await
        if not plan.may_await and all(s.resolve is None for s in plan.steps):
            plan.fast = _object_writer(plan)
        return plan

    def field_step(
        self, parent: GraphQLObjectType, key: str, details: FieldDetailsList
    ) -> FieldStep | None:
        if any(d.defer_usage is not None or d.fragment_variable_values for d in details):
            raise Unsupported("@defer or fragment variables")
        nodes = [d.node for d in details]
        name = nodes[0].name.value
        if name == "__typename":
            return FieldStep(
                key=key,
                parent=parent,
                nodes=nodes,
                details=details,
                completion=Completion(Kind.LEAF, GraphQLString),
                typename=parent.name,
            )
        if name.startswith("__"):
            raise Unsupported("introspection")
        field_def = parent.fields.get(name)
        if field_def is None:
            return None  # graphql-core leaves unknown fields out of the response
        completion = self.completion(field_def.type, parent, name, details)
        step = FieldStep(
            key=key,
            parent=parent,
            nodes=nodes,
            details=details,
            completion=completion,
            field_def=field_def,
            null_message=f"Cannot return null for non-nullable field {parent}.{name}.",
            list_message=(f"Expected Iterable, but did not find one for field '{parent}.{name}'."),
        )
        resolve = field_def.resolve
        if resolve is None:
            raise Unsupported("field without a resolver")
        definition = field_def.extensions.get(GraphQLCoreConverter.DEFINITION_BACKREF)
        if getattr(resolve, "_is_default", False) and definition is not None:
            if definition.default_resolver is not getattr:
                raise Unsupported("custom default resolver")
            step.getter = attrgetter(definition.python_name)
            step.fast_leaf = _fast_leaf(completion, step.null_message)
            step.may_await = completion.may_await
        else:
            step.resolve = resolve
            step.may_await = True
        return step

    def completion(
        self,
        type_: GraphQLOutputType,
        parent: GraphQLObjectType,
        name: str,
        details: FieldDetailsList,
    ) -> Completion:
        if isinstance(type_, GraphQLNonNull):
            inner = self.completion(type_.of_type, parent, name, details)
            return Completion(Kind.NON_NULL, type_, inner=inner, may_await=inner.may_await)
        if isinstance(type_, GraphQLList):
            inner = self.completion(type_.of_type, parent, name, details)
            return Completion(Kind.LIST, type_, inner=inner, may_await=inner.may_await)
        if is_leaf_type(type_):
            assert isinstance(type_, GraphQLLeafType)
            return Completion(Kind.LEAF, type_, leaf=_leaf(type_))
        if not isinstance(type_, GraphQLObjectType):
            raise Unsupported("abstract type")
        if type_.is_type_of is not None:
            raise Unsupported("is_type_of")
        executor = self.executor
        collected = collect_subfields(
            executor.schema,
            executor.fragments,
            executor.variable_values,
            executor.operation,
            type_,
            details,
            executor.hide_suggestions,
        )
        if collected.new_defer_usages:
            raise Unsupported("@defer")
        plan = self.object_plan(type_, collected.grouped_field_set)
        return Completion(Kind.OBJECT, type_, object=plan, may_await=plan.may_await)


def _leaf(type_: GraphQLLeafType) -> Callable[[Any], Any]:
    """graphql-core's leaf completion, with the built-in scalars' common case inlined."""

    def coerce(value: Any) -> Any:
        return Executor.complete_leaf_value(type_, value)

    return _inline_builtin(type_, coerce)


def _inline_builtin(
    type_: GraphQLLeafType, otherwise: Callable[[Any], Any]
) -> Callable[[Any], Any]:
    """`otherwise`, except for values the built-in scalars pass through unchanged."""
    if type_ is GraphQLString:
        return lambda value: value if type(value) is str else otherwise(value)
    if type_ is GraphQLBoolean:
        return lambda value: value if type(value) is bool else otherwise(value)
    if type_ is GraphQLInt:
        return lambda value: (
            value if type(value) is int and _MIN_INT <= value <= _MAX_INT else otherwise(value)
        )
    return otherwise


def _fast_leaf(completion: Completion, null_message: str) -> Callable[[Any], Any] | None:
    """Completion of a (non-null) leaf, which needs no path unless it fails."""
    if completion.kind is Kind.LEAF:
        assert completion.leaf is not None
        coerce = completion.leaf

        def nullable(value: Any) -> Any:
            if isinstance(value, Exception):
                raise value
            if value is None or value is Undefined:
                return None
            return coerce(value)

        return nullable
    inner = completion.inner
    if completion.kind is Kind.NON_NULL and inner is not None and inner.kind is Kind.LEAF:
        leaf = inner.leaf
        assert leaf is not None

        def non_null(value: Any) -> Any:
            if isinstance(value, Exception):
                raise value
            completed = None if value is None or value is Undefined else leaf(value)
            if completed is None:
                raise TypeError(null_message)
            return completed

        return non_null
    return None


def _object_writer(plan: ObjectPlan) -> Callable[[Any], dict[str, Any]]:
    steps: list[tuple[str, Callable[[Any], Any], Callable[[Any], Any]]] = []
    for step in plan.steps:
        if step.typename is not None:
            steps.append((step.key, _constant(step.typename), _identity))
        else:
            assert step.getter is not None
            steps.append((step.key, step.getter, _writer(step.completion)))

    def write(source: Any) -> dict[str, Any]:
        if isinstance(source, Exception):
            raise Fallback
        return {key: value(get(source)) for key, get, value in steps}

    return write


def _identity(value: Any) -> Any:
    return value


def _constant(value: str) -> Callable[[Any], str]:
    return lambda _source: value


def _writer(completion: Completion) -> Callable[[Any], Any]:
    """The value of a field of this type when it is plainly valid; `Fallback` otherwise."""
    kind = completion.kind
    if kind is Kind.NON_NULL:
        assert completion.inner is not None
        inner = _writer(completion.inner)

        def non_null(value: Any) -> Any:
            if value is None:
                raise Fallback
            return inner(value)

        return non_null
    if kind is Kind.LEAF:
        assert isinstance(completion.type, GraphQLLeafType)
        return _fast_coerce(completion.type)
    if kind is Kind.LIST:
        assert completion.inner is not None
        item = _writer(completion.inner)

        def items(value: Any) -> Any:
            if value is None:
                return None
            if type(value) is not list and type(value) is not tuple:
                raise Fallback
            return [item(entry) for entry in value]

        return items
    assert completion.object is not None
    # Only an object without resolvers has a writer, and so has every object inside it.
    write = completion.object.fast
    assert write is not None

    def nested(value: Any) -> Any:
        return None if value is None else write(value)

    return nested


def _fast_coerce(type_: GraphQLLeafType) -> Callable[[Any], Any]:
    def coerce(value: Any) -> Any:
        if value is None:
            return None
        if value is Undefined or isinstance(value, Exception):
            raise Fallback
        return Executor.complete_leaf_value(type_, value)

    return _inline_builtin(type_, coerce)
