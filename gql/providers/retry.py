"""Bounded retries for provider calls: 429 honours Retry-After, 5xx and timeouts back off.

Each call is measured (count by outcome, latency with retries and waits, retries) and traced
as one client span.
"""

import logging
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import httpx
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    stop_after_delay,
    wait_exponential_jitter,
)

from gql.observability import tracing
from gql.observability.metrics import (
    OUTCOME_ERROR,
    OUTCOME_OK,
    PROVIDER_CALLS,
    PROVIDER_DURATION,
    PROVIDER_RETRIES,
)
from gql.providers.verification import ProviderUnavailable
from gql.settings import Settings

T = TypeVar("T")
UNAVAILABLE = "unavailable"
logger = logging.getLogger(__name__)


class RetryableStatus(Exception):
    """An HTTP answer worth retrying (429 or 5xx), with the provider's Retry-After if any."""

    def __init__(self, status: int, retry_after: float | None) -> None:
        super().__init__(f"provider answered {status}")
        self.status = status
        self.retry_after = retry_after


def retry_after_seconds(headers: dict[str, str] | httpx.Headers | None) -> float | None:
    if not headers:
        return None
    value = headers.get("retry-after") or headers.get("Retry-After")
    try:
        return None if value is None else max(0.0, float(value))
    except ValueError:
        return None


def _retryable(exc: BaseException) -> bool:
    return isinstance(exc, RetryableStatus | httpx.TransportError | TimeoutError)


class _Wait:
    """Retry-After when the provider sent one (capped), else exponential backoff with jitter."""

    def __init__(self, initial: float, cap: float) -> None:
        self._backoff = wait_exponential_jitter(multiplier=initial, max=cap, jitter=initial)
        self._cap = cap

    def __call__(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, RetryableStatus) and exc.retry_after is not None:
            return min(exc.retry_after, self._cap)
        return float(self._backoff(state))


async def with_retries(
    call: Callable[[], Awaitable[T]], *, provider: str, operation: str, settings: Settings
) -> T:
    """Run `call`, retrying transient failures as the PROVIDER_* settings say; give up with
    `ProviderUnavailable`."""
    retries = PROVIDER_RETRIES.labels(provider, operation)
    retrying = AsyncRetrying(
        retry=retry_if_exception(_retryable),
        stop=stop_after_attempt(settings.provider_attempts)
        | stop_after_delay(settings.provider_deadline_seconds),
        wait=_Wait(settings.provider_backoff_seconds, settings.provider_max_backoff_seconds),
        before_sleep=lambda _: retries.inc(),
        reraise=True,
    )
    outcome = OUTCOME_ERROR
    began = time.perf_counter()
    with tracing.span(
        f"{provider} {operation}",
        kind="client",
        attributes={"gateway.provider": provider, "gateway.provider.operation": operation},
    ) as span:
        try:
            async for attempt in retrying:
                with attempt:
                    result = await call()
                    outcome = OUTCOME_OK
                    return result
        except (RetryableStatus, httpx.TransportError, TimeoutError) as exc:
            outcome = UNAVAILABLE
            tracing.mark_error(span, UNAVAILABLE)
            logger.warning("%s unavailable after retries: %s", provider, exc)
            raise ProviderUnavailable(
                f"{provider} is not answering right now; nothing was lost. Retry in a minute."
            ) from exc
        except Exception as exc:
            tracing.mark_error(span, type(exc).__name__)
            raise
        finally:
            PROVIDER_CALLS.labels(provider, operation, outcome).inc()
            PROVIDER_DURATION.labels(provider, operation).observe(time.perf_counter() - began)
            if span is not None:
                span.set_attribute(
                    "gateway.provider.attempts", retrying.statistics.get("attempt_number", 1)
                )
    raise AssertionError("unreachable")
