"""An authoritative DNS server on loopback (dnslib, UDP, a port the OS picks) for claim tests.

`LoopbackDns().txt[name] = [values]` publishes TXT records; any other question is NXDOMAIN.
The gateway is pointed at it with `CLAIM_RESOLVERS=["127.0.0.1:<port>"]`.
"""

import threading
from types import TracebackType
from typing import Any, Self

from dnslib import QTYPE, RCODE, RR, TXT, DNSRecord
from dnslib.server import DNSLogger, DNSServer


class _Resolver:
    def __init__(self, owner: "LoopbackDns") -> None:
        self._owner = owner

    def resolve(self, request: DNSRecord, handler: Any) -> DNSRecord:
        reply = request.reply()
        name = str(request.q.qname).rstrip(".").lower()
        with self._owner.lock:
            self._owner.questions.append(name)
            values = self._owner.txt.get(name)
        if values is None:
            reply.header.rcode = RCODE.NXDOMAIN
        elif request.q.qtype == QTYPE.TXT:
            for value in values:
                reply.add_answer(RR(name, QTYPE.TXT, rdata=TXT(value), ttl=60))
        return reply


class LoopbackDns:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.txt: dict[str, list[str]] = {}
        self.questions: list[str] = []
        self._server = DNSServer(
            _Resolver(self), address="127.0.0.1", port=0, logger=DNSLogger("error")
        )

    @property
    def resolver(self) -> str:
        """`127.0.0.1:<port>`, as CLAIM_RESOLVERS takes it."""
        host, port = self._server.server.server_address[:2]
        return f"{host}:{port}"

    def publish(self, name: str, *values: str) -> None:
        with self.lock:
            self.txt[name.lower()] = list(values)

    def __enter__(self) -> Self:
        self._server.start_thread()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._server.stop()
        self._server.server.server_close()
        self._server.thread.join(timeout=5)
