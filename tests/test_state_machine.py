"""The lifecycle's state machine (`gql.services.transitions.decide`), exhaustively.

Every cause against every stored status and every provider answer (all statuses AgentMail
documents, an unknown one, transient and terminal reasons), first as a product of all of them,
then with hypothesis over the timestamps, reasons and windows around them. Each decision is
checked against the rules the README's state table states.
"""

import itertools
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gql.errors import InvalidInput
from gql.models import DnsRecord, DomainRecord, Status
from gql.services.status_mapping import Verdict, provider_verdict
from gql.services.transitions import (
    CLAIMED_REASON,
    TIMEOUT_REASON,
    Answer,
    Cause,
    Decision,
    Event,
    FollowUp,
    decide,
    past_window,
)

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
WINDOW = timedelta(hours=12)
PROVIDER_STATUSES = ["NOT_STARTED", "PENDING", "INVALID", "FAILED", "VERIFYING", "VERIFIED", "X"]
REASONS = [
    None,
    "dns_records_missing",
    "ses_dkim_pending",
    "ses_dkim_temporary_failure",
    "ses_dkim_failed",
    "verification_timeout",
]
RECORDS = [(), (DnsRecord("TXT", "acme.com", "v=spf1 ~all", None),)]
READS = (Cause.POLL, Cause.SYNC)
NEEDS_ANSWER = (Cause.POLL, Cause.SYNC, Cause.CREATE)


def make_row(
    status: Status,
    *,
    reason: str | None = None,
    started_ago: timedelta | None = timedelta(minutes=5),
    records: tuple[DnsRecord, ...] = (),
    checked: bool = False,
) -> DomainRecord:
    return DomainRecord(
        id=uuid.uuid4(),
        user_id=uuid.uuid4(),
        domain="acme.com",
        agentmail_domain_id="acme.com",
        status=status,
        dns_records=records,
        verified_at=NOW - timedelta(days=1) if status is Status.VERIFIED else None,
        created_at=NOW - timedelta(days=2),
        updated_at=NOW - timedelta(minutes=1),
        status_reason=reason,
        verification_started_at=None if started_ago is None else NOW - started_ago,
        last_checked_at=NOW - timedelta(minutes=2) if checked else None,
        version=3,
    )


def confirmed(event: Event) -> bool:
    answer = event.answer
    return answer is not None and provider_verdict(answer.status, answer.reason) is Verdict.VERIFIED


