"""Running a plan: graphql-core's execution algorithm, specialised to the plan's steps.

The structure follows graphql-core's `Executor` method by method (field errors located at
the same paths, nulls propagated to the same parents, errors collected in the same order,
concurrent siblings gathered the same way), so that the differential test can hold both to
identical answers; the saving is that nothing is looked up, collected or wrapped per value.
"""

from collections.abc import Awaitable
from typing import Any

from graphql import GraphQLError, GraphQLNonNull, GraphQLOutputType, located_error
from graphql.execution import ExecutionResult, Executor
from graphql.execution.values import get_argument_values
from graphql.pyutils import Path, Undefined, gather_with_cancel, is_iterable
from strawberry.execution.is_awaitable import optimized_is_awaitable as is_awaitable

from gql.graphql.compiled.plan import Completion, FieldStep, Kind, ObjectPlan, Plan

__all__ = ["run"]


async def run(plan: Plan, executor: Executor[Any]) -> ExecutionResult:
    """Execute `plan` with the operation, variables and context `executor` was built with."""
    runner = _Runner(executor)
    data: dict[str, Any] | None
    try:
        if plan.serial:
            data = await runner.execute_serially(plan.root, executor.root_value)
        else:
            fields = runner.execute_fields(plan.root, executor.root_value, None)
            data = fields if isinstance(fields, dict) else await fields
    except GraphQLError as error:
        executor.collected_errors.add(error, None)
        data = None
    result = executor.build_response(data)
    assert isinstance(result, ExecutionResult)
    return result


class _Runner:
    __slots__ = ("executor",)

    def __init__(self, executor: Executor[Any]) -> None:
        self.executor = executor

    async def execute_serially(self, plan: ObjectPlan, source: Any) -> dict[str, Any]:
        results: dict[str, Any] = {}
        for step in plan.steps:
            result = self.execute_field(step, source, None)
            if is_awaitable(result):
                result = await result
            results[step.key] = result
        return results

    def execute_fields(
        self, plan: ObjectPlan, source: Any, path: Path | None
    ) -> dict[str, Any] | Awaitable[dict[str, Any]]:
        results: dict[str, Any] = {}
        if not plan.may_await:
            for step in plan.steps:
                results[step.key] = self.execute_field(step, source, path)
            return results
        pending: list[str] = []
        try:
            for step in plan.steps:
                result = self.execute_field(step, source, path)
                results[step.key] = result
                if step.may_await and is_awaitable(result):
                    pending.append(step.key)
        except Exception:
            if pending:
                self.executor.settle_in_background([results[key] for key in pending])
            raise
        if not pending:
            return results

        async def gathered() -> dict[str, Any]:
            if len(pending) == 1:
                results[pending[0]] = await results[pending[0]]
            else:
                values = await gather_with_cancel(*(results[key] for key in pending))
                results.update(zip(pending, values, strict=True))
            return results

        return gathered()

    def execute_field(self, step: FieldStep, source: Any, path: Path | None) -> Any:
        if step.typename is not None:
            return step.typename
        field_path: Path | None = None
        try:
            if step.getter is not None:
                result = step.getter(source)
                if step.fast_leaf is not None:
                    return step.fast_leaf(result)
                field_path = Path(path, step.key, step.parent.name)
            else:
                field_path = Path(path, step.key, step.parent.name)
                result = self.resolve(step, source, field_path)
                if is_awaitable(result):
                    return self.complete_awaitable(step, field_path, result)
            completed = self.complete(step.completion, step, field_path, result)
            if step.may_await and is_awaitable(completed):
                return self.await_completed(step.completion.type, step, field_path, completed)
        except Exception as raw_error:
            if field_path is None:
                field_path = Path(path, step.key, step.parent.name)
            self.handle_field_error(raw_error, step.completion.type, step, field_path)
            return None
        return completed

    def resolve(self, step: FieldStep, source: Any, path: Path) -> Any:
        executor = self.executor
        field_def = step.field_def
        assert field_def is not None
        assert step.resolve is not None
        info = executor.build_resolve_info(field_def, step.nodes, step.parent, path)
        args = (
            get_argument_values(
                field_def,
                step.nodes[0],
                executor.variable_values,
                step.details[0].fragment_variable_values,
                executor.hide_suggestions,
            )
            if step.has_args
            else {}
        )
        return step.resolve(source, info, **args)

    async def complete_awaitable(self, step: FieldStep, path: Path, result: Any) -> Any:
        try:
            resolved = await result
            completed = self.complete(step.completion, step, path, resolved)
            if is_awaitable(completed):
                completed = await completed
        except Exception as raw_error:
            self.handle_field_error(raw_error, step.completion.type, step, path)
            completed = None
        return completed

    async def await_completed(
        self, return_type: GraphQLOutputType, step: FieldStep, path: Path, completed: Any
    ) -> Any:
        try:
            return await completed
        except Exception as raw_error:
            self.handle_field_error(raw_error, return_type, step, path)
            return None

    def complete(self, completion: Completion, step: FieldStep, path: Path, value: Any) -> Any:
        if isinstance(value, Exception):
            raise value
        kind = completion.kind
        if kind is Kind.NON_NULL:
            assert completion.inner is not None
            completed = self.complete(completion.inner, step, path, value)
            if completed is None:
                raise TypeError(step.null_message)
            return completed
        if value is None or value is Undefined:
            return None
        if kind is Kind.LEAF:
            assert completion.leaf is not None
            return completion.leaf(value)
        if kind is Kind.LIST:
            return self.complete_list(completion, step, path, value)
        plan = completion.object
        assert plan is not None
        if plan.fast is not None:
            try:
                return plan.fast(value)
            except Exception:  # noqa: S110 - written again below, errors and all
                pass
        return self.execute_fields(plan, value, path)

    def complete_list(
        self, completion: Completion, step: FieldStep, path: Path, value: Any
    ) -> list[Any] | Awaitable[list[Any]]:
        if not is_iterable(value):
            raise GraphQLError(step.list_message)
        item = completion.inner
        assert item is not None
        completed: list[Any] = []
        pending: list[int] = []
        try:
            for index, entry in enumerate(value):
                item_path = Path(path, index, None)
                try:
                    done = self.complete(item, step, item_path, entry)
                    if item.may_await and is_awaitable(done):
                        done = self.await_completed(item.type, step, item_path, done)
                        pending.append(index)
                except Exception as raw_error:
                    self.handle_field_error(raw_error, item.type, step, item_path)
                    done = None
                completed.append(done)
        except Exception:
            # A null propagating out of an item: the items still running settle in the
            # background, as graphql-core lets them.
            if pending:
                self.executor.settle_in_background([completed[i] for i in pending])
            raise
        if not pending:
            return completed

        async def gathered() -> list[Any]:
            if len(pending) == 1:
                completed[pending[0]] = await completed[pending[0]]
            else:
                values = await gather_with_cancel(*(completed[i] for i in pending))
                for index, done in zip(pending, values, strict=True):
                    completed[index] = done
            return completed

        return gathered()

    def handle_field_error(
        self, raw_error: Exception, return_type: GraphQLOutputType, step: FieldStep, path: Path
    ) -> None:
        error = located_error(raw_error, step.nodes, path.as_list())
        executor = self.executor
        if executor.error_propagation and isinstance(return_type, GraphQLNonNull):
            raise error
        executor.collected_errors.add(error, path)
