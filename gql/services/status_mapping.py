"""What the provider's answer means for a verification, before the state machine applies it.

- VERIFIED: the provider confirms the domain.
- FAILED with a `*_temporary_failure` reason: still running (transient; the provider retries).
- FAILED with any other reason: failed (terminal until the owner fixes the records and verifies
  again).
- VERIFYING or PENDING: still running.
- NOT_STARTED or INVALID: the records are missing or wrong; nothing runs at the provider.
- Anything else: unknown, and an unknown answer never changes a stored status.

`gql.services.transitions` decides what each verdict does to a stored row (a read never starts
a verification, a verified domain is not demoted by the checker flickering, ...).
"""

import enum

_TRANSIENT_SUFFIX = "_temporary_failure"


class Verdict(enum.Enum):
    VERIFIED = "verified"
    FAILED = "failed"
    RUNNING = "running"
    NOT_STARTED = "not_started"
    UNKNOWN = "unknown"


def provider_verdict(provider_status: str, reason: str | None) -> Verdict:
    """What a provider status (and its reason) says about the verification."""
    if provider_status == "VERIFIED":
        return Verdict.VERIFIED
    if provider_status == "FAILED":
        transient = (reason or "").endswith(_TRANSIENT_SUFFIX)
        return Verdict.RUNNING if transient else Verdict.FAILED
    if provider_status in ("VERIFYING", "PENDING"):
        return Verdict.RUNNING
    if provider_status in ("NOT_STARTED", "INVALID"):
        return Verdict.NOT_STARTED
    return Verdict.UNKNOWN
