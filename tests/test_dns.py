"""Cloudflare through HTTP: records published on create, what the zone holds, clean-up on delete.

The gateway talks to `FakeCloudflare` and `FakeAgentMail` on loopback through the official SDKs.
Each zone is bound to the account that uses it (tests/test_zones_publishing.py covers the rest).
"""

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from gql.app import create_app
from tests.conftest import make_settings, running
from tests.fakes import FakeAgentMail, FakeCloudflare
from tests.test_lifecycle import DELETE, Gateway, User, new_name, new_user, post

PUBLISHED = """
query One($id: UUID!) { emailDomain(id: $id) { id publishedRecords {
  cloudflare { checked zoneId zoneName error }
  records { id type name value priority ttl proxied }
} } }
"""
CREATE = "mutation Create($d: String!) { createEmailDomain(domain: $d) { id domain } }"


@pytest.fixture(scope="module")
def fakes() -> Iterator[tuple[FakeAgentMail, FakeCloudflare]]:
    with FakeAgentMail(api_key="test") as agentmail, FakeCloudflare(api_token="cf") as cloudflare:
        yield agentmail, cloudflare


def _settings(database_url: str, agentmail: FakeAgentMail, cloudflare: FakeCloudflare) -> Any:
    return make_settings(
        database_url,
        agentmail_api_key="test",
        agentmail_base_url=agentmail.url,
        cloudflare_api_token="cf",
        cloudflare_base_url=cloudflare.url + "/client/v4",
        provider_attempts=2,
        provider_backoff_seconds=0,
        provider_deadline_seconds=3,
        provider_timeout_seconds=1,
        # No poller check falls due during these tests; only clean-ups run.
        poll_schedule_minutes=[60],
    )


@pytest.fixture(scope="module")
async def gateway(database_url, fakes, db) -> AsyncIterator[Gateway]:
    agentmail, cloudflare = fakes
    app = create_app(_settings(database_url, agentmail, cloudflare))
    async with running(app) as client:
        yield Gateway(app, client, db)


async def _bound_zone(gateway: Gateway, cloudflare: FakeCloudflare, user: User, name: str) -> str:
    zone_id = cloudflare.add_zone(name)
    await gateway.app.state.services.zones.bind(name, user.id)
    return zone_id


async def _create(gateway: Gateway, user: User, name: str) -> str:
    body = await post(gateway.client, CREATE, user, d=name)
    assert "errors" not in body, body
    domain_id: str = body["data"]["createEmailDomain"]["id"]
    return domain_id


async def test_records_are_published_to_a_managed_zone_and_shown(gateway, fakes):
    _, cloudflare = fakes
    user, name = new_user(), new_name()
    zone_id = await _bound_zone(gateway, cloudflare, user, name)
    domain_id = await _create(gateway, user, name)

    in_zone = cloudflare.records(zone_id)
    assert {(r["type"], r["name"]) for r in in_zone} == {
        ("TXT", name),
        ("CNAME", f"agm._domainkey.{name}"),
        ("TXT", f"_dmarc.{name}"),
        ("MX", name),
    }
    assert all(r["comment"] == f"email-domain-gateway: {name}" for r in in_zone)

    body = await post(gateway.client, PUBLISHED, user, id=domain_id)
    published = body["data"]["emailDomain"]["publishedRecords"]
    assert published["cloudflare"] == {
        "checked": True,
        "zoneId": zone_id,
        "zoneName": name,
        "error": None,
    }
    mx = next(r for r in published["records"] if r["type"] == "MX")
    assert mx["priority"] == 10
    assert mx["ttl"] == 1
    assert mx["proxied"] is False
    assert len(published["records"]) == 4


async def test_a_subdomain_is_published_in_its_parent_zone(gateway, fakes):
    _, cloudflare = fakes
    user, parent = new_user(), new_name()
    zone_id = await _bound_zone(gateway, cloudflare, user, parent)
    domain_id = await _create(gateway, user, f"mail.{parent}")
    assert {r["name"] for r in cloudflare.records(zone_id)} >= {f"mail.{parent}"}
    body = await post(gateway.client, PUBLISHED, user, id=domain_id)
    assert body["data"]["emailDomain"]["publishedRecords"]["cloudflare"]["zoneName"] == parent


