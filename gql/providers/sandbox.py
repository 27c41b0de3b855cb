"""An offline stand-in for AgentMail, used when no AGENTMAIL_API_KEY is configured.

It behaves like the real provider closely enough to try the whole lifecycle in GraphiQL:
a created domain needs its records (PENDING, `dns_records_missing`); after a verify it is
VERIFYING for SANDBOX_VERIFY_SECONDS and then, by the first label of its name:

- `fail…` (e.g. `fail-demo.com`): FAILED with `ses_dkim_failed`;
- `invalid…`: INVALID with `dns_records_invalid`;
- `flaky…`: FAILED with `ses_dkim_temporary_failure` (transient; it never settles);
- anything else: VERIFIED.

Its state lives in the database (`sandbox_domains`), so every `serve` process and every
`gql-gateway worker` on that database sees the same sandbox, and the verification delay is
measured by the database's clock. A domain it has not seen is treated as created and verifying
from first sight, so domains that were verifying before the sandbox knew them still settle.
"""

from gql.db import sandbox as repo
from gql.db.engine import Database
from gql.db.sandbox import SandboxEntry
from gql.models import DnsRecord
from gql.providers.verification import ProviderDomain


def sandbox_records(domain: str) -> tuple[DnsRecord, ...]:
    return (
        DnsRecord("TXT", domain, "v=spf1 include:spf.agentmail.to ~all", None),
        DnsRecord("CNAME", f"agm._domainkey.{domain}", "agm._domainkey.agentmail.to", None),
        DnsRecord("TXT", f"_dmarc.{domain}", "v=DMARC1; p=none;", None),
        DnsRecord("MX", domain, "inbound-smtp.agentmail.to", 10),
    )


_OUTCOMES = (
    ("fail", "FAILED", "ses_dkim_failed"),
    ("invalid", "INVALID", "dns_records_invalid"),
    ("flaky", "FAILED", "ses_dkim_temporary_failure"),
)


class SandboxProvider:
    name = "sandbox"

    def __init__(self, db: Database, verify_seconds: float) -> None:
        self._db = db
        self._verify_seconds = verify_seconds

    def _view(self, entry: SandboxEntry) -> ProviderDomain:
        status: str = "PENDING"
        reason: str | None = "dns_records_missing"
        if entry.verifying_for is not None:
            status, reason = "VERIFYING", "ses_dkim_pending"
            if entry.verifying_for >= self._verify_seconds:
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
            records=sandbox_records(entry.domain),
        )

    async def create(self, domain: str, *, client_id: str) -> ProviderDomain:
        async with self._db.connect() as conn:
            return self._view(await repo.create(conn, domain=domain, client_id=client_id))

    async def get(self, domain_id: str) -> ProviderDomain | None:
        async with self._db.connect() as conn:
            return self._view(await repo.seen(conn, domain=domain_id))

    async def verify(self, domain_id: str) -> None:
        async with self._db.connect() as conn:
            await repo.request_verification(conn, domain=domain_id)

    async def delete(self, domain_id: str) -> None:
        async with self._db.connect() as conn:
            await repo.delete(conn, domain=domain_id)

    async def close(self) -> None:
        return None
