"""One request id per HTTP request or WebSocket connection, readable anywhere below it.

An incoming `X-Request-ID` is kept when it is short and made of safe characters (so a log line
or a header cannot be forged through it); otherwise a new one is minted.
"""

import re
import uuid
from contextvars import ContextVar

HEADER = "X-Request-ID"
MAX_LENGTH = 128
_SAFE = re.compile(rf"[A-Za-z0-9._:@/+=-]{{1,{MAX_LENGTH}}}")

_current: ContextVar[str | None] = ContextVar("gql_request_id", default=None)


def accept_or_mint(incoming: str | None) -> str:
    """The caller's request id when it is acceptable, else a fresh one."""
    if incoming is not None and _SAFE.fullmatch(incoming):
        return incoming
    return uuid.uuid4().hex


def bind(request_id: str) -> None:
    """Make `request_id` the current one for this task and the tasks it starts."""
    _current.set(request_id)


def current_request_id() -> str | None:
    return _current.get()


def ensure_request_id() -> str:
    """The current request id; outside a request (a job, a test calling the schema), a new one
    that becomes current, so a masked error and its log line still share a reference."""
    request_id = _current.get()
    if request_id is None:
        request_id = uuid.uuid4().hex
        _current.set(request_id)
    return request_id
