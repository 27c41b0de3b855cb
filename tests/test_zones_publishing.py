"""Zones belong to accounts: records are published into, and shown from, connected zones only.

Through HTTP (POST /graphql) against the fake AgentMail and the fake Cloudflare on loopback. The
operator's token (`cf`) reads every zone of the fake; a zone is connected to an account when the
operator bound it, or when the account connected a token of its own that reads it.
"""

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from cryptography.fernet import Fernet

from gql.app import create_app
from gql.db.engine import Database
from gql.services.container import Services
from tests.conftest import make_settings, running
from tests.fakes import FakeAgentMail, FakeCloudflare
from tests.test_lifecycle import DELETE, Gateway, User, codes, new_name, new_user, post

TOKEN_KEY = Fernet.generate_key().decode()
PUBLISHED = """
query One($id: UUID!) { emailDomain(id: $id) { id publishedRecords {
  cloudflare { checked zoneId zoneName error }
  records { id type name value priority ttl proxied }
} } }
"""
CREATE = "mutation Create($d: String!) { createEmailDomain(domain: $d) { id domain } }"
CONNECTION = "{ connectedAt tokenHint connected tokenZones boundZones }"
CONNECT = f"mutation C($t: String!) {{ connectCloudflareToken(token: $t) {CONNECTION} }}"
DISCONNECT = f"mutation {{ disconnectCloudflareToken {CONNECTION} }}"
SHOW = f"{{ cloudflareConnection {CONNECTION} }}"


def user_token() -> str:
    return "user-" + Fernet.generate_key().decode()[:40]


@pytest.fixture(scope="module")
def fakes() -> Iterator[tuple[FakeAgentMail, FakeCloudflare]]:
    with FakeAgentMail(api_key="test") as agentmail, FakeCloudflare(api_token="cf") as cloudflare:
        yield agentmail, cloudflare


def zone_settings(
    database_url: str, agentmail: FakeAgentMail, cloudflare: FakeCloudflare, **overrides: Any
) -> Any:
    values: dict[str, Any] = {
        "agentmail_api_key": "test",
        "agentmail_base_url": agentmail.url,
        "cloudflare_api_token": "cf",
        "cloudflare_base_url": cloudflare.url + "/client/v4",
        "cloudflare_token_key": TOKEN_KEY,
        "provider_attempts": 2,
        "provider_backoff_seconds": 0,
        "provider_deadline_seconds": 3,
        "provider_timeout_seconds": 1,
        "poll_schedule_minutes": [60],
    }
    values.update(overrides)
    return make_settings(database_url, **values)


@pytest.fixture(scope="module")
async def gateway(database_url, fakes, db) -> AsyncIterator[Gateway]:
    agentmail, cloudflare = fakes
    app = create_app(zone_settings(database_url, agentmail, cloudflare))
    async with running(app) as client:
        yield Gateway(app, client, db)


def services(gateway: Gateway) -> Services:
    result: Services = gateway.app.state.services
    return result


async def create(gateway: Gateway, user: User, name: str) -> str:
    body = await post(gateway.client, CREATE, user, d=name)
    assert "errors" not in body, body
    domain_id: str = body["data"]["createEmailDomain"]["id"]
    return domain_id


async def published(gateway: Gateway, user: User, domain_id: str) -> dict[str, Any]:
    body = await post(gateway.client, PUBLISHED, user, id=domain_id)
    assert "errors" not in body, body
    result: dict[str, Any] = body["data"]["emailDomain"]["publishedRecords"]
    return result


def operator_zone(cloudflare: FakeCloudflare, name: str) -> str:
    """A zone the operator runs for its own mail, as in the finding."""
    zone_id = cloudflare.add_zone(name)
    cloudflare.add_record(zone_id, "TXT", name, "v=spf1 include:_spf.google.com -all")
    cloudflare.add_record(zone_id, "TXT", name, "google-site-verification=s3cr3t-t0ken")
    cloudflare.add_record(
        zone_id, "TXT", f"_dmarc.{name}", "v=DMARC1; p=reject; rua=mailto:dmarc@" + name
    )
    cloudflare.add_record(zone_id, "MX", name, "aspmx.l.google.com", priority=1)
    return zone_id


