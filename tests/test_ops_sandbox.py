"""The sandbox provider keeps its state in the database: what one process did, another sees."""

import asyncio
import uuid

from gql.db.engine import Database
from gql.providers.sandbox import SandboxProvider


async def test_two_processes_share_one_sandbox(settings, database_url):
    first, second = Database(database_url, settings), Database(database_url, settings)
    await first.open()
    await second.open()
    try:
        here, there = SandboxProvider(first, 1.0), SandboxProvider(second, 1.0)
        name = f"shared-{uuid.uuid4().hex[:8]}.com"

        created = await here.create(name, client_id="client-1")
        assert (created.status, created.reason) == ("PENDING", "dns_records_missing")
        seen = await there.get(name)
        assert seen is not None
        assert (seen.status, seen.reason) == ("PENDING", "dns_records_missing")

        await here.verify(name)
        seen = await there.get(name)
        assert seen is not None
        assert seen.status == "VERIFYING"
        # The delay runs from the verify request, by the database's clock, not from the moment
        # another process first hears of the domain.
        await asyncio.sleep(1.1)
        seen = await there.get(name)
        assert seen is not None
        assert seen.status == "VERIFIED"

        replay = await there.create(name, client_id="client-1")
        assert replay.status == "VERIFIED"

        await there.delete(name)
        again = await here.create(name, client_id="client-1")
        assert again.status == "PENDING"
    finally:
        await first.close()
        await second.close()


async def test_a_domain_the_sandbox_never_saw_settles_from_first_sight(settings, database_url):
    db = Database(database_url, settings)
    await db.open()
    try:
        sandbox = SandboxProvider(db, 0.0)
        name = f"fail-{uuid.uuid4().hex[:8]}.com"
        seen = await sandbox.get(name)
        assert seen is not None
        assert (seen.status, seen.reason) == ("FAILED", "ses_dkim_failed")
    finally:
        await db.close()
