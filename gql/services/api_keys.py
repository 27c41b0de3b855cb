"""API keys: `pk_live_` followed by random characters, stored only as a SHA-256 hash."""

import hashlib
import secrets
import uuid

from gql.db import api_keys as repo
from gql.db.engine import Database
from gql.errors import NotFound
from gql.models import ApiKeyInfo, Principal

KEY_PREFIX = "pk_live_"


def hash_key(key: str) -> str:
    # Keys carry 256 random bits, so a fast hash is as safe as a slow one and keeps auth cheap.
    return hashlib.sha256(key.encode()).hexdigest()


class ApiKeyService:
    """Creating, listing and revoking keys (from the command line)."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def create(self, user_id: uuid.UUID) -> tuple[str, ApiKeyInfo]:
        """A new key for the user: the key itself (shown once) and what is stored about it."""
        key = KEY_PREFIX + secrets.token_urlsafe(32)
        async with self._db.connect() as conn:
            info = await repo.insert(
                conn, user_id=user_id, prefix=key[: len(KEY_PREFIX) + 4], key_hash=hash_key(key)
            )
        return key, info

    async def list(self, user_id: uuid.UUID) -> list[ApiKeyInfo]:
        async with self._db.connect() as conn:
            return await repo.list_for_user(conn, user_id=user_id)

    async def revoke(self, key_id: uuid.UUID) -> ApiKeyInfo:
        async with self._db.connect() as conn:
            info = await repo.revoke(conn, key_id=key_id)
        if info is None:
            raise NotFound(f"No API key with id {key_id}; `keys list --user UUID` shows ids.")
        return info

    async def first_user(self) -> uuid.UUID | None:
        """The owner of the oldest key: the demo user on a data folder that `serve` created."""
        async with self._db.connect() as conn:
            return await repo.first_user(conn)

    async def user_for(self, key: str) -> Principal | None:
        """The owner of an active (not revoked) key, as the caller it stands for, if any."""
        async with self._db.connect() as conn:
            found = await repo.active_key(conn, key_hash=hash_key(key))
        if found is None:
            return None
        user_id, key_id = found
        return Principal(user_id=user_id, via="api_key", actor=f"api_key:{key_id}")
