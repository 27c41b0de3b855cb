"""The REST shim, `PATCH /api/email/domains/{id}`, through HTTP: every row of the contract's
error table and the success shape, checked against the rows in PostgreSQL."""

import re
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest

from gql.app import create_app
from gql.db.engine import Database
from gql.models import DomainRecord
from gql.services.container import Services
from tests.conftest import Owner, create_domains, make_settings, running, session_token

STATUSES = ("pending", "verifying", "verified", "failed")
ALLOWED = ("pending", "verifying", "failed")
DOMAIN_KEYS = {
    "id",
    "user_id",
    "domain",
    "agentmail_domain_id",
    "status",
    "dns_records",
    "verified_at",
    "created_at",
    "updated_at",
}
RECORD_KEYS = {"type", "name", "value", "priority"}
VERIFIED_AT = datetime(2024, 3, 1, 12, 30, 15, 123456, tzinfo=UTC)

# What must never reach a caller: stack traces, SQL, driver and connection details.
_LEAK_CASED = re.compile(r"\b(SELECT|INSERT INTO|UPDATE \w+ SET|DELETE FROM|WHERE|RETURNING)\b")
_LEAK_ANY_CASE = re.compile(
    r"traceback|sqlalchemy|asyncpg|psycopg|postgresql|email_domains|api_keys|File \"",
    re.IGNORECASE,
)

MakeOwner = Callable[..., Any]


def assert_clean(response: httpx.Response) -> None:
    text = response.text
    assert _LEAK_CASED.search(text) is None, text
    assert _LEAK_ANY_CASE.search(text) is None, text


