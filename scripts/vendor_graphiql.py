#!/usr/bin/env python3
"""Copy GraphiQL's browser assets from the npm packages pinned below into gql/static/graphiql.

    python scripts/vendor_graphiql.py          # (re)write the assets and SHA256SUMS
    python scripts/vendor_graphiql.py --check  # fail unless the committed files are exactly those

Each tarball is fetched with `npm pack` and must match the sha512 integrity recorded here (the
value a package-lock.json would hold); the copied files are recorded in SHA256SUMS, which the
gateway's tests check the packaged files against. To upgrade, change a version, set its
integrity to the value `npm view <name>@<version> dist.integrity` prints, and run the script.
"""

import argparse
import base64
import hashlib
import io
import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET = ROOT / "gql" / "static" / "graphiql"
SUMS = "SHA256SUMS"


@dataclass(frozen=True)
class Package:
    name: str
    version: str
    integrity: str
    # path inside the tarball's `package/` folder -> file name in TARGET
    files: dict[str, str]


PACKAGES = [
    Package(
        "react",
        "18.3.1",
        "sha512-wS+hAgJShR0KhEvPJArfuPVN1+Hz1t0Y6n5jLrGQbkb4urgPE/0Rve+1kMB1v/oWgHgm4WIcV+i7F2pTVj+2iQ==",
        {"umd/react.production.min.js": "react.production.min.js", "LICENSE": "LICENSE.react"},
    ),
    Package(
        "react-dom",
        "18.3.1",
        "sha512-5m4nQKp+rZRb09LNH59GM4BxTh9251/ylbKIbpe7TpGxfJ+9kv6BLkLBXIjjspbgbnIBNqlI23tRnTWT0snUIw==",
        {
            "umd/react-dom.production.min.js": "react-dom.production.min.js",
            "LICENSE": "LICENSE.react-dom",
        },
    ),
    Package(
        "graphiql",
        "3.9.0",
        "sha512-rJYFlHdBbug9+YbFSwRVvgfPjCayC7wHecZkx/qB4XLuQPFQZw/yB9pmHFtOJV6RiNBBHro3u1GdocKa3YcGRA==",
        {
            "graphiql.min.js": "graphiql.min.js",
            "graphiql.min.css": "graphiql.min.css",
            "LICENSE": "LICENSE.graphiql",
        },
    ),
    Package(
        "@graphiql/plugin-explorer",
        "3.2.6",
        "sha512-MXzG/zVNzZfes4Em253bHyAbD/lwwAZkPKvxCAQkjz0i3dtcv4uF3D8iqJ7214iu3SCphbORYZZUC93fik1yew==",
        {"dist/index.umd.js": "plugin-explorer.umd.js", "dist/style.css": "plugin-explorer.css"},
    ),
]


def fetch(package: Package, workdir: Path) -> dict[str, bytes]:
    """The package's selected files, from a tarball whose integrity matches the pinned one."""
    npm = shutil.which("npm")
    if npm is None:
        sys.exit("npm is needed to vendor GraphiQL: install Node.js and npm")
    result = subprocess.run(
        [npm, "pack", f"{package.name}@{package.version}", "--json", "--pack-destination", workdir],
        check=True,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
    )
    tarball = workdir / json.loads(result.stdout)[0]["filename"]
    data = tarball.read_bytes()
    integrity = "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()
    if integrity != package.integrity:
        sys.exit(
            f"{package.name}@{package.version}: the tarball's integrity is {integrity}, "
            f"not the pinned {package.integrity}; refusing to vendor it"
        )
    files = {}
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as archive:
        for inner, name in package.files.items():
            member = archive.extractfile(f"package/{inner}")
            if member is None:
                sys.exit(f"{package.name}@{package.version} has no file {inner}")
            files[name] = member.read()
    return files


def assets() -> dict[str, bytes]:
    """Every vendored file by name, plus SHA256SUMS (`sha256sum -c` reads it) listing them."""
    files: dict[str, bytes] = {}
    lines = []
    with tempfile.TemporaryDirectory() as workdir:
        for package in PACKAGES:
            fetched = fetch(package, Path(workdir))
            files.update(fetched)
            lines.extend(
                f"{hashlib.sha256(data).hexdigest()}  {name}" for name, data in fetched.items()
            )
    files[SUMS] = ("\n".join(lines) + "\n").encode()
    return files


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--check", action="store_true", help="compare with the committed files; write nothing"
    )
    args = parser.parse_args()
    wanted = assets()
    if args.check:
        differ = sorted(
            name
            for name, content in wanted.items()
            if not (TARGET / name).is_file() or (TARGET / name).read_bytes() != content
        )
        extra = sorted(
            path.name for path in TARGET.iterdir() if path.is_file() and path.name not in wanted
        )
        if differ or extra:
            sys.exit(
                f"gql/static/graphiql differs from the pinned npm packages: changed or missing "
                f"{differ}, unexpected {extra}; run scripts/vendor_graphiql.py"
            )
        print(f"{len(wanted)} files match the pinned npm packages")
        return
    TARGET.mkdir(parents=True, exist_ok=True)
    for name, content in wanted.items():
        (TARGET / name).write_bytes(content)
    print(f"wrote {len(wanted)} files to {TARGET.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
