"""The provider fakes, exercised through the real SDKs (agentmail 2.0.18, cloudflare 5.9.0).

These tests pin the wire format: if a fake drifted from what the official client sends or
parses, the SDK call here would fail to build its models or raise the wrong error.
"""

import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from datetime import datetime
from typing import Any, Literal, cast

import httpx
import pytest
from agentmail import AsyncAgentMail
from agentmail.core.api_error import ApiError
from agentmail.core.request_options import RequestOptions
from agentmail.environment import AgentMailEnvironment
from agentmail.errors.not_found_error import NotFoundError as AgentMailNotFound
from cloudflare import (
    APIStatusError,
    APITimeoutError,
    AsyncCloudflare,
    BadRequestError,
    InternalServerError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
)
from cloudflare.types.dns.record_response import MXRecord
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from tests.fakes import FakeAgentMail, FakeCloudflare, LiveServer

NO_RETRIES: RequestOptions = {"max_retries": 0}


def cf_errors(error: APIStatusError) -> list[dict[str, Any]]:
    """The `errors` of a Cloudflare error envelope."""
    body = cast(dict[str, Any], error.body)
    assert body["success"] is False
    return cast(list[dict[str, Any]], body["errors"])


def shown(fake: FakeAgentMail, domain_id: str) -> dict[str, Any]:
    """The fake's view of a domain that must exist."""
    domain = fake.domain(domain_id)
    assert domain is not None
    return domain


# -- fixtures -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def agentmail_server() -> Iterator[FakeAgentMail]:
    with FakeAgentMail(api_key="test") as fake:
        yield fake


@pytest.fixture
def agentmail(agentmail_server: FakeAgentMail) -> FakeAgentMail:
    agentmail_server.reset()
    return agentmail_server


def agentmail_client(
    fake: FakeAgentMail, http: httpx.AsyncClient, key: str = "test"
) -> AsyncAgentMail:
    return AsyncAgentMail(
        api_key=key,
        environment=AgentMailEnvironment(http=fake.url, websockets="ws://unused"),
        httpx_client=http,
    )


@pytest.fixture
async def am(agentmail: FakeAgentMail) -> AsyncIterator[AsyncAgentMail]:
    async with httpx.AsyncClient(timeout=2) as http:
        yield agentmail_client(agentmail, http)


@pytest.fixture(scope="module")
def cloudflare_server() -> Iterator[FakeCloudflare]:
    with FakeCloudflare(api_token="test") as fake:
        yield fake


@pytest.fixture
def cloudflare(cloudflare_server: FakeCloudflare) -> FakeCloudflare:
    cloudflare_server.reset()
    return cloudflare_server


@pytest.fixture
async def cf(cloudflare: FakeCloudflare) -> AsyncIterator[AsyncCloudflare]:
    client = AsyncCloudflare(
        api_token="test", base_url=cloudflare.url + "/client/v4", max_retries=0
    )
    yield client
    await client.close()


# -- LiveServer ---------------------------------------------------------------------------------


def _port_is_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_live_server_serves_an_asgi_app_and_stops_without_leaking_its_thread() -> None:
    async def hello(request: Request) -> PlainTextResponse:
        return PlainTextResponse(f"hello {request.query_params.get('who', 'world')}")

    server = LiveServer(Starlette(routes=[Route("/", hello)]), name="test-live")
    with server:
        assert server.url == f"http://127.0.0.1:{server.port}"
        assert server.port > 0
        assert server.running
        answer = httpx.get(server.url + "/", params={"who": "fakes"})
        assert (answer.status_code, answer.text) == (200, "hello fakes")
        port, thread = server.port, server.thread
    assert thread is not None
    assert not thread.is_alive()
    assert not server.running
    assert not _port_is_open(port)
    assert not [t for t in threading.enumerate() if t.name.startswith("test-live")]
    with pytest.raises(RuntimeError, match="not running"):
        _ = server.url
    server.stop()  # idempotent


def test_stopping_a_fake_cuts_pending_delays_short() -> None:
    fake = FakeAgentMail()
    fake.start()
    fake.delay_next(1, 30)
    with pytest.raises(httpx.TimeoutException):
        httpx.get(fake.url + "/v0/domains", headers={"Authorization": "Bearer test"}, timeout=0.2)
    thread = fake.live_server.thread if fake.live_server else None
    started = time.monotonic()
    fake.stop()
    assert time.monotonic() - started < 3
    assert thread is not None
    assert not thread.is_alive()


# -- AgentMail ----------------------------------------------------------------------------------


