"""The verification provider interface (AgentMail, or the offline sandbox)."""

from dataclasses import dataclass
from typing import Protocol

from gql.errors import DomainError
from gql.models import DnsRecord


class ProviderUnavailable(DomainError):
    """The provider did not give a definite answer (timeouts, 5xx, rate limits after retries)."""

    http_status = 503
    rest_code = "provider_unavailable"
    graphql_code = "PROVIDER_UNAVAILABLE"
    retry_after = 30

    @property
    def extensions(self) -> dict[str, object]:
        return {"code": self.graphql_code, "retryAfter": self.retry_after}


class ProviderMisconfigured(ProviderUnavailable):
    """The provider refused the gateway itself (a bad or revoked API key, a missing permission):
    no answer until the operator fixes the configuration; the caller did nothing wrong."""

    rest_code = "provider_misconfigured"
    graphql_code = "PROVIDER_MISCONFIGURED"
    retry_after = 300


class ProviderRejected(DomainError):
    """The provider refused the request for a reason the caller can fix (e.g. a bad name)."""

    http_status = 422
    rest_code = "validation_error"
    graphql_code = "BAD_USER_INPUT"


@dataclass(frozen=True, slots=True)
class ProviderDomain:
    """A domain as the provider sees it."""

    domain_id: str
    domain: str
    status: str  # NOT_STARTED | PENDING | INVALID | FAILED | VERIFYING | VERIFIED
    reason: str | None
    records: tuple[DnsRecord, ...]


class VerificationProvider(Protocol):
    name: str

    async def create(self, domain: str, *, client_id: str) -> ProviderDomain:
        """Create the domain; a replay with the same `client_id` returns the original."""
        ...

    async def get(self, domain_id: str) -> ProviderDomain | None:
        """The live domain, or None when the provider does not know it."""
        ...

    async def verify(self, domain_id: str) -> None:
        """Ask the provider to re-check the domain's records (asynchronous)."""
        ...

    async def delete(self, domain_id: str) -> None:
        """Remove the domain; deleting an unknown domain is not an error."""
        ...

    async def close(self) -> None: ...
