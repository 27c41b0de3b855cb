"""Who may call: bearer-token authentication and rate limits, the same for every transport."""

import math
import re
import time
import uuid
from dataclasses import dataclass
from typing import Any

import coredis
import jwt
from cachetools import TLRUCache, TTLCache
from limits import parse
from limits.aio.storage import Storage
from limits.aio.strategies import (
    SlidingWindowCounterRateLimiter as AsyncSlidingWindowCounterRateLimiter,
)
from limits.storage import MemoryStorage, storage_from_string
from limits.strategies import SlidingWindowCounterRateLimiter

from gql.errors import RateLimited, Unauthenticated
from gql.models import Principal
from gql.observability.logs import note_user
from gql.observability.metrics import RATE_LIMITED
from gql.services.api_keys import KEY_PREFIX, ApiKeyService
from gql.settings import Settings

# What `secrets.token_urlsafe(32)` makes; anything else is refused without a lookup.
_KEY_SHAPE = re.compile(re.escape(KEY_PREFIX) + r"[A-Za-z0-9_-]{43}")
_CANONICAL_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_CACHE_ENTRIES = 10_000
_INVALID = (
    "The bearer token is missing, malformed, expired or revoked. Send "
    "`Authorization: Bearer <token>` with an API key (pk_live_…) or a session token."
)


class RateLimiter:
    """Per-user limits for authenticated calls, per-address limits for failed or anonymous ones.

    Both use `limits`' sliding window counter. In one process (`memory://`) it runs on the
    library's synchronous in-memory storage: a hit then takes no lock, task switch or await.
    A shared storage (Redis) goes through the library's asyncio API.
    """

    def __init__(self, settings: Settings) -> None:
        uri = settings.rate_limit_storage.removeprefix("async+")
        self._items = {
            "user": parse(settings.rate_limit),
            "anonymous": parse(settings.rate_limit_anonymous),
        }
        self._pool: coredis.ConnectionPool | None = None
        self._local: SlidingWindowCounterRateLimiter | None = None
        self._shared: AsyncSlidingWindowCounterRateLimiter | None = None
        if uri.startswith("memory"):
            self._local = SlidingWindowCounterRateLimiter(MemoryStorage())
            return
        # Our own Redis pool, so that closing the gateway closes its connections too.
        self._pool = coredis.ConnectionPool.from_url(uri) if uri.startswith("redis") else None
        options: dict[str, Any] = {} if self._pool is None else {"connection_pool": self._pool}
        storage = storage_from_string(f"async+{uri}", **options)
        assert isinstance(storage, Storage)
        self._shared = AsyncSlidingWindowCounterRateLimiter(storage)

    async def _count(self, name: str, identifier: str, *, test: bool = False) -> None:
        item = self._items[name]
        if self._local is not None:
            count = self._local.test if test else self._local.hit
            if count(item, name, identifier):
                return
            stats = self._local.get_window_stats(item, name, identifier)
        else:
            assert self._shared is not None
            shared = self._shared
            allowed = await (
                shared.test(item, name, identifier) if test else shared.hit(item, name, identifier)
            )
            if allowed:
                return
            stats = await shared.get_window_stats(item, name, identifier)
        if not test:
            RATE_LIMITED.labels(name).inc()
        retry_after = max(1, math.ceil(stats.reset_time - time.time()))
        raise RateLimited(
            f"Too many requests; retry after {retry_after} seconds.", retry_after=retry_after
        )

    async def hit_user(self, user_id: uuid.UUID) -> None:
        await self._count("user", str(user_id))

    async def hit_anonymous(self, client: str) -> None:
        await self._count("anonymous", client)

    async def check_anonymous(self, client: str) -> None:
        """Refuse, without counting, an address whose anonymous budget is spent."""
        await self._count("anonymous", client, test=True)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.disconnect()


@dataclass(frozen=True, slots=True)
class Admission:
    """One request or operation let in: who is calling (None: nobody, or an invalid token) and,
    for a session token, the time (epoch seconds) after which it is no longer accepted."""

    principal: Principal | None
    expires_at: float | None = None

    def require(self) -> Principal:
        if self.principal is None:
            raise Unauthenticated(_INVALID)
        return self.principal


_NOBODY = Admission(principal=None)


