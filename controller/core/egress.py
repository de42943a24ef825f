"""The egress policy: which addresses the operator may send traffic (and credentials) to. Pure.

Every outbound connection — health checks, Prometheus, Railway, Slack, SMS, webhooks, SMTP,
Alertmanager — is judged by `refused_address` on the address it actually connects to: the
adapters' dial point (adapters/egress.py) calls it with the final IP of every socket, IP
literals and resolved names alike, so a name cannot rebind around it and a literal cannot
skip it. `refused_url` is the early, clear refusal on the URL as the HTTP client reads it
(yarl, aiohttp's own parser: one normalisation, not two). Refused: cloud metadata addresses,
link-local, unspecified and 0.0.0.0/8, multicast, loopback unless allowed, and any of those
hidden inside an IPv6 form that carries an IPv4 address (mapped ::ffff:a.b.c.d, compatible
::a.b.c.d, translated ::ffff:0:a.b.c.d, NAT64 64:ff9b::/96, 6to4 2002::/16,
Teredo 2001::/32).
"""

from __future__ import annotations

import dataclasses
import ipaddress
import typing

import yarl

METADATA_ADDRESSES = frozenset(ipaddress.ip_address(a) for a in (
    "169.254.169.254", "fd00:ec2::254", "100.100.100.200", "192.0.0.192",
))
NAT64 = ipaddress.ip_network("64:ff9b::/96")
SIIT = ipaddress.ip_network("::ffff:0:0:0/96")  # IPv4-translated (RFC 2765)
THIS_NETWORK = ipaddress.ip_network("0.0.0.0/8")
ALLOWED_SCHEMES = frozenset({"http", "https"})


def embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries, in any of the forms that route to it."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    if ip in NAT64 or ip in SIIT:
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
    if isinstance(ip, ipaddress.IPv6Address):
        inner = embedded_ipv4(ip)
        if inner is not None:
            return _refused_ip(inner, f"{ip} (IPv4 {inner})", allow_loopback)
    return _refused_ip(ip, str(ip), allow_loopback)


def _refused_ip(ip: ipaddress.IPv4Address | ipaddress.IPv6Address, shown: str, allow_loopback: bool) -> str | None:
    if ip in METADATA_ADDRESSES:
        return f"{shown} is a cloud metadata address"
    if ip.is_link_local:
        return f"{shown} is link-local"
    # 0.0.0.0/8 is "this host on this network" (RFC 1122), a source address only: Linux
    # connects 0.0.0.0 to itself, and newer kernels route the rest of /8 as if unicast.
    if ip.is_unspecified or ip.is_multicast or ip.is_reserved and not ip.is_private or ip in THIS_NETWORK:
        return f"{shown} is not a unicast address"
    if ip.is_loopback and not allow_loopback:
        return f"{shown} is loopback (the operator's own host); --allow-loopback-egress permits it"
    return None


def refused_url(url: str, allow_loopback: bool) -> str | None:
    """Why a URL is refused before any lookup: its scheme, its port, or a literal address.

    Never raises, whatever the string: a URL that cannot be read is refused with a reason.
    The host judged is the host the HTTP client will dial: yarl is aiohttp's own URL parser,
    so the IDNA/NFKC normalisation (`①②⑦.0.0.1`, `１２７．０．０．１` and `127。0。0。1` are all
    127.0.0.1 to the client) is the same code here and there, not a second opinion. A name
    is judged later on what it resolves to; a literal is judged here, including the forms
    the system resolver reads as numbers (`http://2852039166/`, `http://0x7f.1/`, `http://0/`)."""
    if not isinstance(url, str):
        return "the URL is not text"
    if any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in url):
        return "the URL has white space or control characters in it"
    target = dialled(url)
    if isinstance(target, str):
        return target
    scheme, host, port = target
    if scheme not in ALLOWED_SCHEMES:
        return f"scheme {scheme or '(none)'!r} is not allowed (http or https)"
    if not host:
        return "the URL has no host"
    if port == 0:
        return "port 0 is not a port"
    return refused_host(host, allow_loopback)


def dialled(url: str) -> tuple[str, str, int | None] | str:
    """(scheme, host, port) exactly as aiohttp reads `url` — the host IDNA-encoded and
    NFKC-normalised, an IPv6 literal without brackets — or why it cannot be read."""
    try:
        parsed = yarl.URL(url)
        return parsed.scheme.lower(), parsed.raw_host or "", parsed.port
    except Exception:  # noqa: BLE001 -- yarl's failures are not a closed set (ValueError, UnicodeError, ...); each is a refusal
        # The parser's message is not kept: it quotes the URL, and a URL may come from a Secret.
        return "the URL cannot be parsed (its host must be a valid name or address, its port 1–65535)"


def refused_host(host: str, allow_loopback: bool) -> str | None:
    """Why `host`, as the HTTP client reads it (`dialled`), is refused before any lookup.

    A literal is judged as the address it is; so is a name the system resolver reads as a
    number (it never asks DNS for `0x7f.1`, it returns 127.0.0.1). A percent sign is refused:
    with an IPv6 zone id the event loop looks the address up again at connect time, past any
    judgement, and percent-encoding in a name is never decoded by the client (it means nothing)."""
    if "%" in host:
        return "the host has a percent sign in it (percent-encoding or an IPv6 zone id)"
    for candidate in dict.fromkeys((host, host.rstrip("."))):  # a trailing dot does not make an address a name
        literal = literal_address(candidate)
        if literal is not None:
            return refused_address(literal, allow_loopback)
    # aiohttp takes a host with a colon, or of digits and dots only, for an address and never
    # gives it to the resolver; one that is no address would reach the event loop as is.
    if ":" in host or host.replace(".", "").isdigit():
        return "the host looks like an IP address but is not one"
    return None