async def test_a_record_already_there_is_not_an_error(gateway, fakes):
    _, cloudflare = fakes
    user, name = new_user(), new_name()
    zone_id = await _bound_zone(gateway, cloudflare, user, name)
    cloudflare.add_record(zone_id, "CNAME", f"agm._domainkey.{name}", "agm._domainkey.agentmail.to")
    domain_id = await _create(gateway, user, name)
    cnames = [r for r in cloudflare.records(zone_id) if r["type"] == "CNAME"]
    assert len(cnames) == 1
    body = await post(gateway.client, PUBLISHED, user, id=domain_id)
    assert len(body["data"]["emailDomain"]["publishedRecords"]["records"]) == 4


async def test_a_zone_not_connected_to_the_account_is_explained(gateway):
    user, name = new_user(), new_name()
    domain_id = await _create(gateway, user, name)
    body = await post(gateway.client, PUBLISHED, user, id=domain_id)
    published = body["data"]["emailDomain"]["publishedRecords"]
    assert published["cloudflare"]["checked"] is False
    assert published["cloudflare"]["zoneId"] is None
    assert "publish the records at your DNS host" in published["cloudflare"]["error"]
    assert published["records"] == []


async def test_cloudflare_failing_is_not_a_failure(gateway, fakes):
    _, cloudflare = fakes
    user, name = new_user(), new_name()
    await _bound_zone(gateway, cloudflare, user, name)
    domain_id = await _create(gateway, user, name)
    cloudflare.fail_next(2, 503)  # every attempt of the one listing (PROVIDER_ATTEMPTS)
    body = await post(gateway.client, PUBLISHED, user, id=domain_id)
    assert "errors" not in body, body
    published = body["data"]["emailDomain"]["publishedRecords"]
    assert published["cloudflare"]["checked"] is False
    assert "Cloudflare could not be asked" in published["cloudflare"]["error"]


async def test_without_a_token_the_answer_says_so(database_url, fakes, make_owner):
    agentmail, _ = fakes
    settings = make_settings(
        database_url, agentmail_api_key="test", agentmail_base_url=agentmail.url
    )
    owner = await make_owner(["pending"])
    async with running(create_app(settings)) as client:
        response = await client.post(
            "/graphql",
            json={"query": PUBLISHED, "variables": {"id": str(owner.domains[0].id)}},
            headers=owner.headers,
        )
    published = response.json()["data"]["emailDomain"]["publishedRecords"]
    assert published["cloudflare"]["checked"] is False
    assert "CLOUDFLARE_API_TOKEN" in published["cloudflare"]["error"]


async def test_another_users_records_are_not_reachable(gateway, fakes):
    _, cloudflare = fakes
    owner, stranger, name = new_user(), new_user(), new_name()
    await _bound_zone(gateway, cloudflare, owner, name)
    domain_id = await _create(gateway, owner, name)
    body = await post(gateway.client, PUBLISHED, stranger, id=domain_id)
    assert body == {"data": {"emailDomain": None}}


async def test_delete_removes_only_the_records_the_gateway_published(gateway, fakes):
    agentmail, cloudflare = fakes
    user, name = new_user(), new_name()
    zone_id = await _bound_zone(gateway, cloudflare, user, name)
    cloudflare.add_record(zone_id, "A", name, "192.0.2.10")
    domain_id = await _create(gateway, user, name)
    assert len(cloudflare.records(zone_id)) == 5

    body = await post(gateway.client, DELETE, user, id=domain_id)
    assert body["data"]["deleteEmailDomain"]["success"] is True
    await gateway.run_jobs()

    remaining = cloudflare.records(zone_id)
    assert [(r["type"], r["name"]) for r in remaining] == [("A", name)]
    assert agentmail.calls("DELETE", f"/v0/domains/{name}") == 1
