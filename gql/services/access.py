"""Who may call: bearer-token authentication and rate limits, the same for every transport."""

import math
import time
import uuid
from typing import Any

import coredis
import jwt
from cachetools import TTLCache
from limits import parse
from limits.aio.storage import Storage
from limits.aio.strategies import SlidingWindowCounterRateLimiter
from limits.storage import storage_from_string

from gql.errors import RateLimited, Unauthenticated
from gql.models import Principal
from gql.services.api_keys import KEY_PREFIX, ApiKeyService
from gql.settings import Settings

_INVALID = (
    "The bearer token is missing, malformed, expired or revoked. Send "
    "`Authorization: Bearer <token>` with an API key (pk_live_…) or a session token."
)


class RateLimiter:
    """Per-user limits for authenticated calls, per-address limits for failed or anonymous ones."""

    def __init__(self, settings: Settings) -> None:
        uri = settings.rate_limit_storage.removeprefix("async+")
        # Our own Redis pool, so that closing the gateway closes its connections too.
        self._pool = coredis.ConnectionPool.from_url(uri) if uri.startswith("redis") else None
        options: dict[str, Any] = {} if self._pool is None else {"connection_pool": self._pool}
        storage = storage_from_string(f"async+{uri}", **options)
        assert isinstance(storage, Storage)
        self._limiter = SlidingWindowCounterRateLimiter(storage)
        self._user = parse(settings.rate_limit)
        self._anonymous = parse(settings.rate_limit_anonymous)

    async def _hit(self, limit_name: str, identifier: str) -> None:
        item = self._user if limit_name == "user" else self._anonymous
        if await self._limiter.hit(item, limit_name, identifier):
            return
        stats = await self._limiter.get_window_stats(item, limit_name, identifier)
        retry_after = max(1, math.ceil(stats.reset_time - time.time()))
        raise RateLimited(
            f"Too many requests; retry after {retry_after} seconds.", retry_after=retry_after
        )

    async def hit_user(self, user_id: uuid.UUID) -> None:
        await self._hit("user", str(user_id))

    async def hit_anonymous(self, client: str) -> None:
        await self._hit("anonymous", client)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.disconnect()


class AccessService:
    """Turns an `Authorization` header into a `Principal`, or refuses with a clear error."""

    def __init__(self, settings: Settings, api_keys: ApiKeyService, limiter: RateLimiter) -> None:
        self._settings = settings
        self._api_keys = api_keys
        self.limiter = limiter
        self._key_cache: TTLCache[str, Principal] | None = (
            TTLCache(maxsize=10_000, ttl=settings.api_key_cache_seconds)
            if settings.api_key_cache_seconds > 0
            else None
        )
        key = settings.jwt_public_key or settings.jwt_secret
        self._jwt_key = key.get_secret_value() if key is not None else None

    async def admit(self, authorization: str | None, client: str) -> Principal:
        """Authenticate the caller and count the call against its rate limit."""
        try:
            principal = await self._authenticate(authorization)
        except Unauthenticated:
            await self.limiter.hit_anonymous(client)
            raise
        await self.limiter.hit_user(principal.user_id)
        return principal

    async def _authenticate(self, authorization: str | None) -> Principal:
        if not authorization:
            raise Unauthenticated(_INVALID)
        scheme, _, token = authorization.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise Unauthenticated(_INVALID)
        if token.startswith(KEY_PREFIX):
            return await self._key_principal(token)
        user_id = self._jwt_user(token)
        return Principal(user_id=user_id, via="jwt", actor=f"session:{user_id}")

    async def _key_principal(self, key: str) -> Principal:
        if self._key_cache is not None and (cached := self._key_cache.get(key)) is not None:
            return cached
        principal = await self._api_keys.principal_for(key)
        if principal is None:
            raise Unauthenticated(_INVALID)
        if self._key_cache is not None:
            self._key_cache[key] = principal
        return principal

    def _jwt_user(self, token: str) -> uuid.UUID:
        if self._jwt_key is None:
            raise Unauthenticated(_INVALID)
        try:
            claims = jwt.decode(
                token,
                self._jwt_key,
                algorithms=self._settings.jwt_algorithms,
                audience=self._settings.jwt_audience,
                issuer=self._settings.jwt_issuer,
                leeway=self._settings.jwt_leeway_seconds,
                options={
                    "require": ["exp", "sub"],
                    "verify_aud": self._settings.jwt_audience is not None,
                    "verify_iss": self._settings.jwt_issuer is not None,
                },
            )
            return uuid.UUID(str(claims["sub"]))
        except (jwt.PyJWTError, ValueError):
            raise Unauthenticated(_INVALID) from None
