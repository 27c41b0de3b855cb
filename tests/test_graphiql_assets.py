"""The GraphiQL page and its files over HTTP, and where those files come from."""

import hashlib
import shutil
import subprocess
import sys
import zipfile
from html.parser import HTMLParser
from pathlib import Path

import httpx
import pytest

from gql.app import create_app
from gql.graphql import ide
from tests.conftest import make_settings, running

ROOT = Path(__file__).resolve().parent.parent
HTML = {"Accept": "text/html"}


class References(HTMLParser):
    """Every URL a page loads: script sources, stylesheet and icon links."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        url = values.get("src") if tag == "script" else values.get("href")
        if tag in {"script", "link"} and url is not None:
            self.urls.append(url)


async def page_references(client: httpx.AsyncClient) -> tuple[httpx.Response, list[str]]:
    response = await client.get("/graphql", headers=HTML)
    parser = References()
    parser.feed(response.text)
    return response, parser.urls


def directives(policy: str) -> dict[str, list[str]]:
    parsed = {}
    for directive in policy.split(";"):
        name, *sources = directive.split()
        parsed[name] = sources
    return parsed


async def test_page_loads_only_files_of_the_gateway(client: httpx.AsyncClient) -> None:
    response, urls = await page_references(client)

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    version = ide.bundle().version
    served = [url for url in urls if url != "data:,"]
    assert sorted(served) == sorted(
        f"/graphql/ide/{version}/{name}" for name in (*ide.SCRIPTS, *ide.STYLES)
    )
    assert "http://" not in response.text
    assert "https://" not in response.text


async def test_page_has_a_policy_that_allows_nothing_external(client: httpx.AsyncClient) -> None:
    response = await client.get("/graphql", headers=HTML)

    policy = directives(response.headers["content-security-policy"])
    assert policy["default-src"] == ["'none'"]
    assert policy["script-src"] == ["'self'"]
    assert policy["connect-src"] == ["'self'", "ws://gateway.test", "wss://gateway.test"]
    for name, sources in policy.items():
        external = [s for s in sources if s.startswith(("http", "ws")) and "gateway.test" not in s]
        assert external == [], name
        assert "*" not in sources, name
    assert policy["frame-ancestors"] == ["'none'"]
    assert response.headers["cache-control"] == "no-cache"


async def test_policy_names_no_websocket_origin_for_a_malformed_host(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/graphql", headers={**HTML, "Host": "evil; script-src *"})

    policy = directives(response.headers["content-security-policy"])
    assert policy["connect-src"] == ["'self'"]
    assert policy["script-src"] == ["'self'"]


async def test_files_are_cached_as_immutable_and_compressed(client: httpx.AsyncClient) -> None:
    _, urls = await page_references(client)

    for url in (u for u in urls if u.startswith("/graphql/ide/")):
        name = url.rsplit("/", 1)[1]
        plain = await client.get(url, headers={"Accept-Encoding": "identity"})
        assert plain.status_code == 200, url
        assert plain.headers["cache-control"] == "public, max-age=31536000, immutable"
        assert plain.headers["x-content-type-options"] == "nosniff"
        kind = "text/javascript" if name.endswith(".js") else "text/css"
        assert plain.headers["content-type"].startswith(kind), url
        assert plain.content == ide.bundle().assets[name].content

        compressed = await client.get(url, headers={"Accept-Encoding": "gzip"})
        assert compressed.headers["content-encoding"] == "gzip"
        assert compressed.headers["vary"] == "Accept-Encoding"
        assert compressed.content == plain.content  # httpx decodes it


async def test_graphiql_bundle_is_served_as_vendored(client: httpx.AsyncClient) -> None:
    version = ide.bundle().version
    response = await client.get(f"/graphql/ide/{version}/graphiql.min.js")

    vendored = (ROOT / "gql/static/graphiql/graphiql.min.js").read_bytes()
    assert response.content == vendored


@pytest.mark.parametrize(
    "path",
    [
        "/graphql/ide/0000000000000000/graphiql.min.js",
        "/graphql/ide/{version}/LICENSE.graphiql",
        "/graphql/ide/{version}/SHA256SUMS",
        "/graphql/ide/{version}/nothing.js",
        "/graphql/ide/{version}/..%2F..%2Fsettings.py",
    ],
)
async def test_only_the_current_files_are_served(client: httpx.AsyncClient, path: str) -> None:
    response = await client.get(path.format(version=ide.bundle().version))

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


async def test_with_graphiql_off_neither_page_nor_files_are_served(database_url: str) -> None:
    app = create_app(make_settings(database_url, graphiql=False))
    async with running(app) as client:
        page = await client.get("/graphql", headers=HTML)
        asset = await client.get(f"/graphql/ide/{ide.bundle().version}/graphiql.min.js")

    assert page.status_code == 404
    assert asset.status_code == 404


def test_a_vendored_file_that_differs_from_its_checksum_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shutil.copytree(ROOT / "gql/static/graphiql", tmp_path, dirs_exist_ok=True)
    with (tmp_path / "react.production.min.js").open("ab") as file:
        file.write(b";alert(1)")
    monkeypatch.setattr(ide, "VENDORED", tmp_path)
    ide.bundle.cache_clear()
    try:
        with pytest.raises(RuntimeError, match=r"react\.production\.min\.js does not match"):
            ide.bundle()
    finally:
        monkeypatch.undo()
        ide.bundle.cache_clear()


def test_checksums_cover_every_vendored_file() -> None:
    folder = ROOT / "gql/static/graphiql"
    listed = {}
    for line in (folder / "SHA256SUMS").read_text().splitlines():
        digest, name = line.split()
        listed[name] = digest

    on_disk = {path.name for path in folder.iterdir()} - {"SHA256SUMS"}
    assert set(listed) == on_disk
    for name, digest in listed.items():
        assert hashlib.sha256((folder / name).read_bytes()).hexdigest() == digest, name


def test_vendored_files_are_those_of_the_pinned_npm_packages() -> None:
    if shutil.which("npm") is None:
        pytest.fail("Node.js and npm are needed by this test: install `nodejs` and `npm`")
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts/vendor_graphiql.py"), "--check"],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=300,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "match the pinned npm packages" in result.stdout


def test_the_wheel_carries_graphiql(tmp_path: Path) -> None:
    # A copy, so that the build leaves nothing in the checkout.
    source = tmp_path / "source"
    shutil.copytree(ROOT / "gql", source / "gql", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", tmp_path, source],
        check=True,
        capture_output=True,
        stdin=subprocess.DEVNULL,
        timeout=300,
    )
    (wheel,) = tmp_path.glob("*.whl")
    with zipfile.ZipFile(wheel) as archive:
        packaged = set(archive.namelist())

    vendored = {f"gql/static/graphiql/{p.name}" for p in (ROOT / "gql/static/graphiql").iterdir()}
    page = {f"gql/graphql/{name}" for name in ide.PAGE_FILES}
    assert vendored | page <= packaged
