"""Unit tests of what a provider answer does to a stored status, and of name normalisation.

The answer's meaning is `gql/services/status_mapping.py`; what it does to a row is decided by
`gql.services.transitions.decide`. Every provider status is tried against every stored status
through a client's read (`poll`), the path that may change any of them.
"""

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from gql.errors import InvalidInput
from gql.models import DomainRecord, Status
from gql.services.names import normalise_domain
from gql.services.transitions import Answer, Cause, Event, decide

ALL = list(Status)
NOT_VERIFIED = [s for s in Status if s is not Status.VERIFIED]
TRANSIENT = ["ses_dkim_temporary_failure", "ses_mail_from_temporary_failure"]
TERMINAL = ["ses_dkim_failed", "ses_mail_from_failed", "dns_records_invalid", None]
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def row(status: Status) -> DomainRecord:
    return DomainRecord(
        id=uuid.uuid4(),
        user_id=uuid.uuid4(),
        domain="acme.com",
        agentmail_domain_id="acme.com",
        status=status,
        dns_records=(),
        verified_at=NOW - timedelta(days=1) if status is Status.VERIFIED else None,
        created_at=NOW - timedelta(days=2),
        updated_at=NOW - timedelta(minutes=5),
        verification_started_at=NOW - timedelta(minutes=5),
    )


def read(provider_status: str, reason: str | None, *, current: Status) -> Status | None:
    """The status a poll stores for the provider's answer, or None when it keeps the stored one."""
    decision = decide(
        row(current),
        Event(Cause.POLL, answer=Answer(provider_status, reason, ())),
        now=NOW,
        window=timedelta(hours=12),
    )
    return None if decision.status is current else decision.status


@pytest.mark.parametrize("current", ALL)
def test_verified_is_verified_from_any_status(current: Status) -> None:
    assert read("VERIFIED", None, current=current) in (Status.VERIFIED, None)
    assert (
        decide(
            row(current),
            Event(Cause.POLL, answer=Answer("VERIFIED", None, ())),
            now=NOW,
            window=timedelta(hours=12),
        ).status
        is Status.VERIFIED
    )


@pytest.mark.parametrize("reason", TRANSIENT)
@pytest.mark.parametrize("current", ALL)
def test_temporary_failure_never_changes_the_status(reason: str, current: Status) -> None:
    assert read("FAILED", reason, current=current) is None


@pytest.mark.parametrize("reason", TERMINAL)
@pytest.mark.parametrize("current", [Status.PENDING, Status.VERIFYING, Status.VERIFIED])
def test_terminal_failure_fails_even_a_verified_domain(reason: str | None, current: Status) -> None:
    assert read("FAILED", reason, current=current) is Status.FAILED


@pytest.mark.parametrize("provider_status", ["VERIFYING", "PENDING"])
@pytest.mark.parametrize("reason", [None, "ses_dkim_pending", "dns_records_missing"])
def test_verifying_and_pending_at_the_provider_keep_a_verification_running(
    provider_status: str, reason: str | None
) -> None:
    assert read(provider_status, reason, current=Status.VERIFYING) is None


@pytest.mark.parametrize("provider_status", ["VERIFYING", "PENDING"])
@pytest.mark.parametrize("current", [Status.PENDING, Status.FAILED, Status.VERIFIED])
def test_a_read_never_starts_a_verification_nor_demotes_a_verified_domain(
    provider_status: str, current: Status
) -> None:
    # Only a trigger (or an override) starts one, with a window and a queued check.
    assert read(provider_status, "ses_dkim_pending", current=current) is None


@pytest.mark.parametrize(
    ("provider_status", "reason"),
    [("NOT_STARTED", "dns_records_missing"), ("INVALID", "dns_records_invalid"), ("INVALID", None)],
)
def test_not_started_or_invalid_during_a_verification_is_verifying(
    provider_status: str, reason: str | None
) -> None:
    assert read(provider_status, reason, current=Status.VERIFYING) is None


@pytest.mark.parametrize(
    ("provider_status", "reason"),
    [("NOT_STARTED", "dns_records_missing"), ("INVALID", "dns_records_invalid")],
)
@pytest.mark.parametrize("current", [Status.PENDING, Status.VERIFIED])
def test_not_started_or_invalid_outside_a_verification_is_pending(
    provider_status: str, reason: str, current: Status
) -> None:
    # This demotes even a verified domain (documented); a pending one keeps its status.
    assert read(provider_status, reason, current=current) in (Status.PENDING, None)
    if current is Status.VERIFIED:
        assert read(provider_status, reason, current=current) is Status.PENDING


@pytest.mark.parametrize("provider_status", ["NOT_STARTED", "INVALID", "VERIFYING", "PENDING"])
def test_a_failed_domain_stays_failed_until_the_provider_confirms_or_fails_it(
    provider_status: str,
) -> None:
    assert read(provider_status, "dns_records_missing", current=Status.FAILED) is None


@pytest.mark.parametrize("provider_status", ["SUSPENDED", "", "verified", "Failed"])
@pytest.mark.parametrize("current", ALL)
def test_unknown_provider_statuses_keep_the_stored_one(
    provider_status: str, current: Status
) -> None:
    assert read(provider_status, "whatever", current=current) is None


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
