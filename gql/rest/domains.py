"""`PATCH /api/email/domains/{id}`: parse, call the service, render.

Checks run in this order, so a caller fixes one thing at a time and an unauthenticated caller
learns nothing about the data: method (405), declared size (413), credentials (401, 429),
media type (415), size read (413), JSON (400), repeated members, id and body (422), then the
row (404 or 200).
"""

import json
import logging
import re
import uuid

import orjson
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from gql.errors import DomainError, InvalidInput
from gql.rest.responses import domain_body, domain_error_response, error_response, json_response
from gql.services.container import Services
from gql.services.domains import parse_override_status

logger = logging.getLogger(__name__)

ID_PATTERN = re.compile(
    r"^([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[1-8][0-9a-fA-F]{3}-[89abAB][0-9a-fA-F]{3}-[0-9a-fA-F]{12}"
    r"|00000000-0000-0000-0000-000000000000|ffffffff-ffff-ffff-ffff-ffffffffffff)$"
)
ALLOWED_METHODS = "PATCH"


class _BodyTooLarge(Exception):
    pass


def _is_json_media_type(content_type: str | None) -> bool:
    if not content_type:
        return False
    return content_type.split(";", 1)[0].strip().lower() == "application/json"


async def _read_body(request: Request, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _BodyTooLarge
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large(limit: int) -> Response:
    return error_response(
        413,
        "payload_too_large",
        f'The request body is larger than {limit} bytes; send only {{"status": ...}}.',
    )


def _parse_id(raw: str) -> uuid.UUID:
    if ID_PATTERN.fullmatch(raw) is None:
        raise InvalidInput(
            f"`{raw[:64]}` is not a domain id: use the UUID `id` of one of your domains."
        )
    return uuid.UUID(raw)


def _refuse_duplicate_members(raw: bytes, body: dict[str, object]) -> None:
    """orjson keeps the last of repeated members; a body that repeats one is refused instead.

    A body with no more `:` than members cannot repeat one (the seed's request has one of
    each), so only other bodies are parsed a second time, by a parser that sees every pair.
    """
    if raw.count(b":") <= len(body):
        return
    repeated: list[str] = []

    def pairs(items: list[tuple[str, object]]) -> dict[str, object]:
        names = [name for name, _ in items]
        repeated.extend(sorted({name for name in names if names.count(name) > 1}))
        return dict(items)

    try:
        json.loads(raw, object_pairs_hook=pairs)
    except RecursionError:
        return  # nested deeper than the stdlib parser goes: refused as an invalid `status`
    if repeated:
        names = ", ".join(f"`{name}`" for name in repeated)
        raise InvalidInput(
            f'The body repeats the member(s) {names}: send each once, as in {{"status": "failed"}}.'
        )


def _parse_status_body(body: dict[str, object]) -> object:
    unknown = sorted(set(body) - {"status"})
    if unknown:
        names = ", ".join(f"`{name}`" for name in unknown)
        raise InvalidInput(
            f'Unknown member(s) {names}: the body must be exactly {{"status": ...}}.'
        )
    if "status" not in body:
        raise InvalidInput('`status` is required: send {"status": "failed"}, for example.')
    return body["status"]


async def patch_email_domain(request: Request) -> Response:
    """Override the cached status of one of the caller's domains (see the contract)."""
    if request.method != "PATCH":
        return error_response(
            405,
            "method_not_allowed",
            f'{request.method} is not supported here; use PATCH with {{"status": ...}}.',
            {"Allow": ALLOWED_METHODS},
        )
    services: Services = request.app.state.services
    limit: int = request.app.state.settings.max_body_bytes
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        return _too_large(limit)
    try:
        client = request.client.host if request.client else "unknown"
        principal = await services.access.admit(request.headers.get("authorization"), client)
        if not _is_json_media_type(request.headers.get("content-type")):
            return error_response(
                415,
                "unsupported_media_type",
                "Send the body as JSON with `Content-Type: application/json`.",
            )
        try:
            raw = await _read_body(request, limit)
        except _BodyTooLarge:
            return _too_large(limit)
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError:
            body = None
        if not isinstance(body, dict):
            return error_response(
                400,
                "invalid_json",
                'The body must be a JSON object such as {"status": "failed"}.',
            )
        _refuse_duplicate_members(raw, body)
        domain_id = _parse_id(request.path_params["id"])
        status = parse_override_status(_parse_status_body(body))
        record = await services.domains.override_status(principal, domain_id, status)
    except DomainError as error:
        return domain_error_response(error)
    except ClientDisconnect:
        return Response(status_code=400)
    return json_response({"domain": domain_body(record)})
