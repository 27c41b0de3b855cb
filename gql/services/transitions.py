"""The domain lifecycle as one state machine: every status change is decided by `decide`.

`decide` is pure: given the stored row (None before a create), what happened (the cause, and the
provider's answer if there is one) and the time, it returns the row to write and the jobs that
must be queued or dropped with it. `gql.services.state_writer.StateWriter.apply` is the only
place that writes its decisions; the README's "The domain lifecycle" has the table.
"""

import enum
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Literal

from gql.errors import InvalidInput
from gql.models import OVERRIDABLE_STATUSES, SYSTEM_ACTOR, DnsRecord, DomainRecord, Status
from gql.services.status_mapping import Verdict, provider_verdict

VERIFIED_ONLY_BY_PROVIDER = (
    "`verified` cannot be set by a status override: only the provider's verification can mark a "
    "domain verified. Trigger it with the verify operation (verifyEmailDomain) instead, or send "
    "one of: " + ", ".join(s.value for s in OVERRIDABLE_STATUSES) + "."
)
TIMEOUT_REASON = "verification_timeout"
TAKEN_REASON = "verified_by_another_account"
NOT_STARTED_REASON = "verification_not_started"
CLAIMED_REASON = "claimed_by_another_account"
_TICK = timedelta(microseconds=1)


class _Keep(enum.Enum):
    KEEP = "keep"


_KEEP = _Keep.KEEP


class Cause(enum.StrEnum):
    CREATE = "create"
    """The provider created the domain: a new row (a row that exists already stays)."""
    OVERRIDE = "override"
    """A client set the cached status (never `verified`)."""
    VERIFY = "verify"
    """A trigger: without an answer it starts a verification (a new window and a check); with
    one, it stores what the provider said right after it was asked to re-check."""
    VERIFY_REFUSED = "verify_refused"
    """The provider would not start the verification just triggered."""
    POLL = "poll"
    """A client read the live status (`verifyEmailDomain(poll: true)`)."""
    SYNC = "sync"
    """A listing refreshed the domain from the provider (`emailDomains(sync: true)`)."""
    POLLER = "poller"
    """A scheduled check; without an answer the provider could not be asked this time."""
    TIMEOUT = "timeout"
    """The verification window closed."""
    SWEEP = "sweep"
    """The sweeper found a verifying domain with no check queued or running."""
    TAKEN = "taken"
    """The provider verified the name, but another account already holds it verified."""
    CLAIMED = "claimed"
    """Another account proved control of the name's DNS: this row steps aside for good."""
    DELETE = "delete"
    """The owner deleted the domain."""


_RELEASES_CHECK = frozenset({Cause.POLLER, Cause.TIMEOUT, Cause.TAKEN})


class FollowUp(enum.Enum):
    QUEUE_CHECK = "queue_check"
    CANCEL_CHECKS = "cancel_checks"
    QUEUE_CLEANUP = "queue_cleanup"


@dataclass(frozen=True, slots=True)
class Answer:
    """What the provider said about the domain."""

    status: str
    reason: str | None
    records: tuple[DnsRecord, ...]


@dataclass(frozen=True, slots=True)
class Event:
    cause: Cause
    answer: Answer | None = None
    target: Status | None = None
    """The status an override asks for."""
    actor: str = SYSTEM_ACTOR
    """Who caused it (recorded in the domain's events): an API key, a session, or the system."""


@dataclass(frozen=True, slots=True)
class Decision:
    """The row after the event (`status` None: deleted) and the jobs that go with it."""

    status: Status | None
    reason: str | None
    records: tuple[DnsRecord, ...]
    verified_at: datetime | None
    verification_started_at: datetime | None
    last_checked_at: datetime | None
    updated_at: datetime | None
    released_at: datetime | None
    """When another account claimed the name from this row."""
    follow_ups: frozenset[FollowUp]
    changed: bool
    """A field callers see changed (so `updated_at` moved)."""
    write: bool
    """The row must be written (it changed, it was checked, or a running check ends)."""
    releases_check: bool
    """The check that was running on the row is over."""

    @property
    def deletes(self) -> bool:
        return self.status is None

    @property
    def is_noop(self) -> bool:
        return not self.write and not self.follow_ups

    def applied_to(self, current: DomainRecord) -> DomainRecord:
        """The row as it reads once the decision is written (not for a delete)."""
        assert self.status is not None
        assert self.updated_at is not None
        return replace(
            current,
            status=self.status,
            status_reason=self.reason,
            dns_records=self.records,
            verified_at=self.verified_at,
            verification_started_at=self.verification_started_at,
            last_checked_at=self.last_checked_at,
            updated_at=self.updated_at,
            released_at=self.released_at,
        )


