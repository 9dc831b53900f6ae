"""Which hosts the daemon may deliver webhooks to, so that it never becomes a way to reach beyond the test's network.

`serve --webhook-targets` takes a comma-separated list of `loopback` (127.0.0.0/8, ::1), `private` (10/8,
172.16/12, 192.168/16, fc00::/7: where a docker-compose network puts its services), `any`, CIDR blocks and host
names (`*.example.test` for a domain). A URL's host is allowed when it is a listed name, or when every address it
resolves to lies in an allowed block; names are resolved when a delivery starts, so a compose service name works.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
from dataclasses import dataclass

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

KEYWORDS: dict[str, tuple[str, ...]] = {
    "loopback": ("127.0.0.0/8", "::1/128"),
    "private": ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7"),
    "any": ("0.0.0.0/0", "::/0"),
}
DEFAULT = "loopback,private"
_HOST = re.compile(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*")


class TargetForbidden(Exception):
    """The URL's host is outside the allowed targets; the message says which host and why."""


@dataclass(frozen=True)
class Targets:
    networks: tuple[Network, ...]
    names: frozenset[str] = frozenset()
    suffixes: tuple[str, ...] = ()  # from `*.domain`: names ending in `.domain`
    text: str = DEFAULT

    @classmethod
    def parse(cls, text: str) -> Targets:
        """Parses the flag; raises ValueError naming the entry that is neither a keyword, a block nor a name."""
        networks: list[Network] = []
        names: set[str] = set()
        suffixes: list[str] = []
        for raw in text.split(","):
            entry = raw.strip().lower()
            if not entry:
                continue
            if entry in KEYWORDS:
                networks.extend(ipaddress.ip_network(block) for block in KEYWORDS[entry])
            elif entry.startswith("*."):
                suffixes.append(entry[1:])
            else:
                try:
                    networks.append(ipaddress.ip_network(entry, strict=False))
                except ValueError:
                    if not _HOST.fullmatch(entry):
                        message = f"--webhook-targets: {raw.strip()!r} is not a keyword, block or host name"
                        raise ValueError(message) from None
                    names.add(entry)
        return cls(tuple(networks), frozenset(names), tuple(suffixes), text)

    def _named(self, host: str) -> bool:
        host = host.lower().rstrip(".")
        return host in self.names or any(host.endswith(suffix) for suffix in self.suffixes)

    def _covered(self, address: str) -> bool:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
        return any(ip in network for network in self.networks)

    async def check(self, host: str, port: int) -> None:
        """Returns when `host` may be delivered to; raises TargetForbidden otherwise."""
        if self._named(host):
            return
        try:
            ipaddress.ip_address(host)
            addresses = [host]
        except ValueError:
            try:
                infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
            except OSError as exc:
                raise TargetForbidden(f"{host} does not resolve: {exc}") from None
            addresses = [str(info[4][0]) for info in infos]
        outside = [a for a in addresses if not self._covered(a)]
        if outside:
            raise TargetForbidden(
                f"{host} ({', '.join(sorted(set(outside)))}) is outside the daemon's --webhook-targets ({self.text})"
            )
