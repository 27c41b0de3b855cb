"""GraphiQL served by the gateway itself, from files inside the package.

The page loads nothing from anywhere else: its scripts and styles are the npm packages' files
vendored into gql/static/graphiql (see scripts/vendor_graphiql.py), served under
`/graphql/ide/<version>/<name>`, where `<version>` is a digest of them all, so each URL names
one content forever and can be cached as immutable. A Content-Security-Policy on the page
forbids every other origin.
"""

import asyncio
import gzip
import hashlib
import html
import re
from dataclasses import dataclass
from functools import cache
from importlib.resources import files

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

VENDORED = files("gql") / "static" / "graphiql"
PAGE_FILES = ("ide.js", "ide.css")
SCRIPTS = (
    "react.production.min.js",
    "react-dom.production.min.js",
    "graphiql.min.js",
    "plugin-explorer.umd.js",
    "ide.js",
)
STYLES = ("graphiql.min.css", "plugin-explorer.css", "ide.css")
MEDIA_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}
IMMUTABLE = "public, max-age=31536000, immutable"
_HOST = re.compile(r"(?:[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?")


@dataclass(frozen=True)
class Asset:
    content: bytes
    gzipped: bytes
    media_type: str


@dataclass(frozen=True)
class Bundle:
    version: str
    assets: dict[str, Asset]


@cache
def bundle() -> Bundle:
    """The served files, read once; a vendored file that differs from SHA256SUMS is refused."""
    contents: dict[str, bytes] = {}
    for line in (VENDORED / "SHA256SUMS").read_text().splitlines():
        digest, name = line.split(maxsplit=1)
        content = (VENDORED / name).read_bytes()
        if hashlib.sha256(content).hexdigest() != digest:
            raise RuntimeError(
                f"gql/static/graphiql/{name} does not match its SHA256SUMS entry: "
                "reinstall the package or run scripts/vendor_graphiql.py"
            )
        contents[name] = content
    for name in PAGE_FILES:
        contents[name] = (files("gql") / "graphql" / name).read_bytes()
    served = {
        name: Asset(content, gzip.compress(content, mtime=0), MEDIA_TYPES[suffix])
        for name, content in contents.items()
        if (suffix := name[name.rfind(".") :]) in MEDIA_TYPES
    }
    version = hashlib.sha256()
    for name in sorted(served):
        version.update(name.encode() + b"\0" + served[name].content)
    return Bundle(version.hexdigest()[:16], served)


async def current() -> Bundle:
    """The bundle, read off the event loop the first time (hashing and compressing take a while)."""
    return await asyncio.to_thread(bundle)


def content_security_policy(host: str | None) -> str:
    """Only this origin: its scripts, styles and HTTP endpoint, and its WebSocket endpoint."""
    connect = "'self'"
    if host and _HOST.fullmatch(host):
        # Older browsers do not count ws:/wss: to the page's host as 'self'.
        connect += f" ws://{host} wss://{host}"
    return "; ".join(
        [
            "default-src 'none'",
            "script-src 'self'",
            # GraphiQL's dialogs add <style> elements whose content varies (react-remove-scroll).
            "style-src 'self' 'unsafe-inline'",
            "img-src 'self' data:",
            "font-src 'self' data:",
            f"connect-src {connect}",
            "base-uri 'none'",
            "form-action 'none'",
            "frame-ancestors 'none'",
        ]
    )


async def page(request: Request) -> HTMLResponse:
    """The GraphiQL page for the GraphQL endpoint at `request`'s URL."""
    version = (await current()).version
    prefix = html.escape(f"{request.url.path.rstrip('/')}/ide/{version}/")
    styles = "".join(f'<link rel="stylesheet" href="{prefix}{name}">' for name in STYLES)
    scripts = "".join(f'<script src="{prefix}{name}" defer></script>' for name in SCRIPTS)
    body = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        "<title>GraphiQL · email-domain-gateway</title>"
        '<link rel="icon" href="data:,">'
        f"{styles}{scripts}</head>"
        '<body><div id="graphiql">Loading GraphiQL…</div>'
        "<noscript>GraphiQL needs JavaScript.</noscript></body></html>"
    )
    return HTMLResponse(
        body,
        headers={
            "Content-Security-Policy": content_security_policy(request.headers.get("host")),
            "Cache-Control": "no-cache",
            "Referrer-Policy": "no-referrer",
            "X-Content-Type-Options": "nosniff",
        },
    )


async def asset(request: Request) -> Response:
    """One of the page's files, cached for a year: its URL changes when its content does."""
    served = await current()
    found = served.assets.get(request.path_params["name"])
    if request.path_params["version"] != served.version or found is None:
        raise HTTPException(404)
    headers = {
        "Cache-Control": IMMUTABLE,
        "Vary": "Accept-Encoding",
        "X-Content-Type-Options": "nosniff",
    }
    content = found.content
    if "gzip" in request.headers.get("accept-encoding", ""):
        content = found.gzipped
        headers["Content-Encoding"] = "gzip"
    return Response(content, media_type=found.media_type, headers=headers)