def _confirmed(event: Event) -> bool:
    """Whether the event carries the provider's confirmation that the domain is verified."""
    answer = event.answer
    return answer is not None and provider_verdict(answer.status, answer.reason) is Verdict.VERIFIED


def past_window(current: DomainRecord, *, now: datetime, window: timedelta) -> bool:
    """Whether a verifying domain's window has closed."""
    started = current.verification_started_at or current.updated_at
    return now >= started + window


def decide(
    current: DomainRecord | None, event: Event, *, now: datetime, window: timedelta
) -> Decision:
    """The next state of a domain, and the jobs that keep it converging."""
    cause = event.cause
    if event.target is Status.VERIFIED:
        # The override's one rule: only the provider's verification makes a domain verified.
        raise InvalidInput(VERIFIED_ONLY_BY_PROVIDER)
    if cause is Cause.CREATE:
        return _create(current, event, now=now)
    if current is None:
        raise ValueError(f"{cause} needs the stored row")
    if cause is Cause.DELETE:
        return _deleted(current)
    if current.released_at is not None:
        # Another account claimed the name: this row stays as the claim left it, and no
        # provider answer about the name is this row's any more.
        return _next(current, event, now=now)
    if cause is Cause.CLAIMED:
        return _next(
            current, event, status=Status.FAILED, reason=CLAIMED_REASON, released=now, now=now
        )
    if cause is Cause.OVERRIDE:
        return _override(current, event.target, now=now)
    verifying = current.status is Status.VERIFYING
    overdue = verifying and past_window(current, now=now, window=window)
    if cause is Cause.VERIFY and event.answer is None:
        return _next(
            current,
            event,
            status=Status.VERIFYING,
            reason=current.status_reason,
            verification_started_at=now,
            queue_check=True,
            now=now,
        )
    if cause is Cause.VERIFY_REFUSED:
        if not verifying:
            return _next(current, event, now=now)
        return _next(current, event, status=Status.PENDING, reason=NOT_STARTED_REASON, now=now)
    if cause is Cause.TAKEN:
        return _next(current, event, status=Status.FAILED, reason=TAKEN_REASON, now=now)
    if cause in (Cause.TIMEOUT, Cause.SWEEP) or (cause is Cause.POLLER and event.answer is None):
        if overdue:
            return _next(current, event, status=Status.FAILED, reason=TIMEOUT_REASON, now=now)
        return _next(current, event, queue_check=verifying and cause is not Cause.TIMEOUT, now=now)
    if cause is Cause.POLLER and not verifying:
        return _next(current, event, now=now)
    assert event.answer is not None, f"{cause} needs the provider's answer"
    return _read(current, event, event.answer, overdue=overdue, now=now)


def _create(current: DomainRecord | None, event: Event, *, now: datetime) -> Decision:
    if current is not None:
        return _unchanged(current)
    assert event.answer is not None, "a create stores the provider's answer"
    return Decision(
        status=Status.PENDING,
        reason=event.answer.reason,
        records=event.answer.records,
        verified_at=None,
        verification_started_at=None,
        last_checked_at=None,
        updated_at=now,
        released_at=None,
        follow_ups=frozenset(),
        changed=True,
        write=True,
        releases_check=False,
    )


def _deleted(current: DomainRecord) -> Decision:
    return Decision(
        status=None,
        reason=None,
        records=(),
        verified_at=None,
        verification_started_at=None,
        last_checked_at=None,
        updated_at=None,
        released_at=None,
        follow_ups=frozenset({FollowUp.CANCEL_CHECKS, FollowUp.QUEUE_CLEANUP}),
        changed=True,
        write=True,
        releases_check=True,
    )


def _override(current: DomainRecord, target: Status | None, *, now: datetime) -> Decision:
    if target is None:
        raise ValueError("an override needs a target status")
    if target is current.status:
        return _unchanged(current)
    # The client's status replaces the provider's verdict, so the provider's reason goes too.
    return _next(
        current,
        Event(Cause.OVERRIDE, target=target),
        status=target,
        reason=None,
        verification_started_at=now if target is Status.VERIFYING else _KEEP,
        now=now,
    )


