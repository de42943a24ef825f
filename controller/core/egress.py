"""The egress policy: which addresses the operator may send traffic (and credentials) to. Pure.

Every outbound connection — health checks, Prometheus, Railway, Slack, SMS, webhooks, SMTP,
Alertmanager — is judged here on the address it will actually connect to (the adapters'
resolver asks after DNS, so a name cannot rebind around it). Refused: cloud metadata
addresses, link-local, unspecified, multicast, loopback unless allowed, and any of those
hidden inside an IPv6 form that carries an IPv4 address (mapped ::ffff:a.b.c.d, compatible
::a.b.c.d, NAT64 64:ff9b::/96, 6to4 2002::/16, Teredo 2001::/32).
"""

from __future__ import annotations

import ipaddress
import urllib.parse

METADATA_ADDRESSES = frozenset(ipaddress.ip_address(a) for a in (
    "169.254.169.254", "fd00:ec2::254", "100.100.100.200", "192.0.0.192",
))
NAT64 = ipaddress.ip_network("64:ff9b::/96")
ALLOWED_SCHEMES = frozenset({"http", "https"})


def embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries, in any of the forms that route to it."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    if ip in NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if int(ip) >> 32 == 0 and int(ip) > 1:  # IPv4-compatible ::a.b.c.d (deprecated, still routed by some stacks)
        return ipaddress.IPv4Address(int(ip))
    return None


def refused_address(address: str, allow_loopback: bool) -> str | None:
    """Why the egress guard refuses to connect to `address`, or None when it may."""
    try:
        ip: ipaddress.IPv4Address | ipaddress.IPv6Address = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return f"{address!r} is not an IP address"
    shown = str(ip)
    if isinstance(ip, ipaddress.IPv6Address):
        inner = embedded_ipv4(ip)
        if inner is not None:
            ip, shown = inner, f"{ip} (IPv4 {inner})"
    if ip in METADATA_ADDRESSES:
        return f"{shown} is a cloud metadata address"
    if ip.is_link_local:
        return f"{shown} is link-local"
    if ip.is_unspecified or ip.is_multicast or ip.is_reserved and not ip.is_private:
        return f"{shown} is not a unicast address"
    if ip.is_loopback and not allow_loopback:
        return f"{shown} is loopback (the operator's own host); --allow-loopback-egress permits it"
    return None


def refused_url(url: str, allow_loopback: bool) -> str | None:
    """Why a URL is refused before any lookup: its scheme, its port, or a literal address.

    A name is judged later on what it resolves to; a literal is judged here, including the
    forms `urlsplit` and the resolver read as numbers (`http://2852039166/`, `http://0/`)."""
    if any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in url):
        return "the URL has white space or control characters in it"
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port
    except ValueError:
        return "the URL cannot be parsed (a port must be 0–65535)"
    if parts.scheme.lower() not in ALLOWED_SCHEMES:
        return f"scheme {parts.scheme or '(none)'!r} is not allowed (http or https)"
    if not parts.hostname:
        return "the URL has no host"
    if port == 0:
        return "port 0 is not a port"
    host = parts.hostname
    literal = _literal_address(host)
    return refused_address(literal, allow_loopback) if literal is not None else None


def _literal_address(host: str) -> str | None:
    """`host` as an address when it is one, in the dotted, bracketed or numeric forms."""
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        pass
    if host.isdigit() or (host.lower().startswith("0x") and all(c in "0123456789abcdef" for c in host[2:].lower())):
        value = int(host, 0) if host.lower().startswith("0x") else int(host)
        if value <= 0xFFFFFFFF:
            return str(ipaddress.IPv4Address(value))
    parts = host.split(".")
    if 1 < len(parts) <= 4 and all(p.isdigit() for p in parts):  # inet_aton's short forms: 127.1, 10.0.1
        try:
            *head, last = [int(p) for p in parts]
            value = 0
            for index, part in enumerate(head):
                if part > 255:
                    return None
                value |= part << (24 - 8 * index)
            if last >= 1 << (8 * (4 - len(head))):
                return None
            return str(ipaddress.IPv4Address(value | last))
        except ValueError:
            return None
    return None
