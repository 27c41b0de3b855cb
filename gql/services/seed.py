"""Sample domains with the DNS records AgentMail asks an owner to publish."""

import random
import uuid
from datetime import UTC, datetime
from typing import Any

from gql.db import domains as repo
from gql.db.engine import Database
from gql.models import DomainRecord, Status

_NAMES = (
    "acme", "globex", "initech", "umbrella", "hooli", "stark", "wayne", "wonka",
    "cyberdyne", "tyrell", "soylent", "aperture", "massive", "vandelay", "pied-piper",
)  # fmt: skip
_TLDS = ("com", "io", "dev", "co", "app", "org")
_STATUSES = (Status.PENDING, Status.VERIFYING, Status.VERIFIED, Status.FAILED)


def sample_records(domain: str) -> list[dict[str, Any]]:
    """SPF, DKIM, DMARC and inbound MX, in the shape AgentMail returns them."""
    return [
        {"type": "TXT", "name": domain, "value": "v=spf1 include:spf.agentmail.to ~all",
         "priority": None},
        {"type": "CNAME", "name": f"agm._domainkey.{domain}",
         "value": "agm._domainkey.agentmail.to", "priority": None},
        {"type": "TXT", "name": f"_dmarc.{domain}", "value": "v=DMARC1; p=none;",
         "priority": None},
        {"type": "MX", "name": domain, "value": "inbound-smtp.agentmail.to", "priority": 10},
    ]  # fmt: skip


class SeedService:
    """Creates sample data for demos and local development."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def seed(self, user_id: uuid.UUID, count: int) -> list[DomainRecord]:
        """Up to `count` new sample domains for the user (names it already has are skipped)."""
        rng = random.Random()  # noqa: S311 - sample data, not security
        rows = []
        for i in range(count):
            domain = f"{rng.choice(_NAMES)}-{uuid.uuid4().hex[:6]}.{rng.choice(_TLDS)}"
            status = _STATUSES[i % len(_STATUSES)]
            rows.append(
                {
                    "domain": domain,
                    "agentmail_domain_id": domain,
                    "status": status.value,
                    "dns_records": sample_records(domain),
                    "verified_at": datetime.now(UTC) if status is Status.VERIFIED else None,
                }
            )
        async with self._db.connect() as conn:
            return await repo.insert_many(conn, user_id=user_id, rows=rows)
