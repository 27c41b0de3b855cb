"""Normalising the domain name a user types into the host name we store."""

import re
from functools import cache
from urllib.parse import urlsplit

import idna
from publicsuffixlist import PublicSuffixList

from gql.errors import InvalidInput

_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")


@cache
def _suffixes() -> PublicSuffixList:
    return PublicSuffixList(accept_unknown=False)


def normalise_domain(raw: str) -> str:
    """`https://Mail.Bücher.de:443/x` → `mail.xn--bcher-kva.de`, or `InvalidInput` saying why.

    Scheme, path, port and a trailing dot are dropped; the name is lower-cased and IDNA-encoded;
    it must end in a public suffix and have a registrable part (`acme.com`, `mail.acme.co.uk`).
    """
    text = raw.strip()
    if not text:
        raise InvalidInput("`domain` is empty: send a host name such as acme.com.")
    if len(text) > 1024:
        raise InvalidInput("`domain` is too long: send a host name such as acme.com.")
    try:
        parts = urlsplit(text if "://" in text else f"//{text}")
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError:
        raise InvalidInput(
            f"`{raw[:100]}` is not a valid host name (bad brackets or port): send one such as "
            "acme.com."
        ) from None
    if parts.username is not None:
        raise InvalidInput(
            f"`{raw[:100]}` looks like an email address: send only the domain after the @."
        )
    host = (parts.hostname or "").rstrip(".")
    try:
        ascii_host = idna.encode(host, uts46=True).decode("ascii") if host else ""
    except idna.IDNAError:
        ascii_host = ""
    labels = ascii_host.split(".") if ascii_host else []
    if len(ascii_host) > 253 or not labels or not all(_LABEL.match(label) for label in labels):
        raise InvalidInput(f"`{raw[:100]}` is not a valid host name: send one such as acme.com.")
    if _suffixes().privatesuffix(ascii_host) is None:
        raise InvalidInput(
            f"`{ascii_host}` is not a registrable domain under a public suffix "
            "(e.g. acme.com or mail.acme.co.uk); localhost, bare suffixes and unknown "
            "top-level domains cannot send email."
        )
    return ascii_host
