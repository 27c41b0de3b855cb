"""Each request's share of the providers: the time left before its limit, a number of calls
and a concurrency bound, carried in a context variable from the HTTP boundary to every provider
call (background work has no budget: its calls are bounded by the PROVIDER_* settings alone).
"""

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field

# Kept back from the request's limit, so the gateway can still store what it learnt and answer.
RESERVE_SECONDS = 1.0


@dataclass(slots=True)
class RequestBudget:
    deadline: float
    """`loop.time()` at which the request is stopped."""
    calls_left: int
    bound: asyncio.Semaphore = field(repr=False)

    def seconds_left(self) -> float:
        return self.deadline - asyncio.get_running_loop().time() - RESERVE_SECONDS


_current: ContextVar[RequestBudget | None] = ContextVar("provider_budget", default=None)


def current_budget() -> RequestBudget | None:
    return _current.get()


@contextmanager
def request_budget(seconds: float, *, calls: int, concurrency: int) -> Iterator[RequestBudget]:
    """Give the code run inside the block (one request) its provider budget."""
    budget = RequestBudget(
        deadline=asyncio.get_running_loop().time() + seconds,
        calls_left=calls,
        bound=asyncio.Semaphore(concurrency),
    )
    token = _current.set(budget)
    try:
        yield budget
    finally:
        _current.reset(token)
