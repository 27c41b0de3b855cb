"""Query and Mutation, and the schema built from them."""

import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import orjson
import strawberry
from graphql import (
    ASTValidationRule,
    GraphQLError,
    NoSchemaIntrospectionCustomRule,
    specified_rules,
)
from strawberry.extensions import DisableIntrospection, SchemaExtension
from strawberry.schema.config import StrawberryConfig
from strawberry.types import ExecutionContext, Info

from gql.graphql.context import GatewayContext
from gql.graphql.documents import DocumentCache
from gql.graphql.limits import validation_rules
from gql.graphql.pipeline import GatewayExtension
from gql.graphql.subscriptions import Subscription
from gql.graphql.types import (
    DeletedEmailDomain,
    Domain,
    DomainEdge,
    DomainStatus,
    DomainStatusInput,
    PageInfo,
    to_status,
)
from gql.graphql.zones import ZoneMutation, ZoneQuery
from gql.models import Principal, Status
from gql.observability.graphql import ObservabilityExtension
from gql.services.domains import DEFAULT_PAGE_SIZE, encode_cursor
from gql.settings import Settings

GatewayInfo = Info[GatewayContext, None]


@strawberry.type(description="A page of domains (Relay connection), newest first.")
class DomainConnection:
    edges: list[DomainEdge]
    page_info: PageInfo
    principal: strawberry.Private[Principal]
    status: strawberry.Private[Status | None]

    @strawberry.field(description="How many of the caller's domains match the filter, all pages.")
    async def total_count(self, info: GatewayInfo) -> int:
        return await info.context.services.domains.count(self.principal, status=self.status)


@strawberry.type
class Query(ZoneQuery):
    @strawberry.field(
        description=(
            "One of the caller's domains; null when it does not exist or is not the caller's."
        )
    )
    async def email_domain(self, info: GatewayInfo, id: uuid.UUID) -> Domain | None:
        ctx = info.context
        record = await ctx.services.domains.find(await ctx.principal(), id)
        return None if record is None else Domain.from_record(record)

    @strawberry.field(
        description=(
            "The caller's domains, newest first (Relay connection: edges/node/cursor, pageInfo, "
            "totalCount). `first` is at most 100. With `sync: true` each listed domain is first "
            "refreshed from the provider; a domain the provider could not answer for keeps its "
            "cached status and the response's `extensions.sync` says the sync was partial."
        )
    )
    async def email_domains(
        self,
        info: GatewayInfo,
        first: int | None = DEFAULT_PAGE_SIZE,
        after: str | None = None,
        status: DomainStatus | None = None,
        sync: bool = False,
    ) -> DomainConnection:
        ctx = info.context
        principal = await ctx.principal()
        wanted = None if status is None else to_status(status)
        page = await ctx.services.domains.list_page(
            principal, first=first, after=after, status=wanted
        )
        records = page.records
        if sync:
            result = await ctx.services.lifecycle.sync(principal, records)
            records = result.records
            ctx.extensions["sync"] = {
                "partial": result.partial,
                "failedIds": [str(i) for i in result.failed_ids],
            }
        edges = [DomainEdge(node=Domain.from_record(r), cursor=encode_cursor(r)) for r in records]
        return DomainConnection(
            edges=edges,
            page_info=PageInfo(
                has_next_page=page.has_next_page,
                has_previous_page=False,
                start_cursor=edges[0].cursor if edges else None,
                end_cursor=edges[-1].cursor if edges else None,
            ),
            principal=principal,
            status=wanted,
        )