def check_rules(
    current: DomainRecord, event: Event, decision: Decision, now: datetime = NOW
) -> None:
    """The rules of the state table, for one decision made at `now`."""
    cause = event.cause
    if cause is Cause.DELETE:
        assert decision.deletes
        assert decision.follow_ups == {FollowUp.CANCEL_CHECKS, FollowUp.QUEUE_CLEANUP}
        return
    assert decision.status is not None
    new = decision.applied_to(current)
    if current.released_at is not None:
        # Another account claimed the name: the row stays as the claim left it.
        assert not decision.changed
        assert new.status is current.status
        assert FollowUp.QUEUE_CHECK not in decision.follow_ups
        return
    if cause is Cause.CLAIMED:
        assert (new.status, new.status_reason) == (Status.FAILED, CLAIMED_REASON)
        assert new.released_at == now
        assert FollowUp.QUEUE_CHECK not in decision.follow_ups
    # Only the provider's answer makes a domain verified, and a verified row has no reason.
    if new.status is Status.VERIFIED and current.status is not Status.VERIFIED:
        assert confirmed(event)
    if new.status is Status.VERIFIED:
        assert new.status_reason is None
    # verified_at moves only when the provider (re)confirms after a state that was not verified.
    if new.verified_at != current.verified_at:
        assert current.status is not Status.VERIFIED
        assert new.status is Status.VERIFIED
        assert new.verified_at == now
    elif new.status is Status.VERIFIED and current.status is not Status.VERIFIED:
        pytest.fail("verified without verified_at moving")
    # updated_at moves, strictly forward, exactly when a field callers see changes.
    visible = (
        "status",
        "status_reason",
        "dns_records",
        "verified_at",
        "verification_started_at",
        "released_at",
    )
    changed = any(getattr(new, f) != getattr(current, f) for f in visible)
    assert decision.changed is changed
    if changed:
        assert new.updated_at > current.updated_at
    else:
        assert new.updated_at == current.updated_at
    # last_checked_at moves only with a provider answer.
    if new.last_checked_at != current.last_checked_at:
        assert event.answer is not None
        assert new.last_checked_at == now
    # Entering verifying queues a check; leaving it drops the queued one.
    if new.status is Status.VERIFYING and current.status is not Status.VERIFYING:
        assert FollowUp.QUEUE_CHECK in decision.follow_ups
        assert new.verification_started_at == now  # a new window
    if current.status is Status.VERIFYING and new.status is not Status.VERIFYING:
        assert FollowUp.CANCEL_CHECKS in decision.follow_ups
    if FollowUp.QUEUE_CHECK in decision.follow_ups:
        assert new.status is Status.VERIFYING
    assert FollowUp.QUEUE_CLEANUP not in decision.follow_ups
    if not decision.write:
        assert new == current
    if cause in READS:
        # A read never starts a verification, and a failed domain stays failed until the
        # provider confirms it or fails it again.
        if new.status is Status.VERIFYING:
            assert current.status is Status.VERIFYING
        if current.status is Status.FAILED:
            assert new.status in (Status.FAILED, Status.VERIFIED)
        if current.status is Status.VERIFIED and new.status is not Status.VERIFIED:
            assert event.answer is not None
            assert provider_verdict(event.answer.status, event.answer.reason) in (
                Verdict.FAILED,
                Verdict.NOT_STARTED,
            )
    if cause is Cause.OVERRIDE:
        assert new.status is event.target
        assert new.verified_at == current.verified_at
        assert new.dns_records == current.dns_records
        assert decision.write is (event.target is not current.status)
    if (
        cause in (Cause.POLLER, Cause.TIMEOUT, Cause.SWEEP)
        and current.status is not Status.VERIFYING
    ):
        assert new.status is current.status
    overdue = current.status is Status.VERIFYING and past_window(current, now=now, window=WINDOW)
    if cause in (Cause.TIMEOUT, Cause.SWEEP):
        if overdue:
            assert (new.status, new.status_reason) == (Status.FAILED, TIMEOUT_REASON)
        else:
            assert new.status is current.status
    if cause is Cause.POLLER and overdue and not confirmed(event):
        assert new.status is Status.FAILED
    if cause is Cause.SWEEP and current.status is Status.VERIFYING and not overdue:
        assert decision.follow_ups == {FollowUp.QUEUE_CHECK}
        assert not decision.changed
    if cause is Cause.VERIFY and event.answer is None:
        assert new.status is Status.VERIFYING
        assert FollowUp.QUEUE_CHECK in decision.follow_ups


def check_idempotent(current: DomainRecord, event: Event, decision: Decision) -> None:
    """The same event again, on the row it produced, changes nothing a caller sees."""
    if decision.deletes or event.cause in (Cause.VERIFY, Cause.CREATE):
        return
    again = decide(
        replace(decision.applied_to(current), version=current.version + 1),
        event,
        now=NOW,
        window=WINDOW,
    )
    assert not again.changed, (event, decision, again)


def events() -> list[Event]:
    answers = [
        Answer(status, reason, records)
        for status, reason, records in itertools.product(PROVIDER_STATUSES, REASONS, RECORDS)
    ]
    out: list[Event] = []
    for cause in Cause:
        if cause is Cause.OVERRIDE:
            out += [Event(cause, target=s) for s in Status if s is not Status.VERIFIED]
        elif cause is Cause.CREATE:
            continue
        else:
            out += [Event(cause, answer=a) for a in answers]
            if cause not in NEEDS_ANSWER:
                out.append(Event(cause))
    return out


ALL_EVENTS = events()


