"""Summaries of py-spy's collapsed stacks (`--format raw`): where the server's CPU time went.

`python -m bench.stacks FILE...` prints, for each file, the share of samples spent in each
package (self time), the functions with the most self time, and those with the most inclusive
time. Idle samples (the event loop waiting) are not recorded by py-spy, so shares are of busy
time. Time spent in compiled code (uvloop, httptools, asyncpg's protocol, system calls) counts
for the nearest Python frame: uvloop's own work shows as `Runner.run`. Code that SQLAlchemy
runs inside a greenlet appears as stacks of their own, so the inclusive share of an outer
frame leaves out the database calls beneath it.
"""

import re
import sys
from collections import Counter
from pathlib import Path

_FRAME = re.compile(r"^(?P<function>.*) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")


def _location(frame: str) -> tuple[str, str]:
    """(function, file) of one frame; line numbers are dropped so a function counts once."""
    match = _FRAME.match(frame)
    if match is None:
        return frame, ""
    return match["function"], match["file"]


def package(file: str) -> str:
    """The top-level package of a file as py-spy names it (`asyncpg/protocol.py` → asyncpg)."""
    if file.startswith("<frozen "):
        return file.removeprefix("<frozen ").removesuffix(">")
    return file.split("/", 1)[0].removesuffix(".py") or "?"


# Frames every sample passes through on its way to the application: left out of the
# inclusive table, where they would only fill the top rows.
_ROOT_FILES = frozenset(
    {"asyncio/runners.py", "uvicorn/main.py", "uvicorn/server.py", "uvicorn/_compat.py"}
)


def _is_root(file: str) -> bool:
    return file in _ROOT_FILES or package(file) in {"runpy", "bench"}


def _short(function: str, file: str) -> str:
    return f"{function} ({file})"


def read_stacks(path: Path) -> list[tuple[list[tuple[str, str]], int]]:
    stacks = []
    for line in path.read_text().splitlines():
        frames, _, count = line.rpartition(" ")
        if not frames or not count.isdigit():
            continue
        stacks.append(([_location(f) for f in frames.split(";")], int(count)))
    return stacks


def summarize(path: Path, top: int = 15) -> str:
    stacks = read_stacks(path)
    total = sum(count for _, count in stacks)
    if total == 0:
        return f"{path}: no samples\n"
    by_package: Counter[str] = Counter()
    self_time: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    for frames, count in stacks:
        function, file = frames[-1]  # py-spy writes the outermost frame first
        by_package[package(file)] += count
        self_time[_short(function, file)] += count
        for name in {_short(f, p) for f, p in frames if p and not _is_root(p)}:
            inclusive[name] += count

    def table(title: str, counter: Counter[str], limit: int) -> list[str]:
        rows = [f"  {100 * n / total:5.1f} %  {name}" for name, n in counter.most_common(limit)]
        return [title, *rows]

    lines = [f"{path.name}: {total} samples of busy time"]
    lines += table("self time by package:", by_package, 12)
    lines += table("self time by function:", self_time, top)
    lines += table("inclusive time by function:", inclusive, top + 10)
    return "\n".join(lines) + "\n"


def main() -> None:
    for name in sys.argv[1:]:
        print(summarize(Path(name)))


if __name__ == "__main__":
    main()