@strawberry.type
class Mutation(ZoneMutation):
    @strawberry.mutation(
        description=(
            "Override the cached domain status. Intended for client-driven state changes like "
            "marking a domain failed after the frontend's verification timeout elapses. This "
            "does NOT touch AgentMail or DNS — the next verify or list sync will overwrite this "
            "value if the live AgentMail state disagrees. Setting the current status is a no-op "
            "(updatedAt unchanged)."
        )
    )
    async def update_email_domain_status(
        self,
        info: GatewayInfo,
        id: uuid.UUID,
        status: DomainStatusInput,
    ) -> Domain:
        ctx = info.context
        record = await ctx.services.domains.override_status(
            await ctx.principal(), id, to_status(status)
        )
        return Domain.from_record(record)

    @strawberry.mutation(
        description=(
            "Add a custom sending domain: it is normalised (lower case, IDNA; no scheme, path or "
            "port), created at the provider, its DNS records stored, verification triggered and "
            "the poller scheduled. Answers VERIFIED (records already in place), VERIFYING "
            "(poller running) or PENDING (publish the records, then verifyEmailDomain). Adding "
            "a name you already have returns it; a name another account holds is a CONFLICT "
            "whose extensions.claim says how to claim it (claimEmailDomain)."
        )
    )
    async def create_email_domain(self, info: GatewayInfo, domain: str) -> Domain:
        ctx = info.context
        record = await ctx.services.lifecycle.create(await ctx.principal(), domain)
        return Domain.from_record(record)

    @strawberry.mutation(
        description=(
            "Trigger (default): mark the domain VERIFYING, ask the provider to re-check it, "
            "store the live status and records, and keep the poller going (repeated triggers "
            "join the same poller). `poll: true` only reads the live status: re-triggering "
            "restarts the provider's checker, so trigger once and then poll every 30-60 s."
        )
    )
    async def verify_email_domain(
        self,
        info: GatewayInfo,
        id: uuid.UUID,
        poll: bool = False,
    ) -> Domain:
        ctx = info.context
        record = await ctx.services.lifecycle.verify(await ctx.principal(), id, poll=poll)
        return Domain.from_record(record)

    @strawberry.mutation(
        description=(
            "Delete a domain. The row goes at once and its poller stops; the provider and DNS "
            "clean-up run in the background, retried until they succeed."
        )
    )
    async def delete_email_domain(
        self,
        info: GatewayInfo,
        id: uuid.UUID,
    ) -> DeletedEmailDomain:
        ctx = info.context
        record = await ctx.services.lifecycle.delete(await ctx.principal(), id)
        return DeletedEmailDomain(id=record.id, domain=record.domain, success=True)


def _rfc3339(value: datetime) -> str:
    """The REST shim's form: RFC 3339 in UTC with a `Z` (naive values are taken as UTC)."""
    if value.tzinfo is not None:
        value = value.astimezone(UTC)
    return orjson.dumps(value, option=orjson.OPT_UTC_Z | orjson.OPT_NAIVE_UTC)[1:-1].decode()


DATETIME = strawberry.scalar(
    name="DateTime",
    description="Date and time, RFC 3339 in UTC with a Z suffix, e.g. 2023-11-07T05:31:56Z.",
    serialize=_rfc3339,
    parse_value=datetime.fromisoformat,
)


class GatewaySchema(strawberry.Schema):
    hide_suggestions = False
    documents: DocumentCache
    document_rules: tuple[type[ASTValidationRule], ...]

    def trust(self, documents: Mapping[str, str]) -> None:
        """Parse, validate (limits included) and compile trusted documents, at start-up."""
        for digest, text in documents.items():
            try:
                errors = self.documents.trust(text, self._schema, self.document_rules)
            except GraphQLError as error:
                errors = [error]
            if errors:
                raise ValueError(f"Trusted document {digest} is not valid: {errors[0].message}")

    def _get_custom_context_kwargs(
        self, operation_extensions: dict[str, Any] | None = None, *, sync: bool = False
    ) -> dict[str, Any]:
        # Variable coercion ("Did you mean the enum value …") follows the validation's choice.
        kwargs = super()._get_custom_context_kwargs(operation_extensions, sync=sync)
        return {**kwargs, "hide_suggestions": True} if self.hide_suggestions else kwargs

    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        """Errors are logged by `GatewayExtension`, once, and only when unexpected."""


def _resolves(extension: type[SchemaExtension] | Callable[[], SchemaExtension]) -> bool:
    """Whether an extension wraps resolvers, which compiled plans do not do."""
    cls = extension if isinstance(extension, type) else type(extension())
    return getattr(cls, "resolve", None) is not SchemaExtension.resolve


def build_schema(settings: Settings) -> GatewaySchema:
    cache = DocumentCache(
        settings.graphql_document_cache_size,
        settings.graphql_document_cache_bytes,
        settings.graphql_max_tokens,
    )
    rules = validation_rules(settings)
    hide_suggestions = not settings.introspection
    extensions: list[type[SchemaExtension] | Callable[[], SchemaExtension]] = [
        ObservabilityExtension
    ]
    # What Strawberry validates with, for the trusted documents validated at start-up.
    strawberry_rules: tuple[type[ASTValidationRule], ...] = tuple(specified_rules)
    if not settings.introspection:
        extensions.append(DisableIntrospection)
        strawberry_rules = (*strawberry_rules, NoSchemaIntrospectionCustomRule)
    plans = settings.graphql_compiled_plans and not any(_resolves(e) for e in extensions)

    def gateway_extension() -> SchemaExtension:
        return GatewayExtension(
            cache, rules, compiled_plans=plans, hide_suggestions=hide_suggestions
        )

    extensions.append(gateway_extension)
    config = StrawberryConfig(
        scalar_map={datetime: DATETIME},
        batching_config=(
            {"max_operations": settings.graphql_max_batch} if settings.graphql_max_batch else None
        ),
    )
    schema = GatewaySchema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        extensions=extensions,
        config=config,
    )
    schema.documents = cache
    schema.document_rules = (*strawberry_rules, *rules)
    schema.hide_suggestions = hide_suggestions
    return schema
