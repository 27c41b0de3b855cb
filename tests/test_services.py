"""The service layer's rules, against a real database."""

import uuid
from datetime import UTC, datetime

import pytest

from gql.db.engine import Database
from gql.errors import InvalidInput, NotFound
from gql.models import Principal, Status
from gql.services.container import Services
from gql.services.domains import decode_cursor, encode_cursor, parse_override_status
from tests.conftest import create_domains
from tests.helpers import MakeOwner


async def test_override_changes_status_and_moves_updated_at_forward(
    services: Services, make_owner: MakeOwner
) -> None:
    owner = await make_owner(["pending"])
    before = owner.domains[0]
    after = await services.domains.override_status(owner.principal, before.id, Status.FAILED)
    assert after.status is Status.FAILED
    assert after.updated_at > before.updated_at
    assert after.created_at == before.created_at
    stored = await services.domains.find(owner.principal, before.id)
    assert stored == after


async def test_override_to_current_status_is_a_noop(
    services: Services, make_owner: MakeOwner
) -> None:
    owner = await make_owner(["failed"])
    before = owner.domains[0]
    after = await services.domains.override_status(owner.principal, before.id, Status.FAILED)
    assert after == before


async def test_override_keeps_verified_at_and_may_leave_verified(
    services: Services, db: Database
) -> None:
    user = uuid.uuid4()
    verified_at = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    (domain,) = await create_domains(db, user, ["verified"], verified_at=verified_at)
    principal = Principal(user_id=user, via="api_key")
    after = await services.domains.override_status(principal, domain.id, Status.PENDING)
    assert after.status is Status.PENDING
    assert after.verified_at == verified_at


async def test_override_never_sets_verified(services: Services, make_owner: MakeOwner) -> None:
    owner = await make_owner(["verifying"])
    with pytest.raises(InvalidInput, match="verify"):
        await services.domains.override_status(
            owner.principal, owner.domains[0].id, Status.VERIFIED
        )
    assert (await services.domains.find(owner.principal, owner.domains[0].id)) == owner.domains[0]


async def test_override_of_another_users_domain_is_not_found(
    services: Services, make_owner: MakeOwner
) -> None:
    owner, other = await make_owner(["pending"]), await make_owner()
    with pytest.raises(NotFound):
        await services.domains.override_status(other.principal, owner.domains[0].id, Status.FAILED)
    assert (await services.domains.find(owner.principal, owner.domains[0].id)) == owner.domains[0]
    assert await services.domains.find(other.principal, owner.domains[0].id) is None


@pytest.mark.parametrize("value", ["verified", "VERIFIED", "done", "", None, 1, ["failed"]])
def test_parse_override_status_refuses(value: object) -> None:
    with pytest.raises(InvalidInput):
        parse_override_status(value)


@pytest.mark.parametrize("value", ["pending", "verifying", "failed"])
def test_parse_override_status_accepts(value: str) -> None:
    assert parse_override_status(value) == Status(value)


async def test_list_is_newest_first_and_pages_by_cursor(
    services: Services, make_owner: MakeOwner
) -> None:
    owner = await make_owner(["pending", "verified", "failed", "pending", "verifying"])
    newest_first = [d.id for d in reversed(owner.domains)]
    seen: list[uuid.UUID] = []
    after = None
    while True:
        page = await services.domains.list_page(owner.principal, first=2, after=after, status=None)
        seen.extend(r.id for r in page.records)
        if not page.has_next_page:
            break
        after = encode_cursor(page.records[-1])
    assert seen == newest_first
    assert await services.domains.count(owner.principal, status=None) == 5


async def test_list_filters_by_status(services: Services, make_owner: MakeOwner) -> None:
    owner = await make_owner(["pending", "verified", "pending"])
    page = await services.domains.list_page(
        owner.principal, first=50, after=None, status=Status.PENDING
    )
    assert {r.id for r in page.records} == {owner.domains[0].id, owner.domains[2].id}
    assert await services.domains.count(owner.principal, status=Status.PENDING) == 2


async def test_list_shows_only_the_callers_domains(
    services: Services, make_owner: MakeOwner
) -> None:
    owner, other = await make_owner(["pending"]), await make_owner(["failed"])
    page = await services.domains.list_page(other.principal, first=50, after=None, status=None)
    assert [r.id for r in page.records] == [other.domains[0].id]
    assert owner.domains[0].id not in {r.id for r in page.records}


@pytest.mark.parametrize("first", [-1, 101])
async def test_list_refuses_page_sizes_out_of_range(
    services: Services, make_owner: MakeOwner, first: int
) -> None:
    owner = await make_owner()
    with pytest.raises(InvalidInput, match="between 0 and 100"):
        await services.domains.list_page(owner.principal, first=first, after=None, status=None)


@pytest.mark.parametrize("cursor", ["nope", "!!!", "", "MjAyNA", "YXxi"])
def test_bad_cursors_are_invalid_input(cursor: str) -> None:
    with pytest.raises(InvalidInput, match="cursor"):
        decode_cursor(cursor)