async def test_an_unrelated_users_create_writes_nothing_into_the_operators_zone(gateway, fakes):
    """Issue 8, finding 2: the operator's token manages the zone, nobody bound it to the user."""
    _, cloudflare = fakes
    stranger, name = new_user(), new_name("operator-corp")
    zone_id = operator_zone(cloudflare, name)
    before = cloudflare.records(zone_id)

    domain_id = await create(gateway, stranger, name)

    assert cloudflare.records(zone_id) == before, "records were written into the operator's zone"
    assert cloudflare.calls("POST", f"/client/v4/zones/{zone_id}/dns_records") == 0
    shown = await published(gateway, stranger, domain_id)
    assert shown["records"] == [], "the zone's own records were shown to a stranger"
    assert shown["cloudflare"]["checked"] is False
    assert shown["cloudflare"]["zoneId"] is None
    error = shown["cloudflare"]["error"]
    assert "this zone is not connected to your account" in error.lower()
    assert "connectCloudflareToken" in error
    assert f"gql-gateway zones bind --zone <zone> --user {stranger.id}" in error


async def test_a_zone_bound_to_the_account_gets_the_records_and_shows_only_theirs(gateway, fakes):
    _, cloudflare = fakes
    owner, name = new_user(), new_name()
    zone_id = cloudflare.add_zone(name)
    cloudflare.add_record(zone_id, "A", name, "192.0.2.10")
    cloudflare.add_record(zone_id, "TXT", f"other.{name}", "unrelated")
    await services(gateway).zones.bind(name, owner.id)

    domain_id = await create(gateway, owner, name)

    ours = [r for r in cloudflare.records(zone_id) if r["comment"]]
    assert {(r["type"], r["name"]) for r in ours} == {
        ("TXT", name),
        ("CNAME", f"agm._domainkey.{name}"),
        ("TXT", f"_dmarc.{name}"),
        ("MX", name),
    }
    shown = await published(gateway, owner, domain_id)
    assert shown["cloudflare"] == {
        "checked": True,
        "zoneId": zone_id,
        "zoneName": name,
        "error": None,
    }
    # Only records with the type and name of one of the domain's: not the A or the other TXT.
    assert sorted((r["type"], r["name"]) for r in shown["records"]) == sorted(
        (r["type"], r["name"]) for r in ours
    )


async def test_a_binding_to_another_account_does_not_connect_the_zone(gateway, fakes):
    _, cloudflare = fakes
    owner, stranger, name = new_user(), new_user(), new_name()
    zone_id = cloudflare.add_zone(name)
    await services(gateway).zones.bind(name, owner.id)
    domain_id = await create(gateway, stranger, f"mail.{name}")
    assert cloudflare.records(zone_id) == []
    shown = await published(gateway, stranger, domain_id)
    assert shown["cloudflare"]["checked"] is False
    assert "not connected to your account" in shown["cloudflare"]["error"]


async def test_a_users_own_token_connects_its_zones(gateway, fakes, db: Database):
    _, cloudflare = fakes
    user, name = new_user(), new_name()
    zone_id = cloudflare.add_zone(name)
    token = user_token()
    cloudflare.add_token(token, [zone_id])

    body = await post(gateway.client, CONNECT, user, t=token)
    assert "errors" not in body, body
    connection = body["data"]["connectCloudflareToken"]
    assert connection["connected"] is True
    assert connection["tokenHint"] == token[-4:]
    assert connection["tokenZones"] == [name]
    assert token not in str(body), "the token was returned"

    async with db.connect() as conn:
        stored = await conn.fetchval(
            "SELECT token_encrypted FROM cloudflare_tokens WHERE user_id = $1", user.id
        )
    assert token.encode() not in stored, "the token is stored in the clear"
    assert Fernet(TOKEN_KEY).decrypt(stored).decode() == token

    domain_id = await create(gateway, user, name)
    writes = cloudflare.requests_to("POST", f"/client/v4/zones/{zone_id}/dns_records")
    assert len(writes) == 4
    assert {w.headers["authorization"] for w in writes} == {f"Bearer {token}"}
    shown = await published(gateway, user, domain_id)
    assert (shown["cloudflare"]["checked"], shown["cloudflare"]["zoneId"]) == (True, zone_id)
    assert len(shown["records"]) == 4

    again = await post(gateway.client, SHOW, user)
    assert again["data"]["cloudflareConnection"]["tokenZones"] == [name]

    cloudflare.add_token(token, [zone_id], status="disabled")  # revoked at Cloudflare
    shown = await published(gateway, user, domain_id)
    assert shown["cloudflare"]["checked"] is False
    assert "Cloudflare refused the API token" in shown["cloudflare"]["error"]
    cloudflare.add_token(token, [zone_id])

    gone = await post(gateway.client, DISCONNECT, user)
    assert gone["data"]["disconnectCloudflareToken"]["connected"] is False
    shown = await published(gateway, user, domain_id)
    assert shown["cloudflare"]["checked"] is False
    assert "not connected to your account" in shown["cloudflare"]["error"]


