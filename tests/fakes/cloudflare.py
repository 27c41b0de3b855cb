"""An in-memory Cloudflare API v4 (zones and DNS records) for the official SDK (5.9.0).

Every answer is the v4 envelope `{success, errors: [{code, message}], messages, result}`, lists
add `result_info: {page, per_page, count, total_count, total_pages}`. Served under `/client/v4`:

- `GET /zones` with `name` (exact, or `contains:` / `starts_with:` / `ends_with:` prefixes),
  `status`, `page`, `per_page` (default 20), `order`, `direction`.
- `GET /zones/{zone_id}`.
- `GET /zones/{zone_id}/dns_records` with the filters the SDK sends: `type`, `name` (also
  `name.exact|contains|startswith|endswith`), `content` (same operators), `comment.*`,
  `proxied`, `match=all|any`, `order`, `direction`, `page`, `per_page` (default 100; the SDK
  sends pages as floats like `2.0`).
- `POST /zones/{zone_id}/dns_records` with `type, name, content, ttl (1 = automatic), proxied,
  priority, comment, tags`. Names are completed with the zone (`@` is the apex). Clashes answer
  HTTP 400 with `success: false`, as Cloudflare does:
  81053 "An A, AAAA, or CNAME record with that host already exists." (a new CNAME where an A,
  AAAA or CNAME record has the name, identical CNAMEs included), 81054 "A CNAME record with that
  host already exists." (any other record where a CNAME has the name), 81058 "An identical record
  already exists.". TTL outside 1 or 60..86400 answers 9021, a proxied TXT/MX 9004.
- `GET /zones/{zone_id}/dns_records/{id}`, `DELETE /zones/{zone_id}/dns_records/{id}` (result
  `{id}`; an unknown record is 404 with 81044 "Record does not exist.").
- An unknown zone is 404 with 7003 / 7000. Auth is `Authorization: Bearer <token>`: missing
  answers 400 with 9106, a wrong token 403 with 10000 "Authentication error".
- `GET /user/tokens/verify` -> `{id, status}` for the token sent. Besides `api_token` (which
  reads every zone), `add_token` makes tokens that read only some zones: other zones are
  left out of `GET /zones` and answer 403 with 10000, as Cloudflare does.
- Injected rate limits are 429 with `retry-after` and code 971; other injected failures carry the
  HTTP status as their error code (e.g. `{"code": 503, "message": "Service Unavailable"}`).
"""

from __future__ import annotations

import ipaddress
import json
import math
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.fakes.server import FakeProvider

PREFIX = "/client/v4"
TYPES = frozenset({"A", "AAAA", "CNAME", "MX", "TXT", "NS", "CAA", "SRV"})
PROXIABLE = frozenset({"A", "AAAA", "CNAME"})
ADDRESS_TYPES = frozenset({"A", "AAAA", "CNAME"})

CNAME_OVER_EXISTING = 81053
EXISTING_CNAME = 81054
IDENTICAL_RECORD = 81058
RECORD_NOT_FOUND = 81044
RATE_LIMITED = 971

_MESSAGES = {
    CNAME_OVER_EXISTING: "An A, AAAA, or CNAME record with that host already exists.",
    EXISTING_CNAME: "A CNAME record with that host already exists.",
    IDENTICAL_RECORD: "An identical record already exists.",
    RECORD_NOT_FOUND: "Record does not exist.",
}


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def envelope(
    result: Any = None,
    *,
    errors: list[dict[str, Any]] | None = None,
    result_info: dict[str, int] | None = None,
) -> dict[str, Any]:
    """The Cloudflare v4 envelope."""
    body: dict[str, Any] = {
        "success": not errors,
        "errors": errors or [],
        "messages": [],
        "result": result,
    }
    if result_info is not None:
        body["result_info"] = result_info
    return body


