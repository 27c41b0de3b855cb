"""GraphQL types, converted explicitly from service records."""

import enum
import uuid
from datetime import datetime

import strawberry
from strawberry.types import Info

from gql.graphql.context import GatewayContext
from gql.models import DnsRecord as DnsRecordValue
from gql.models import DomainRecord, Status
from gql.services.dns import PublishedRecords as PublishedRecordsValue


@strawberry.enum(description="Where a domain stands in verification.")
class DomainStatus(enum.Enum):
    PENDING = "pending"
    VERIFYING = "verifying"
    VERIFIED = "verified"
    FAILED = "failed"


@strawberry.enum(
    description=(
        "Statuses a client may set. VERIFIED is absent on purpose: only verification can mark "
        "a domain verified."
    )
)
class DomainStatusInput(enum.Enum):
    PENDING = "pending"
    VERIFYING = "verifying"
    FAILED = "failed"


def to_status(value: DomainStatus | DomainStatusInput) -> Status:
    return Status(value.value)


@strawberry.type(description="A DNS record the domain's owner must publish.")
class DnsRecord:
    type: str = strawberry.field(description="Record type: TXT, CNAME or MX.")
    name: str = strawberry.field(description="Host name the record is published at.")
    value: str = strawberry.field(description="Record content.")
    priority: int | None = strawberry.field(description="MX priority; null for other types.")

    @classmethod
    def from_value(cls, record: DnsRecordValue) -> "DnsRecord":
        return cls(type=record.type, name=record.name, value=record.value, priority=record.priority)


@strawberry.type(description="A DNS record as Cloudflare holds it.")
class PublishedDnsRecord:
    id: str
    type: str
    name: str
    value: str
    priority: int | None
    ttl: int = strawberry.field(description="Seconds; 1 means automatic.")
    proxied: bool


@strawberry.type(description="Whether Cloudflare could be asked, and which zone holds the domain.")
class CloudflareCheck:
    checked: bool = strawberry.field(
        description="False when Cloudflare is not configured or could not be asked."
    )
    zone_id: str | None
    zone_name: str | None
    error: str | None = strawberry.field(description="Why the records could not be read.")


@strawberry.type(description="What Cloudflare actually holds at the names of the domain's records.")
class PublishedRecords:
    cloudflare: CloudflareCheck
    records: list[PublishedDnsRecord]

    @classmethod
    def from_value(cls, value: PublishedRecordsValue) -> "PublishedRecords":
        return cls(
            cloudflare=CloudflareCheck(
                checked=value.checked,
                zone_id=value.zone_id,
                zone_name=value.zone_name,
                error=value.error,
            ),
            records=[
                PublishedDnsRecord(
                    id=r.id,
                    type=r.type,
                    name=r.name,
                    value=r.value,
                    priority=r.priority,
                    ttl=r.ttl,
                    proxied=r.proxied,
                )
                for r in value.records
            ],
        )


@strawberry.type(description="A custom sending domain owned by the caller.")
class Domain:
    id: uuid.UUID
    user_id: uuid.UUID = strawberry.field(description="The owner.")
    domain: str = strawberry.field(description="Lower-case host name, e.g. acme.com.")
    agentmail_domain_id: str | None = strawberry.field(
        description="Id of the domain at the verification provider (AgentMail)."
    )
    status: DomainStatus
    dns_records: list[DnsRecord] = strawberry.field(
        description="The records the owner must publish."
    )
    verified_at: datetime | None = strawberry.field(
        description="When the provider last confirmed the domain."
    )
    created_at: datetime
    updated_at: datetime = strawberry.field(description="Moves forward on every change.")
    status_reason: str | None = strawberry.field(
        description=(
            "The provider's reason for the status when it is not verified, e.g. "
            "dns_records_missing, ses_dkim_pending; verification_timeout when the poller gave "
            "up; verified_by_another_account when another account verified the name first; "
            "claimed_by_another_account when another account claimed the name through DNS."
        )
    )
    last_checked_at: datetime | None = strawberry.field(
        description="When the provider was last asked about this domain."
    )
    source: strawberry.Private[DomainRecord]

    @strawberry.field(
        description=(
            "What Cloudflare holds with the type and name of one of dnsRecords, in a zone "
            "connected to the owner's account. Never fails: when the zone is not connected or "
            "Cloudflare cannot be asked, cloudflare.checked is false with an error that says "
            "what to do."
        )
    )
    async def published_records(self, info: Info[GatewayContext, None]) -> PublishedRecords:
        value = await info.context.services.dns.published(self.source)
        return PublishedRecords.from_value(value)

    @classmethod
    def from_record(cls, record: DomainRecord) -> "Domain":
        return cls(
            id=record.id,
            user_id=record.user_id,
            domain=record.domain,
            agentmail_domain_id=record.agentmail_domain_id,
            status=DomainStatus(record.status.value),
            dns_records=[DnsRecord.from_value(r) for r in record.dns_records],
            verified_at=record.verified_at,
            created_at=record.created_at,
            updated_at=record.updated_at,
            status_reason=record.status_reason,
            last_checked_at=record.last_checked_at,
            source=record,
        )


@strawberry.type(description="What deleteEmailDomain removed.")
class DeletedEmailDomain:
    id: uuid.UUID
    domain: str
    success: bool = strawberry.field(
        description=(
            "Always true: the domain is gone; provider and DNS clean-up run in the background."
        )
    )


@strawberry.type(description="Relay page information.")
class PageInfo:
    has_next_page: bool
    has_previous_page: bool
    start_cursor: str | None
    end_cursor: str | None


@strawberry.type(description="A domain and the cursor to continue after it.")
class DomainEdge:
    node: Domain
    cursor: str