def _read(
    current: DomainRecord, event: Event, answer: Answer, *, overdue: bool, now: datetime
) -> Decision:
    """Store a provider answer: only a definite one changes the status, a read never starts a
    verification, and a failed domain stays failed until verified again or the provider
    confirms it."""
    verdict = provider_verdict(answer.status, answer.reason)
    verifying = current.status is Status.VERIFYING
    status, reason = current.status, current.status_reason
    if verdict is Verdict.VERIFIED:
        status, reason = Status.VERIFIED, None
    elif verdict is Verdict.FAILED:
        status, reason = Status.FAILED, answer.reason
    elif verdict in (Verdict.RUNNING, Verdict.NOT_STARTED) and verifying:
        status, reason = Status.VERIFYING, answer.reason
    elif verdict is Verdict.NOT_STARTED and current.status in (Status.PENDING, Status.VERIFIED):
        status, reason = Status.PENDING, answer.reason
    if status is Status.VERIFYING and overdue and event.cause is Cause.POLLER:
        status, reason = Status.FAILED, TIMEOUT_REASON
    continues = event.cause in (Cause.VERIFY, Cause.POLLER) and status is Status.VERIFYING
    return _next(
        current,
        event,
        status=status,
        reason=reason,
        records=answer.records or current.dns_records,
        last_checked_at=now,
        queue_check=continues,
        now=now,
    )


def _unchanged(current: DomainRecord) -> Decision:
    return Decision(
        status=current.status,
        reason=current.status_reason,
        records=current.dns_records,
        verified_at=current.verified_at,
        verification_started_at=current.verification_started_at,
        last_checked_at=current.last_checked_at,
        updated_at=current.updated_at,
        released_at=current.released_at,
        follow_ups=frozenset(),
        changed=False,
        write=False,
        releases_check=False,
    )


def _next(
    current: DomainRecord,
    event: Event,
    *,
    now: datetime,
    status: Status | None = None,
    reason: str | Literal[_Keep.KEEP] | None = _KEEP,
    records: tuple[DnsRecord, ...] | None = None,
    verification_started_at: datetime | Literal[_Keep.KEEP] | None = _KEEP,
    last_checked_at: datetime | None = None,
    queue_check: bool = False,
    released: datetime | None = None,
) -> Decision:
    """The row after a change, with the rules every change obeys."""
    new_status = current.status if status is None else status
    if new_status is Status.VERIFIED and current.status is not Status.VERIFIED:
        assert _confirmed(event), "only the provider's answer makes a domain verified"
    new_reason = current.status_reason if reason is _KEEP else reason
    if new_status is Status.VERIFIED:
        new_reason = None
    started = (
        current.verification_started_at
        if verification_started_at is _KEEP
        else verification_started_at
    )
    verified_at = current.verified_at
    if new_status is Status.VERIFIED and current.status is not Status.VERIFIED:
        verified_at = now  # (re)confirmed after a state that was not verified
    new_records = current.dns_records if records is None else records
    checked = current.last_checked_at if last_checked_at is None else last_checked_at
    changed = (
        new_status is not current.status
        or new_reason != current.status_reason
        or new_records != current.dns_records
        or verified_at != current.verified_at
        or started != current.verification_started_at
        or released is not None
    )
    follow_ups: set[FollowUp] = set()
    was_verifying = current.status is Status.VERIFYING
    if new_status is Status.VERIFYING and (queue_check or not was_verifying):
        follow_ups.add(FollowUp.QUEUE_CHECK)
    if was_verifying and new_status is not Status.VERIFYING:
        follow_ups.add(FollowUp.CANCEL_CHECKS)
    releases = event.cause in _RELEASES_CHECK
    return Decision(
        status=new_status,
        reason=new_reason,
        records=new_records,
        verified_at=verified_at,
        verification_started_at=started,
        last_checked_at=checked,
        # Strictly forward, even if the clock stepped back since the last change.
        updated_at=max(now, current.updated_at + _TICK) if changed else current.updated_at,
        released_at=current.released_at if released is None else released,
        follow_ups=frozenset(follow_ups),
        changed=changed,
        write=changed or checked != current.last_checked_at or releases,
        releases_check=releases,
    )
