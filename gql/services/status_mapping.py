"""How the provider's statuses map to ours.

- VERIFIED: verified.
- FAILED with a `*_temporary_failure` reason: unchanged (transient; the provider retries).
- FAILED with any other reason: failed.
- VERIFYING or PENDING: verifying.
- NOT_STARTED or INVALID: verifying while a verification is running (DNS may still be
  propagating; the poller's window decides), otherwise pending (the owner must publish or fix
  the records, then verify).
- Anything unknown: unchanged.

Only a definite answer changes a stored status. A verified domain is never moved back to
verifying: the provider's checker flickers through VERIFYING/PENDING when a verification is
re-triggered, and that is not a verdict. FAILED (terminal), or INVALID/NOT_STARTED outside a
running verification, do demote it.
"""

from gql.models import Status

_TRANSIENT_SUFFIX = "_temporary_failure"


def map_provider_status(
    provider_status: str, reason: str | None, *, current: Status, verifying: bool
) -> Status | None:
    """Our status for the provider's answer, or None to keep the stored one."""
    reason = reason or ""
    mapped: Status | None
    if provider_status == "VERIFIED":
        mapped = Status.VERIFIED
    elif provider_status == "FAILED":
        mapped = None if reason.endswith(_TRANSIENT_SUFFIX) else Status.FAILED
    elif provider_status in ("VERIFYING", "PENDING"):
        mapped = Status.VERIFYING
    elif provider_status in ("NOT_STARTED", "INVALID"):
        mapped = Status.VERIFYING if verifying else Status.PENDING
    else:
        mapped = None
    if current is Status.VERIFIED and mapped is Status.VERIFYING:
        return None
    return mapped
