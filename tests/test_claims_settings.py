"""The settings of zones and claims refuse what cannot work, with the fix in the message."""

from typing import Any

import pytest
from pydantic import ValidationError

from gql.providers.dns_resolver import TxtResolver, parse_resolver
from gql.settings import Settings

JWT = "a-real-jwt-secret-that-is-long-enough-0123456789"


def settings(**values: Any) -> Settings:
    return Settings(_env_file=None, **values)


def test_production_refuses_a_missing_or_weak_claim_secret() -> None:
    base = {"environment": "production", "database_url": "postgresql://db/x", "jwt_secret": JWT}
    for weak in (None, "changeme", "short"):
        with pytest.raises(ValidationError, match="CLAIM_SECRET must be a real secret"):
            settings(**base, claim_secret=weak)
    assert settings(**base, claim_secret="c" * 40).claim_secret is not None


def test_a_token_key_that_is_not_a_fernet_key_is_refused_with_how_to_make_one() -> None:
    with pytest.raises(ValidationError, match=r"Fernet\.generate_key"):
        settings(cloudflare_token_key="not-a-key")


@pytest.mark.parametrize(
    ("entry", "parsed"),
    [
        ("192.0.2.53", ("192.0.2.53", 53)),
        ("192.0.2.53:5353", ("192.0.2.53", 5353)),
        ("2001:db8::53", ("2001:db8::53", 53)),
        ("[2001:db8::53]:5353", ("2001:db8::53", 5353)),
    ],
)
def test_resolvers_are_addresses_with_an_optional_port(entry: str, parsed: tuple[str, int]) -> None:
    assert parse_resolver(entry) == parsed


@pytest.mark.parametrize(
    "entry", ["dns.google", "192.0.2.53:0", "192.0.2.53:dns", "[2001:db8::53]:99999"]
)
def test_a_resolver_that_is_not_an_address_is_refused_at_start_up(entry: str) -> None:
    with pytest.raises(ValueError, match="CLAIM_RESOLVERS entry"):
        TxtResolver(settings(claim_resolvers=[entry]))
