"""The services one gateway process shares between its transports."""

from dataclasses import dataclass

from gql.db.engine import Database
from gql.services.access import AccessService, RateLimiter
from gql.services.api_keys import ApiKeyService
from gql.services.domains import DomainService
from gql.services.seed import SeedService
from gql.settings import Settings


@dataclass(frozen=True, slots=True)
class Services:
    db: Database
    domains: DomainService
    api_keys: ApiKeyService
    access: AccessService
    seed: SeedService

    @classmethod
    def build(cls, db: Database, settings: Settings) -> "Services":
        api_keys = ApiKeyService(db)
        return cls(
            db=db,
            domains=DomainService(db),
            api_keys=api_keys,
            access=AccessService(settings, api_keys, RateLimiter(settings)),
            seed=SeedService(db),
        )
