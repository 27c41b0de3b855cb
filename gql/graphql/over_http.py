"""GraphQL over HTTP: which media type answers, with which status, and the JSON body of a
request refused before it reaches GraphQL.

A client that accepts `application/graphql-response+json` gets it, with 4xx for a request
that fails before execution (and no `data` entry); otherwise `application/json`, with 200
for every well-formed GraphQL request, as before. Either way every error is a GraphQL body
with an `extensions.code`.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field

from graphql import GraphQLError

GRAPHQL_RESPONSE = "application/graphql-response+json"
JSON = "application/json"

# Strawberry's refusals (status, start of its reason) and the code the client sees.
_CODES = {
    400: "BAD_REQUEST",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    406: "NOT_ACCEPTABLE",
    413: "PAYLOAD_TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE",
}


@dataclass
class RequestRefused(Exception):
    """A request answered before GraphQL runs: its status, code, message and headers."""

    status: int
    message: str
    code: str = ""
    headers: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        super().__init__(self.message)
        self.code = self.code or _CODES.get(self.status, "BAD_REQUEST")

    def body(self) -> dict[str, object]:
        return {"errors": [{"message": self.message, "extensions": {"code": self.code}}]}


def negotiate(accept: str | None) -> str:
    """The response media type for an `Accept` header (RFC 9110 q-values).

    No header, `*/*` or a header naming neither type gets `application/json`: what every
    client understood before the GraphQL over HTTP specification.
    """
    if not accept:
        return JSON
    best, best_q = JSON, -1.0
    for item in accept.split(","):
        media, *params = (part.strip() for part in item.split(";"))
        q = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        media = media.lower()
        if media == GRAPHQL_RESPONSE and q > 0 and q >= best_q:
            best, best_q = GRAPHQL_RESPONSE, q
        elif media in (JSON, "application/*", "*/*") and q > 0 and q > best_q:
            best, best_q = JSON, q
    return best


def failed_before_execution(data: object, errors: list[GraphQLError] | None) -> bool:
    """Parse, validation and variable errors: no data, and no error belongs to a field."""
    return data is None and bool(errors) and all(e.path is None for e in errors or ())