@pytest.mark.parametrize("status", list(Status))
@pytest.mark.parametrize("started_ago", [timedelta(minutes=5), timedelta(hours=13), None])
def test_every_cause_and_answer_against_every_status_keeps_the_rules(
    status: Status, started_ago: timedelta | None
) -> None:
    for event, reason in itertools.product(ALL_EVENTS, REASONS):
        current = make_row(status, reason=None if status is Status.VERIFIED else reason)
        current = replace(
            current,
            verification_started_at=None if started_ago is None else NOW - started_ago,
            updated_at=NOW - (started_ago or timedelta(hours=13)),
        )
        decision = decide(current, event, now=NOW, window=WINDOW)
        check_rules(current, event, decision)
        check_idempotent(current, event, decision)


rows = st.builds(
    make_row,
    st.sampled_from(list(Status)),
    reason=st.sampled_from(REASONS),
    started_ago=st.one_of(st.none(), st.timedeltas(timedelta(0), timedelta(hours=30))),
    records=st.sampled_from(RECORDS),
    checked=st.booleans(),
).map(lambda r: replace(r, status_reason=None) if r.status is Status.VERIFIED else r)


@settings(max_examples=2000, deadline=None)
@given(current=rows, event=st.sampled_from(ALL_EVENTS))
def test_decisions_keep_the_rules_for_any_row(current: DomainRecord, event: Event) -> None:
    decision = decide(current, event, now=NOW, window=WINDOW)
    check_rules(current, event, decision)
    check_idempotent(current, event, decision)


@settings(max_examples=300, deadline=None)
@given(current=rows, steps=st.lists(st.sampled_from(ALL_EVENTS), min_size=1, max_size=12))
def test_any_sequence_of_events_keeps_the_rules(current: DomainRecord, steps: list[Event]) -> None:
    for i, event in enumerate(steps):
        now = NOW + timedelta(seconds=i)
        decision = decide(current, event, now=now, window=WINDOW)
        check_rules(current, event, decision, now)
        if decision.deletes:
            return
        current = replace(decision.applied_to(current), version=current.version + 1)


@pytest.mark.parametrize("status", list(Status))
def test_no_override_asks_for_verified(status: Status) -> None:
    with pytest.raises(InvalidInput, match="only the provider's verification"):
        decide(
            make_row(status), Event(Cause.OVERRIDE, target=Status.VERIFIED), now=NOW, window=WINDOW
        )


def test_create_stores_a_pending_row_with_the_providers_records() -> None:
    answer = Answer("NOT_STARTED", "dns_records_missing", RECORDS[1])
    decision = decide(None, Event(Cause.CREATE, answer=answer), now=NOW, window=WINDOW)
    assert (decision.status, decision.reason, decision.records) == (
        Status.PENDING,
        "dns_records_missing",
        RECORDS[1],
    )
    assert decision.follow_ups == frozenset()
    existing = make_row(Status.VERIFIED)
    assert decide(existing, Event(Cause.CREATE, answer=answer), now=NOW, window=WINDOW).is_noop


def test_a_verified_domain_polled_again_is_not_restamped() -> None:
    current = make_row(Status.VERIFIED, checked=True)
    decision = decide(
        current,
        Event(Cause.POLL, answer=Answer("VERIFIED", None, current.dns_records)),
        now=NOW,
        window=WINDOW,
    )
    assert not decision.changed
    assert decision.verified_at == current.verified_at
    assert decision.updated_at == current.updated_at
    assert decision.last_checked_at == NOW


@pytest.mark.parametrize("provider_status", ["VERIFYING", "PENDING"])
def test_a_verified_domain_never_keeps_a_pending_reason(provider_status: str) -> None:
    current = make_row(Status.VERIFIED)
    decision = decide(
        current,
        Event(Cause.SYNC, answer=Answer(provider_status, "ses_dkim_pending", ())),
        now=NOW,
        window=WINDOW,
    )
    assert (decision.status, decision.reason) == (Status.VERIFIED, None)
