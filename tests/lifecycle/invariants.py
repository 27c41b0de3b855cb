"""The lifecycle's invariants, asserted over every row of a database (or of some accounts).

- every `verifying` domain inside its window has exactly one check queued or running, and no
  other domain has one queued;
- no `verifying` domain is past its window (after a sweep, it is `failed`);
- a `verified` domain has a `verified_at` and no reason; `verified_at` is never after
  `updated_at`, which is never before `created_at`;
- at most one account holds a name as `verified`;
- between two snapshots, `updated_at` moved exactly when a field callers see changed, and
  `verified_at` only when the domain became verified again.
"""

import uuid
from collections import Counter
from datetime import timedelta
from typing import Any

from gql.db.engine import Database

VISIBLE = ("status", "status_reason", "dns_records", "verified_at", "verification_started_at")


async def rows(db: Database, user_ids: list[uuid.UUID] | None = None) -> dict[uuid.UUID, Any]:
    async with db.connect() as conn:
        found = await conn.fetch(
            "SELECT *, now() AS checked_at FROM email_domains"
            " WHERE $1::uuid[] IS NULL OR user_id = ANY($1::uuid[])",
            user_ids,
        )
    return {r["id"]: dict(r) for r in found}


async def assert_invariants(
    db: Database, *, window: timedelta, user_ids: list[uuid.UUID] | None = None
) -> dict[uuid.UUID, Any]:
    """Assert every invariant over the rows (of `user_ids`, or all); returns the rows."""
    snapshot = await rows(db, user_ids)
    async with db.connect() as conn:
        checks = Counter(
            {
                r["queueing_lock"]: r["n"]
                for r in await conn.fetch(
                    "SELECT queueing_lock, count(*) AS n FROM procrastinate_jobs"
                    " WHERE task_name = 'check_domain' AND status IN ('todo', 'doing')"
                    " GROUP BY queueing_lock"
                )
            }
        )
        queued = Counter(
            {
                r["queueing_lock"]: r["n"]
                for r in await conn.fetch(
                    "SELECT queueing_lock, count(*) AS n FROM procrastinate_jobs"
                    " WHERE task_name = 'check_domain' AND status = 'todo'"
                    " GROUP BY queueing_lock"
                )
            }
        )
        holders = await conn.fetch(
            "SELECT domain, count(*) AS n FROM email_domains WHERE status = 'verified'"
            " GROUP BY domain HAVING count(*) > 1"
        )
    problems: list[str] = []
    for domain_id, row in snapshot.items():
        lock = f"domain:{domain_id}"
        what = f"{row['domain']} ({domain_id}, {row['status']}, {row['status_reason']})"
        if row["status"] == "verifying":
            started = row["verification_started_at"] or row["updated_at"]
            if started + window <= row["checked_at"]:
                problems.append(f"{what} is verifying past its window")
            elif checks[lock] != 1:
                problems.append(f"{what} is verifying with {checks[lock]} checks")
        elif queued[lock]:
            problems.append(f"{what} is not verifying but has {queued[lock]} queued checks")
        if row["status"] == "verified":
            if row["verified_at"] is None:
                problems.append(f"{what} is verified without verified_at")
            if row["status_reason"] is not None:
                problems.append(f"{what} is verified with a reason")
        if row["verified_at"] is not None and row["verified_at"] > row["updated_at"]:
            problems.append(f"{what} was verified after its last change")
        if row["updated_at"] < row["created_at"]:
            problems.append(f"{what} changed before it was created")
    problems += [f"{h['domain']} is verified by {h['n']} accounts" for h in holders]
    assert not problems, "invariants broken:\n" + "\n".join(problems)
    return snapshot


def assert_no_silent_changes(before: dict[uuid.UUID, Any], after: dict[uuid.UUID, Any]) -> None:
    """Between two snapshots: updated_at moved exactly when a visible field changed, and
    verified_at only when the domain became verified from another status."""
    problems = []
    for domain_id, old in before.items():
        new = after.get(domain_id)
        if new is None:
            continue
        changed = any(old[f] != new[f] for f in VISIBLE)
        if changed != (new["updated_at"] != old["updated_at"]):
            problems.append(
                f"{old['domain']}: changed={changed}, updated_at"
                f" {old['updated_at']} -> {new['updated_at']}"
            )
        if new["updated_at"] < old["updated_at"]:
            problems.append(f"{old['domain']}: updated_at went back")
        if new["verified_at"] != old["verified_at"] and new["status"] != "verified":
            problems.append(f"{old['domain']}: verified_at moved without being verified")
    assert not problems, "\n".join(problems)
