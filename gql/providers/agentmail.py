"""AgentMail through its official SDK, with bounded retries."""

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import httpx
from agentmail import AsyncAgentMail
from agentmail.core.api_error import ApiError
from agentmail.core.request_options import RequestOptions
from agentmail.domains.types.domain import Domain as SdkDomain
from agentmail.environment import AgentMailEnvironment

from gql.models import DnsRecord
from gql.providers.retry import RetryableStatus, retry_after_seconds, with_retries
from gql.providers.verification import ProviderDomain, ProviderRejected
from gql.settings import Settings

T = TypeVar("T")
# Our retries (tenacity) replace the SDK's own, so attempts and Retry-After stay bounded here.
_NO_SDK_RETRIES: RequestOptions = {"max_retries": 0}


def _to_provider_domain(domain: SdkDomain) -> ProviderDomain:
    return ProviderDomain(
        domain_id=str(domain.domain_id),
        domain=str(domain.domain),
        status=str(domain.status),
        reason=domain.reason,
        records=tuple(
            DnsRecord(type=str(r.type), name=r.name, value=r.value, priority=r.priority)
            for r in domain.records
        ),
    )


def _message(error: ApiError) -> str:
    body: Any = error.body
    message = getattr(body, "message", None)
    if message is None and isinstance(body, dict):
        message = body.get("message")
    return str(message or f"AgentMail refused the request ({error.status_code}).")


class AgentMailProvider:
    name = "AgentMail"

    def __init__(self, settings: Settings) -> None:
        assert settings.agentmail_api_key is not None
        self._settings = settings
        self._http = httpx.AsyncClient(timeout=settings.provider_timeout_seconds)
        self._client = AsyncAgentMail(
            api_key=settings.agentmail_api_key.get_secret_value(),
            environment=AgentMailEnvironment(
                http=settings.agentmail_base_url, websockets=settings.agentmail_base_url
            ),
            httpx_client=self._http,
        )

    async def _call(self, operation: str, call: Callable[[], Awaitable[T]]) -> T:
        async def once() -> T:
            try:
                return await call()
            except ApiError as error:
                status = error.status_code or 0
                if status == 429 or status >= 500:
                    raise RetryableStatus(status, retry_after_seconds(error.headers)) from error
                raise

        return await with_retries(
            once, provider=self.name, operation=operation, settings=self._settings
        )

    async def create(self, domain: str, *, client_id: str) -> ProviderDomain:
        options: RequestOptions = {
            **_NO_SDK_RETRIES,
            "additional_body_parameters": {"client_id": client_id},
        }
        try:
            created = await self._call(
                "create",
                lambda: self._client.domains.create(
                    domain=domain, feedback_enabled=True, request_options=options
                ),
            )
        except ApiError as error:
            if error.status_code == 409:
                # Another account of this product added the name first: the provider keeps one
                # domain per name, which both rows share (first verifier wins in our data).
                existing = await self.get(domain)
                if existing is not None:
                    return existing
            raise ProviderRejected(_message(error)) from error
        return _to_provider_domain(created)

    async def get(self, domain_id: str) -> ProviderDomain | None:
        try:
            found = await self._call(
                "get", lambda: self._client.domains.get(domain_id, request_options=_NO_SDK_RETRIES)
            )
        except ApiError as error:
            if error.status_code == 404:
                return None
            raise ProviderRejected(_message(error)) from error
        return _to_provider_domain(found)

    async def verify(self, domain_id: str) -> None:
        try:
            await self._call(
                "verify",
                lambda: self._client.domains.verify(domain_id, request_options=_NO_SDK_RETRIES),
            )
        except ApiError as error:
            raise ProviderRejected(_message(error)) from error

    async def delete(self, domain_id: str) -> None:
        try:
            await self._call(
                "delete",
                lambda: self._client.domains.delete(domain_id, request_options=_NO_SDK_RETRIES),
            )
        except ApiError as error:
            if error.status_code != 404:
                raise ProviderRejected(_message(error)) from error

    async def close(self) -> None:
        await self._http.aclose()
