"""Which DNS zones belong to which account: a user's own Cloudflare token, or operator bindings.

The gateway publishes records into, and shows records from, only a zone connected to the
domain owner's account. A zone is connected when the owner's own token can read it, or when the
operator bound it to the account (`gql-gateway zones bind`). Nothing else counts: in particular
a zone the operator's token happens to manage is not anyone's until it is bound.
"""

import logging
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime

from cryptography.fernet import Fernet, InvalidToken

from gql.db import zones as repo
from gql.db.engine import Database
from gql.db.zones import Binding, Publication
from gql.errors import InvalidInput, NotFound
from gql.models import Principal
from gql.providers.cloudflare import CloudflareDns, Zone
from gql.settings import Settings

logger = logging.getLogger(__name__)

VIA_TOKEN = "token"  # noqa: S105 (a label, not a secret)
VIA_OPERATOR = "operator"
_MIN_TOKEN, _MAX_TOKEN = 20, 256


@dataclass(frozen=True, slots=True)
class ZoneAccess:
    """A connected zone and the client that may write to it."""

    dns: CloudflareDns
    zone: Zone
    via: str


@dataclass(frozen=True, slots=True)
class CloudflareConnection:
    """An account's connection: its own token (never the token itself) and its bound zones."""

    connected: bool
    token_hint: str | None
    connected_at: datetime | None
    token_zones: tuple[str, ...]
    bound_zones: tuple[str, ...]


def covers(zone_name: str, domain: str) -> bool:
    """Whether `domain` is the zone's apex or a name under it."""
    zone_name = zone_name.lower()
    return domain == zone_name or domain.endswith("." + zone_name)


