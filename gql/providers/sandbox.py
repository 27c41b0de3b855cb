"""An offline stand-in for AgentMail, used when no AGENTMAIL_API_KEY is configured.

It behaves like the real provider closely enough to try the whole lifecycle in GraphiQL:
a created domain needs its records (PENDING, `dns_records_missing`); after a verify it is
VERIFYING for SANDBOX_VERIFY_SECONDS and then, by the first label of its name:

- `fail…` (e.g. `fail-demo.com`): FAILED with `ses_dkim_failed`;
- `invalid…`: INVALID with `dns_records_invalid`;
- `flaky…`: FAILED with `ses_dkim_temporary_failure` (transient; it never settles);
- anything else: VERIFIED.

State lives in this process only; a domain it has not seen is treated as created and verified
at first sight, so a restart does not strand domains that were verifying.
"""

import time
from dataclasses import dataclass

from gql.models import DnsRecord
from gql.providers.verification import ProviderDomain


def sandbox_records(domain: str, status: str | None = None) -> tuple[DnsRecord, ...]:
    return (
        DnsRecord("TXT", domain, "v=spf1 include:spf.agentmail.to ~all", None, status),
        DnsRecord("CNAME", f"agm._domainkey.{domain}", "agm._domainkey.agentmail.to", None, status),
        DnsRecord("TXT", f"_dmarc.{domain}", "v=DMARC1; p=none;", None, status),
        DnsRecord("MX", domain, "inbound-smtp.agentmail.to", 10, status),
    )


def _records_status(reason: str | None) -> str:
    """What AgentMail reports per record for a domain status reason."""
    if reason == "dns_records_missing":
        return "MISSING"
    return "INVALID" if reason == "dns_records_invalid" else "VALID"


_OUTCOMES = (
    ("fail", "FAILED", "ses_dkim_failed"),
    ("invalid", "INVALID", "dns_records_invalid"),
    ("flaky", "FAILED", "ses_dkim_temporary_failure"),
)


@dataclass(slots=True)
class _Entry:
    domain: str
    client_id: str | None
    verify_requested_at: float | None


class SandboxProvider:
    name = "sandbox"

    def __init__(self, verify_seconds: float) -> None:
        self._verify_seconds = verify_seconds
        self._domains: dict[str, _Entry] = {}

    def _view(self, entry: _Entry) -> ProviderDomain:
        status: str = "PENDING"
        reason: str | None = "dns_records_missing"
        started = entry.verify_requested_at
        if started is not None:
            status, reason = "VERIFYING", "ses_dkim_pending"
            if time.monotonic() - started >= self._verify_seconds:
                label = entry.domain.split(".", 1)[0]
                status, reason = "VERIFIED", None
                for prefix, outcome, why in _OUTCOMES:
                    if label.startswith(prefix):
                        status, reason = outcome, why
        return ProviderDomain(
            domain_id=entry.domain,
            domain=entry.domain,
            status=status,
            reason=reason,
            records=sandbox_records(entry.domain, _records_status(reason)),
        )

    async def create(self, domain: str, *, client_id: str) -> ProviderDomain:
        entry = self._domains.setdefault(domain, _Entry(domain, client_id, None))
        return self._view(entry)

    async def get(self, domain_id: str) -> ProviderDomain | None:
        entry = self._domains.setdefault(domain_id, _Entry(domain_id, None, time.monotonic()))
        return self._view(entry)

    async def verify(self, domain_id: str) -> None:
        entry = self._domains.setdefault(domain_id, _Entry(domain_id, None, None))
        entry.verify_requested_at = time.monotonic()

    async def delete(self, domain_id: str) -> None:
        self._domains.pop(domain_id, None)

    async def close(self) -> None:
        return None
