"""An in-memory AgentMail (`/v0/domains`) speaking the wire format of the official SDK (2.0.18).

The shapes follow `agentmail.domains.types` (Domain, DomainItem, ListDomainsResponse,
VerificationRecord) and `agentmail.types.ErrorResponse` / `ValidationErrorResponse`; the status
codes follow what `agentmail.domains.raw_client` maps:

- `GET /v0/domains` -> 200 `{count, limit, next_page_token?, domains: [DomainItem]}`, newest first
  (`ascending=true` reverses), `page_token` is opaque; 400 on a bad `limit` / `page_token`.
- `GET /v0/domains/{id}` -> 200 Domain, 404 `NotFoundError`.
- `POST /v0/domains` -> 200 Domain. A `client_id` seen before answers 200 with the original domain
  (whatever the rest of the body says). An existing name without that `client_id` answers
  `duplicate_status` (409 by default; the SDK declares no error for it, so it surfaces as a plain
  `ApiError`, and note the SDK's own retry loop retries 409). 400 `ValidationError` on a bad body.
- `PATCH /v0/domains/{id}` -> 200 Domain (settings only; enabling inbound or subdomains on a
  VERIFIED domain sends it back to PENDING, as the SDK documents), 400 on an empty body, 404.
- `DELETE /v0/domains/{id}` -> 204, 404 when unknown.
- `POST /v0/domains/{id}/verify` -> 204 with no body, 404 when unknown. It starts the
  asynchronous check: the domain becomes VERIFYING, and a scripted sequence (see
  `script_verification`) is walked by the following GETs.
- Every route needs `Authorization: Bearer <api_key>`, else 401 `UnauthorizedError`.

Errors are `{name, code, message, fix, docs}`; `code` values are this fake's own stable strings
(`not_found`, `already_exists`, `validation_error`, `unauthorized`, `rate_limited`, ...).
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http import HTTPStatus
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.fakes.server import FakeProvider

STATUSES = frozenset({"NOT_STARTED", "PENDING", "INVALID", "FAILED", "VERIFYING", "VERIFIED"})
RECORD_STATUSES = frozenset({"MISSING", "INVALID", "VALID"})
DOCS = "https://docs.agentmail.to/api-reference/domains"

SPF_VALUE = "v=spf1 include:spf.agentmail.to ~all"
DKIM_TARGET = "agm._domainkey.agentmail.to"
DMARC_VALUE = "v=DMARC1; p=none;"
MX_VALUE = "inbound-smtp.agentmail.to"
TRACKING_TARGET = "track.agentmail.to"

_DOMAIN_RE = re.compile(r"^(?=.{1,253}$)(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
_FLAGS = ("feedback_enabled", "inbound_enabled", "subdomains_enabled", "tracking_enabled")

Step = str | tuple[str, str | None]


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _error_name(status: int) -> str:
    phrase = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "Error"
    name = "".join(word.capitalize() for word in re.split(r"[^A-Za-z]+", phrase) if word)
    return name if name.endswith("Error") else f"{name}Error"


def _error_code(status: int) -> str:
    phrase = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "error"
    return re.sub(r"[^a-z]+", "_", phrase.lower()).strip("_")


def error_body(
    name: str, code: str, message: str, fix: str | None = None, **extra: Any
) -> dict[str, Any]:
    """An AgentMail error body: `{name, code, message, fix, docs}` (plus `extra`)."""
    body: dict[str, Any] = {"name": name, "code": code, "message": message}
    if fix is not None:
        body["fix"] = fix
    body["docs"] = DOCS
    body.update(extra)
    return body


def _error(
    status: int,
    name: str,
    code: str,
    message: str,
    fix: str | None = None,
    *,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    return JSONResponse(error_body(name, code, message, fix, **extra), status, headers=headers)


def _validation_error(message: str, path: str) -> JSONResponse:
    return _error(
        400,
        "ValidationError",
        "validation_error",
        message,
        "Correct the request body and send it again.",
        errors=[{"path": [path], "message": message}],
    )


def _not_found(domain_id: str) -> JSONResponse:
    return _error(
        404,
        "NotFoundError",
        "not_found",
        f"Domain {domain_id} not found.",
        "Check the domain_id; list domains to see the ones this organization has.",
    )


def _normalise_steps(steps: Iterable[Step]) -> list[tuple[str, str | None]]:
    result: list[tuple[str, str | None]] = []
    for step in steps:
        status, reason = (step, None) if isinstance(step, str) else step
        if status not in STATUSES:
            raise ValueError(f"unknown status {status!r}; one of {sorted(STATUSES)}")
        if status == "VERIFIED" and reason is not None:
            raise ValueError("a VERIFIED domain has no reason")
        result.append((status, reason))
    return result


def _records_status_for(status: str, reason: str | None) -> str | None:
    """The record status a domain status implies, or None to leave records as they are."""
    if status == "VERIFIED" or (reason or "").startswith("ses_"):
        return "VALID"  # the records look right; only the sending infrastructure is pending
    if reason == "dns_records_missing":
        return "MISSING"
    if reason == "dns_records_invalid":
        return "INVALID"
    return None


@dataclass
class _Domain:
    domain: str
    seq: int
    status: str
    reason: str | None
    client_id: str | None
    created_at: datetime
    updated_at: datetime
    feedback_enabled: bool = True
    inbound_enabled: bool = True
    subdomains_enabled: bool = False
    tracking_enabled: bool = False
    record_status: dict[tuple[str, str], str] = field(default_factory=dict)
    default_record_status: str = "MISSING"
    walking: int | None = None  # next scripted step to apply on GET, None when not walking

    def records(self) -> list[dict[str, Any]]:
        d = self.domain
        wanted: list[tuple[str, str, str, int | None]] = [
            ("TXT", d, SPF_VALUE, None),
            ("CNAME", f"agm._domainkey.{d}", DKIM_TARGET, None),
            ("TXT", f"_dmarc.{d}", DMARC_VALUE, None),
        ]
        if self.inbound_enabled:
            wanted.append(("MX", d, MX_VALUE, 10))
        if self.subdomains_enabled:
            wanted.append(("MX", f"*.{d}", MX_VALUE, 10))
        if self.tracking_enabled:
            wanted.append(("CNAME", f"link.{d}", TRACKING_TARGET, None))
        records = []
        for type_, name, value, priority in wanted:
            status = self.record_status.get((type_, name), self.default_record_status)
            record: dict[str, Any] = {"type": type_, "name": name, "value": value, "status": status}
            if priority is not None:
                record["priority"] = priority
            if status == "INVALID":
                record["reason"] = "value_mismatch"
            records.append(record)
        return records

    def set_records_status(self, status: str) -> None:
        self.default_record_status = status
        self.record_status.clear()

    def item(self) -> dict[str, Any]:
        body: dict[str, Any] = {"domain_id": self.domain, "domain": self.domain}
        body.update({flag: getattr(self, flag) for flag in _FLAGS})
        if self.client_id is not None:
            body["client_id"] = self.client_id
        body["created_at"] = _iso(self.created_at)
        body["updated_at"] = _iso(self.updated_at)
        return body

    def full(self) -> dict[str, Any]:
        body = self.item()
        body["status"] = self.status
        if self.reason is not None and self.status != "VERIFIED":
            body["reason"] = self.reason
        body["records"] = self.records()
        return body


class FakeAgentMail(FakeProvider):
    """In-memory AgentMail domains API served on loopback for the real `AsyncAgentMail`.

    Construction: `FakeAgentMail(api_key="test", initial_status="PENDING",
    initial_reason="dns_records_missing", default_limit=10, duplicate_status=409)`; use it as a
    context manager (`with FakeAgentMail() as fake: fake.url`) or `start()` / `stop()`.

    Test controls, besides the inherited `fail_next`, `rate_limit_next`, `delay_next`, `calls`,
    `counts`, `requests` and `reset`:

    - `set_status(domain_id, status, reason=None, *, records=None)`: put a domain in a state now
      (stops a scripted walk); records follow the status unless `records` says otherwise.
    - `script_verification(domain_id, [steps])`: what successive GETs show after each verify.
    - `add_domain(...)`: seed a domain without going through HTTP.
    - `domain(domain_id)`: the domain as GET would show it, without advancing a script.
    - `domain_ids()`: the known domain ids, newest first.
    """

    server_name = "fake-agentmail"

    def __init__(
        self,
        *,
        api_key: str = "test",
        initial_status: str = "PENDING",
        initial_reason: str | None = "dns_records_missing",
        default_limit: int = 10,
        duplicate_status: int = 409,
    ) -> None:
        super().__init__()
        _normalise_steps([(initial_status, initial_reason)])
        self.api_key = api_key
        self.initial_status = initial_status
        self.initial_reason = initial_reason
        self.default_limit = default_limit
        self.duplicate_status = duplicate_status
        self._domains: dict[str, _Domain] = {}
        self._client_ids: dict[str, str] = {}
        self._scripts: dict[str, list[tuple[str, str | None]]] = {}
        self._seq = 0
        self._clock = datetime.now(UTC)

    # -- test controls ----------------------------------------------------------------------

    def add_domain(
        self,
        domain: str,
        *,
        status: str | None = None,
        reason: str | None = None,
        client_id: str | None = None,
        feedback_enabled: bool = True,
        inbound_enabled: bool = True,
        subdomains_enabled: bool = False,
        tracking_enabled: bool = False,
    ) -> dict[str, Any]:
        """Seed a domain as if it had been created; returns its Domain JSON."""
        name = domain.lower()
        with self._lock:
            if name in self._domains:
                raise ValueError(f"{name} already exists")
            if status is None:
                status, reason = self.initial_status, self.initial_reason
            entry = self._new(
                name,
                client_id,
                feedback_enabled=feedback_enabled,
                inbound_enabled=inbound_enabled,
                subdomains_enabled=subdomains_enabled,
                tracking_enabled=tracking_enabled,
            )
            self._apply(entry, status, reason)
            return entry.full()

    def set_status(
        self,
        domain_id: str,
        status: str,
        reason: str | None = None,
        *,
        records: str | None = None,
    ) -> None:
        """Set a domain's status and reason (reason must be None for VERIFIED).

        Records become VALID for VERIFIED and `ses_*` reasons, MISSING for
        `dns_records_missing`, INVALID for `dns_records_invalid`, and otherwise stay as they
        are, unless `records` (MISSING | INVALID | VALID) says otherwise. A scripted walk in
        progress stops; the script itself is kept for the next verify.
        """
        if records is not None and records not in RECORD_STATUSES:
            raise ValueError(f"unknown record status {records!r}")
        with self._lock:
            entry = self._require(domain_id)
            (step,) = _normalise_steps([(status, reason)])
            entry.walking = None
            self._apply(entry, *step)
            if records is not None:
                entry.set_records_status(records)

    def script_verification(self, domain_id: str, steps: Sequence[Step]) -> None:
        """Script what GETs show after a verify.

        Each `POST .../verify` marks the domain VERIFYING and (re)starts the walk; each later
        GET of the domain applies the next step (`"VERIFIED"` or `("FAILED", "ses_dkim_failed")`)
        and shows it; after the last step the domain stays there. An empty list removes the
        script. A verify while walking restarts from the first step, like AgentMail's checker.
        """
        normalised = _normalise_steps(steps)
        with self._lock:
            self._require(domain_id)
            if normalised:
                self._scripts[domain_id] = normalised
            else:
                self._scripts.pop(domain_id, None)

    def domain(self, domain_id: str) -> dict[str, Any] | None:
        """The domain's JSON as GET would show it now (a script is not advanced), or None."""
        with self._lock:
            entry = self._domains.get(domain_id)
            return None if entry is None else entry.full()

    def domain_ids(self) -> list[str]:
        """Known domain ids, newest first."""
        with self._lock:
            return [d.domain for d in sorted(self._domains.values(), key=lambda d: -d.seq)]

    def reset(self) -> None:
        """Forget domains, client ids, scripts, faults and the request log."""
        with self._lock:
            super().reset()
            self._domains.clear()
            self._client_ids.clear()
            self._scripts.clear()

    # -- internals --------------------------------------------------------------------------

    def _now(self) -> datetime:
        # Strictly increasing, so "newest first" never depends on the clock's resolution.
        now = datetime.now(UTC)
        self._clock = max(now, self._clock + timedelta(milliseconds=1))
        return self._clock

    def _new(self, name: str, client_id: str | None, **flags: bool) -> _Domain:
        self._seq += 1
        now = self._now()
        entry = _Domain(
            domain=name,
            seq=self._seq,
            status=self.initial_status,
            reason=self.initial_reason,
            client_id=client_id,
            created_at=now,
            updated_at=now,
        )
        for flag, value in flags.items():
            setattr(entry, flag, value)
        self._domains[name] = entry
        if client_id is not None:
            self._client_ids[client_id] = name
        return entry

    def _require(self, domain_id: str) -> _Domain:
        entry = self._domains.get(domain_id)
        if entry is None:
            raise KeyError(f"unknown domain {domain_id!r}")
        return entry

    def _apply(self, entry: _Domain, status: str, reason: str | None) -> None:
        entry.status = status
        entry.reason = None if status == "VERIFIED" else reason
        implied = _records_status_for(status, reason)
        if implied is not None:
            entry.set_records_status(implied)
        entry.updated_at = self._now()

    def _error_response(self, status: int, *, headers: dict[str, str] | None = None) -> Response:
        if status == 429:
            return _error(
                429,
                "RateLimitError",
                "rate_limited",
                "Too many requests.",
                "Wait for the number of seconds in the Retry-After header, then retry.",
                headers=headers,
            )
        return _error(
            status,
            _error_name(status),
            _error_code(status),
            f"{HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else status}.",
            "Retry the request later." if status >= 500 else None,
            headers=headers,
        )

    def _check_auth(self, request: Request) -> Response | None:
        if request.headers.get("authorization") == f"Bearer {self.api_key}":
            return None
        return _error(
            401,
            "UnauthorizedError",
            "unauthorized",
            "Invalid or missing API key.",
            "Send your API key as `Authorization: Bearer <key>`.",
        )

    # -- routes ---------------------------------------------------------------------------

    def build_app(self) -> Starlette:
        """The Starlette app with the `/v0/domains` routes."""
        e = self._endpoint
        return Starlette(
            routes=[
                Route("/v0/domains", e(self._list), methods=["GET"]),
                Route("/v0/domains", e(self._create), methods=["POST"]),
                Route("/v0/domains/{domain_id}", e(self._get), methods=["GET"]),
                Route("/v0/domains/{domain_id}", e(self._update), methods=["PATCH"]),
                Route("/v0/domains/{domain_id}", e(self._delete), methods=["DELETE"]),
                Route("/v0/domains/{domain_id}/verify", e(self._verify), methods=["POST"]),
                Route(
                    "/{path:path}",
                    e(self._unknown),
                    methods=["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"],
                ),
            ]
        )

    async def _unknown(self, request: Request) -> Response:
        return _error(
            404, "NotFoundError", "not_found", f"No route for {request.method} {request.url.path}."
        )

    async def _list(self, request: Request) -> Response:
        params = request.query_params
        try:
            limit = int(params.get("limit", self.default_limit))
        except ValueError:
            return _validation_error("limit must be an integer.", "limit")
        if limit < 1:
            return _validation_error("limit must be at least 1.", "limit")
        offset = 0
        if token := params.get("page_token"):
            try:
                offset = int(json.loads(base64.urlsafe_b64decode(token.encode()))["offset"])
            except (ValueError, KeyError, TypeError):
                return _validation_error("page_token is invalid.", "page_token")
        ascending = params.get("ascending", "false").lower() == "true"
        with self._lock:
            ordered = sorted(self._domains.values(), key=lambda d: d.seq, reverse=not ascending)
            page = [d.item() for d in ordered[offset : offset + limit]]
            more = offset + limit < len(ordered)
        body: dict[str, Any] = {"count": len(page), "limit": limit}
        if more:
            raw = json.dumps({"offset": offset + limit}).encode()
            body["next_page_token"] = base64.urlsafe_b64encode(raw).decode()
        body["domains"] = page
        return JSONResponse(body)

    async def _get(self, request: Request) -> Response:
        domain_id = request.path_params["domain_id"]
        with self._lock:
            entry = self._domains.get(domain_id)
            if entry is None:
                return _not_found(domain_id)
            script = self._scripts.get(domain_id)
            if script and entry.walking is not None:
                step = script[min(entry.walking, len(script) - 1)]
                self._apply(entry, *step)
                entry.walking = entry.walking + 1 if entry.walking + 1 < len(script) else None
            return JSONResponse(entry.full())

    async def _create(self, request: Request) -> Response:
        try:
            body = json.loads(await request.body() or b"null")
        except ValueError:
            return _validation_error("The body must be JSON.", "body")
        if not isinstance(body, dict):
            return _validation_error("The body must be a JSON object.", "body")
        domain = body.get("domain")
        if not isinstance(domain, str) or not _DOMAIN_RE.match(domain.lower()):
            return _validation_error("domain must be a valid domain name.", "domain")
        client_id = body.get("client_id")
        if client_id is not None and not isinstance(client_id, str):
            return _validation_error("client_id must be a string.", "client_id")
        flags: dict[str, bool] = {}
        for flag in _FLAGS:
            value = body.get(flag)
            if value is None:
                continue
            if not isinstance(value, bool):
                return _validation_error(f"{flag} must be a boolean.", flag)
            flags[flag] = value
        name = domain.lower()
        with self._lock:
            if client_id is not None and client_id in self._client_ids:
                original = self._domains[self._client_ids[client_id]]
                return JSONResponse(original.full())
            if name in self._domains:
                return _error(
                    self.duplicate_status,
                    _error_name(self.duplicate_status),
                    "already_exists",
                    f"Domain {name} already exists.",
                    "Use the existing domain, or delete it first.",
                )
            entry = self._new(name, client_id, **flags)
            return JSONResponse(entry.full())

    async def _update(self, request: Request) -> Response:
        domain_id = request.path_params["domain_id"]
        try:
            body = json.loads(await request.body() or b"{}")
        except ValueError:
            return _validation_error("The body must be JSON.", "body")
        if not isinstance(body, dict):
            return _validation_error("The body must be a JSON object.", "body")
        changes = {k: v for k, v in body.items() if k in _FLAGS and v is not None}
        if not changes:
            return _validation_error("Provide at least one setting to change.", "body")
        for flag, value in changes.items():
            if not isinstance(value, bool):
                return _validation_error(f"{flag} must be a boolean.", flag)
        with self._lock:
            entry = self._domains.get(domain_id)
            if entry is None:
                return _not_found(domain_id)
            needs_mx = (changes.get("inbound_enabled") and not entry.inbound_enabled) or (
                changes.get("subdomains_enabled") and not entry.subdomains_enabled
            )
            before = {(r["type"], r["name"]) for r in entry.records()}
            for flag, value in changes.items():
                setattr(entry, flag, value)
            for record in entry.records():
                key = (record["type"], record["name"])
                if key not in before:
                    entry.record_status[key] = "MISSING"
            if needs_mx and entry.status == "VERIFIED":
                entry.walking = None
                self._apply(entry, "PENDING", "dns_records_missing")
                # The records that were already published stay valid.
                for record in entry.records():
                    key = (record["type"], record["name"])
                    entry.record_status[key] = "VALID" if key in before else "MISSING"
            entry.updated_at = self._now()
            return JSONResponse(entry.full())

    async def _delete(self, request: Request) -> Response:
        domain_id = request.path_params["domain_id"]
        with self._lock:
            entry = self._domains.pop(domain_id, None)
            if entry is None:
                return _not_found(domain_id)
            self._scripts.pop(domain_id, None)
            if entry.client_id is not None:
                self._client_ids.pop(entry.client_id, None)
        return Response(status_code=204)

    async def _verify(self, request: Request) -> Response:
        domain_id = request.path_params["domain_id"]
        with self._lock:
            entry = self._domains.get(domain_id)
            if entry is None:
                return _not_found(domain_id)
            self._apply(entry, "VERIFYING", None)
            entry.walking = 0 if self._scripts.get(domain_id) else None
        return Response(status_code=204)
