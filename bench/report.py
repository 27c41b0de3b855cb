"""The results as a Markdown table, with the gateway/baseline throughput ratio per row."""

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

DESCRIPTIONS = {
    "rest_patch": "REST `PATCH /api/email/domains/{id}`",
    "graphql_mutation": "GraphQL `updateEmailDomainStatus`",
    "graphql_list": "GraphQL `emailDomains(first: 50)`",
    "graphql_list_persisted": "GraphQL `emailDomains(first: 50)`, APQ hash over GET",
}
BASELINES = {
    "rest_patch": "hand-written PATCH",
    "graphql_mutation": "hand-written PATCH",
    "graphql_list": "hand-written SELECT 50",
    "graphql_list_persisted": "hand-written SELECT 50",
}
TARGET_NAMES = {
    "gateway": "gateway",
    "gateway_core": "gateway, plans off",
}
# The targets: throughput as a fraction of the hand-written endpoint's.
TARGETS = {
    "rest_patch": 0.85,
    "rest_patch_jwt": 0.85,
    "graphql_mutation": 0.7,
    "graphql_mutation_jwt": 0.7,
    "graphql_list": 0.5,
    "graphql_list_jwt": 0.5,
}


def describe(workload: str) -> str:
    base = workload.removesuffix("_jwt")
    credential = ", JWT" if workload.endswith("_jwt") else ""
    return DESCRIPTIONS.get(base, base) + credential


def pairs(results: Sequence[dict[str, Any]]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(gateway, baseline) results measured beside each other, in run order."""
    by_key = {(r["workload"], r["concurrency"], r["target"]): r for r in results}
    out = []
    for r in results:
        if r["target"] != "baseline":
            baseline = by_key.get((r["workload"], r["concurrency"], "baseline"))
            if baseline is not None:
                out.append((r, baseline))
    return out


def markdown_table(results: Sequence[dict[str, Any]]) -> str:
    head = (
        "| workload | server | conc. | req/s | p50 ms | p99 ms | baseline | baseline req/s "
        "| p50 ms | p99 ms | ratio |\n"
        "|---|---|--:|--:|--:|--:|---|--:|--:|--:|--:|\n"
    )
    rows = []
    for gateway, baseline in pairs(results):
        name = gateway["workload"]
        ratio = gateway["rps"] / baseline["rps"]
        errors = gateway["errors"] + baseline["errors"]
        flag = f" ({errors} errors)" if errors else ""
        rows.append(
            f"| {describe(name)} | {TARGET_NAMES.get(gateway['target'], gateway['target'])} "
            f"| {gateway['concurrency']} "
            f"| {gateway['rps']:,.0f} | {gateway['p50_ms']:.2f} | {gateway['p99_ms']:.2f} "
            f"| {BASELINES.get(name.removesuffix('_jwt'), 'hand-written')} "
            f"| {baseline['rps']:,.0f} "
            f"| {baseline['p50_ms']:.2f} | {baseline['p99_ms']:.2f} | {ratio:.2f}x{flag} |"
        )
    return head + "\n".join(rows) + "\n"


def verdicts(results: Sequence[dict[str, Any]]) -> str:
    """One line per workload with a target: the ratios seen and whether all of them reach it."""
    lines = []
    for name, target in TARGETS.items():
        measured = [
            (g["concurrency"], g["rps"] / b["rps"])
            for g, b in pairs(results)
            if g["workload"] == name and g["target"] == "gateway"
        ]
        if not measured:
            continue
        seen = ", ".join(f"{r:.2f}x at c={c}" for c, r in measured)
        verdict = "meets" if min(r for _, r in measured) >= target else "misses"
        lines.append(f"{describe(name)}: {seen}: {verdict} the {target}x target")
    return "\n".join(lines) + "\n"


def cpu_table(results: Sequence[dict[str, Any]]) -> str:
    """Cores busy during each timed run, by process (`other` is whatever else ran meanwhile),
    the server's CPU time per request, and the database connections opened during the run."""
    head = (
        "| workload | target | conc. | server CPU µs/req | server | PostgreSQL | client "
        "| other | machine | new DB connections |\n"
        "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|\n"
    )

    def cores(value: float | None) -> str:
        return "-" if value is None else f"{value:.2f}"

    names = ("server", "postgres", "client", "other", "machine")
    rows = []
    for r in results:
        server = r["cpu_cores"]["server"]
        per_request = "-" if server is None else f"{server * 1e6 / r['rps']:.0f}"
        rows.append(
            f"| {r['workload']} | {r['target']} | {r['concurrency']} | {per_request} | "
            + " | ".join(cores(r["cpu_cores"][n]) for n in names)
            + f" | {r['db_sessions_opened']} |"
        )
    return head + "\n".join(rows) + "\n"


def interference(results: Sequence[dict[str, Any]], threshold: float = 0.25) -> str:
    """A warning when other work on the machine took CPU during timed runs."""
    busy = [r for r in results if (r["cpu_cores"].get("other") or 0.0) > threshold]
    if not busy:
        return ""
    worst = max(r["cpu_cores"]["other"] for r in busy)
    return (
        f"warning: during {len(busy)} of {len(results)} timed runs other work on the machine "
        f"kept more than {threshold} cores busy (up to {worst:.2f}); those numbers are less "
        "reliable.\n"
    )


def main() -> None:
    """`python -m bench.report bench/results/FILE.json` prints the tables of a saved run."""
    for name in sys.argv[1:]:
        results = json.loads(Path(name).read_text())["results"]
        print(markdown_table(results))
        print(verdicts(results))
        print(cpu_table(results))
        print(interference(results), end="")


if __name__ == "__main__":
    main()