async def test_another_accounts_token_does_not_connect_a_zone_to_you(gateway, fakes):
    _, cloudflare = fakes
    holder, stranger, name = new_user(), new_user(), new_name()
    zone_id = cloudflare.add_zone(name)
    token = user_token()
    cloudflare.add_token(token, [zone_id])
    assert "errors" not in await post(gateway.client, CONNECT, holder, t=token)
    domain_id = await create(gateway, stranger, f"mail.{name}")
    assert cloudflare.records(zone_id) == []
    shown = await published(gateway, stranger, domain_id)
    assert shown["cloudflare"]["checked"] is False


@pytest.mark.parametrize(
    ("setup", "says"),
    [
        ("garbage", "not a Cloudflare API token"),
        ("unknown", "Cloudflare refused the token"),
        ("disabled", "Cloudflare says this token is disabled"),
        ("no zones", "This token can read no zone"),
    ],
)
async def test_a_token_that_does_not_work_is_refused_with_the_reason(
    gateway, fakes, db: Database, setup: str, says: str
):
    _, cloudflare = fakes
    user, token = new_user(), user_token()
    if setup == "garbage":
        token = "not a token"
    elif setup == "disabled":
        cloudflare.add_token(token, [cloudflare.add_zone(new_name())], status="disabled")
    elif setup == "no zones":
        cloudflare.add_token(token, [])
    body = await post(gateway.client, CONNECT, user, t=token)
    assert codes(body) == ["BAD_USER_INPUT"]
    assert says in body["errors"][0]["message"]
    async with db.connect() as conn:
        assert (
            await conn.fetchval(
                "SELECT count(*) FROM cloudflare_tokens WHERE user_id = $1", user.id
            )
            == 0
        )


async def test_without_a_token_key_users_cannot_connect_tokens(database_url, fakes, make_owner):
    agentmail, cloudflare = fakes
    settings = zone_settings(database_url, agentmail, cloudflare, cloudflare_token_key=None)
    owner = await make_owner(["pending"])
    async with running(create_app(settings)) as client:
        response = await client.post(
            "/graphql",
            json={"query": CONNECT, "variables": {"t": user_token()}},
            headers=owner.headers,
        )
        body = response.json()
        assert codes(body) == ["BAD_USER_INPUT"]
        assert "CLOUDFLARE_TOKEN_KEY" in body["errors"][0]["message"]
        response = await client.post(
            "/graphql",
            json={"query": PUBLISHED, "variables": {"id": str(owner.domains[0].id)}},
            headers=owner.headers,
        )
    error = response.json()["data"]["emailDomain"]["publishedRecords"]["cloudflare"]["error"]
    assert "connectCloudflareToken" not in error
    assert "gql-gateway zones bind" in error


async def test_delete_cleans_up_with_the_credentials_that_published(gateway, fakes):
    _, cloudflare = fakes
    user, bound_name, own_name = new_user(), new_name(), new_name()
    bound_zone = cloudflare.add_zone(bound_name)
    own_zone = cloudflare.add_zone(own_name)
    await services(gateway).zones.bind(bound_name, user.id)
    token = user_token()
    cloudflare.add_token(token, [own_zone])
    assert "errors" not in await post(gateway.client, CONNECT, user, t=token)
    ids = [await create(gateway, user, bound_name), await create(gateway, user, own_name)]
    assert len(cloudflare.records(bound_zone)) == len(cloudflare.records(own_zone)) == 4

    for domain_id in ids:
        body = await post(gateway.client, DELETE, user, id=domain_id)
        assert body["data"]["deleteEmailDomain"]["success"] is True
    await gateway.run_jobs()

    assert cloudflare.records(bound_zone) == cloudflare.records(own_zone) == []
    deletes = cloudflare.requests_to("DELETE", f"/client/v4/zones/{own_zone}/dns_records/*")
    assert {d.headers["authorization"] for d in deletes} == {f"Bearer {token}"}


async def test_a_new_token_key_makes_stored_tokens_unusable(gateway, fakes, database_url, caplog):
    agentmail, cloudflare = fakes
    user, name = new_user(), new_name()
    zone_id = cloudflare.add_zone(name)
    token = user_token()
    cloudflare.add_token(token, [zone_id])
    assert "errors" not in await post(gateway.client, CONNECT, user, t=token)
    domain_id = await create(gateway, user, name)

    rotated = zone_settings(
        database_url, agentmail, cloudflare, cloudflare_token_key=Fernet.generate_key().decode()
    )
    async with running(create_app(rotated)) as client:
        body = await post(client, PUBLISHED, user, id=domain_id)
    shown = body["data"]["emailDomain"]["publishedRecords"]
    assert shown["cloudflare"]["checked"] is False
    assert "not connected to your account" in shown["cloudflare"]["error"]
    assert f"the Cloudflare token of user {user.id} cannot be decrypted" in caplog.text
