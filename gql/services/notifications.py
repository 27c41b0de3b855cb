"""One listener per process: NOTIFY wakes it, the events table is the truth, subscribers fan out.

A notification carries only an event id and is lost while the listener is disconnected, so
it is only a wake-up: the hub then reads every event after the last one it dispatched from the
table (ids become visible in commit order, see `gql.db.events`). After a reconnect it reads
again, so nothing committed while it was away is missed, and nothing is dispatched twice.
"""

import asyncio
import contextlib
import logging
import random
import uuid
from collections import Counter
from dataclasses import dataclass, field

import asyncpg

from gql.db import events as repo
from gql.db.engine import Database
from gql.errors import DomainError, RateLimited, Unavailable
from gql.models import DomainEvent
from gql.settings import Settings

logger = logging.getLogger(__name__)

_CONNECTION_ERRORS = (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError)
_READ_BATCH = 500
_HEALTH_CHECK_SECONDS = 10.0
_FIRST_BACKOFF_SECONDS = 0.1


@dataclass(eq=False, slots=True)
class Subscriber:
    """One live subscription: what it wants, and its bounded queue of events to send."""

    user_id: uuid.UUID
    domain_id: uuid.UUID | None
    connection: object
    start: int
    queue: asyncio.Queue[DomainEvent | None] = field(repr=False)
    overflowed: bool = False

    def wants(self, event: DomainEvent) -> bool:
        return self.domain_id is None or event.domain_id == self.domain_id

    def offer(self, event: DomainEvent) -> None:
        """Queue the event; a full queue ends the subscription (`None` tells it so)."""
        if self.overflowed:
            return
        try:
            self.queue.put_nowait(event)
        except asyncio.QueueFull:
            self.overflowed = True
            while not self.queue.empty():
                self.queue.get_nowait()
            self.queue.put_nowait(None)


class EventHub:
    """Listens on a dedicated connection and hands new events to this process's subscribers."""

    def __init__(self, db: Database, dsn: str, settings: Settings) -> None:
        self._db = db
        self._dsn = dsn
        self._settings = settings
        self._position: int | None = None
        # By owner: an event is offered only to its owner's subscribers.
        self._subscribers: dict[uuid.UUID, set[Subscriber]] = {}
        self._connections: dict[uuid.UUID, Counter[int]] = {}
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self.listener_pid: int | None = None

    async def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._listen(), name="event-listener"),
            asyncio.create_task(self._dispatch(), name="event-dispatcher"),
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []

    def subscribe(
        self, *, user_id: uuid.UUID, domain_id: uuid.UUID | None, connection: object
    ) -> Subscriber:
        """Register a subscriber that receives every matching event after the current position.

        Refused while the hub has not yet reached the database, and past the per-user bound on
        connections with live subscriptions.
        """
        if self._position is None:
            raise Unavailable("Live events are not available yet; retry in a few seconds.")
        connections = self._connections.setdefault(user_id, Counter())
        limit = self._settings.subscription_max_connections_per_user
        if id(connection) not in connections and len(connections) >= limit:
            raise RateLimited(
                f"This account already has {limit} connections with live subscriptions (the "
                "limit): close one, or subscribe on an existing connection (one subscription "
                "without `id` covers every domain).",
                retry_after=30,
            )
        connections[id(connection)] += 1
        subscriber = Subscriber(
            user_id=user_id,
            domain_id=domain_id,
            connection=connection,
            start=self._position,
            queue=asyncio.Queue(maxsize=self._settings.subscription_queue_size),
        )
        self._subscribers.setdefault(user_id, set()).add(subscriber)
        return subscriber

    def unsubscribe(self, subscriber: Subscriber) -> None:
        owned = self._subscribers.get(subscriber.user_id, set())
        if subscriber not in owned:
            return
        owned.discard(subscriber)
        if not owned:
            del self._subscribers[subscriber.user_id]
        connections = self._connections[subscriber.user_id]
        connections[id(subscriber.connection)] -= 1
        if connections[id(subscriber.connection)] <= 0:
            del connections[id(subscriber.connection)]
        if not connections:
            del self._connections[subscriber.user_id]

    @property
    def position(self) -> int | None:
        """The id of the last event dispatched; None until the database was first reached."""
        return self._position

    def _notified(self, event_id: int) -> None:
        if self._position is None or event_id > self._position:
            self._wake.set()

    async def _listen(self) -> None:
        """Hold the listener connection; reconnect with capped, jittered backoff."""
        backoff = _FIRST_BACKOFF_SECONDS
        cap = self._settings.event_listener_max_backoff_seconds
        while True:
            try:
                conn = await repo.connect_listener(
                    self._dsn,
                    connect_timeout=self._settings.db_connect_timeout,
                    on_event=self._notified,
                )
                try:
                    await self._hold(conn)
                finally:
                    self.listener_pid = None
                    with contextlib.suppress(Exception):
                        await asyncio.shield(conn.close(timeout=1))
            except _CONNECTION_ERRORS as error:
                logger.warning(
                    "event listener is down (%s); reconnecting in %.1f s", error, backoff
                )
                await asyncio.sleep(backoff * random.uniform(0.5, 1.0))  # noqa: S311
                backoff = min(cap, backoff * 2)
                continue
            # The connection was up and was lost: reconnect at once, then back off.
            backoff = _FIRST_BACKOFF_SECONDS

    async def _hold(self, conn: asyncpg.Connection) -> None:
        lost = asyncio.Event()
        conn.add_termination_listener(lambda _conn: lost.set())
        self.listener_pid = conn.get_server_pid()
        if self._position is None:
            # Listening already, so nothing committed after this read goes unnoticed.
            self._position = await repo.latest_id(conn)
        logger.info("event listener connected (backend %s)", self.listener_pid)
        # Whatever was committed while no listener was connected is read now.
        self._wake.set()
        while not lost.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(lost.wait(), _HEALTH_CHECK_SECONDS)
            if lost.is_set():
                break
            try:
                await asyncio.wait_for(repo.ping(conn), self._settings.db_connect_timeout)
            except _CONNECTION_ERRORS:
                break
        logger.warning("event listener connection lost; reconnecting")

    async def _dispatch(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            try:
                await self._drain()
            except DomainError as error:
                logger.warning("could not read new events (%s); retrying", error.message)
                await asyncio.sleep(1)
                self._wake.set()
            except Exception:
                # Anything else (a schema behind its migrations, say) must not end live
                # delivery for the life of the process: log it and try again.
                logger.exception("could not read new events; retrying")
                await asyncio.sleep(1)
                self._wake.set()

    async def _drain(self) -> None:
        while self._position is not None:
            async with self._db.connect() as conn:
                batch = await repo.after(conn, after_id=self._position, limit=_READ_BATCH)
            # No await from here to the new position: a subscriber registering meanwhile starts
            # either before this batch (and gets it) or after it.
            for event in batch:
                for subscriber in self._subscribers.get(event.user_id, ()):
                    if subscriber.wants(event):
                        subscriber.offer(event)
                self._position = event.id
            if len(batch) < _READ_BATCH:
                return
