"""The client's address, also behind a reverse proxy we trust.

Behind nginx every request comes from nginx's address, so per-client limits would lump all
clients together. ``X-Forwarded-For`` is believed only when the direct peer is a configured
trusted proxy (anyone can send the header), and read from the right: the entry the trusted
proxy appended is the address it saw.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(spec: str) -> tuple[Network, ...]:
    """``"10.0.0.0/8, 127.0.0.1"`` → networks; ValueError names a bad entry."""
    networks = []
    for entry in (part.strip() for part in spec.split(",")):
        if entry:
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                raise ValueError(f"not an address or network: {entry!r}") from None
    return tuple(networks)


def _trusted(address: str, proxies: Sequence[Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in proxies)


def client_ip(peer: str, forwarded_for: str | None, proxies: Sequence[Network]) -> str:
    if not forwarded_for or not _trusted(peer, proxies):
        return peer
    hops = [hop.strip() for hop in forwarded_for.split(",")[:32]]
    for hop in reversed(hops):
        try:
            ipaddress.ip_address(hop)
        except ValueError:
            return peer  # a malformed chain: trust nothing in it
        if not _trusted(hop, proxies):
            return hop
    return hops[0] if hops else peer
