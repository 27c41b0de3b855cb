"""Unit tests of the provider status mapping and of domain name normalisation.

The mapping is the table documented in `gql/services/status_mapping.py`; every provider status
is tried against every stored status, inside and outside a running verification.
"""

import pytest

from gql.errors import InvalidInput
from gql.models import Status
from gql.services.names import normalise_domain
from gql.services.status_mapping import map_provider_status

ALL = list(Status)
NOT_VERIFIED = [s for s in Status if s is not Status.VERIFIED]
TRANSIENT = ["ses_dkim_temporary_failure", "ses_mail_from_temporary_failure"]
TERMINAL = ["ses_dkim_failed", "ses_mail_from_failed", "dns_records_invalid", None]


# -- map_provider_status ------------------------------------------------------------------------


@pytest.mark.parametrize("current", ALL)
@pytest.mark.parametrize("verifying", [True, False])
def test_verified_is_verified_from_any_status(current: Status, verifying: bool) -> None:
    assert (
        map_provider_status("VERIFIED", None, current=current, verifying=verifying)
        is Status.VERIFIED
    )


@pytest.mark.parametrize("reason", TRANSIENT)
@pytest.mark.parametrize("current", ALL)
@pytest.mark.parametrize("verifying", [True, False])
def test_temporary_failure_never_changes_the_status(
    reason: str, current: Status, verifying: bool
) -> None:
    assert map_provider_status("FAILED", reason, current=current, verifying=verifying) is None


@pytest.mark.parametrize("reason", TERMINAL)
@pytest.mark.parametrize("current", ALL)
@pytest.mark.parametrize("verifying", [True, False])
def test_terminal_failure_fails_even_a_verified_domain(
    reason: str | None, current: Status, verifying: bool
) -> None:
    assert (
        map_provider_status("FAILED", reason, current=current, verifying=verifying) is Status.FAILED
    )


@pytest.mark.parametrize("provider_status", ["VERIFYING", "PENDING"])
@pytest.mark.parametrize("reason", [None, "ses_dkim_pending", "dns_records_missing"])
@pytest.mark.parametrize("current", NOT_VERIFIED)
@pytest.mark.parametrize("verifying", [True, False])
def test_verifying_and_pending_at_the_provider_mean_verifying(
    provider_status: str, reason: str | None, current: Status, verifying: bool
) -> None:
    assert (
        map_provider_status(provider_status, reason, current=current, verifying=verifying)
        is Status.VERIFYING
    )


@pytest.mark.parametrize("provider_status", ["VERIFYING", "PENDING"])
@pytest.mark.parametrize("verifying", [True, False])
def test_a_verified_domain_is_never_moved_back_to_verifying(
    provider_status: str, verifying: bool
) -> None:
    assert (
        map_provider_status(
            provider_status, "ses_dkim_pending", current=Status.VERIFIED, verifying=verifying
        )
        is None
    )


@pytest.mark.parametrize(
    ("provider_status", "reason"),
    [("NOT_STARTED", "dns_records_missing"), ("INVALID", "dns_records_invalid"), ("INVALID", None)],
)
@pytest.mark.parametrize("current", NOT_VERIFIED)
def test_not_started_or_invalid_during_a_verification_is_verifying(
    provider_status: str, reason: str | None, current: Status
) -> None:
    assert (
        map_provider_status(provider_status, reason, current=current, verifying=True)
        is Status.VERIFYING
    )


@pytest.mark.parametrize(
    ("provider_status", "reason"),
    [("NOT_STARTED", "dns_records_missing"), ("INVALID", "dns_records_invalid")],
)
@pytest.mark.parametrize("current", ALL)
def test_not_started_or_invalid_outside_a_verification_is_pending(
    provider_status: str, reason: str, current: Status
) -> None:
    # Outside a running verification this demotes even a verified domain (documented).
    assert (
        map_provider_status(provider_status, reason, current=current, verifying=False)
        is Status.PENDING
    )