async def test_agentmail_create_answers_a_domain_with_the_records_to_publish(
    agentmail: FakeAgentMail, am: AsyncAgentMail
) -> None:
    domain = await am.domains.create(domain="acme.com", feedback_enabled=True)

    assert domain.domain_id == "acme.com"
    assert domain.domain == "acme.com"
    assert domain.status == "PENDING"
    assert domain.reason == "dns_records_missing"
    assert (domain.feedback_enabled, domain.inbound_enabled) == (True, True)
    assert (domain.subdomains_enabled, domain.tracking_enabled) == (False, False)
    assert domain.client_id is None
    assert isinstance(domain.created_at, datetime)
    assert domain.created_at.tzinfo is not None
    records = [(r.type, r.name, r.value, r.status, r.priority) for r in domain.records]
    assert records == [
        ("TXT", "acme.com", "v=spf1 include:spf.agentmail.to ~all", "MISSING", None),
        ("CNAME", "agm._domainkey.acme.com", "agm._domainkey.agentmail.to", "MISSING", None),
        ("TXT", "_dmarc.acme.com", "v=DMARC1; p=none;", "MISSING", None),
        ("MX", "acme.com", "inbound-smtp.agentmail.to", "MISSING", 10),
    ]
    (sent,) = agentmail.requests_to("POST", "/v0/domains")
    assert sent.json == {"domain": "acme.com", "feedback_enabled": True}
    assert sent.headers["authorization"] == "Bearer test"


async def test_agentmail_create_replayed_with_the_same_client_id_answers_the_original(
    agentmail: FakeAgentMail, am: AsyncAgentMail
) -> None:
    options: RequestOptions = {"additional_body_parameters": {"client_id": "gw-acme-1"}}
    first = await am.domains.create(
        domain="acme.com", feedback_enabled=True, request_options=options
    )
    agentmail.set_status("acme.com", "VERIFYING")
    replay = await am.domains.create(
        domain="acme.com", feedback_enabled=True, request_options=options
    )

    assert first.client_id == replay.client_id == "gw-acme-1"
    assert replay.domain_id == first.domain_id
    assert replay.created_at == first.created_at
    assert replay.status == "VERIFYING"  # the original resource, as it is now
    assert agentmail.domain_ids() == ["acme.com"]
    assert agentmail.calls("POST", "/v0/domains") == 2
    assert [r.json["client_id"] for r in agentmail.requests_to("POST", "/v0/domains")] == [
        "gw-acme-1",
        "gw-acme-1",
    ]


async def test_agentmail_create_of_an_existing_name_without_its_client_id_is_a_conflict(
    agentmail: FakeAgentMail, am: AsyncAgentMail
) -> None:
    await am.domains.create(
        domain="acme.com", request_options={"additional_body_parameters": {"client_id": "a"}}
    )
    with pytest.raises(ApiError) as caught:
        await am.domains.create(
            domain="acme.com",
            request_options={**NO_RETRIES, "additional_body_parameters": {"client_id": "b"}},
        )
    assert caught.value.status_code == 409
    assert caught.value.body["name"] == "ConflictError"
    assert caught.value.body["code"] == "already_exists"
    assert set(caught.value.body) >= {"name", "code", "message", "fix", "docs"}
    assert shown(agentmail, "acme.com")["client_id"] == "a"


async def test_agentmail_create_rejects_a_bad_name_with_a_validation_error(
    am: AsyncAgentMail,
) -> None:
    with pytest.raises(ApiError) as caught:
        await am.domains.create(domain="not a domain", request_options=NO_RETRIES)
    assert caught.value.status_code == 400
    assert caught.value.body.name == "ValidationError"
    assert caught.value.body.errors == [
        {"path": ["domain"], "message": "domain must be a valid domain name."}
    ]


async def test_agentmail_get_and_delete_answer_404_for_an_unknown_domain(
    am: AsyncAgentMail,
) -> None:
    with pytest.raises(AgentMailNotFound) as caught:
        await am.domains.get("nope.com", request_options=NO_RETRIES)
    assert caught.value.status_code == 404
    assert caught.value.body.code == "not_found"
    assert caught.value.body.message == "Domain nope.com not found."
    with pytest.raises(AgentMailNotFound):
        await am.domains.delete("nope.com", request_options=NO_RETRIES)
    with pytest.raises(AgentMailNotFound):
        await am.domains.verify("nope.com", request_options=NO_RETRIES)


