"""Cloudflare DNS through its official SDK, with bounded retries."""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from cloudflare import APIStatusError, AsyncCloudflare

from gql.models import DnsRecord
from gql.providers.retry import RetryableStatus, retry_after_seconds, with_retries
from gql.providers.verification import ProviderRejected
from gql.settings import Settings

T = TypeVar("T")
# "A record with that host already exists" and its variants: the record is already published.
CLASH_CODES = frozenset({81053, 81054, 81058})


@dataclass(frozen=True, slots=True)
class Zone:
    id: str
    name: str


@dataclass(frozen=True, slots=True)
class PublishedRecord:
    id: str
    type: str
    name: str
    value: str
    priority: int | None
    ttl: int
    proxied: bool
    comment: str | None


def _codes(error: APIStatusError) -> set[int]:
    body: Any = error.body
    errors = body.get("errors", []) if isinstance(body, dict) else []
    return {int(e["code"]) for e in errors if isinstance(e, dict) and "code" in e}


def _published(record: Any) -> PublishedRecord:
    priority = getattr(record, "priority", None)
    return PublishedRecord(
        id=str(record.id),
        type=str(record.type),
        name=str(record.name),
        value=str(getattr(record, "content", "") or ""),
        priority=None if priority is None else int(priority),
        ttl=int(getattr(record, "ttl", 1) or 1),
        proxied=bool(getattr(record, "proxied", False)),
        comment=getattr(record, "comment", None),
    )


@dataclass(frozen=True, slots=True)
class TokenCheck:
    """What Cloudflare says about a token: its id and whether it is `active`."""

    id: str
    status: str


class CloudflareDns:
    """One Cloudflare API token: the operator's (`CLOUDFLARE_API_TOKEN`) or a user's own."""

    name = "Cloudflare"

    def __init__(self, settings: Settings, token: str) -> None:
        self._settings = settings
        self._client = AsyncCloudflare(
            api_token=token,
            base_url=settings.cloudflare_base_url,
            max_retries=0,
            timeout=settings.provider_timeout_seconds,
        )

    async def _call(self, operation: str, call: Callable[[], Awaitable[T]]) -> T:
        async def once() -> T:
            try:
                return await call()
            except APIStatusError as error:
                if error.status_code == 429 or error.status_code >= 500:
                    retry_after = retry_after_seconds(dict(error.response.headers))
                    raise RetryableStatus(error.status_code, retry_after) from error
                if error.status_code in (401, 403):
                    raise ProviderRejected(
                        f"Cloudflare refused the API token (HTTP {error.status_code}): it may be "
                        "revoked or expired, or lack Zone:Read and DNS:Edit on the zone."
                    ) from error
                raise

        return await with_retries(
            once, provider=self.name, operation=operation, settings=self._settings
        )

    async def find_zone(self, domain: str) -> Zone | None:
        """The zone that holds `domain` (the name itself or its closest managed parent)."""
        labels = domain.split(".")
        for i in range(len(labels) - 1):
            candidate = ".".join(labels[i:])

            async def zones(name: str = candidate) -> list[Any]:
                return [z async for z in self._client.zones.list(name=name)]

            found = await self._call("find_zone", zones)
            if found:
                return Zone(id=str(found[0].id), name=str(found[0].name))
        return None

    async def verify_token(self) -> TokenCheck:
        """Ask Cloudflare whether the token works; `ProviderRejected` when it is refused."""
        try:
            found = await self._call("verify_token", lambda: self._client.user.tokens.verify())
        except (APIStatusError, ProviderRejected) as error:
            raise ProviderRejected(
                "Cloudflare refused the token: check that it was copied whole and is not "
                "expired or revoked."
            ) from error
        if found is None:
            raise ProviderRejected("Cloudflare did not recognise the token.")
        return TokenCheck(id=str(found.id), status=str(found.status))

    async def zones(self) -> list[Zone]:
        """Every zone the token can read."""

        async def listing() -> list[Any]:
            return [z async for z in self._client.zones.list(per_page=50)]

        try:
            found = await self._call("list_zones", listing)
        except APIStatusError as error:
            raise ProviderRejected(
                f"Cloudflare refused to list the token's zones (HTTP {error.status_code}): give "
                "the token Zone:Read and DNS:Edit on your zones."
            ) from error
        return [Zone(id=str(z.id), name=str(z.name)) for z in found]

    async def zone_named(self, name: str) -> Zone | None:
        """The zone called exactly `name` (or whose id is `name`), if the token can read it."""
        for zone in await self.zones():
            if name.lower() in (zone.name.lower(), zone.id):
                return zone
        return None

    async def records(
        self, zone: Zone, *, names: set[str] | None = None, comment: str | None = None
    ) -> list[PublishedRecord]:
        """The zone's records at one of `names` and/or carrying exactly `comment`."""

        async def listing() -> list[Any]:
            return [r async for r in self._client.dns.records.list(zone_id=zone.id, per_page=500)]

        wanted = None if names is None else {n.lower() for n in names}
        return [
            r
            for r in map(_published, await self._call("list_records", listing))
            if (wanted is None or r.name.lower() in wanted)
            and (comment is None or r.comment == comment)
        ]

    async def publish(self, zone: Zone, record: DnsRecord, *, comment: str) -> bool:
        """Create the record; False when an equivalent one already exists."""
        params: dict[str, Any] = {
            "zone_id": zone.id,
            "type": record.type,
            "name": record.name,
            "content": record.value,
            "ttl": 1,
            "proxied": False,
            "comment": comment,
        }
        if record.priority is not None:
            params["priority"] = record.priority
        try:
            await self._call("create_record", lambda: self._client.dns.records.create(**params))
        except APIStatusError as error:
            if _codes(error) & CLASH_CODES:
                return False
            raise ProviderRejected(f"Cloudflare refused {record.type} {record.name}.") from error
        return True

    async def delete(self, zone: Zone, record_id: str) -> None:
        try:
            await self._call(
                "delete_record",
                lambda: self._client.dns.records.delete(record_id, zone_id=zone.id),
            )
        except APIStatusError as error:
            if error.status_code != 404:
                raise

    async def close(self) -> None:
        await self._client.close()