def _fail(
    status: int,
    code: int,
    message: str | None = None,
    *,
    chain: list[dict[str, Any]] | None = None,
    more: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    error: dict[str, Any] = {"code": code, "message": message or _MESSAGES[code]}
    if chain:
        error["error_chain"] = chain
    errors = [error, *(more or [])]
    return JSONResponse(envelope(errors=errors), status, headers=headers)


def _validation(code: int, message: str) -> JSONResponse:
    return _fail(400, 1004, "DNS Validation Error", chain=[{"code": code, "message": message}])


def _number(value: str | None, default: int) -> int:
    if value is None:
        return default
    return int(float(value))


def _page(items: list[dict[str, Any]], request: Request, default: int) -> JSONResponse:
    params = request.query_params
    try:
        page = max(1, _number(params.get("page"), 1))
        per_page = max(1, _number(params.get("per_page"), default))
    except ValueError:
        return _fail(400, 1004, "page and per_page must be numbers")
    chunk = items[(page - 1) * per_page : page * per_page]
    info = {
        "page": page,
        "per_page": per_page,
        "count": len(chunk),
        "total_count": len(items),
        "total_pages": math.ceil(len(items) / per_page),
    }
    return JSONResponse(envelope(chunk, result_info=info))


def _text_match(value: str, operator: str, wanted: str) -> bool:
    value, wanted = value.lower(), wanted.lower()
    if operator in ("", "exact"):
        return value == wanted
    if operator == "contains":
        return wanted in value
    if operator in ("startswith", "starts_with"):
        return value.startswith(wanted)
    if operator in ("endswith", "ends_with"):
        return value.endswith(wanted)
    if operator == "present":
        return value != ""
    if operator == "absent":
        return value == ""
    raise ValueError(operator)


@dataclass
class _Zone:
    id: str
    name: str
    status: str
    created_on: datetime
    account_id: str
    records: dict[str, dict[str, Any]] = field(default_factory=dict)

    def json(self) -> dict[str, Any]:
        created = _iso(self.created_on)
        return {
            "id": self.id,
            "name": self.name,
            "status": self.status,
            "paused": False,
            "type": "full",
            "development_mode": 0,
            "name_servers": ["ada.ns.cloudflare.com", "bob.ns.cloudflare.com"],
            "original_name_servers": [],
            "original_registrar": None,
            "original_dnshost": None,
            "created_on": created,
            "modified_on": created,
            "activated_on": created,
            "meta": {
                "step": 4,
                "custom_certificate_quota": 0,
                "page_rule_quota": 3,
                "phishing_detected": False,
            },
            "owner": {"id": None, "type": "user", "email": None},
            "account": {"id": self.account_id, "name": "Fake account"},
            "tenant": {"id": None, "name": None},
            "tenant_unit": {"id": None},
            "permissions": ["#dns_records:edit", "#dns_records:read", "#zone:read"],
            "plan": {
                "id": "0feeeeeeeeeeeeeeeeeeeeeeeeeeeeee",
                "name": "Free Website",
                "price": 0,
                "currency": "USD",
                "frequency": "",
                "is_subscribed": False,
                "can_subscribe": False,
                "legacy_id": "free",
                "legacy_discount": False,
                "externally_managed": False,
            },
        }

    def full_name(self, name: str) -> str:
        name = name.strip().rstrip(".").lower()
        if name in ("", "@"):
            return self.name
        if name == self.name or name.endswith(f".{self.name}"):
            return name
        return f"{name}.{self.name}"


class FakeCloudflare(FakeProvider):
    """In-memory Cloudflare zones and DNS records served on loopback for `AsyncCloudflare`.

    Point the SDK at `fake.url + "/client/v4"` (`AsyncCloudflare(api_token="test",
    base_url=..., max_retries=0)`). Construction: `FakeCloudflare(api_token="test")`; use it as a
    context manager or `start()` / `stop()`.

    Test controls, besides the inherited `fail_next`, `rate_limit_next(n, retry_after)`,
    `delay_next`, `calls`, `counts`, `requests` and `reset`:

    - `add_zone(name) -> zone_id`: a zone the token can see.
    - `add_record(zone_id, type, name, content, ...) -> record_id`: seed a record without the
      clash rules (to set up a clash, or a state Cloudflare would refuse).
    - `records(zone_id)`: the zone's records as the API shows them, oldest first.
    - `zone_id(name)`: the id of a zone by name, or None.
    - `add_token(token, zone_ids, status="active")`: a token limited to those zones.
    """

    server_name = "fake-cloudflare"

    def __init__(self, *, api_token: str = "test") -> None:  # noqa: S107
        super().__init__()
        self.api_token = api_token
        self.account_id = uuid.uuid4().hex
        self._zones: dict[str, _Zone] = {}
        # token -> (token id, status, the zone ids it reads; None: every zone)
        self._tokens: dict[str, tuple[str, str, frozenset[str] | None]] = {
            api_token: (uuid.uuid4().hex, "active", None)
        }

    # -- test controls ----------------------------------------------------------------------

    def add_zone(self, name: str, *, status: str = "active") -> str:
        """Create a zone called `name`; returns its 32-hex id."""
        zone = _Zone(
            id=uuid.uuid4().hex,
            name=name.rstrip(".").lower(),
            status=status,
            created_on=datetime.now(UTC),
            account_id=self.account_id,
        )
        with self._lock:
            if any(z.name == zone.name for z in self._zones.values()):
                raise ValueError(f"zone {zone.name} already exists")
            self._zones[zone.id] = zone
        return zone.id

    def add_token(self, token: str, zone_ids: list[str], *, status: str = "active") -> str:
        """A token that reads only `zone_ids`; returns its id."""
        token_id = uuid.uuid4().hex
        with self._lock:
            self._tokens[token] = (token_id, status, frozenset(zone_ids))
        return token_id

    def _readable(self, request: Request) -> frozenset[str] | None:
        token = request.headers.get("authorization", "").removeprefix("Bearer ")
        return self._tokens[token][2]

    def zone_id(self, name: str) -> str | None:
        """The id of the zone called `name`, or None."""
        with self._lock:
            return next((z.id for z in self._zones.values() if z.name == name.lower()), None)

    def add_record(
        self,
        zone_id: str,
        type: str,
        name: str,
        content: str,
        *,
        ttl: int = 1,
        proxied: bool = False,
        priority: int | None = None,
        comment: str | None = None,
    ) -> str:
        """Seed a record, bypassing validation and clash rules; returns its id."""
        with self._lock:
            zone = self._zones[zone_id]
            record = self._record(
                zone,
                type.upper(),
                zone.full_name(name),
                content,
                ttl,
                proxied,
                priority,
                comment,
                [],
            )
            zone.records[record["id"]] = record
            return str(record["id"])

    def records(self, zone_id: str) -> list[dict[str, Any]]:
        """The zone's records as the API shows them, oldest first."""
        with self._lock:
            return [dict(r) for r in self._zones[zone_id].records.values()]

    def reset(self) -> None:
        """Forget zones, records, faults and the request log."""
        with self._lock:
            super().reset()
            self._zones.clear()
            self._tokens = {self.api_token: self._tokens[self.api_token]}

    # -- internals --------------------------------------------------------------------------

    @staticmethod
    def _record(
        zone: _Zone,
        type_: str,
        name: str,
        content: str,
        ttl: int,
        proxied: bool,
        priority: int | None,
        comment: str | None,
        tags: list[str],
    ) -> dict[str, Any]:
        now = _iso(datetime.now(UTC))
        record: dict[str, Any] = {
            "id": uuid.uuid4().hex,
            "name": name,
            "type": type_,
            "content": content,
            "proxiable": type_ in PROXIABLE,
            "proxied": proxied,
            "ttl": ttl,
            "settings": {},
            "meta": {},
            "comment": comment,
            "tags": tags,
            "created_on": now,
            "modified_on": now,
        }
        if comment is not None:
            record["comment_modified_on"] = now
        if type_ == "MX":
            record["priority"] = priority
        return record

    def _error_response(self, status: int, *, headers: dict[str, str] | None = None) -> Response:
        if status == 429:
            return _fail(
                429,
                RATE_LIMITED,
                "Please wait and consider throttling your request speed",
                headers=headers,
            )
        phrase = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "Error"
        return _fail(status, status, phrase, headers=headers)

    def _check_auth(self, request: Request) -> Response | None:
        header = request.headers.get("authorization")
        if header is None:
            return _fail(400, 9106, "Missing X-Auth-Key, X-Auth-Email or Authorization headers")
        token = header.removeprefix("Bearer ")
        if not header.startswith("Bearer ") or token not in self._tokens:
            return _fail(403, 10000, "Authentication error")
        if (
            self._tokens[token][1] != "active"
            and request.url.path != f"{PREFIX}/user/tokens/verify"
        ):
            return _fail(403, 10000, "Authentication error")
        return None

    def _zone(self, request: Request) -> _Zone | Response:
        zone = self._zones.get(request.path_params["zone_id"])
        readable = self._readable(request)
        if zone is not None and readable is not None and zone.id not in readable:
            return _fail(403, 10000, "Authentication error")
        if zone is None:
            return _fail(
                404,
                7003,
                f"Could not route to {request.url.path}, perhaps your object identifier is "
                "invalid?",
                more=[{"code": 7000, "message": "No route for that URI"}],
            )
        return zone

    # -- routes ---------------------------------------------------------------------------

    def build_app(self) -> Starlette:
        """The Starlette app, with the v4 routes under `/client/v4`."""
        e = self._endpoint
        zones = f"{PREFIX}/zones"
        records = f"{zones}/{{zone_id}}/dns_records"
        return Starlette(
            routes=[
                Route(f"{PREFIX}/user/tokens/verify", e(self._verify_token), methods=["GET"]),
                Route(zones, e(self._list_zones), methods=["GET"]),
                Route(zones + "/{zone_id}", e(self._get_zone), methods=["GET"]),
                Route(records, e(self._list_records), methods=["GET"]),
                Route(records, e(self._create_record), methods=["POST"]),
                Route(records + "/{record_id}", e(self._get_record), methods=["GET"]),
                Route(records + "/{record_id}", e(self._delete_record), methods=["DELETE"]),
                Route(
                    "/{path:path}",
                    e(self._unknown),
                    methods=["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"],
                ),
            ]
        )

    async def _unknown(self, request: Request) -> Response:
        return _fail(404, 7000, "No route for that URI")

    async def _verify_token(self, request: Request) -> Response:
        token = request.headers["authorization"].removeprefix("Bearer ")
        token_id, status, _ = self._tokens[token]
        return JSONResponse(envelope({"id": token_id, "status": status}))

    async def _list_zones(self, request: Request) -> Response:
        params = request.query_params
        readable = self._readable(request)
        with self._lock:
            zones = sorted(self._zones.values(), key=lambda z: z.name)
            if readable is not None:
                zones = [z for z in zones if z.id in readable]
            if (wanted := params.get("name")) is not None:
                operator, _, value = wanted.partition(":")
                if value and operator in ("contains", "starts_with", "ends_with"):
                    zones = [z for z in zones if _text_match(z.name, operator, value)]
                else:
                    zones = [z for z in zones if z.name == wanted.lower()]
            if (status := params.get("status")) is not None:
                zones = [z for z in zones if z.status == status]
            if params.get("order") == "status":
                zones.sort(key=lambda z: z.status)
            if params.get("direction") == "desc":
                zones.reverse()
            items = [z.json() for z in zones]
        return _page(items, request, default=20)

    async def _get_zone(self, request: Request) -> Response:
        with self._lock:
            zone = self._zone(request)
            if isinstance(zone, Response):
                return zone
            return JSONResponse(envelope(zone.json()))

    async def _list_records(self, request: Request) -> Response:
        params = request.query_params
        with self._lock:
            zone = self._zone(request)
            if isinstance(zone, Response):
                return zone
            items = list(zone.records.values())
        checks: list[tuple[str, str, str]] = []  # (field, operator, value)
        for key, value in params.multi_items():
            base, _, operator = key.partition(".")
            if base in ("name", "content", "comment") and operator in (
                "",
                "exact",
                "contains",
                "startswith",
                "endswith",
                "present",
                "absent",
            ):
                if base == "comment" and operator == "":
                    operator = "exact"
                checks.append((base, operator, value))
        for key in ("type", "proxied"):
            if (wanted := params.get(key)) is not None:
                checks.append((key, "exact", wanted))

        def passes(record: dict[str, Any], check: tuple[str, str, str]) -> bool:
            field_, operator, value = check
            if field_ == "proxied":
                return str(record["proxied"]).lower() == value.lower()
            if field_ == "name" and operator in ("", "exact"):
                value = zone.full_name(value)
            return _text_match(str(record.get(field_) or ""), operator, value)

        if params.get("match") == "any" and checks:
            items = [r for r in items if any(passes(r, c) for c in checks)]
        else:
            items = [r for r in items if all(passes(r, c) for c in checks)]
        order = params.get("order")
        if order in ("type", "name", "content", "ttl", "proxied"):
            items.sort(key=lambda r: str(r[order]))
        if params.get("direction") == "desc":
            items.reverse()
        return _page([dict(r) for r in items], request, default=100)

    async def _get_record(self, request: Request) -> Response:
        with self._lock:
            zone = self._zone(request)
            if isinstance(zone, Response):
                return zone
            record = zone.records.get(request.path_params["record_id"])
            if record is None:
                return _fail(404, RECORD_NOT_FOUND)
            return JSONResponse(envelope(dict(record)))

    async def _delete_record(self, request: Request) -> Response:
        with self._lock:
            zone = self._zone(request)
            if isinstance(zone, Response):
                return zone
            record = zone.records.pop(request.path_params["record_id"], None)
            if record is None:
                return _fail(404, RECORD_NOT_FOUND)
            return JSONResponse(envelope({"id": record["id"]}))

    async def _create_record(self, request: Request) -> Response:
        try:
            body = json.loads(await request.body() or b"null")
        except ValueError:
            body = None
        if not isinstance(body, dict):
            return _fail(400, 9207, "Request body is invalid.")
        type_ = str(body.get("type") or "").upper()
        if type_ not in TYPES:
            return _validation(9000, "DNS record type is invalid.")
        name, content = body.get("name"), body.get("content")
        if not isinstance(name, str) or not name.strip():
            return _validation(9005, "DNS name is invalid.")
        if not isinstance(content, str) or not content:
            return _validation(9007, "Content is required.")
        ttl = body.get("ttl", 1)
        if (
            not isinstance(ttl, int)
            or isinstance(ttl, bool)
            or not (ttl == 1 or 60 <= ttl <= 86400)
        ):
            return _validation(
                9021, "Invalid TTL. Must be between 60 and 86400 seconds, or 1 for Automatic."
            )
        proxied = body.get("proxied", False)
        if not isinstance(proxied, bool):
            return _validation(9003, "Invalid 'proxied' value, must be a boolean.")
        if proxied and type_ not in PROXIABLE:
            return _validation(9004, "This record type cannot be proxied.")
        priority = body.get("priority")
        if type_ == "MX" and not isinstance(priority, int | float):
            return _validation(9101, "Priority is required for MX records.")
        if type_ == "A" or type_ == "AAAA":
            try:
                address = ipaddress.ip_address(content)
            except ValueError:
                address = None
            if address is None or address.version != (4 if type_ == "A" else 6):
                kind = "IPv4" if type_ == "A" else "IPv6"
                return _validation(
                    9005 if type_ == "A" else 9006,
                    f"Content for {type_} record must be a valid {kind} address.",
                )
        comment = body.get("comment")
        tags = body.get("tags") or []
        with self._lock:
            zone = self._zone(request)
            if isinstance(zone, Response):
                return zone
            full = zone.full_name(name)
            same_name = [r for r in zone.records.values() if r["name"] == full]
            if type_ == "CNAME" and any(r["type"] in ADDRESS_TYPES for r in same_name):
                return _fail(400, CNAME_OVER_EXISTING)
            if type_ != "CNAME" and any(r["type"] == "CNAME" for r in same_name):
                return _fail(400, EXISTING_CNAME)
            if any(
                r["type"] == type_
                and r["content"] == content
                and (type_ != "MX" or r.get("priority") == priority)
                for r in same_name
            ):
                return _fail(400, IDENTICAL_RECORD)
            record = self._record(
                zone,
                type_,
                full,
                content,
                ttl,
                proxied,
                None if priority is None else int(priority),
                comment if isinstance(comment, str) else None,
                [str(t) for t in tags] if isinstance(tags, list) else [],
            )
            zone.records[record["id"]] = record
            return JSONResponse(envelope(dict(record)))