def assert_error(response: httpx.Response, status: int, code: str) -> str:
    """The contract's error body, exactly; returns the message."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert_clean(response)
    body = response.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message"}, body
    assert body["error"]["code"] == code, body
    message = body["error"]["message"]
    assert isinstance(message, str)
    assert message.strip()
    return message


def path(domain_id: object) -> str:
    return f"/api/email/domains/{domain_id}"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def patch(
    client: httpx.AsyncClient,
    domain_id: object,
    *,
    headers: dict[str, str] | None = None,
    body: object = None,
    content: Any = None,
    method: str = "PATCH",
) -> httpx.Response:
    """Send a request to the shim; `body` is JSON-encoded with a JSON content type."""
    all_headers = dict(headers or {})
    if content is None:
        content = orjson.dumps(body)
        all_headers.setdefault("Content-Type", "application/json")
    response = await client.request(method, path(domain_id), headers=all_headers, content=content)
    assert_clean(response)
    return response


async def db_row(db: Database, domain_id: uuid.UUID) -> dict[str, Any]:
    """The row as PostgreSQL has it, read with plain SQL (not through the code under test)."""
    async with db.connect() as conn:
        row = await conn.fetchrow(
            "SELECT status, verified_at, created_at, updated_at, user_id "
            "FROM email_domains WHERE id = $1",
            domain_id,
        )
    assert row is not None
    return dict(row)


def parse_timestamp(value: object) -> datetime:
    assert isinstance(value, str), value
    assert value.endswith("Z"), value
    parsed = datetime.fromisoformat(value)
    assert parsed.utcoffset() == timedelta(0), value
    return parsed


async def one_domain(db: Database, owner: Owner, status: str, **kwargs: Any) -> DomainRecord:
    (record,) = await create_domains(db, owner.user_id, [status], **kwargs)
    return record


# --- 200 -----------------------------------------------------------------------------------


async def test_success_body_is_the_full_row(
    client: httpx.AsyncClient, make_owner: MakeOwner, db: Database
) -> None:
    owner = await make_owner(["pending"])
    record = await one_domain(db, owner, "verified", verified_at=VERIFIED_AT)

    response = await patch(client, record.id, headers=owner.headers, body={"status": "failed"})

    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"domain"}
    domain = body["domain"]
    assert set(domain) == DOMAIN_KEYS
    assert domain["id"] == str(record.id)
    assert domain["user_id"] == str(owner.user_id)
    assert domain["domain"] == record.domain
    assert domain["agentmail_domain_id"] == record.agentmail_domain_id
    assert domain["status"] == "failed"
    assert domain["dns_records"] == [
        {"type": r.type, "name": r.name, "value": r.value, "priority": r.priority}
        for r in record.dns_records
    ]
    assert domain["dns_records"], "the sample domain has DNS records"
    for dns in domain["dns_records"]:
        assert set(dns) == RECORD_KEYS
        assert dns["priority"] is None or type(dns["priority"]) is int
    assert any(type(dns["priority"]) is int for dns in domain["dns_records"])
    assert parse_timestamp(domain["verified_at"]) == VERIFIED_AT
    assert parse_timestamp(domain["created_at"]) == record.created_at
    updated_at = parse_timestamp(domain["updated_at"])
    assert updated_at > record.updated_at

    row = await db_row(db, record.id)
    assert row["status"] == "failed"
    assert row["verified_at"] == VERIFIED_AT
    assert row["updated_at"] == updated_at
    assert row["created_at"] == record.created_at


async def test_success_keeps_a_null_verified_at(
    client: httpx.AsyncClient, make_owner: MakeOwner, db: Database
) -> None:
    owner = await make_owner(["pending"])
    record = owner.domains[0]
    assert record.verified_at is None

    response = await patch(client, record.id, headers=owner.headers, body={"status": "verifying"})

    assert response.status_code == 200, response.text
    assert response.json()["domain"]["verified_at"] is None
    row = await db_row(db, record.id)
    assert row["status"] == "verifying"
    assert row["verified_at"] is None


async def test_every_change_moves_updated_at_forward(
    client: httpx.AsyncClient, make_owner: MakeOwner, db: Database
) -> None:
    owner = await make_owner(["pending"])
    record = await one_domain(db, owner, "verified", verified_at=VERIFIED_AT)
    previous = record.updated_at

    for status in ("verifying", "failed", "pending", "failed"):
        response = await patch(client, record.id, headers=owner.headers, body={"status": status})
        assert response.status_code == 200, response.text
        domain = response.json()["domain"]
        assert domain["status"] == status
        updated_at = parse_timestamp(domain["updated_at"])
        assert updated_at > previous
        assert parse_timestamp(domain["verified_at"]) == VERIFIED_AT
        row = await db_row(db, record.id)
        assert (row["status"], row["updated_at"], row["verified_at"]) == (
            status,
            updated_at,
            VERIFIED_AT,
        )
        previous = updated_at


@pytest.mark.parametrize("status", ALLOWED)
async def test_setting_the_current_status_is_a_no_op(
    client: httpx.AsyncClient, make_owner: MakeOwner, db: Database, status: str
) -> None:
    owner = await make_owner(["pending"])
    record = await one_domain(db, owner, status, verified_at=VERIFIED_AT)

    response = await patch(client, record.id, headers=owner.headers, body={"status": status})

    assert response.status_code == 200, response.text
    domain = response.json()["domain"]
    assert set(domain) == DOMAIN_KEYS
    assert domain["status"] == status
    assert parse_timestamp(domain["updated_at"]) == record.updated_at
    assert parse_timestamp(domain["verified_at"]) == VERIFIED_AT
    row = await db_row(db, record.id)
    assert row["status"] == status
    assert row["updated_at"] == record.updated_at


async def test_repeating_a_change_leaves_updated_at_alone(
    client: httpx.AsyncClient, make_owner: MakeOwner, db: Database
) -> None:
    owner = await make_owner(["pending"])
    record = owner.domains[0]

    first = await patch(client, record.id, headers=owner.headers, body={"status": "failed"})
    second = await patch(client, record.id, headers=owner.headers, body={"status": "failed"})

    assert first.status_code == second.status_code == 200
    assert first.json() == second.json()
    changed_at = parse_timestamp(first.json()["domain"]["updated_at"])
    assert changed_at > record.updated_at
    assert (await db_row(db, record.id))["updated_at"] == changed_at


@pytest.mark.parametrize(
    ("current", "target"),
    [(c, t) for c in STATUSES for t in ALLOWED if c != t],
)
async def test_any_current_status_may_be_overridden(
    client: httpx.AsyncClient,
    make_owner: MakeOwner,
    db: Database,
    services: Services,
    current: str,
    target: str,
) -> None:
    owner = await make_owner(["pending"])
    verified_at = VERIFIED_AT if current == "verified" else None
    record = await one_domain(db, owner, current, verified_at=verified_at)

    response = await patch(client, record.id, headers=owner.headers, body={"status": target})

    assert response.status_code == 200, response.text
    assert response.json()["domain"]["status"] == target
    stored = await services.domains.find(owner.principal, record.id)
    assert stored is not None
    assert stored.status.value == target
    assert stored.verified_at == verified_at
    assert stored.updated_at > record.updated_at


async def test_upper_case_ids_are_accepted(
    client: httpx.AsyncClient, make_owner: MakeOwner, db: Database
) -> None:
    owner = await make_owner(["pending"])
    record = owner.domains[0]

    response = await patch(
        client, str(record.id).upper(), headers=owner.headers, body={"status": "failed"}
    )

    assert response.status_code == 200, response.text
    assert response.json()["domain"]["id"] == str(record.id)
    assert (await db_row(db, record.id))["status"] == "failed"


# --- 400 -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"{",
        b"not json",
        b"{'status': 'failed'}",
        b'{"status": "failed"',
        b'{"status": "failed"} trailing',
        b"\xff\xfe",
        b'{"status": NaN}',
    ],
    ids=["empty", "brace", "words", "single-quotes", "unterminated", "trailing", "bytes", "nan"],
)
async def test_body_that_is_not_json(
    client: httpx.AsyncClient, make_owner: MakeOwner, db: Database, content: bytes
) -> None:
    owner = await make_owner(["pending"])
    record = owner.domains[0]

    response = await patch(
        client,
        record.id,
        headers={**owner.headers, "Content-Type": "application/json"},
        content=content,
    )

    assert_error(response, 400, "invalid_json")
    assert (await db_row(db, record.id))["status"] == "pending"


@pytest.mark.parametrize(
    "content",
    [b"[]", b'[{"status": "failed"}]', b'"failed"', b"1", b"1.5", b"null", b"true"],
    ids=["array", "array-of-object", "string", "number", "float", "null", "bool"],
)
async def test_json_that_is_not_an_object(
    client: httpx.AsyncClient, make_owner: MakeOwner, db: Database, content: bytes
) -> None:
    owner = await make_owner(["pending"])
    record = owner.domains[0]

    response = await patch(
        client,
        record.id,
        headers={**owner.headers, "Content-Type": "application/json"},
        content=content,
    )

    assert_error(response, 400, "invalid_json")
    assert (await db_row(db, record.id))["status"] == "pending"


# --- 401 -----------------------------------------------------------------------------------

_BAD_AUTHORIZATION: dict[str, Callable[[Owner], str | None]] = {
    "no-header": lambda o: None,
    "empty-header": lambda o: "",
    "basic-scheme": lambda o: "Basic dXNlcjpwYXNzd29yZA==",
    "token-scheme-with-real-key": lambda o: f"Token {o.key}",
    "bare-real-key": lambda o: o.key,
    "empty-bearer": lambda o: "Bearer",
    "blank-bearer": lambda o: "Bearer    ",
    "unknown-api-key": lambda o: "Bearer pk_live_" + uuid.uuid4().hex + uuid.uuid4().hex,
    "truncated-api-key": lambda o: f"Bearer {o.key[:-1]}",
    "bare-prefix": lambda o: "Bearer pk_live_",
    "malformed-jwt": lambda o: "Bearer not.a.jwt",
    "expired-jwt": lambda o: (
        "Bearer " + session_token(o.user_id, exp=datetime.now(UTC) - timedelta(hours=1))
    ),
}


@pytest.mark.parametrize("case", list(_BAD_AUTHORIZATION))
async def test_bad_credentials_are_unauthorized(
    client: httpx.AsyncClient, make_owner: MakeOwner, db: Database, case: str
) -> None:
    owner = await make_owner(["pending"])
    record = owner.domains[0]
    authorization = _BAD_AUTHORIZATION[case](owner)
    headers = {} if authorization is None else {"Authorization": authorization}

    response = await patch(client, record.id, headers=headers, body={"status": "failed"})

    assert_error(response, 401, "unauthorized")
    assert response.headers["www-authenticate"].split()[0] == "Bearer"
    row = await db_row(db, record.id)
    assert (row["status"], row["updated_at"]) == ("pending", record.updated_at)


async def test_revoked_key_is_unauthorized(
    client: httpx.AsyncClient, make_owner: MakeOwner, db: Database, services: Services
) -> None:
    owner = await make_owner(["pending"])
    record = owner.domains[0]
    works = await patch(client, record.id, headers=owner.headers, body={"status": "verifying"})
    assert works.status_code == 200, works.text

    (key,) = await services.api_keys.list(owner.user_id)
    await services.api_keys.revoke(key.id)
    response = await patch(client, record.id, headers=owner.headers, body={"status": "failed"})

    assert_error(response, 401, "unauthorized")
    assert response.headers["www-authenticate"].split()[0] == "Bearer"
    assert (await db_row(db, record.id))["status"] == "verifying"


async def test_unauthorized_before_anything_about_the_request(
    client: httpx.AsyncClient, make_owner: MakeOwner
) -> None:
    """Without credentials, a caller learns nothing: not whether the id exists, nor the body."""
    owner = await make_owner(["pending"])
    cases = [
        (owner.domains[0].id, {"status": "failed"}),
        (uuid.uuid4(), {"status": "failed"}),
        (owner.domains[0].id, {"status": "done"}),
    ]
    for domain_id, body in cases:
        response = await patch(client, domain_id, body=body)
        assert_error(response, 401, "unauthorized")


# --- 404 -----------------------------------------------------------------------------------


async def test_unknown_id_is_not_found(client: httpx.AsyncClient, make_owner: MakeOwner) -> None:
    owner = await make_owner(["pending"])

    response = await patch(client, uuid.uuid4(), headers=owner.headers, body={"status": "failed"})

    assert_error(response, 404, "not_found")


async def test_another_users_domain_is_not_found_and_unchanged(
    client: httpx.AsyncClient, make_owner: MakeOwner, services: Services
) -> None:
    alice = await make_owner(["pending"])
    bob = await make_owner(["pending"])
    target = alice.domains[0]

    response = await patch(client, target.id, headers=bob.headers, body={"status": "failed"})
    unknown_id = uuid.uuid4()
    unknown = await patch(client, unknown_id, headers=bob.headers, body={"status": "failed"})

    message = assert_error(response, 404, "not_found")
    unknown_message = assert_error(unknown, 404, "not_found")
    # Existence is not revealed: both answers read the same, up to the id echoed back.
    assert message.replace(str(target.id), "<id>") == unknown_message.replace(
        str(unknown_id), "<id>"
    )
    assert await services.domains.find(alice.principal, target.id) == target


# --- 405 -----------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["GET", "PUT", "POST", "DELETE"])
async def test_other_methods_are_not_allowed(
    client: httpx.AsyncClient, make_owner: MakeOwner, db: Database, method: str
) -> None:
    owner = await make_owner(["pending"])
    record = owner.domains[0]
    content = None if method in {"GET", "DELETE"} else orjson.dumps({"status": "failed"})
    headers = {**owner.headers, "Content-Type": "application/json"}

    response = await client.request(method, path(record.id), headers=headers, content=content)

    assert_error(response, 405, "method_not_allowed")
    allowed = {m.strip().upper() for m in response.headers["allow"].split(",")}
    assert allowed == {"PATCH"}
    row = await db_row(db, record.id)
    assert (row["status"], row["updated_at"]) == ("pending", record.updated_at)


# --- 413 -----------------------------------------------------------------------------------

LIMIT = 64


def padded(size: int) -> bytes:
    """A valid body of exactly `size` bytes, so only its size can be wrong."""
    body = b'{"status": "failed"}'
    return body + b" " * (size - len(body))


async def chunks(data: bytes, size: int = 16) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


@pytest.fixture
async def small_body_client(database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(make_settings(database_url, max_body_bytes=LIMIT))
    async with running(app) as c:
        yield c


async def test_body_over_the_limit_with_content_length(
    small_body_client: httpx.AsyncClient, make_owner: MakeOwner, db: Database
) -> None:
    owner = await make_owner(["pending"])
    record = owner.domains[0]

    response = await patch(
        small_body_client,
        record.id,
        headers={**owner.headers, "Content-Type": "application/json"},
        content=padded(LIMIT + 1),
    )

    assert_error(response, 413, "payload_too_large")
    assert (await db_row(db, record.id))["status"] == "pending"


async def test_body_over_the_limit_sent_chunked(
    small_body_client: httpx.AsyncClient, make_owner: MakeOwner, db: Database
) -> None:
    owner = await make_owner(["pending"])
    record = owner.domains[0]
    sent: list[httpx.Request] = []

    async def remember(request: httpx.Request) -> None:
        sent.append(request)

    small_body_client.event_hooks["request"].append(remember)
    try:
        response = await patch(
            small_body_client,
            record.id,
            headers={**owner.headers, "Content-Type": "application/json"},
            content=chunks(padded(LIMIT * 4)),
        )
    finally:
        small_body_client.event_hooks["request"].remove(remember)

    assert "content-length" not in sent[0].headers
    assert_error(response, 413, "payload_too_large")
    assert (await db_row(db, record.id))["status"] == "pending"


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
async def test_body_at_the_limit_is_accepted(
    small_body_client: httpx.AsyncClient, make_owner: MakeOwner, db: Database, chunked: bool
) -> None:
    owner = await make_owner(["pending"])
    record = owner.domains[0]
    content = chunks(padded(LIMIT)) if chunked else padded(LIMIT)

    response = await patch(
        small_body_client,
        record.id,
        headers={**owner.headers, "Content-Type": "application/json"},
        content=content,
    )

    assert response.status_code == 200, response.text
    assert (await db_row(db, record.id))["status"] == "failed"


# --- 415 -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "content_type",
    [
        "text/plain",
        None,
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "text/json",
    ],
)
async def test_body_that_is_not_application_json(
    client: httpx.AsyncClient, make_owner: MakeOwner, db: Database, content_type: str | None
) -> None:
    owner = await make_owner(["pending"])
    record = owner.domains[0]
    headers = dict(owner.headers)
    if content_type is not None:
        headers["Content-Type"] = content_type
    sent: list[httpx.Request] = []

    async def remember(request: httpx.Request) -> None:
        sent.append(request)

    client.event_hooks["request"].append(remember)
    try:
        response = await patch(
            client, record.id, headers=headers, content=orjson.dumps({"status": "failed"})
        )
    finally:
        client.event_hooks["request"].remove(remember)

    if content_type is None:
        assert "content-type" not in sent[0].headers
    assert_error(response, 415, "unsupported_media_type")
    assert (await db_row(db, record.id))["status"] == "pending"


@pytest.mark.parametrize(
    "content_type", ["application/json; charset=utf-8", "Application/JSON", "application/json"]
)
async def test_json_media_type_with_parameters_is_accepted(
    client: httpx.AsyncClient, make_owner: MakeOwner, content_type: str
) -> None:
    owner = await make_owner(["pending"])
    response = await patch(
        client,
        owner.domains[0].id,
        headers={**owner.headers, "Content-Type": content_type},
        content=orjson.dumps({"status": "failed"}),
    )
    assert response.status_code == 200, response.text


# --- 422 -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw_id",
    [
        "abc",
        "12345678-1234-0234-8234-123456789abc",
        "12345678-1234-9234-8234-123456789abc",
        "12345678-1234-4234-c234-123456789abc",
        "12345678-1234-4234-7234-123456789abc",
        "123456781234423482341234567890ab",
        "12345678-1234-4234-8234-123456789abcd",
        "g2345678-1234-4234-8234-123456789abc",
        "12345678-1234-4234-8234-123456789abc%0A",
        "urn:uuid:12345678-1234-4234-8234-123456789abc",
    ],
    ids=[
        "abc",
        "version-0",
        "version-9",
        "variant-c",
        "variant-7",
        "no-hyphens",
        "too-long",
        "not-hex",
        "trailing-newline",
        "urn",
    ],
)
async def test_id_not_matching_the_pattern(
    client: httpx.AsyncClient, make_owner: MakeOwner, raw_id: str
) -> None:
    owner = await make_owner(["pending"])

    response = await patch(client, raw_id, headers=owner.headers, body={"status": "failed"})

    assert_error(response, 422, "validation_error")


@pytest.mark.parametrize(
    "raw_id", ["00000000-0000-0000-0000-000000000000", "ffffffff-ffff-ffff-ffff-ffffffffffff"]
)
async def test_nil_and_max_uuids_are_valid_ids(
    client: httpx.AsyncClient, make_owner: MakeOwner, raw_id: str
) -> None:
    owner = await make_owner(["pending"])

    response = await patch(client, raw_id, headers=owner.headers, body={"status": "failed"})

    assert_error(response, 404, "not_found")


async def test_every_allowed_version_and_variant_passes_validation(
    client: httpx.AsyncClient, make_owner: MakeOwner
) -> None:
    """Versions 1-8 with the RFC variant pass validation (and answer 404 when unknown)."""
    owner = await make_owner(["pending"])
    for version in "12345678":
        for variant in "89abAB":
            raw_id = f"12345678-1234-{version}234-{variant}234-123456789abc"
            response = await patch(client, raw_id, headers=owner.headers, body={"status": "failed"})
            assert_error(response, 404, "not_found")


async def test_status_missing(
    client: httpx.AsyncClient, make_owner: MakeOwner, db: Database
) -> None:
    owner = await make_owner(["pending"])
    record = owner.domains[0]

    response = await patch(client, record.id, headers=owner.headers, body={})

    message = assert_error(response, 422, "validation_error")
    assert "status" in message
    assert (await db_row(db, record.id))["status"] == "pending"


@pytest.mark.parametrize(
    "status",
    ["done", 1, None, "FAILED", "Pending", "", " failed", ["failed"], {"value": "failed"}, True],
)
async def test_status_not_allowed(
    client: httpx.AsyncClient, make_owner: MakeOwner, db: Database, status: object
) -> None:
    owner = await make_owner(["pending"])
    record = owner.domains[0]

    response = await patch(client, record.id, headers=owner.headers, body={"status": status})

    message = assert_error(response, 422, "validation_error")
    for allowed in ALLOWED:
        assert allowed in message
    row = await db_row(db, record.id)
    assert (row["status"], row["updated_at"]) == ("pending", record.updated_at)


@pytest.mark.parametrize("current", ["pending", "verifying", "failed"])
async def test_status_verified_names_the_verify_operation(
    client: httpx.AsyncClient, make_owner: MakeOwner, db: Database, current: str
) -> None:
    owner = await make_owner([current])
    record = owner.domains[0]

    response = await patch(client, record.id, headers=owner.headers, body={"status": "verified"})
    generic = await patch(client, record.id, headers=owner.headers, body={"status": "done"})

    message = assert_error(response, 422, "validation_error")
    assert re.search(r"verify(?!ing)", message, re.IGNORECASE), message
    assert message != assert_error(generic, 422, "validation_error")
    row = await db_row(db, record.id)
    assert (row["status"], row["updated_at"], row["verified_at"]) == (
        current,
        record.updated_at,
        None,
    )


@pytest.mark.parametrize(
    "body",
    [
        {"status": "failed", "note": "timeout"},
        {"status": "failed", "verified_at": None},
        {"state": "failed"},
        {"status": "failed", "Status": "failed"},
    ],
    ids=["extra-note", "extra-field-of-the-row", "misspelt", "case-variant"],
)
async def test_unknown_members(
    client: httpx.AsyncClient, make_owner: MakeOwner, db: Database, body: dict[str, object]
) -> None:
    owner = await make_owner(["pending"])
    record = owner.domains[0]

    response = await patch(client, record.id, headers=owner.headers, body=body)

    assert_error(response, 422, "validation_error")
    assert (await db_row(db, record.id))["status"] == "pending"


# --- 429 -----------------------------------------------------------------------------------


def assert_retry_after(response: httpx.Response, most: int) -> None:
    value = response.headers["retry-after"]
    assert value.isdigit(), value
    assert 1 <= int(value) <= most


async def test_too_many_requests_are_rate_limited(
    database_url: str, make_owner: MakeOwner, db: Database
) -> None:
    owner = await make_owner(["pending"])
    record = owner.domains[0]
    app = create_app(make_settings(database_url, rate_limit="2/minute"))

    async with running(app) as c:
        first = await patch(c, record.id, headers=owner.headers, body={"status": "failed"})
        second = await patch(c, record.id, headers=owner.headers, body={"status": "verifying"})
        third = await patch(c, record.id, headers=owner.headers, body={"status": "pending"})

    assert (first.status_code, second.status_code) == (200, 200)
    assert_error(third, 429, "rate_limited")
    assert_retry_after(third, 60)
    assert (await db_row(db, record.id))["status"] == "verifying"


async def test_rate_limit_is_per_user(database_url: str, make_owner: MakeOwner) -> None:
    alice = await make_owner(["pending"])
    bob = await make_owner(["pending"])
    app = create_app(make_settings(database_url, rate_limit="1/minute"))

    async with running(app) as c:
        first = await patch(
            c, alice.domains[0].id, headers=alice.headers, body={"status": "failed"}
        )
        limited = await patch(
            c, alice.domains[0].id, headers=alice.headers, body={"status": "pending"}
        )
        other = await patch(c, bob.domains[0].id, headers=bob.headers, body={"status": "failed"})

    assert first.status_code == 200, first.text
    assert_error(limited, 429, "rate_limited")
    assert other.status_code == 200, other.text


async def test_anonymous_failures_are_rate_limited(
    database_url: str, make_owner: MakeOwner, db: Database
) -> None:
    owner = await make_owner(["pending"])
    record = owner.domains[0]
    app = create_app(make_settings(database_url, rate_limit_anonymous="2/minute"))
    bad = {"Authorization": "Bearer pk_live_" + uuid.uuid4().hex}

    async with running(app) as c:
        responses = [
            await patch(c, record.id, body={"status": "failed"}),
            await patch(c, record.id, headers=bad, body={"status": "failed"}),
            await patch(c, record.id, headers=bad, body={"status": "failed"}),
        ]

    assert_error(responses[0], 401, "unauthorized")
    assert_error(responses[1], 401, "unauthorized")
    assert_error(responses[2], 429, "rate_limited")
    assert_retry_after(responses[2], 60)
    assert (await db_row(db, record.id))["status"] == "pending"


# --- 503 -----------------------------------------------------------------------------------

UNREACHABLE_DATABASE = "postgresql+asyncpg://postgres@127.0.0.1:1/postgres"


@pytest.fixture
async def unreachable_client() -> AsyncIterator[httpx.AsyncClient]:
    settings = make_settings(UNREACHABLE_DATABASE, db_connect_timeout=1)
    async with running(create_app(settings)) as c:
        yield c


@pytest.mark.parametrize("via", ["api_key", "jwt"])
async def test_database_unreachable_is_unavailable(
    unreachable_client: httpx.AsyncClient, make_owner: MakeOwner, db: Database, via: str
) -> None:
    owner = await make_owner(["pending"])
    record = owner.domains[0]
    headers = owner.headers if via == "api_key" else bearer(session_token(owner.user_id))

    response = await patch(
        unreachable_client, record.id, headers=headers, body={"status": "failed"}
    )

    assert_error(response, 503, "unavailable")
    assert_retry_after(response, 3600)
    assert "127.0.0.1" not in response.text
    row = await db_row(db, record.id)
    assert (row["status"], row["updated_at"]) == ("pending", record.updated_at)
