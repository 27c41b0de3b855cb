"""GraphiQL in headless Chromium against a real `gql-gateway serve`, with the outside world cut off.

Chromium resolves no host name but 127.0.0.1, and every request that is not for 127.0.0.1 is
failed and recorded, so the page works only if the gateway serves all of it.
"""

import json
import os
import shutil
import subprocess
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.async_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Page,
    Request,
    Route,
    WebSocket,
    async_playwright,
)
from playwright.async_api import TimeoutError as PlaywrightTimeoutError

from tests.conftest import Owner
from tests.helpers import MakeOwner, Served, serve

CHROMIUM = "/usr/bin/chromium"
# As root Chromium needs --no-sandbox; the rest keep it from calling home (see the machine notes).
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
]


def chromium() -> str:
    """Debian's Chromium, installed with apt-get when it is missing."""
    if os.path.exists(CHROMIUM):
        return CHROMIUM
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        pytest.fail(
            f"these tests need Debian's Chromium at {CHROMIUM}: run "
            "`apt-get update && apt-get install -y chromium` as root"
        )
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update"], ["apt-get", "install", "-y", "chromium"]):
        result = subprocess.run(
            command, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=900
        )
        if result.returncode != 0:
            pytest.fail(
                f"`{' '.join(command)}` failed, so Chromium could not be installed:\n"
                f"{result.stdout[-2000:]}{result.stderr[-2000:]}"
            )
    return CHROMIUM


@dataclass
class Visit:
    """A browser tab on the GraphiQL page and everything it did."""

    page: Page
    requests: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    websockets: list[WebSocket] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def assert_stayed_on_loopback(self) -> None:
        assert self.refused == [], f"the page tried to reach other hosts: {self.refused}"
        outside = [
            url
            for url in self.requests + [ws.url for ws in self.websockets]
            if urlsplit(url).hostname != "127.0.0.1"
        ]
        assert outside == []

    def assert_no_console_errors(self) -> None:
        assert self.errors == [], f"errors on the page: {self.errors}"


@pytest.fixture(scope="module")
async def gateway(database_url: str) -> AsyncIterator[Served]:
    async with serve(database_url) as served:
        yield served


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    executable = chromium()
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield launched
        await launched.close()


@pytest.fixture
async def context(browser: Browser) -> AsyncIterator[BrowserContext]:
    opened = await browser.new_context(
        viewport={"width": 1400, "height": 850}, service_workers="block"
    )
    yield opened
    await opened.close()


async def visit(context: BrowserContext, gateway: Served) -> Visit:
    """Open GraphiQL with only 127.0.0.1 reachable and wait until it has loaded the schema."""
    page = await context.new_page()
    seen = Visit(page)

    async def only_loopback(route: Route, request: Request) -> None:
        if urlsplit(request.url).hostname == "127.0.0.1":
            await route.continue_()
        else:
            seen.refused.append(request.url)
            await route.abort("internetdisconnected")

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            seen.errors.append(message.text)

    await context.route("**/*", only_loopback)
    page.on("request", lambda request: seen.requests.append(request.url))
    page.on("websocket", lambda ws: seen.websockets.append(ws))
    page.on("console", on_console)
    page.on("pageerror", lambda error: seen.errors.append(str(error)))
    await load(seen, page.goto(f"{gateway.url}/graphql"))
    return seen


def is_introspection(request: Request) -> bool:
    return request.method == "POST" and "IntrospectionQuery" in (request.post_data or "")


async def load(seen: Visit, navigation: Awaitable[object]) -> None:
    """Navigate and wait until GraphiQL has fetched the schema."""
    try:
        async with seen.page.expect_response(
            lambda response: is_introspection(response.request), timeout=20_000
        ) as introspection:
            await navigation
    except PlaywrightTimeoutError:
        raise AssertionError(
            f"GraphiQL did not load the schema; refused requests: {seen.refused}; "
            f"errors: {seen.errors}"
        ) from None
    assert (await introspection.value).ok
    await seen.page.locator(".graphiql-execute-button").wait_for()


async def set_editor(page: Page, selector: str, text: str) -> None:
    await page.locator(selector).evaluate("(node, text) => node.CodeMirror.setValue(text)", text)


async def use_key(page: Page, key: str) -> None:
    """Put the key in the headers editor, as a person replaces the placeholder."""
    await set_editor(page, HEADERS_EDITOR, json.dumps({"Authorization": f"Bearer {key}"}))


async def set_query(page: Page, text: str) -> None:
    """Replace the query, and wait until GraphiQL has parsed it (after a short debounce).

    GraphiQL picks the operation name and the transport from the parsed document; it stores
    the query in the same step, which the page can observe.
    """
    await set_editor(page, QUERY_EDITOR, text)
    await page.wait_for_function(
        "text => localStorage.getItem('graphiql:query') === text", arg=text
    )


async def editor_text(page: Page, selector: str) -> str:
    text: str = await page.locator(selector).evaluate("node => node.CodeMirror.getValue()")
    return text


HEADERS_EDITOR = ".graphiql-editor-tool .graphiql-editor:not(.hidden) .CodeMirror"
QUERY_EDITOR = ".graphiql-query-editor .CodeMirror"
RESULT = ".result-window .CodeMirror"


async def run(page: Page) -> dict[str, Any]:
    """Press the run button and return the result GraphiQL shows."""
    await page.locator(".graphiql-execute-button").click()
    result = page.locator(f"{RESULT} .CodeMirror-code")
    await result.get_by_text('"data"').or_(result.get_by_text('"errors"')).first.wait_for()
    shown: dict[str, Any] = json.loads(await editor_text(page, RESULT))
    return shown


