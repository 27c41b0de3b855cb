"""Run an ASGI app on loopback in a background thread, plus the machinery shared by the fakes.

`LiveServer` serves any ASGI app under uvicorn on 127.0.0.1 with a port the OS picks, so a real
HTTP client (an official SDK with its own httpx client) can talk to it. `FakeProvider` is the base
of the provider fakes: it records every request, answers injected faults (errors, rate limits,
delays) before the real handler runs, and owns a `LiveServer` for the fake's app.
"""

from __future__ import annotations

import asyncio
import fnmatch
import json
import socket
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self

import uvicorn
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp

Handler = Callable[[Request], Awaitable[Response]]


class LiveServer:
    """An ASGI app served by uvicorn in a daemon thread on `127.0.0.1:<free port>`.

    Use it as a context manager (`with LiveServer(app) as server: server.url`) or call
    `start()` / `stop()` yourself (e.g. from a pytest fixture). `stop()` asks uvicorn to exit
    (`Server.should_exit`), waits for the thread, and falls back to `force_exit` if in-flight
    requests outlive the grace period; the thread is always joined before `stop()` returns.
    Uvicorn's logging is quiet: no access log, and only warnings and errors from its own loggers
    (the global logging configuration is left untouched).
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        host: str = "127.0.0.1",
        startup_timeout: float = 10.0,
        shutdown_timeout: float = 5.0,
        name: str = "fake-server",
        lifespan: bool = False,
        websockets: bool = False,
    ) -> None:
        self._app = app
        self._lifespan = lifespan
        self._websockets = websockets
        self._host = host
        self._startup_timeout = startup_timeout
        self._shutdown_timeout = shutdown_timeout
        self._name = name
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None
        self._port: int | None = None

    @property
    def port(self) -> int:
        """The bound port; only while running."""
        if self._port is None:
            raise RuntimeError("the server is not running")
        return self._port

    @property
    def url(self) -> str:
        """`http://127.0.0.1:<port>`, without a trailing slash; only while running."""
        return f"http://{self._host}:{self.port}"

    @property
    def thread(self) -> threading.Thread | None:
        """The serving thread (None before the first start); for leak checks in tests."""
        return self._thread

    @property
    def running(self) -> bool:
        """Whether the serving thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> Self:
        """Bind a free port, start uvicorn in a thread and wait until it accepts connections."""
        if self.running:
            raise RuntimeError("the server is already running")
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self._host, 0))
        self._socket = sock
        port: int = sock.getsockname()[1]
        config = uvicorn.Config(
            self._app,
            log_config=None,  # keep uvicorn away from logging.dictConfig
            log_level="warning",
            access_log=False,
            lifespan="on" if self._lifespan else "off",
            ws="websockets-sansio" if self._websockets else "none",
            loop="asyncio",
            timeout_graceful_shutdown=1,
        )
        server = uvicorn.Server(config)
        self._server = server
        thread = threading.Thread(
            target=server.run, kwargs={"sockets": [sock]}, name=f"{self._name}-{port}", daemon=True
        )
        self._thread = thread
        thread.start()
        deadline = time.monotonic() + self._startup_timeout
        while not server.started:
            if not thread.is_alive():
                self._cleanup()
                raise RuntimeError("the server thread died during start-up")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the server did not start within {self._startup_timeout}s")
            time.sleep(0.005)
        self._port = port
        return self

    def stop(self) -> None:
        """Ask uvicorn to exit and join its thread (idempotent)."""
        server, thread = self._server, self._thread
        if server is not None and thread is not None and thread.is_alive():
            server.should_exit = True
            thread.join(self._shutdown_timeout)
            if thread.is_alive():
                server.force_exit = True
                thread.join(self._shutdown_timeout)
            if thread.is_alive():
                raise RuntimeError("the server thread did not stop")
        self._cleanup()

    def _cleanup(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None
        self._server = None
        self._port = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the fake received it (before faults, auth or routing decided anything)."""

    method: str
    path: str
    query: tuple[tuple[str, str], ...]
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        """The body decoded as JSON, or None when it is empty or not JSON."""
        if not self.body:
            return None
        try:
            return json.loads(self.body)
        except ValueError:
            return None

    def param(self, name: str) -> str | None:
        """The first query parameter called `name`, if any."""
        return next((v for k, v in self.query if k == name), None)


@dataclass
class _Fault:
    kind: str  # "fail" | "rate_limit" | "delay"
    remaining: int
    status: int = 503
    retry_after: float = 1.0
    seconds: float = 0.0
    method: str | None = None
    path: str | None = None
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)

    def matches(self, method: str, path: str) -> bool:
        if self.method is not None and self.method.upper() != method:
            return False
        return self.path is None or fnmatch.fnmatchcase(path, self.path)


def format_retry_after(seconds: float) -> str:
    """Whole seconds as an integer (`1`), anything else as a decimal (`0.5`)."""
    return str(int(seconds)) if float(seconds).is_integer() else str(seconds)


class FakeProvider:
    """Base of the provider fakes: request log, counters, injected faults and the live server.

    Test controls (plain methods, callable from the test's thread while the server runs):

    - `fail_next(n, status=503)`: the next `n` matching requests answer `status` with the
      provider's error body;
    - `rate_limit_next(n, retry_after=1)`: the next `n` matching requests answer 429 with a
      `Retry-After` header;
    - `delay_next(n, seconds)`: the next `n` matching requests sleep `seconds` first, then are
      answered normally (use it to provoke client timeouts);
    - `calls(method, path)`, `counts`, `requests`: what was received, counting every request,
      including those answered by an injected fault or refused for authentication.

    Faults queue up in the order they were added; each request consumes at most one fault, the
    first one whose optional `method` / `path` filter matches (`path` is a glob such as
    `"/v0/domains/*/verify"`). `reset()` forgets state, faults and the request log.
    """

    server_name = "fake"

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._faults: list[_Fault] = []
        self._requests: list[RecordedRequest] = []
        self._counts: Counter[tuple[str, str]] = Counter()
        self._closing = threading.Event()
        self._server: LiveServer | None = None
        self._app: ASGIApp | None = None

    # -- serving --------------------------------------------------------------------------

    def build_app(self) -> ASGIApp:
        """The fake's ASGI app (subclasses build their routes here)."""
        raise NotImplementedError

    @property
    def app(self) -> ASGIApp:
        """The ASGI app, built once (also usable in process with `httpx.ASGITransport`)."""
        if self._app is None:
            self._app = self.build_app()
        return self._app

    def start(self) -> Self:
        """Serve the fake on loopback; `url` is valid until `stop()`."""
        self._closing.clear()
        self._server = LiveServer(self.app, name=self.server_name).start()
        return self

    def stop(self) -> None:
        """Stop serving (pending delays are cut short) and join the server thread."""
        self._closing.set()
        if self._server is not None:
            self._server.stop()
            self._server = None

    @property
    def url(self) -> str:
        """`http://127.0.0.1:<port>` of the running fake."""
        if self._server is None:
            raise RuntimeError(f"{type(self).__name__} is not running; call start()")
        return self._server.url

    @property
    def live_server(self) -> LiveServer | None:
        """The underlying `LiveServer` while running."""
        return self._server

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- test controls ----------------------------------------------------------------------

    def fail_next(
        self,
        n: int = 1,
        status: int = 503,
        *,
        method: str | None = None,
        path: str | None = None,
        body: Any = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        """The next `n` matching requests answer `status` with an error body.

        The body is the provider's error shape unless `body` is given; `headers` are added.
        """
        self._add(
            _Fault(
                "fail",
                n,
                status=status,
                method=method,
                path=path,
                body=body,
                headers=dict(headers or {}),
            )
        )

    def rate_limit_next(
        self,
        n: int = 1,
        retry_after: float = 1,
        *,
        method: str | None = None,
        path: str | None = None,
    ) -> None:
        """The next `n` matching requests answer 429 with `Retry-After: <retry_after>`."""
        self._add(
            _Fault("rate_limit", n, status=429, retry_after=retry_after, method=method, path=path)
        )

    def delay_next(
        self, n: int, seconds: float, *, method: str | None = None, path: str | None = None
    ) -> None:
        """The next `n` matching requests wait `seconds` before being answered normally."""
        self._add(_Fault("delay", n, seconds=seconds, method=method, path=path))

    def clear_faults(self) -> None:
        """Drop every pending fault."""
        with self._lock:
            self._faults.clear()

    def pending_faults(self) -> int:
        """How many injected answers are still queued (summed over faults)."""
        with self._lock:
            return sum(f.remaining for f in self._faults)

    def calls(self, method: str, path: str) -> int:
        """How many `method path` requests were received (path exact, or a glob with `*`)."""
        method = method.upper()
        with self._lock:
            if "*" in path or "?" in path or "[" in path:
                return sum(
                    n
                    for (m, p), n in self._counts.items()
                    if m == method and fnmatch.fnmatchcase(p, path)
                )
            return self._counts[(method, path)]

    @property
    def counts(self) -> dict[tuple[str, str], int]:
        """Requests received per `(method, path)`."""
        with self._lock:
            return dict(self._counts)

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received, oldest first."""
        with self._lock:
            return list(self._requests)

    def requests_to(self, method: str, path: str) -> list[RecordedRequest]:
        """The recorded `method path` requests (path exact, or a glob), oldest first."""
        method = method.upper()
        return [
            r for r in self.requests if r.method == method and fnmatch.fnmatchcase(r.path, path)
        ]

    def reset(self) -> None:
        """Forget faults and the request log (subclasses also forget their data)."""
        with self._lock:
            self._faults.clear()
            self._requests.clear()
            self._counts.clear()

    # -- for subclasses ---------------------------------------------------------------------

    def _add(self, fault: _Fault) -> None:
        if fault.remaining < 1:
            raise ValueError("n must be at least 1")
        with self._lock:
            self._faults.append(fault)

    def _take_fault(self, method: str, path: str) -> _Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.matches(method, path):
                    fault.remaining -= 1
                    if fault.remaining == 0:
                        self._faults.remove(fault)
                    return fault
        return None

    def _error_response(self, status: int, *, headers: dict[str, str] | None = None) -> Response:
        """The provider's error answer for an injected fault."""
        raise NotImplementedError

    def _check_auth(self, request: Request) -> Response | None:
        """None when the request is authenticated, else the provider's refusal."""
        raise NotImplementedError

    async def _sleep(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while not self._closing.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                return
            await asyncio.sleep(min(left, 0.05))

    async def _gate(self, request: Request) -> Response | None:
        """Record the request, then apply a fault or refuse it; None lets the handler run."""
        body = await request.body()
        method, path = request.method.upper(), request.url.path
        recorded = RecordedRequest(
            method=method,
            path=path,
            query=tuple(request.query_params.multi_items()),
            headers={k.lower(): v for k, v in request.headers.items()},
            body=body,
        )
        with self._lock:
            self._requests.append(recorded)
            self._counts[(method, path)] += 1
        fault = self._take_fault(method, path)
        if fault is not None:
            if fault.kind == "delay":
                await self._sleep(fault.seconds)
            elif fault.kind == "rate_limit":
                return self._error_response(
                    429, headers={"Retry-After": format_retry_after(fault.retry_after)}
                )
            else:
                if fault.body is not None:
                    return Response(
                        json.dumps(fault.body),
                        status_code=fault.status,
                        headers=fault.headers,
                        media_type="application/json",
                    )
                return self._error_response(fault.status, headers=fault.headers)
        return self._check_auth(request)

    def _endpoint(self, handler: Handler) -> Handler:
        """Wrap a route handler with the request log, faults and authentication."""

        async def endpoint(request: Request) -> Response:
            early = await self._gate(request)
            if early is not None:
                return early
            return await handler(request)

        return endpoint
