"""What Cloudflare holds for a domain's records, publishing them, and cleaning them up.

Only in a zone connected to the domain owner's account (gql/services/zones.py): anywhere else
nothing is written and nothing is shown.
"""

import logging
from dataclasses import dataclass

from gql.errors import DomainError
from gql.models import DomainRecord
from gql.providers.cloudflare import CloudflareDns, PublishedRecord, Zone
from gql.services.zones import ZoneService

logger = logging.getLogger(__name__)


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
    """Cloudflare, in the owner's connected zones; every answer degrades to `checked: false`."""

    def __init__(self, zones: ZoneService) -> None:
        self._zones = zones

    async def published(self, record: DomainRecord) -> PublishedRecords:
        """The records the owner's zone holds with the type and name of one of the domain's."""
        wanted = {(r.type.upper(), r.name.lower()) for r in record.dns_records}
        try:
            async with self._zones.access(record.user_id, record.domain) as access:
                if access is None:
                    message = self._zones.not_connected(record.domain, record.user_id)
                    return PublishedRecords(False, None, None, message, ())
                found = await access.dns.records(access.zone, names={n for _, n in wanted})
                zone = access.zone
        except (DomainError, OSError) as error:
            message = error.message if isinstance(error, DomainError) else str(error)
            return PublishedRecords(
                False, None, None, f"Cloudflare could not be asked: {message}", ()
            )
        shown = tuple(r for r in found if (r.type.upper(), r.name.lower()) in wanted)
        return PublishedRecords(True, zone.id, zone.name, None, shown)

    async def publish(self, record: DomainRecord) -> bool:
        """Create the domain's records in the owner's connected zone; False when there is none.

        Best effort: a failure is logged and the owner can still publish the records by hand.
        """
        try:
            async with self._zones.access(record.user_id, record.domain) as access:
                if access is None:
                    return False
                await self._zones.record_publication(record.user_id, record.domain, access)
                for dns_record in record.dns_records:
                    await access.dns.publish(
                        access.zone, dns_record, comment=managed_comment(record.domain)
                    )
        except (DomainError, OSError):
            logger.warning("publishing the records of %s to Cloudflare failed", record.domain)
            return False
        return True

    async def cleanup(self, domain: str) -> None:
        """Delete the records this gateway published for `domain` (raises to be retried).

        Each zone is reached with the credentials that published into it. Records published
        before publications were written down are looked for with the operator's token.
        """
        publications = await self._zones.publications(domain)
        if not publications and self._zones.operator is not None:
            zone = await self._zones.operator.find_zone(domain)
            if zone is not None:
                await _delete_marked(self._zones.operator, zone, domain)
            return
        for publication in publications:
            async with self._zones.reach(publication) as dns:
                if dns is None:
                    logger.warning(
                        "the records of %s in zone %s stay: user %s disconnected the token that "
                        "published them",
                        domain,
                        publication.zone_name,
                        publication.user_id,
                    )
                else:
                    zone = Zone(publication.zone_id, publication.zone_name)
                    await _delete_marked(dns, zone, domain)
            await self._zones.forget(publication)

    async def close(self) -> None:
        await self._zones.close()


async def _delete_marked(dns: CloudflareDns, zone: Zone, domain: str) -> None:
    for published in await dns.records(zone, comment=managed_comment(domain)):
        await dns.delete(zone, published.id)
