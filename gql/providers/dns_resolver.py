"""TXT look-ups in public DNS (dnspython), for the claim challenges."""

import ipaddress
import logging

import dns.asyncresolver
import dns.exception
import dns.nameserver
import dns.resolver

from gql.providers.verification import ProviderUnavailable
from gql.settings import Settings

logger = logging.getLogger(__name__)


def parse_resolver(entry: str) -> tuple[str, int]:
    """`192.0.2.53`, `192.0.2.53:5353`, `2001:db8::53` or `[2001:db8::53]:5353`."""
    host, number = entry.strip(), "53"
    if host.startswith("["):
        host, _, rest = host[1:].partition("]")
        number = rest.removeprefix(":") or number
    elif host.count(":") == 1:
        host, _, number = host.partition(":")
    try:
        ipaddress.ip_address(host)
        port = int(number)
    except ValueError:
        raise ValueError(
            f"CLAIM_RESOLVERS entry {entry!r} is not an IP address (optionally with :port), "
            'e.g. ["1.1.1.1", "8.8.8.8:53"]'
        ) from None
    if not 0 < port < 65536:
        raise ValueError(f"CLAIM_RESOLVERS entry {entry!r} has no valid port")
    return host, port


class TxtResolver:
    """Asks the configured resolvers (`CLAIM_RESOLVERS`; empty: the system's), never a cache."""

    def __init__(self, settings: Settings) -> None:
        servers = [parse_resolver(entry) for entry in settings.claim_resolvers]
        try:
            self._resolver = dns.asyncresolver.Resolver(configure=not servers)
        except dns.resolver.NoResolverConfiguration:
            # No /etc/resolv.conf: claims answer "resolvers did not answer" until it is set.
            logger.warning("no system DNS resolver is configured: set CLAIM_RESOLVERS")
            self._resolver = dns.asyncresolver.Resolver(configure=False)
        if servers:
            self._resolver.nameservers = [
                dns.nameserver.Do53Nameserver(host, port) for host, port in servers
            ]
        self._resolver.cache = None
        self._resolver.lifetime = settings.claim_dns_timeout_seconds

    async def txt(self, name: str) -> list[str]:
        """The TXT values published at `name` (each record's strings joined); [] when none."""
        try:
            answer = await self._resolver.resolve(name, "TXT", search=False)
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return []
        except (dns.resolver.NoNameservers, dns.exception.Timeout) as error:
            raise ProviderUnavailable(
                f"The DNS resolvers did not answer for {name}: retry in a minute."
            ) from error
        return [
            b"".join(rdata.strings).decode("utf-8", "replace")
            for rdata in answer
            if hasattr(rdata, "strings")
        ]
