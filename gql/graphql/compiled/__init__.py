"""Compiled execution plans: a validated operation compiled once, then run without
graphql-core's per-field machinery; anything a plan does not know runs on graphql-core."""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeGuard, cast

from graphql import (
    DirectiveNode,
    DocumentNode,
    FragmentDefinitionNode,
    GraphQLSchema,
    OperationDefinitionNode,
    VariableNode,
    Visitor,
    visit,
)
from graphql.execution import ExecutionResult, Executor
from graphql.execution.collect_fields import FragmentDetails
from graphql.execution.values import VariableValues
from strawberry.execution.is_awaitable import optimized_is_awaitable

from gql.graphql.compiled.executor import run
from gql.graphql.compiled.plan import Plan, Unsupported, compile_plan

__all__ = ["PlanCache", "Unsupported", "compile_plan", "execute"]

MAX_PLANS_PER_DOCUMENT = 16

# Strawberry's predicate, as Strawberry passes it to graphql-core.
_IS_AWAITABLE = cast("Callable[[Any], TypeGuard[Awaitable[Any]]]", optimized_is_awaitable)


class _DirectiveVariables(Visitor):
    def __init__(self) -> None:
        super().__init__()
        self.names: set[str] = set()

    def enter_directive(self, node: DirectiveNode, *_args: object) -> None:
        for argument in node.arguments or ():
            if isinstance(argument.value, VariableNode):
                self.names.add(argument.value.name.value)


@dataclass(frozen=True, slots=True)
class _Static:
    """An operation whose fields do not depend on variables, compiled before any request."""

    schema: GraphQLSchema
    fragments: dict[str, FragmentDetails]
    variable_values: VariableValues
    operation: OperationDefinitionNode
    hide_suggestions: bool = False


class PlanCache:
    """The plans of one document, by operation name and the values of the variables its
    directives read (`@skip(if: $x)` selects different fields for different `$x`)."""

    __slots__ = ("_directive_variables", "_plans")

    def __init__(self) -> None:
        self._directive_variables: tuple[str, ...] | None = None
        self._plans: dict[tuple[object, ...], Plan | None] = {}

    def _names(self, document: DocumentNode) -> tuple[str, ...]:
        names = self._directive_variables
        if names is None:
            collector = _DirectiveVariables()
            visit(document, collector)
            names = self._directive_variables = tuple(sorted(collector.names))
        return names

    def precompile(self, schema: GraphQLSchema, document: DocumentNode) -> None:
        """Compile now the operations whose selections no variable changes."""
        if self._names(document):
            return
        fragments = {
            d.name.value: FragmentDetails(d)
            for d in document.definitions
            if isinstance(d, FragmentDefinitionNode)
        }
        operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
        for operation in operations:
            source = _Static(schema, fragments, VariableValues({}, {}), operation)
            try:
                plan: Plan | None = compile_plan(source)
            except Unsupported:
                plan = None
            if operation.name is not None:
                self._plans[(operation.name.value,)] = plan
            if len(operations) == 1:
                self._plans[(None,)] = plan

    def plan(
        self, document: DocumentNode, executor: Executor[Any], operation_name: str | None
    ) -> Plan | None:
        names = self._names(document)
        coerced = executor.variable_values.coerced
        key = (operation_name, *(coerced.get(name) for name in names))
        if key in self._plans:
            return self._plans[key]
        if len(self._plans) >= MAX_PLANS_PER_DOCUMENT:
            # Each combination of directive variables is a plan: bounded, like the documents.
            return None
        try:
            plan: Plan | None = compile_plan(executor)
        except Unsupported:
            plan = None
        self._plans[key] = plan
        return plan


async def execute(
    plans: PlanCache,
    schema: GraphQLSchema,
    document: DocumentNode,
    *,
    root_value: Any,
    context_value: Any,
    variable_values: dict[str, Any] | None,
    operation_name: str | None,
    hide_suggestions: bool,
) -> ExecutionResult | None:
    """The operation's result through its plan, or None when graphql-core must run it.

    None also for requests graphql-core answers before executing (an unknown operation
    name, variables that do not coerce), so those errors stay graphql-core's own.
    """
    executor = Executor.build(
        schema,
        document,
        root_value,
        context_value,
        variable_values,
        operation_name,
        is_awaitable=_IS_AWAITABLE,
        hide_suggestions=hide_suggestions,
    )
    if isinstance(executor, list):
        return None
    plan = plans.plan(document, executor, operation_name)
    if plan is None:
        return None
    return await run(plan, executor)
