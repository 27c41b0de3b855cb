"""Stopping the gateway never waits for its worker forever.

The newcomer's `make test` hung here: the app stopped its in-process worker by cancelling it, and
a cancellation that lands while the worker starts up can be lost (on Python 3.11,
`asyncio.wait_for`, which psycopg's pool uses, drops one that arrives just as the awaited call
completes). The worker then ran on and the app's shutdown waited for it forever. The app now asks
the worker to stop through its stop event, repeatedly, so no single lost signal matters.

The loss depends on timing, so the test stops the app at many moments of the worker's start-up.
"""

import asyncio

from gql.app import create_app
from gql.jobs import SHUTDOWN_GRACE_SECONDS
from tests.conftest import make_settings

ATTEMPTS = 40


async def test_the_app_stops_its_worker_at_any_moment_of_its_start_up(database_url):
    for attempt in range(ATTEMPTS):
        app = create_app(make_settings(database_url, worker=True))
        lifespan = app.router.lifespan_context(app)
        await lifespan.__aenter__()
        await asyncio.sleep(attempt * 0.002)
        try:
            async with asyncio.timeout(SHUTDOWN_GRACE_SECONDS + 5):
                await lifespan.__aexit__(None, None, None)
        except TimeoutError:
            raise AssertionError(
                f"the app did not stop its worker {attempt * 2} ms into its start-up"
            ) from None