class ZoneService:
    def __init__(self, db: Database, settings: Settings, operator: CloudflareDns | None) -> None:
        self._db = db
        self._settings = settings
        self._operator = operator
        key = settings.cloudflare_token_key
        self._box = None if key is None else Fernet(key.get_secret_value())

    def not_connected(self, domain: str, user_id: uuid.UUID) -> str:
        """Why nothing is published or shown for `domain`, and how to connect its zone."""
        ways = []
        if self._box is not None:
            ways.append(
                "connect your own Cloudflare API token (Zone:Read and DNS:Edit on the zone) "
                "with the connectCloudflareToken mutation"
            )
        if self._operator is not None:
            ways.append(
                "ask the operator to bind the zone to your account: "
                f"`gql-gateway zones bind --zone <zone> --user {user_id}`"
            )
        how = (
            "; or ".join(ways)
            if ways
            else "this gateway has neither CLOUDFLARE_TOKEN_KEY (users' own tokens) nor "
            "CLOUDFLARE_API_TOKEN (zones bound by the operator) configured"
        )
        return (
            f"This zone is not connected to your account, so the gateway neither publishes nor "
            f"shows records for {domain}. To connect it, {how}. Meanwhile, publish the records "
            "at your DNS host."
        )

    def _client(self, token: str) -> CloudflareDns:
        return CloudflareDns(self._settings, token)

    async def _user_token(self, user_id: uuid.UUID) -> str | None:
        if self._box is None:
            return None
        async with self._db.connect() as conn:
            stored = await repo.get_token(conn, user_id=user_id)
        if stored is None:
            return None
        try:
            return self._box.decrypt(stored.token_encrypted).decode()
        except InvalidToken:
            logger.error(
                "the Cloudflare token of user %s cannot be decrypted with CLOUDFLARE_TOKEN_KEY "
                "(was the key changed?); the user must connect it again",
                user_id,
            )
            return None

    @asynccontextmanager
    async def access(self, user_id: uuid.UUID, domain: str) -> AsyncIterator[ZoneAccess | None]:
        """The zone connected to `user_id`'s account that holds `domain`, or None."""
        token = await self._user_token(user_id)
        if token is not None:
            own = self._client(token)
            try:
                zone = await own.find_zone(domain)
                if zone is not None:
                    yield ZoneAccess(own, zone, VIA_TOKEN)
                    return
            finally:
                await own.close()
        yield await self._bound_zone(user_id, domain)

    async def _bound_zone(self, user_id: uuid.UUID, domain: str) -> ZoneAccess | None:
        if self._operator is None:
            return None
        async with self._db.connect() as conn:
            bindings = await repo.bindings_of(conn, user_id=user_id)
        matching = [b for b in bindings if covers(b.zone_name, domain)]
        if not matching:
            return None
        closest = max(matching, key=lambda b: len(b.zone_name))
        return ZoneAccess(self._operator, Zone(closest.zone_id, closest.zone_name), VIA_OPERATOR)

    @asynccontextmanager
    async def reach(self, publication: Publication) -> AsyncIterator[CloudflareDns | None]:
        """The client that published `publication`, if its credentials are still there."""
        if publication.via == VIA_OPERATOR:
            yield self._operator
            return
        token = await self._user_token(publication.user_id)
        if token is None:
            yield None
            return
        own = self._client(token)
        try:
            yield own
        finally:
            await own.close()

    @property
    def operator(self) -> CloudflareDns | None:
        return self._operator

    async def record_publication(self, user_id: uuid.UUID, domain: str, access: ZoneAccess) -> None:
        async with self._db.connect() as conn:
            await repo.record_publication(
                conn,
                Publication(domain, user_id, access.zone.id, access.zone.name, access.via),
            )

    async def publications(self, domain: str) -> list[Publication]:
        async with self._db.connect() as conn:
            return await repo.publications_of(conn, domain=domain)

    async def forget(self, publication: Publication) -> None:
        async with self._db.connect() as conn:
            await repo.forget_publication(conn, publication)

    # -- a user's own token -----------------------------------------------------------------

    async def connect_token(self, principal: Principal, raw_token: str) -> CloudflareConnection:
        """Check the token with Cloudflare, then store it encrypted (replacing any before it)."""
        if self._box is None:
            raise InvalidInput(
                "This gateway does not store users' Cloudflare tokens (its operator has not set "
                "CLOUDFLARE_TOKEN_KEY). Ask the operator to bind your zone instead."
            )
        token = raw_token.strip()
        if not (_MIN_TOKEN <= len(token) <= _MAX_TOKEN) or not token.isascii() or " " in token:
            raise InvalidInput(
                "That is not a Cloudflare API token: paste the token itself (a string of 40 or "
                "so letters, digits, - and _), created under My Profile > API Tokens with "
                "Zone:Read and DNS:Edit on your zones."
            )
        client = self._client(token)
        try:
            check = await client.verify_token()
            if check.status != "active":
                raise InvalidInput(
                    f"Cloudflare says this token is {check.status}: create an active one."
                )
            zones = await client.zones()
        finally:
            await client.close()
        if not zones:
            raise InvalidInput(
                "This token can read no zone: give it Zone:Read and DNS:Edit on the zones of "
                "your sending domains, then connect it again."
            )
        async with self._db.connect() as conn:
            await repo.put_token(
                conn,
                user_id=principal.user_id,
                encrypted=self._box.encrypt(token.encode()),
                token_id=check.id,
                hint=token[-4:],
            )
        return await self.connection(principal, token_zones=tuple(z.name for z in zones))

    async def disconnect_token(self, principal: Principal) -> CloudflareConnection:
        """Forget the account's token; bound zones stay connected."""
        async with self._db.connect() as conn:
            await repo.delete_token(conn, user_id=principal.user_id)
        return await self.connection(principal, token_zones=())

    async def connection(
        self, principal: Principal, *, token_zones: tuple[str, ...] | None = None
    ) -> CloudflareConnection:
        """The account's token (hint only) and the zones connected to it."""
        async with self._db.connect() as conn:
            stored = await repo.get_token(conn, user_id=principal.user_id)
            bindings = await repo.bindings_of(conn, user_id=principal.user_id)
        if stored is None:
            token_zones = ()
        elif token_zones is None:
            token_zones = await self._token_zones(principal.user_id)
        return CloudflareConnection(
            connected=stored is not None,
            token_hint=None if stored is None else stored.hint,
            connected_at=None if stored is None else stored.created_at,
            token_zones=token_zones,
            bound_zones=tuple(b.zone_name for b in bindings),
        )

    async def _token_zones(self, user_id: uuid.UUID) -> tuple[str, ...]:
        token = await self._user_token(user_id)
        if token is None:
            return ()
        client = self._client(token)
        try:
            return tuple(z.name for z in await client.zones())
        finally:
            await client.close()

    # -- operator bindings ------------------------------------------------------------------

    def _require_operator(self) -> CloudflareDns:
        if self._operator is None:
            raise InvalidInput(
                "Binding zones needs the operator's CLOUDFLARE_API_TOKEN (Zone:Read, DNS:Edit)."
            )
        return self._operator

    async def bind(self, zone: str, user_id: uuid.UUID) -> Binding:
        """Connect a zone of the operator's token to an account."""
        found = await self._require_operator().zone_named(zone)
        if found is None:
            raise NotFound(
                f"The operator's CLOUDFLARE_API_TOKEN cannot read a zone called {zone}: give it "
                "Zone:Read and DNS:Edit on the zone, or check the name."
            )
        async with self._db.connect() as conn:
            return await repo.bind(
                conn, zone_id=found.id, zone_name=found.name.lower(), user_id=user_id
            )

    async def unbind(self, zone: str, user_id: uuid.UUID) -> Binding:
        async with self._db.connect() as conn:
            bindings = await repo.bindings_of(conn, user_id=user_id)
            match = next((b for b in bindings if zone.lower() in (b.zone_name, b.zone_id)), None)
            removed = (
                None
                if match is None
                else await repo.unbind(conn, zone_id=match.zone_id, user_id=user_id)
            )
        if removed is None:
            raise NotFound(f"Zone {zone} is not bound to user {user_id}.")
        return removed

    async def bindings(self, user_id: uuid.UUID | None) -> list[Binding]:
        async with self._db.connect() as conn:
            return await repo.bindings_of(conn, user_id=user_id)

    async def close(self) -> None:
        if self._operator is not None:
            await self._operator.close()