@pytest.mark.parametrize("provider_status", ["NOT_STARTED", "INVALID"])
def test_not_started_or_invalid_does_not_demote_verified_during_a_verification(
    provider_status: str,
) -> None:
    assert (
        map_provider_status(provider_status, None, current=Status.VERIFIED, verifying=True) is None
    )


@pytest.mark.parametrize("provider_status", ["SUSPENDED", "", "verified", "Failed"])
@pytest.mark.parametrize("current", ALL)
@pytest.mark.parametrize("verifying", [True, False])
def test_unknown_provider_statuses_keep_the_stored_one(
    provider_status: str, current: Status, verifying: bool
) -> None:
    assert (
        map_provider_status(provider_status, "whatever", current=current, verifying=verifying)
        is None
    )


# -- normalise_domain ---------------------------------------------------------------------------

LONGEST = ".".join(["a" * 63, "b" * 63, "c" * 63, "d" * 57]) + ".com"  # 253 characters


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("acme.com", "acme.com"),
        ("ACME.Com", "acme.com"),
        ("  acme.com\t", "acme.com"),
        ("acme.com.", "acme.com"),
        ("mail.acme.co.uk", "mail.acme.co.uk"),
        ("acme.co.uk", "acme.co.uk"),
        ("https://Mail.Bücher.de:443/x", "mail.xn--bcher-kva.de"),
        ("http://acme.com/path?q=1#top", "acme.com"),
        ("HTTPS://ACME.COM/", "acme.com"),
        ("acme.com:8080", "acme.com"),
        ("acme.com/some/path", "acme.com"),
        ("bücher.de", "xn--bcher-kva.de"),
        ("BÜCHER.DE", "xn--bcher-kva.de"),
        ("xn--bcher-kva.de", "xn--bcher-kva.de"),
        ("ÉXAMPLE.fr", "xn--xample-9ua.fr"),
        ("my-shop2.acme-corp.com", "my-shop2.acme-corp.com"),
        ("acme.github.io", "acme.github.io"),
        ("a" * 63 + ".com", "a" * 63 + ".com"),
        (LONGEST, LONGEST),
    ],
)
def test_normalise_domain_accepts_and_normalises(raw: str, expected: str) -> None:
    assert normalise_domain(raw) == expected


@pytest.mark.parametrize(
    ("raw", "says"),
    [
        ("", "`domain` is empty"),
        ("   ", "`domain` is empty"),
        ("x" * 1025, "`domain` is too long"),
        ("acme..com", "not a valid host name"),
        (".acme.com", "not a valid host name"),
        ("-acme.com", "not a valid host name"),
        ("acme-.com", "not a valid host name"),
        ("acme_x.com", "not a valid host name"),
        ("acme com.com", "not a valid host name"),
        ("a" * 64 + ".com", "not a valid host name"),
        (LONGEST.replace("d" * 57, "d" * 58), "not a valid host name"),
        ("http://", "not a valid host name"),
        ("[::1]", "not a valid host name"),
        ("[acme.com", "not a valid host name"),
        ("acme.com]", "not a valid host name"),
        ("acme.com:http", "not a valid host name"),
        ("user@acme.com", "looks like an email address"),
        ("localhost", "not a registrable domain"),
        ("https://localhost:8080/", "not a registrable domain"),
        ("mail.localhost", "not a registrable domain"),
        ("com", "not a registrable domain"),
        ("co.uk", "not a registrable domain"),
        ("github.io", "not a registrable domain"),
        ("acme", "not a registrable domain"),
        ("acme.notatld", "not a registrable domain"),
        ("127.0.0.1", "not a registrable domain"),
    ],
)
def test_normalise_domain_refuses_with_a_clear_message(raw: str, says: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        normalise_domain(raw)
    message = caught.value.message
    assert says in message
    assert "acme.com" in message  # every refusal shows what a valid name looks like
    assert caught.value.graphql_code == "BAD_USER_INPUT"


def test_a_refusal_quotes_at_most_a_bounded_part_of_the_input() -> None:
    raw = "bad_label." * 90  # under the length limit, over any sensible echo
    with pytest.raises(InvalidInput) as caught:
        normalise_domain(raw)
    assert len(caught.value.message) < 300
