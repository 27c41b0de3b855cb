"""The zone write and the name takeover against a real `gql-gateway serve` process.

The process talks to the fake AgentMail and Cloudflare and to a DNS server, all on loopback in
this test process; the operator binds zones with the `gql-gateway zones` command.
"""

import json
import os
import subprocess
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.conftest import JWT_SECRET
from tests.dns_server import LoopbackDns
from tests.fakes import FakeAgentMail, FakeCloudflare
from tests.helpers import free_port
from tests.test_lifecycle import User, new_name, new_user
from tests.test_serve_shutdown import GATEWAY, _wait_until_ready
from tests.test_zones_publishing import CREATE, PUBLISHED, TOKEN_KEY, operator_zone

CLAIM = "mutation Claim($d: String!) { claimEmailDomain(domain: $d) { id userId status } }"
ONE = "query One($id: UUID!) { emailDomain(id: $id) { status statusReason } }"


@dataclass
class Served:
    url: str
    env: dict[str, str]
    agentmail: FakeAgentMail
    cloudflare: FakeCloudflare
    dns: LoopbackDns

    async def post(self, query: str, user: User, **variables: Any) -> Any:
        async with httpx.AsyncClient(timeout=20) as client:
            response = await client.post(
                f"{self.url}/graphql",
                json={"query": query, "variables": variables},
                headers=user.headers,
            )
        assert response.status_code == 200, response.text
        return response.json()

    def zones(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [GATEWAY, "zones", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )


@pytest.fixture(scope="module")
def providers() -> Iterator[tuple[FakeAgentMail, FakeCloudflare, LoopbackDns]]:
    with (
        FakeAgentMail(api_key="test") as agentmail,
        FakeCloudflare(api_token="cf") as cloudflare,
        LoopbackDns() as dns,
    ):
        yield agentmail, cloudflare, dns


@pytest.fixture(scope="module")
async def served(
    database_url: str, providers: tuple[FakeAgentMail, FakeCloudflare, LoopbackDns]
) -> AsyncIterator[Served]:
    agentmail, cloudflare, dns = providers
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "ENVIRONMENT": "test",
        "JWT_SECRET": JWT_SECRET,
        "LOG_LEVEL": "WARNING",
        "ACCESS_LOG": "false",
        "WORKER": "false",
        "RATE_LIMIT": "100000/minute",
        "RATE_LIMIT_ANONYMOUS": "100000/minute",
        "AGENTMAIL_API_KEY": "test",
        "AGENTMAIL_BASE_URL": agentmail.url,
        "CLOUDFLARE_API_TOKEN": "cf",
        "CLOUDFLARE_BASE_URL": cloudflare.url + "/client/v4",
        "CLOUDFLARE_TOKEN_KEY": TOKEN_KEY,
        "CLAIM_RESOLVERS": json.dumps([dns.resolver]),
        "CLAIM_DNS_TIMEOUT_SECONDS": "2",
        "PROVIDER_ATTEMPTS": "2",
        "PROVIDER_BACKOFF_SECONDS": "0",
        "POLL_SCHEDULE_MINUTES": "[60]",
    }
    process = subprocess.Popen(
        [GATEWAY, "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        await _wait_until_ready(url, process)
        yield Served(url, env, agentmail, cloudflare, dns)
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


async def test_a_zone_is_written_only_once_the_operator_binds_it(served: Served) -> None:
    cloudflare = served.cloudflare
    stranger, owner, name = new_user(), new_user(), new_name("operator-corp")
    zone_id = operator_zone(cloudflare, name)
    before = cloudflare.records(zone_id)

    body = await served.post(CREATE, stranger, d=name)
    assert "errors" not in body, body
    assert cloudflare.records(zone_id) == before, "records were written into the operator's zone"
    shown = await served.post(PUBLISHED, stranger, id=body["data"]["createEmailDomain"]["id"])
    published = shown["data"]["emailDomain"]["publishedRecords"]
    assert published["records"] == []
    assert published["cloudflare"]["checked"] is False
    assert "not connected to your account" in published["cloudflare"]["error"]

    unknown = served.zones("bind", "--zone", new_name(), "--user", str(owner.id))
    assert unknown.returncode == 1
    assert "cannot read a zone called" in unknown.stderr
    sub = f"mail.{name}"
    bound = served.zones("bind", "--zone", name, "--user", str(owner.id))
    assert bound.returncode == 0, bound.stderr
    assert f"bound zone {name} ({zone_id}) to user {owner.id}" in bound.stdout
    listed = served.zones("list", "--user", str(owner.id))
    assert listed.returncode == 0, listed.stderr
    assert name in listed.stdout
    assert zone_id in listed.stdout

    body = await served.post(CREATE, owner, d=sub)
    assert "errors" not in body, body
    ours = [r for r in cloudflare.records(zone_id) if r["comment"]]
    assert {r["name"] for r in ours} == {sub, f"agm._domainkey.{sub}", f"_dmarc.{sub}"}
    shown = await served.post(PUBLISHED, owner, id=body["data"]["createEmailDomain"]["id"])
    published = shown["data"]["emailDomain"]["publishedRecords"]
    assert (published["cloudflare"]["checked"], published["cloudflare"]["zoneId"]) == (
        True,
        zone_id,
    )
    assert {r["value"] for r in published["records"]} == {r["content"] for r in ours}

    unbound = served.zones("unbind", "--zone", name, "--user", str(owner.id))
    assert unbound.returncode == 0, unbound.stderr
    assert served.zones("list", "--user", str(owner.id)).stdout == ""


async def test_a_name_moves_only_through_a_dns_claim(served: Served) -> None:
    agentmail, dns = served.agentmail, served.dns
    holder, intruder, name = new_user(), new_user(), new_name("victim-shop")
    agentmail.add_domain(name)
    agentmail.script_verification(name, [("VERIFYING", "ses_dkim_pending")])
    held = await served.post(CREATE, holder, d=name)
    held_id = held["data"]["createEmailDomain"]["id"]
    verifies = agentmail.calls("POST", f"/v0/domains/{name}/verify")
    creates = len(agentmail.requests_to("POST", "/v0/domains"))

    refused = await served.post(CREATE, intruder, d=name)
    assert [e["extensions"]["code"] for e in refused["errors"]] == ["CONFLICT"]
    claim = refused["errors"][0]["extensions"]["claim"]
    not_yet = await served.post(CLAIM, intruder, d=name)
    assert [e["extensions"]["code"] for e in not_yet["errors"]] == ["CONFLICT"]
    assert agentmail.calls("POST", f"/v0/domains/{name}/verify") == verifies
    assert len(agentmail.requests_to("POST", "/v0/domains")) == creates

    dns.publish(claim["recordName"], claim["recordValue"])
    moved = await served.post(CLAIM, intruder, d=name)
    assert "errors" not in moved, moved
    assert moved["data"]["claimEmailDomain"]["userId"] == str(intruder.id)
    old = await served.post(ONE, holder, id=held_id)
    assert old["data"]["emailDomain"] == {
        "status": "FAILED",
        "statusReason": "claimed_by_another_account",
    }