async def test_agentmail_list_is_newest_first_and_pages_with_a_token(
    agentmail: FakeAgentMail, am: AsyncAgentMail
) -> None:
    for name in ("a.com", "b.com", "c.com"):
        await am.domains.create(domain=name)

    first = await am.domains.list(limit=2)
    assert (first.count, first.limit) == (2, 2)
    assert [d.domain_id for d in first.domains] == ["c.com", "b.com"]
    assert first.next_page_token
    second = await am.domains.list(limit=2, page_token=first.next_page_token)
    assert [d.domain_id for d in second.domains] == ["a.com"]
    assert second.count == 1
    assert second.next_page_token is None
    oldest_first = await am.domains.list(ascending=True)
    assert [d.domain_id for d in oldest_first.domains] == ["a.com", "b.com", "c.com"]
    assert oldest_first.limit == agentmail.default_limit

    (request,) = agentmail.requests_to("GET", "/v0/domains")[-1:]
    assert request.param("ascending") == "true"
    with pytest.raises(ApiError) as caught:
        await am.domains.list(page_token="garbage", request_options=NO_RETRIES)
    assert caught.value.status_code == 400


async def test_agentmail_verify_starts_the_check_and_gets_walk_the_scripted_statuses(
    agentmail: FakeAgentMail, am: AsyncAgentMail
) -> None:
    await am.domains.create(domain="acme.com")
    agentmail.script_verification("acme.com", ["VERIFYING", "VERIFYING", "VERIFIED"])

    assert await am.domains.verify("acme.com") is None
    assert shown(agentmail, "acme.com")["status"] == "VERIFYING"
    seen = [(await am.domains.get("acme.com")).status for _ in range(4)]

    assert seen == ["VERIFYING", "VERIFYING", "VERIFIED", "VERIFIED"]
    final = await am.domains.get("acme.com")
    assert final.reason is None
    assert "reason" not in shown(agentmail, "acme.com")
    assert {r.status for r in final.records} == {"VALID"}
    assert agentmail.calls("POST", "/v0/domains/acme.com/verify") == 1
    assert agentmail.calls("GET", "/v0/domains/acme.com") == 5
    (verify,) = agentmail.requests_to("POST", "/v0/domains/*/verify")
    assert verify.body == b""


async def test_agentmail_verify_again_restarts_the_checker(
    agentmail: FakeAgentMail, am: AsyncAgentMail
) -> None:
    await am.domains.create(domain="acme.com")
    agentmail.script_verification(
        "acme.com", [("FAILED", "ses_dkim_temporary_failure"), "VERIFIED"]
    )

    await am.domains.verify("acme.com")
    failed = await am.domains.get("acme.com")
    await am.domains.verify("acme.com")
    flicker = [(await am.domains.get("acme.com")).status for _ in range(2)]

    assert (failed.status, failed.reason) == ("FAILED", "ses_dkim_temporary_failure")
    assert {r.status for r in failed.records} == {"VALID"}  # records fine, SES still pending
    assert flicker == ["FAILED", "VERIFIED"]
    assert agentmail.calls("POST", "/v0/domains/acme.com/verify") == 2


async def test_agentmail_set_status_shows_on_the_next_get(
    agentmail: FakeAgentMail, am: AsyncAgentMail
) -> None:
    agentmail.add_domain("acme.com", status="PENDING", reason="dns_records_missing")
    agentmail.set_status("acme.com", "INVALID", "dns_records_invalid")

    domain = await am.domains.get("acme.com")
    assert (domain.status, domain.reason) == ("INVALID", "dns_records_invalid")
    assert {(r.status, r.reason) for r in domain.records} == {("INVALID", "value_mismatch")}
    with pytest.raises(ValueError, match="no reason"):
        agentmail.set_status("acme.com", "VERIFIED", "dns_records_missing")
    with pytest.raises(ValueError, match="unknown status"):
        agentmail.set_status("acme.com", "DONE")


async def test_agentmail_update_changes_settings_and_records(
    agentmail: FakeAgentMail, am: AsyncAgentMail
) -> None:
    agentmail.add_domain("acme.com", status="VERIFIED", inbound_enabled=False)

    updated = await am.domains.update("acme.com", subdomains_enabled=True)

    assert updated.subdomains_enabled is True
    assert (updated.status, updated.reason) == ("PENDING", "dns_records_missing")
    records = {(r.type, r.name): r.status for r in updated.records}
    assert records[("MX", "*.acme.com")] == "MISSING"
    assert records[("TXT", "acme.com")] == "VALID"
    assert ("MX", "acme.com") not in records