async def test_graphiql_runs_a_query_with_an_api_key_with_no_network(
    gateway: Served, context: BrowserContext, make_owner: MakeOwner
) -> None:
    owner: Owner = await make_owner(["pending", "verified"])
    seen = await visit(context, gateway)
    page = seen.page

    # First load: the headers editor is open and shows where the key goes.
    assert await page.locator(HEADERS_EDITOR).is_visible()
    hint = json.loads(await editor_text(page, HEADERS_EDITOR))
    assert hint["Authorization"].startswith("Bearer pk_live_")
    assert "replace pk_live_YOUR_API_KEY" in await editor_text(page, QUERY_EDITOR)

    await use_key(page, owner.key)
    result = await run(page)

    assert "errors" not in result, result
    assert result["data"]["emailDomains"]["totalCount"] == 2
    shown = {edge["node"]["domain"] for edge in result["data"]["emailDomains"]["edges"]}
    assert shown == {domain.domain for domain in owner.domains}
    await page.get_by_text(owner.domains[0].domain).first.wait_for()
    seen.assert_stayed_on_loopback()
    seen.assert_no_console_errors()


async def test_graphiql_without_a_key_shows_the_unauthenticated_error(
    gateway: Served, context: BrowserContext
) -> None:
    seen = await visit(context, gateway)

    result = await run(seen.page)

    assert [error["extensions"]["code"] for error in result["errors"]] == ["UNAUTHENTICATED"]
    seen.assert_stayed_on_loopback()
    seen.assert_no_console_errors()


async def test_graphiql_keeps_the_query_history_but_not_the_key(
    gateway: Served, context: BrowserContext, make_owner: MakeOwner
) -> None:
    owner: Owner = await make_owner(["failed"])
    seen = await visit(context, gateway)
    page = seen.page
    await set_query(page, "query OnlyStatuses { emailDomains { totalCount } }")
    await use_key(page, owner.key)
    result = await run(page)
    assert result == {"data": {"emailDomains": {"totalCount": 1}}}

    await load(seen, page.reload())
    await page.get_by_role("button", name="Show History").click()

    await page.locator(".graphiql-history-item").get_by_text("OnlyStatuses").wait_for()
    assert owner.key not in await editor_text(page, HEADERS_EDITOR)
    stored = await page.evaluate("JSON.stringify(Object.assign({}, window.localStorage))")
    assert "OnlyStatuses" in stored
    assert owner.key not in stored
    seen.assert_stayed_on_loopback()
    seen.assert_no_console_errors()


async def test_graphiql_sends_subscriptions_over_the_gateways_websocket(
    gateway: Served, context: BrowserContext, make_owner: MakeOwner
) -> None:
    owner: Owner = await make_owner(["verifying"])
    seen = await visit(context, gateway)
    page = seen.page
    sent: list[dict[str, Any]] = []
    received: list[dict[str, Any]] = []

    def watch(ws: WebSocket) -> None:
        ws.on("framesent", lambda payload: sent.append(json.loads(payload)))
        ws.on("framereceived", lambda payload: received.append(json.loads(payload)))

    page.on("websocket", watch)
    await set_query(page, "subscription Watch { __typename }")
    await use_key(page, owner.key)

    result = await run(page)

    assert [ws.url for ws in seen.websockets] == [gateway.ws_url]
    init = next(message for message in sent if message["type"] == "connection_init")
    assert init["payload"] == {"Authorization": f"Bearer {owner.key}"}
    subscribe = next(message for message in sent if message["type"] == "subscribe")
    assert subscribe["payload"]["query"] == "subscription Watch { __typename }"
    assert any(message["type"] in {"next", "error"} for message in received), received
    # The gateway's own answer, as it sent it over the socket, is what the page shows.
    answer = next(message for message in received if message["type"] in {"next", "error"})
    shown = answer["payload"] if answer["type"] == "next" else {"errors": answer["payload"]}
    assert result == shown
    seen.assert_stayed_on_loopback()


async def test_graphiql_served_over_https_subscribes_over_wss_on_its_own_host(
    gateway: Served, context: BrowserContext
) -> None:
    """As behind a TLS-terminating proxy: the browser asks https://graphiql.test, which the test
    answers from the gateway, with that Host header (the policy names the host)."""
    page = await context.new_page()
    proxied: list[str] = []
    errors: list[str] = []

    async def proxy(route: Route, request: Request) -> None:
        parts = urlsplit(request.url)
        if parts.hostname != "graphiql.test":
            await route.abort("internetdisconnected")
            return
        proxied.append(request.url)
        answer = await route.fetch(
            url=gateway.url + parts.path, headers={**request.headers, "host": "graphiql.test"}
        )
        await route.fulfill(response=answer)

    await context.route("**/*", proxy)
    page.on("console", lambda message: errors.append(message.text))
    async with page.expect_response(lambda r: is_introspection(r.request)) as introspection:
        await page.goto("https://graphiql.test/graphql")
    assert (await introspection.value).ok
    await set_query(page, "subscription Watch { __typename }")

    async with page.expect_websocket() as opened:
        await page.locator(".graphiql-execute-button").click()

    assert (await opened.value).url == "wss://graphiql.test/graphql"
    assert [e for e in errors if "Content Security Policy" in e] == []
    assert all(url.startswith("https://graphiql.test/graphql") for url in proxied)
