"""What Cloudflare holds for a domain's records, publishing them, and cleaning them up."""

import logging
from dataclasses import dataclass

from gql.errors import DomainError
from gql.models import DomainRecord
from gql.providers.cloudflare import CloudflareDns, PublishedRecord

logger = logging.getLogger(__name__)

NOT_CONFIGURED = (
    "Cloudflare is not configured (CLOUDFLARE_API_TOKEN): publish the records at your DNS host."
)


def managed_comment(domain: str) -> str:
    """The comment that marks the records this gateway published for `domain`."""
    return f"email-domain-gateway: {domain}"


@dataclass(frozen=True, slots=True)
class PublishedRecords:
    checked: bool
    zone_id: str | None
    zone_name: str | None
    error: str | None
    records: tuple[PublishedRecord, ...]


class DnsService:
    """Cloudflare, when a token is configured; every answer degrades to `checked: false`."""

    def __init__(self, dns: CloudflareDns | None) -> None:
        self._dns = dns

    async def published(self, record: DomainRecord) -> PublishedRecords:
        """The records Cloudflare holds at the names the domain's records use."""
        if self._dns is None:
            return PublishedRecords(False, None, None, NOT_CONFIGURED, ())
        try:
            zone = await self._dns.find_zone(record.domain)
            if zone is None:
                return PublishedRecords(
                    True,
                    None,
                    None,
                    f"No Cloudflare zone for {record.domain} is managed by the configured token: "
                    "publish the records at your DNS host.",
                    (),
                )
            names = {r.name for r in record.dns_records}
            found = await self._dns.records(zone, names=names)
        except (DomainError, OSError) as error:
            message = error.message if isinstance(error, DomainError) else str(error)
            return PublishedRecords(
                False, None, None, f"Cloudflare could not be asked: {message}", ()
            )
        return PublishedRecords(True, zone.id, zone.name, None, tuple(found))

    async def publish(self, record: DomainRecord) -> bool:
        """Create the domain's records in its Cloudflare zone; False when the zone is not ours.

        Best effort: a failure is logged and the owner can still publish the records by hand.
        """
        if self._dns is None:
            return False
        try:
            zone = await self._dns.find_zone(record.domain)
            if zone is None:
                return False
            for dns_record in record.dns_records:
                await self._dns.publish(zone, dns_record, comment=managed_comment(record.domain))
        except (DomainError, OSError):
            logger.warning("publishing the records of %s to Cloudflare failed", record.domain)
            return False
        return True

    async def cleanup(self, domain: str) -> None:
        """Delete the records this gateway published for `domain` (raises to be retried)."""
        if self._dns is None:
            return
        zone = await self._dns.find_zone(domain)
        if zone is None:
            return
        for published in await self._dns.records(zone, comment=managed_comment(domain)):
            await self._dns.delete(zone, published.id)

    async def close(self) -> None:
        if self._dns is not None:
            await self._dns.close()