async def test_agentmail_delete_removes_the_domain(
    agentmail: FakeAgentMail, am: AsyncAgentMail
) -> None:
    await am.domains.create(domain="acme.com")

    assert await am.domains.delete("acme.com") is None

    assert agentmail.domain("acme.com") is None
    assert agentmail.calls("DELETE", "/v0/domains/acme.com") == 1
    with pytest.raises(AgentMailNotFound):
        await am.domains.get("acme.com", request_options=NO_RETRIES)


async def test_agentmail_refuses_a_wrong_api_key(agentmail: FakeAgentMail) -> None:
    async with httpx.AsyncClient(timeout=2) as http:
        client = agentmail_client(agentmail, http, key="wrong")
        with pytest.raises(ApiError) as caught:
            await client.domains.list(request_options=NO_RETRIES)
    assert caught.value.status_code == 401
    assert caught.value.body["name"] == "UnauthorizedError"
    assert agentmail.calls("GET", "/v0/domains") == 1


async def test_agentmail_rate_limit_is_a_429_with_retry_after(
    agentmail: FakeAgentMail, am: AsyncAgentMail
) -> None:
    agentmail.add_domain("acme.com")
    agentmail.rate_limit_next(1, retry_after=1)

    with pytest.raises(ApiError) as caught:
        await am.domains.get("acme.com", request_options=NO_RETRIES)

    assert caught.value.status_code == 429
    assert caught.value.headers is not None
    assert caught.value.headers["retry-after"] == "1"
    assert caught.value.body["code"] == "rate_limited"
    assert (await am.domains.get("acme.com", request_options=NO_RETRIES)).domain_id == "acme.com"
    assert agentmail.calls("GET", "/v0/domains/acme.com") == 2


async def test_agentmail_sdk_retries_are_visible_in_the_counters(
    agentmail: FakeAgentMail, am: AsyncAgentMail
) -> None:
    agentmail.add_domain("acme.com")
    agentmail.rate_limit_next(1, retry_after=1)

    started = time.monotonic()
    domain = await am.domains.get("acme.com", request_options={"max_retries": 1})

    assert domain.domain_id == "acme.com"
    assert time.monotonic() - started >= 0.9  # the SDK honoured Retry-After
    assert agentmail.calls("GET", "/v0/domains/acme.com") == 2


async def test_agentmail_server_error_then_a_retried_create_succeeds(
    agentmail: FakeAgentMail, am: AsyncAgentMail
) -> None:
    agentmail.fail_next(1, 503, method="POST", path="/v0/domains")
    options: RequestOptions = {**NO_RETRIES, "additional_body_parameters": {"client_id": "gw-1"}}

    with pytest.raises(ApiError) as caught:
        await am.domains.create(domain="acme.com", request_options=options)
    created = await am.domains.create(domain="acme.com", request_options=options)

    assert caught.value.status_code == 503
    assert caught.value.body["name"] == "ServiceUnavailableError"
    assert caught.value.body["code"] == "service_unavailable"
    assert created.client_id == "gw-1"
    assert agentmail.calls("POST", "/v0/domains") == 2


async def test_agentmail_faults_only_hit_the_requests_they_match(
    agentmail: FakeAgentMail, am: AsyncAgentMail
) -> None:
    agentmail.add_domain("acme.com")
    agentmail.fail_next(1, 500, method="POST", path="/v0/domains/*/verify")

    await am.domains.get("acme.com", request_options=NO_RETRIES)
    assert agentmail.pending_faults() == 1
    with pytest.raises(ApiError) as caught:
        await am.domains.verify("acme.com", request_options=NO_RETRIES)
    await am.domains.verify("acme.com", request_options=NO_RETRIES)

    assert caught.value.status_code == 500
    assert agentmail.pending_faults() == 0
    assert agentmail.calls("POST", "/v0/domains/*/verify") == 2


async def test_agentmail_delay_provokes_a_client_timeout(
    agentmail: FakeAgentMail, am: AsyncAgentMail
) -> None:
    agentmail.add_domain("acme.com")
    agentmail.delay_next(1, 1.5)

    with pytest.raises(httpx.TimeoutException):
        await am.domains.get("acme.com", request_options={**NO_RETRIES, "timeout_in_seconds": 0.2})
    assert (await am.domains.get("acme.com", request_options=NO_RETRIES)).status == "PENDING"


# -- Cloudflare ---------------------------------------------------------------------------------


