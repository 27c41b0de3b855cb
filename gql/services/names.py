"""Normalising the domain name a user types into the host name we store."""

import re
import unicodedata
from functools import cache
from urllib.parse import urlsplit

import idna
from publicsuffixlist import PublicSuffixList

from gql.errors import InvalidInput

_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")

# IANA's special-use domain names (RFC 6761 and later), and everything under .arpa: none of them
# can be a sending domain on the public internet.
_SPECIAL_USE = {
    "example": "RFC 6761",
    "example.com": "RFC 6761",
    "example.net": "RFC 6761",
    "example.org": "RFC 6761",
    "invalid": "RFC 6761",
    "localhost": "RFC 6761",
    "test": "RFC 6761",
    "local": "RFC 6762, multicast DNS",
    "onion": "RFC 7686, Tor onion services",
    "alt": "RFC 9476",
    "internal": "ICANN, private use",
    "arpa": "RFC 3172, infrastructure such as in-addr.arpa and home.arpa",
}
# Scripts that may share one label (UTS #39's "highly restrictive" level): Latin with the
# Japanese, Chinese or Korean scripts; any other mixture is how look-alike names are made.
_SCRIPT_SETS = (
    frozenset({"LATIN", "CJK", "HIRAGANA", "KATAKANA"}),
    frozenset({"LATIN", "CJK", "BOPOMOFO"}),
    frozenset({"LATIN", "CJK", "HANGUL"}),
)


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
    _refuse_special_use(ascii_host)
    _refuse_mixed_scripts(ascii_host)
    return ascii_host


def _refuse_special_use(ascii_host: str) -> None:
    labels = ascii_host.split(".")
    for start in range(len(labels)):
        suffix = ".".join(labels[start:])
        if suffix in _SPECIAL_USE:
            raise InvalidInput(
                f"`{ascii_host}` is under `{suffix}`, a special-use name "
                f"({_SPECIAL_USE[suffix]}) that cannot send email: use a domain you registered, "
                "such as acme.com."
            )


def _scripts(label: str) -> set[str]:
    return {unicodedata.name(ch, "UNKNOWN").split()[0] for ch in label if ch.isalpha()}


def _refuse_mixed_scripts(ascii_host: str) -> None:
    if "xn--" not in ascii_host:
        return
    for label in idna.decode(ascii_host).split("."):
        scripts = _scripts(label)
        if len(scripts) > 1 and not any(scripts <= allowed for allowed in _SCRIPT_SETS):
            names = ", ".join(sorted(s.title() for s in scripts))
            raise InvalidInput(
                f"`{label}` mixes letters of several scripts ({names}), as look-alike names "
                "do: write each label in one script, such as acme.com or bücher.de."
            )