def _bearer(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


class AccessService:
    """Turns an `Authorization` header into an `Admission`, counting it against a rate limit.

    Cheap on a hit: a key seen in the last API_KEY_CACHE_SECONDS and a session token verified
    before (until its `exp`) are answered from bounded caches. Everything that costs more (a
    key lookup in the database, a signature check) first asks whether the caller's address still
    has anonymous budget, so a flood of invalid tokens from one address stops reaching the
    database; an unknown key is also remembered as unknown for API_KEY_CACHE_SECONDS.
    """

    def __init__(self, settings: Settings, api_keys: ApiKeyService, limiter: RateLimiter) -> None:
        self._settings = settings
        self._api_keys = api_keys
        self.limiter = limiter
        ttl = settings.api_key_cache_seconds
        self._keys: TTLCache[str, Principal] | None = (
            TTLCache(maxsize=_CACHE_ENTRIES, ttl=ttl) if ttl > 0 else None
        )
        self._unknown_keys: TTLCache[str, bool] | None = (
            TTLCache(maxsize=_CACHE_ENTRIES, ttl=ttl) if ttl > 0 else None
        )
        self._sessions: TLRUCache[str, _Session] = TLRUCache(
            maxsize=_CACHE_ENTRIES, ttu=lambda _token, session, _now: session.exp, timer=time.time
        )
        key = settings.jwt_public_key or settings.jwt_secret
        self._jwt_key = key.get_secret_value() if key is not None else None
        # How often a long-lived connection's key is checked again (`revalidate`).
        self.recheck_seconds = max(ttl, 1.0)

    async def admission(self, authorization: str | None, client: str) -> Admission:
        """Authenticate the caller if it sent a valid token, and count the call: against the
        user's limit, or the address's anonymous one (then `principal` is None)."""
        token = _bearer(authorization)
        if token is not None:
            admission = self._cached(token)
            if admission is None and not self._known_unknown(token):
                await self.limiter.check_anonymous(client)
                admission = await self._verify(token)
            if admission is not None:
                assert admission.principal is not None
                note_user(admission.principal.user_id)
                await self.limiter.hit_user(admission.principal.user_id)
                return admission
        await self.limiter.hit_anonymous(client)
        return _NOBODY

    async def admit(self, authorization: str | None, client: str) -> Principal:
        """Authenticate the caller and count the call, or refuse with `Unauthenticated`."""
        return (await self.admission(authorization, client)).require()

    async def revalidate(self, authorization: str | None) -> bool:
        """Whether the token is still valid, asking the database (not the cache) for a key."""
        token = _bearer(authorization)
        if token is None:
            return False
        if token.startswith(KEY_PREFIX):
            if self._keys is not None:
                self._keys.pop(token, None)
            return await self._key(token) is not None
        return self._session(token) is not None

    def _cached(self, token: str) -> Admission | None:
        if token.startswith(KEY_PREFIX):
            principal = self._keys.get(token) if self._keys is not None else None
            return None if principal is None else Admission(principal)
        session = self._sessions.get(token)
        if session is None or (
            session.nbf is not None
            and time.time() < session.nbf - self._settings.jwt_leeway_seconds
        ):
            return None
        return session.admission

    def _known_unknown(self, token: str) -> bool:
        return self._unknown_keys is not None and token in self._unknown_keys

    async def _verify(self, token: str) -> Admission | None:
        if not token.startswith(KEY_PREFIX):
            session = self._session(token)
            if session is None:
                return None
            self._sessions[token] = session
            return session.admission
        principal = await self._key(token)
        if principal is None:
            if self._unknown_keys is not None:
                self._unknown_keys[token] = True
            return None
        if self._keys is not None:
            self._keys[token] = principal
        return Admission(principal)

    async def _key(self, key: str) -> Principal | None:
        if _KEY_SHAPE.fullmatch(key) is None:
            return None
        user_id = await self._api_keys.user_for(key)
        return None if user_id is None else Principal(user_id=user_id, via="api_key")

    def _session(self, token: str) -> "_Session | None":
        """A verified session token, or None: signature, algorithm, `exp` (numeric, within
        JWT_MAX_LIFETIME_SECONDS of `iat` or of now), numeric `nbf`/`iat`, `aud`/`iss` when
        configured, and `sub` in the canonical UUID form (lower case, with dashes)."""
        settings = self._settings
        if self._jwt_key is None or len(token) > settings.jwt_max_bytes:
            return None
        try:
            claims = jwt.decode(
                token,
                self._jwt_key,
                algorithms=settings.jwt_algorithms,
                audience=settings.jwt_audience,
                issuer=settings.jwt_issuer,
                leeway=settings.jwt_leeway_seconds,
                options={
                    "require": ["exp", "sub"],
                    "verify_aud": settings.jwt_audience is not None,
                    "verify_iss": settings.jwt_issuer is not None,
                },
            )
        except jwt.PyJWTError:
            return None
        times = {name: claims[name] for name in ("exp", "nbf", "iat") if name in claims}
        if not all(_is_number(value) for value in times.values()):
            return None
        exp = float(times["exp"])
        start = float(times.get("iat", time.time()))
        subject = claims["sub"]
        if exp - start > settings.jwt_max_lifetime_seconds:
            return None
        if not isinstance(subject, str) or _CANONICAL_UUID.fullmatch(subject) is None:
            return None
        principal = Principal(user_id=uuid.UUID(subject), via="jwt")
        return _Session(
            admission=Admission(principal, expires_at=exp + settings.jwt_leeway_seconds),
            exp=exp,
            nbf=float(times["nbf"]) if "nbf" in times else None,
        )


@dataclass(frozen=True, slots=True)
class _Session:
    admission: Admission
    exp: float
    nbf: float | None