async def test_cloudflare_zones_list_finds_a_zone_by_name(
    cloudflare: FakeCloudflare, cf: AsyncCloudflare
) -> None:
    zone_id = cloudflare.add_zone("acme.com")
    cloudflare.add_zone("other.org")

    page = await cf.zones.list(name="acme.com")
    none = [zone async for zone in cf.zones.list(name="nope.com")]

    assert [(z.id, z.name, z.status) for z in page.result] == [(zone_id, "acme.com", "active")]
    assert page.result_info is not None
    assert (page.result_info.page, page.result_info.per_page) == (1, 20)
    assert none == []
    (request,) = cloudflare.requests_to("GET", "/client/v4/zones")[:1]
    assert request.param("name") == "acme.com"
    assert request.headers["authorization"] == "Bearer test"


async def test_cloudflare_records_create_list_delete(
    cloudflare: FakeCloudflare, cf: AsyncCloudflare
) -> None:
    zone_id = cloudflare.add_zone("acme.com")

    txt = await cf.dns.records.create(
        zone_id=zone_id, type="TXT", name="_dmarc.acme.com", content="v=DMARC1; p=none;",
        ttl=1, proxied=False, comment="email-domain-gateway",
    )  # fmt: skip
    cname = await cf.dns.records.create(
        zone_id=zone_id, type="CNAME", name="agm._domainkey", content="agm._domainkey.agentmail.to",
        ttl=1, proxied=False,
    )  # fmt: skip
    mx = await cf.dns.records.create(
        zone_id=zone_id, type="MX", name="@", content="inbound-smtp.agentmail.to", ttl=3600,
        priority=10,
    )  # fmt: skip

    assert txt is not None
    assert cname is not None
    assert mx is not None
    assert (txt.type, txt.name, txt.content, txt.ttl, txt.proxied, txt.comment) == (
        "TXT", "_dmarc.acme.com", "v=DMARC1; p=none;", 1, False, "email-domain-gateway",
    )  # fmt: skip
    assert cname.name == "agm._domainkey.acme.com"
    assert isinstance(mx, MXRecord)
    assert (mx.name, mx.priority, mx.ttl) == ("acme.com", 10, 3600)
    assert len(cloudflare.records(zone_id)) == 3

    at_apex = [r async for r in cf.dns.records.list(zone_id=zone_id, name={"exact": "acme.com"})]
    mx_only = [r async for r in cf.dns.records.list(zone_id=zone_id, type="MX")]
    dkim = [
        r
        async for r in cf.dns.records.list(
            zone_id=zone_id, name={"endswith": "_domainkey.acme.com"}
        )
    ]
    assert [r.id for r in at_apex] == [mx.id]
    assert [r.id for r in mx_only] == [mx.id]
    assert [r.id for r in dkim] == [cname.id]

    deleted = await cf.dns.records.delete(txt.id, zone_id=zone_id)
    assert deleted is not None
    assert deleted.id == txt.id
    assert {r["id"] for r in cloudflare.records(zone_id)} == {cname.id, mx.id}
    with pytest.raises(NotFoundError) as caught:
        await cf.dns.records.delete(txt.id, zone_id=zone_id)
    assert cf_errors(caught.value)[0]["code"] == 81044
    assert cloudflare.calls("DELETE", f"/client/v4/zones/{zone_id}/dns_records/{txt.id}") == 2


async def test_cloudflare_record_listing_pages_through_result_info(
    cloudflare: FakeCloudflare, cf: AsyncCloudflare
) -> None:
    zone_id = cloudflare.add_zone("acme.com")
    for i in range(5):
        cloudflare.add_record(zone_id, "TXT", f"t{i}", f"value-{i}")

    everything = [r async for r in cf.dns.records.list(zone_id=zone_id, per_page=2)]
    async with httpx.AsyncClient(headers={"Authorization": "Bearer test"}) as http:
        raw = await http.get(
            f"{cloudflare.url}/client/v4/zones/{zone_id}/dns_records",
            params={"per_page": "2", "page": "3.0"},
        )

    assert [r.name for r in everything] == [f"t{i}.acme.com" for i in range(5)]
    assert raw.status_code == 200
    body = raw.json()
    assert set(body) == {"success", "errors", "messages", "result", "result_info"}
    assert body["success"] is True
    assert body["result_info"] == {
        "page": 3, "per_page": 2, "count": 1, "total_count": 5, "total_pages": 3,
    }  # fmt: skip