def literal_address(host: str) -> str | None:
    """`host` as an address when it is one: IPv6, dotted IPv4, or any form `inet_aton` reads
    (the system resolver reads those as numbers before it asks DNS anything)."""
    if host == "*":  # glibc's getaddrinfo reads "*" as no host at all: ::1 and 127.0.0.1
        return "127.0.0.1"
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        pass
    value = inet_aton(host)
    return str(ipaddress.IPv4Address(value)) if value is not None else None


_DIGITS = {8: frozenset("01234567"), 10: frozenset("0123456789"), 16: frozenset("0123456789abcdefABCDEF")}


def inet_aton(text: str) -> int | None:
    """The address glibc's `inet_aton` (as getaddrinfo uses it) reads in `text`, or None.

    One to four parts separated by dots, each decimal, octal (leading 0) or hex (0x); the
    last fills the bytes left (`127.1` is 127.0.0.1, `2130706433` is too). Only ASCII digits:
    `int()` would also take Unicode digits and underscores, which the C library does not."""
    parts = text.split(".")
    if not 1 <= len(parts) <= 4:
        return None
    values = []
    for part in parts:
        if part[:2] in ("0x", "0X"):
            digits, base = part[2:], 16
        elif part[:1] == "0" and len(part) > 1:
            digits, base = part[1:], 8
        else:
            digits, base = part, 10
        if not digits or not set(digits) <= _DIGITS[base]:
            return None
        values.append(int(digits, base))
    *head, last = values
    if any(v > 0xFF for v in head) or last >= 1 << (8 * (4 - len(head))):
        return None
    value = last
    for index, part_value in enumerate(head):
        value |= part_value << (24 - 8 * index)
    return value


Network = typing.Union[ipaddress.IPv4Network, ipaddress.IPv6Network]


@dataclasses.dataclass(frozen=True)
class ClusterNetworks:
    """The namespace notion of egress: inside the cluster's own networks (its Service and pod
    ranges, given by the operator's flags) a tenant reaches only what the API says a name of its
    own namespace is — `<service>.<namespace>.svc[.<domain>]`, `<pod>.<service>.<namespace>.svc…`,
    answered from the Service and its EndpointSlices, never by DNS (core/service_names.py) —
    or a host the operator itself was configured with (`trusted`: its Prometheus). So `refused`
    passes no name but those: an address inside reached through DNS by any other name, a
    literal cluster address, a short name (it resolves in the operator's namespace) or another
    namespace's Service is refused: from the operator's network identity it would pass any
    NetworkPolicy that admits the operator. No networks: no namespace rule (the default)."""

    networks: tuple[Network, ...] = ()
    domain: str = "cluster.local"
    trusted: frozenset[str] = frozenset()

    def inside(self, address: str) -> bool:
        try:
            ip: ipaddress.IPv4Address | ipaddress.IPv6Address = ipaddress.ip_address(address.split("%", 1)[0])
        except ValueError:
            return False
        if isinstance(ip, ipaddress.IPv6Address):
            ip = embedded_ipv4(ip) or ip
        return any(ip.version == network.version and ip in network for network in self.networks)

    def refused(self, address: str, host: str | None, namespace: str | None) -> str | None:
        """Why `namespace` may not reach `address` as a name's DNS answer (`host`) or as a
        literal (None), or None. Requests of no namespace (the operator's own) pass; inside the
        networks only the operator's trusted names do. A name of the namespace's own is no
        exception here: its answer comes from the API instead (core/service_names.py), and
        what DNS says of it is not believed (an ExternalName or a hand-written EndpointSlice
        makes it any address)."""
        if namespace is None or not self.inside(address):
            return None
        if host is None or literal_address(host.rstrip(".")) is not None:
            return (f"{address} is inside the cluster's networks: a namespace reaches in-cluster services only by "
                    f"the name of a Service of its own ({'<service>.' + namespace + '.svc'})")
        if host.lower().rstrip(".") in self.trusted:
            return None
        return (f"{host} is {address}, inside the cluster's networks but not a Service of namespace {namespace}: "
                f"name one of its own as <service>.{namespace}.svc")


def cluster_networks(cidrs: typing.Iterable[str], domain: str = "cluster.local",
                     trusted: typing.Iterable[str] = ()) -> ClusterNetworks:
    """From the operator's flags; a CIDR that is not one raises ValueError naming it."""
    networks = []
    for cidr in cidrs:
        try:
            networks.append(ipaddress.ip_network(cidr.strip(), strict=False))
        except ValueError:
            raise ValueError(f"not a network: {cidr!r} (CIDR, e.g. 10.96.0.0/12)") from None
    return ClusterNetworks(tuple(networks), domain.strip(".") or "cluster.local",
                           frozenset(h.lower().rstrip(".") for h in trusted if h))


def host_of(url: str | None) -> str | None:
    """The host the HTTP client dials for `url` (lower case, no trailing dot), or None."""
    if not url:
        return None
    target = dialled(url)
    return None if isinstance(target, str) or not target[1] else target[1].lower().rstrip(".")
