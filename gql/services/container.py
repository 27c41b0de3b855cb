"""The services one gateway process shares between its transports and its worker."""

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from gql.db.engine import Database, driver_dsn
from gql.db.queue import QUEUE
from gql.jobs import JobQueue
from gql.providers.agentmail import AgentMailProvider
from gql.providers.cloudflare import CloudflareDns
from gql.providers.sandbox import SandboxProvider
from gql.providers.verification import VerificationProvider
from gql.services.access import AccessService, RateLimiter
from gql.services.api_keys import ApiKeyService
from gql.services.dns import DnsService
from gql.services.domains import DomainService
from gql.services.events import EventService
from gql.services.lifecycle import LifecycleService
from gql.services.notifications import EventHub
from gql.services.poller import Poller
from gql.services.seed import SeedService
from gql.services.state_writer import StateWriter
from gql.settings import Settings

logger = logging.getLogger(__name__)

SANDBOX_NOTICE = (
    "SANDBOX MODE: no AGENTMAIL_API_KEY is set, so verification is simulated in this process "
    "(see README, 'Sandbox mode'). Set AGENTMAIL_API_KEY to use AgentMail."
)


# In sandbox mode the poller checks every 15 s at first, so a demo settles within a minute,
# unless POLL_SCHEDULE_MINUTES / POLL_WINDOW_MINUTES are set explicitly.
SANDBOX_SCHEDULE = {"poll_schedule_minutes": [0.25, 0.25, 0.5, 1, 2, 5], "poll_window_minutes": 30}


def _lifecycle_settings(settings: Settings) -> Settings:
    if settings.agentmail_api_key is not None:
        return settings
    unset = {k: v for k, v in SANDBOX_SCHEDULE.items() if k not in settings.model_fields_set}
    return settings.model_copy(update=unset)


def _provider(settings: Settings) -> VerificationProvider:
    if settings.agentmail_api_key is None:
        return SandboxProvider(settings.sandbox_verify_seconds)
    return AgentMailProvider(settings)


@dataclass(frozen=True, slots=True)
class Services:
    db: Database
    jobs: JobQueue
    provider: VerificationProvider
    dns: DnsService
    domains: DomainService
    lifecycle: LifecycleService
    poller: Poller
    api_keys: ApiKeyService
    access: AccessService
    seed: SeedService
    events: EventService

    @property
    def sandbox(self) -> bool:
        return isinstance(self.provider, SandboxProvider)


@asynccontextmanager
async def open_services(url: str, settings: Settings) -> AsyncIterator[Services]:
    """Connect everything a process needs, and close it all on exit.

    Nothing here waits for the database: when it is down, requests answer 503 until it is back.
    """
    db = Database(url, settings)
    jobs = JobQueue(driver_dsn(url), pool_timeout=settings.db_pool_timeout)
    provider = _provider(settings)
    dns = DnsService(None if settings.cloudflare_api_token is None else CloudflareDns(settings))
    await db.open()
    await jobs.open()
    services: Services | None = None
    try:
        api_keys = ApiKeyService(db)
        events = EventService(db, EventHub(db, driver_dsn(url), settings), settings)
        events.register_pruning(jobs.app, queue=QUEUE)
        lifecycle_settings = _lifecycle_settings(settings)
        writer = StateWriter(db, lifecycle_settings)
        lifecycle = LifecycleService(db, provider, dns, writer, lifecycle_settings)
        poller = Poller(db, provider, writer)
        jobs.handle_with(
            check=lambda domain_id, attempt, job_id: poller.check(
                domain_id, attempt, job_id=job_id
            ),
            cleanup=lifecycle.cleanup_provider,
            sweep=poller.sweep,
        )
        services = Services(
            db=db,
            jobs=jobs,
            provider=provider,
            dns=dns,
            domains=DomainService(db, writer),
            lifecycle=lifecycle,
            poller=poller,
            api_keys=api_keys,
            access=AccessService(settings, api_keys, RateLimiter(settings)),
            seed=SeedService(db),
            events=events,
        )
        if services.sandbox:
            logger.warning(SANDBOX_NOTICE)
        yield services
    finally:
        await provider.close()
        await dns.close()
        if services is not None:
            services.access.limiter.close()
        await jobs.close()
        await db.close()