async def test_cloudflare_refuses_clashing_records_like_cloudflare(
    cloudflare: FakeCloudflare, cf: AsyncCloudflare
) -> None:
    zone_id = cloudflare.add_zone("acme.com")
    cloudflare.add_record(zone_id, "CNAME", "agm._domainkey", "agm._domainkey.agentmail.to")
    cloudflare.add_record(zone_id, "A", "www", "192.0.2.1")
    cloudflare.add_record(zone_id, "TXT", "_dmarc", "v=DMARC1; p=none;")

    async def refused(
        type_: Literal["A", "CNAME", "TXT"], name: str, content: str
    ) -> tuple[int, int]:
        with pytest.raises(BadRequestError) as caught:
            await cf.dns.records.create(
                zone_id=zone_id, type=type_, name=name, content=content, ttl=1
            )
        return caught.value.status_code, cf_errors(caught.value)[0]["code"]

    # A record of another type where a CNAME is: "A CNAME record with that host already exists."
    assert await refused("TXT", "agm._domainkey.acme.com", "x") == (400, 81054)
    assert await refused("A", "agm._domainkey.acme.com", "192.0.2.7") == (400, 81054)
    # A CNAME where a CNAME (even the same one) or an A/AAAA is: "An A, AAAA, or CNAME ..."
    assert await refused("CNAME", "agm._domainkey.acme.com", "agm._domainkey.agentmail.to") == (
        400, 81053,
    )  # fmt: skip
    assert await refused("CNAME", "www.acme.com", "elsewhere.example") == (400, 81053)
    # The same record twice: "An identical record already exists."
    assert await refused("TXT", "_dmarc.acme.com", "v=DMARC1; p=none;") == (400, 81058)
    assert len(cloudflare.records(zone_id)) == 3


async def test_cloudflare_validates_ttl_and_unknown_zones(
    cloudflare: FakeCloudflare, cf: AsyncCloudflare
) -> None:
    zone_id = cloudflare.add_zone("acme.com")

    with pytest.raises(BadRequestError) as bad_ttl:
        await cf.dns.records.create(zone_id=zone_id, type="TXT", name="x", content="y", ttl=30)
    with pytest.raises(NotFoundError) as no_zone:
        await cf.dns.records.create(zone_id="0" * 32, type="TXT", name="x", content="y", ttl=1)

    assert cf_errors(bad_ttl.value)[0]["error_chain"][0]["code"] == 9021
    assert cf_errors(no_zone.value)[0]["code"] == 7003


async def test_cloudflare_rate_limit_is_a_429_with_retry_after(
    cloudflare: FakeCloudflare, cf: AsyncCloudflare
) -> None:
    cloudflare.add_zone("acme.com")
    cloudflare.rate_limit_next(1, retry_after=300)

    with pytest.raises(RateLimitError) as caught:
        await cf.zones.list(name="acme.com")
    page = await cf.zones.list(name="acme.com")

    assert caught.value.status_code == 429
    assert caught.value.response.headers["retry-after"] == "300"
    assert cf_errors(caught.value)[0]["code"] == 971
    assert len(page.result) == 1
    assert cloudflare.calls("GET", "/client/v4/zones") == 2


async def test_cloudflare_server_error_and_auth_failures(
    cloudflare: FakeCloudflare, cf: AsyncCloudflare
) -> None:
    cloudflare.fail_next(1, 502)
    with pytest.raises(InternalServerError) as server_error:
        await cf.zones.list(name="acme.com")

    wrong = AsyncCloudflare(
        api_token="wrong", base_url=cloudflare.url + "/client/v4", max_retries=0
    )
    try:
        with pytest.raises(PermissionDeniedError) as denied:
            await wrong.zones.list(name="acme.com")
    finally:
        await wrong.close()

    assert server_error.value.status_code == 502
    assert cf_errors(server_error.value) == [{"code": 502, "message": "Bad Gateway"}]
    assert denied.value.status_code == 403
    assert cf_errors(denied.value)[0] == {"code": 10000, "message": "Authentication error"}


async def test_cloudflare_delay_provokes_a_client_timeout(
    cloudflare: FakeCloudflare, cf: AsyncCloudflare
) -> None:
    zone_id = cloudflare.add_zone("acme.com")
    cloudflare.delay_next(1, 1.5, method="POST")

    with pytest.raises(APITimeoutError):
        await cf.dns.records.create(
            zone_id=zone_id, type="TXT", name="x", content="y", ttl=1, timeout=0.2
        )
    assert len((await cf.zones.list(name="acme.com")).result) == 1
    assert cloudflare.calls("POST", f"/client/v4/zones/{zone_id}/dns_records") == 1
