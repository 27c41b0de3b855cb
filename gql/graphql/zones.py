"""Zones connected to the caller's account, and claims of names another account holds."""

from datetime import datetime

import strawberry
from strawberry.types import Info

from gql.graphql.context import GatewayContext
from gql.graphql.types import Domain
from gql.services.claims import Challenge
from gql.services.zones import CloudflareConnection as ConnectionValue

ZoneInfo = Info[GatewayContext, None]


@strawberry.type(
    description=(
        "The zones connected to the caller's account: records are published into, and shown "
        "from, these zones only. The token itself is never returned."
    )
)
class CloudflareConnection:
    connected: bool = strawberry.field(description="Whether the caller's own token is stored.")
    token_hint: str | None = strawberry.field(description="The token's last four characters.")
    connected_at: datetime | None
    token_zones: list[str] = strawberry.field(description="Zones the caller's own token reads.")
    bound_zones: list[str] = strawberry.field(
        description="Zones the operator bound to the caller's account."
    )

    @classmethod
    def from_value(cls, value: ConnectionValue) -> "CloudflareConnection":
        return cls(
            connected=value.connected,
            token_hint=value.token_hint,
            connected_at=value.connected_at,
            token_zones=list(value.token_zones),
            bound_zones=list(value.bound_zones),
        )


@strawberry.type(description="The DNS record that proves control of a name for the caller.")
class DomainClaim:
    domain: str
    record_type: str
    record_name: str
    record_value: str

    @classmethod
    def from_value(cls, value: Challenge) -> "DomainClaim":
        return cls(
            domain=value.domain,
            record_type=value.record_type,
            record_name=value.record_name,
            record_value=value.record_value,
        )


@strawberry.type
class ZoneQuery:
    @strawberry.field(description="The caller's own Cloudflare token (hint only) and bound zones.")
    async def cloudflare_connection(self, info: ZoneInfo) -> CloudflareConnection:
        ctx = info.context
        value = await ctx.services.zones.connection(await ctx.principal())
        return CloudflareConnection.from_value(value)

    @strawberry.field(
        description=(
            "The TXT record to publish to claim a name another account holds; the value is the "
            "caller's own and does not change."
        )
    )
    async def email_domain_claim(self, info: ZoneInfo, domain: str) -> DomainClaim:
        ctx = info.context
        return DomainClaim.from_value(ctx.services.claims.challenge(await ctx.principal(), domain))


@strawberry.type
class ZoneMutation:
    @strawberry.mutation(
        description=(
            "Connect your own Cloudflare API token (Zone:Read and DNS:Edit on your zones). It is "
            "checked with Cloudflare, stored encrypted and never shown again; the zones it "
            "reads become connected to your account. Connecting again replaces it."
        )
    )
    async def connect_cloudflare_token(self, info: ZoneInfo, token: str) -> CloudflareConnection:
        ctx = info.context
        value = await ctx.services.zones.connect_token(await ctx.principal(), token)
        return CloudflareConnection.from_value(value)

    @strawberry.mutation(
        description="Forget your Cloudflare token; zones the operator bound stay connected."
    )
    async def disconnect_cloudflare_token(self, info: ZoneInfo) -> CloudflareConnection:
        ctx = info.context
        value = await ctx.services.zones.disconnect_token(await ctx.principal())
        return CloudflareConnection.from_value(value)

    @strawberry.mutation(
        description=(
            "Claim a name another account holds: once the TXT record from emailDomainClaim is "
            "visible in DNS, the name moves to your account (created as createEmailDomain "
            "does) and the other account's domain becomes FAILED with statusReason "
            "claimed_by_another_account. Until then: CONFLICT, with extensions.claim."
        )
    )
    async def claim_email_domain(self, info: ZoneInfo, domain: str) -> Domain:
        ctx = info.context
        record = await ctx.services.claims.claim(await ctx.principal(), domain)
        return Domain.from_record(record)
