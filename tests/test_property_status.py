"""Property-based tests of the status override rules, against the real database.

For any starting status (verified included) and any sequence of override attempts drawn from
all four statuses, by the owner or by another user:

* `verified` is always refused with InvalidInput and changes nothing;
* an allowed override by the owner leaves exactly that status;
* `updated_at` never moves backwards: strictly forward on a real change, equal on a no-op;
* `verified_at` and `created_at` never change (nor the name, owner or records);
* another user's override always fails (NotFound; InvalidInput for `verified`, which is refused
  before ownership is looked at) and changes nothing.

Hypothesis drives sync test functions; each example runs its async body on a fresh event loop in
a worker thread, with its own connection pool, so it never touches the session's running loop.
"""

import asyncio
import dataclasses
import uuid
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from itertools import pairwise
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from gql.db.engine import Database
from gql.errors import InvalidInput, NotFound
from gql.models import DomainRecord, Principal, Status
from gql.services.domains import DomainService
from gql.services.state_writer import StateWriter
from tests.conftest import create_domains, make_settings

T = TypeVar("T")

VERIFIED_AT = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
OWNER, STRANGER = "owner", "stranger"

statuses = st.sampled_from(list(Status))
steps = st.lists(
    st.tuples(st.sampled_from([OWNER, OWNER, OWNER, STRANGER]), statuses), min_size=1, max_size=10
)
property_settings = settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run `coro` to completion on a new event loop in a new thread."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


def unchanged_identity(before: DomainRecord, after: DomainRecord) -> None:
    """What no override may touch."""
    assert after.id == before.id
    assert after.user_id == before.user_id
    assert after.domain == before.domain
    assert after.dns_records == before.dns_records
    assert after.verified_at == before.verified_at
    assert after.created_at == before.created_at


async def check_sequence(
    database_url: str,
    start: Status,
    verified_at: datetime | None,
    sequence: list[tuple[str, Status]],
) -> tuple[list[str], DomainRecord]:
    """Apply `sequence` to a fresh domain, checking every rule after every step.

    Returns what happened at each step and the final row, for the callers' own checks.
    """
    settings = make_settings(database_url)
    db = Database(database_url, settings)
    await db.open()
    try:
        service = DomainService(db, StateWriter(db, settings))
        owner = Principal(user_id=uuid.uuid4(), via="api_key")
        stranger = Principal(user_id=uuid.uuid4(), via="api_key")
        (created,) = await create_domains(db, owner.user_id, [start.value], verified_at=verified_at)
        first_seen = created
        outcomes: list[str] = []
        for actor, target in sequence:
            before = await service.find(owner, created.id)
            assert before is not None
            if actor == STRANGER:
                expected: tuple[type[Exception], ...] = (
                    (InvalidInput, NotFound) if target is Status.VERIFIED else (NotFound,)
                )
                with pytest.raises(expected):
                    await service.override_status(stranger, created.id, target)
                assert await service.find(stranger, created.id) is None
                outcomes.append("refused-stranger")
            elif target is Status.VERIFIED:
                with pytest.raises(InvalidInput, match="verif"):
                    await service.override_status(owner, created.id, target)
                outcomes.append("refused-verified")
            else:
                returned = await service.override_status(owner, created.id, target)
                assert returned.status is target
                assert returned == await service.find(owner, created.id)
                if before.status is target:
                    assert returned == before  # a no-op writes nothing, updated_at included
                    outcomes.append("no-op")
                else:
                    assert returned.updated_at > before.updated_at
                    others = dataclasses.replace(
                        returned,
                        status=before.status,
                        updated_at=before.updated_at,
                        version=before.version,
                        status_reason=before.status_reason,
                        verification_started_at=before.verification_started_at,
                    )
                    # Only the status, its reason (the provider's no longer explains it), the
                    # window (opened by an override to verifying) and updated_at moved.
                    assert others == before
                    assert returned.status_reason is None
                    if target is Status.VERIFYING:
                        assert returned.verification_started_at is not None
                        assert returned.verification_started_at > before.updated_at
                    else:
                        assert returned.verification_started_at == before.verification_started_at
                    outcomes.append("changed")
            after = await service.find(owner, created.id)
            assert after is not None
            if outcomes[-1].startswith("refused"):
                assert after == before  # nothing changed, updated_at included
            assert after.updated_at >= before.updated_at
            unchanged_identity(first_seen, after)
            assert after.status is not Status.VERIFIED or start is Status.VERIFIED
        final = await service.find(owner, created.id)
        assert final is not None
        return outcomes, final
    finally:
        await db.close()


@property_settings
@given(
    start=statuses,
    with_verified_at=st.booleans(),
    sequence=steps,
)
@example(
    start=Status.VERIFIED,
    with_verified_at=True,
    sequence=[
        (OWNER, Status.VERIFIED),
        (OWNER, Status.FAILED),
        (OWNER, Status.FAILED),
        (STRANGER, Status.PENDING),
        (OWNER, Status.VERIFIED),
        (OWNER, Status.PENDING),
    ],
)
@example(
    start=Status.PENDING,
    with_verified_at=False,
    sequence=[(STRANGER, Status.VERIFIED), (OWNER, Status.PENDING), (OWNER, Status.VERIFYING)],
)
def test_override_sequences_keep_the_status_rules(
    database_url: str, start: Status, with_verified_at: bool, sequence: list[tuple[str, Status]]
) -> None:
    verified_at = VERIFIED_AT if with_verified_at or start is Status.VERIFIED else None
    outcomes, final = run(check_sequence(database_url, start, verified_at, sequence))
    assert len(outcomes) == len(sequence)
    assert final.verified_at == verified_at


@property_settings
@given(start=statuses, targets=st.lists(statuses, min_size=1, max_size=10))
def test_the_status_after_a_sequence_is_the_last_allowed_target(
    database_url: str, start: Status, targets: list[Status]
) -> None:
    """A model: the final status is the last target other than verified, else the start one;
    `updated_at` moved once per step that differed from the status before it."""
    sequence = [(OWNER, target) for target in targets]
    outcomes, final = run(check_sequence(database_url, start, None, sequence))
    allowed = [t for t in targets if t is not Status.VERIFIED]
    assert final.status is (allowed[-1] if allowed else start)
    changes = sum(1 for before, after in pairwise([start, *allowed]) if before is not after)
    assert outcomes.count("changed") == changes
    assert outcomes.count("no-op") == len(allowed) - changes
    assert outcomes.count("refused-verified") == targets.count(Status.VERIFIED)
