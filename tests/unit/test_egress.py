"""The egress guard judges the address the HTTP client actually connects to (issue 21).

The differential test drives two real aiohttp clients at the same URL: the project's guarded
client, and a plain aiohttp client with nothing in the way. Both get a resolver that asks no
DNS server (numbers as the C library reads them, a few fixed names) and a socket factory that
records the address each connection is made to and only lets a socket reach the loopback
listeners of this test. The guard's verdict must equal the policy's verdict on what the plain
client dialled: refused exactly when that address is refused, and otherwise the very same
connection, answered by the same listener. Every bypass found by hand is kept as an example.
"""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import os
import pathlib
import re
import socket
import typing

import aiohttp
import pydantic
import pytest
from aiohttp import abc as aiohttp_abc
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from controller.adapters import egress
from controller.api import common
from controller.core import egress as policy

REPO = pathlib.Path(__file__).resolve().parents[2]
Address = ipaddress.IPv4Address | ipaddress.IPv6Address
UNKNOWN = "a host the event loop would look up at connect time"

# Names the test resolver knows (anything else is "no such name"): no DNS server is asked.
NAMES: dict[str, list[str]] = {
    "localhost": ["127.0.0.1", "::1"],
    "metadata.test": ["169.254.169.254"],
    "v6metadata.test": ["::ffff:169.254.169.254"],
    "rebind.test": ["127.0.0.1", "169.254.169.254"],  # one allowed, one refused: the whole answer is refused
    "lan.test": ["10.0.0.7"],
    "public.test": ["93.184.216.34"],
    "xn--bcher-kva.test": ["127.0.0.1"],  # bücher.test, IDNA-encoded by the client
    "scoped.test": ["::1%1"],  # an answer with a zone id: asyncio would look it up again at connect time
}


def os_address(family: int, host: str) -> Address | str:
    """The address the kernel connects to when asyncio is given `host` (its own rules:
    `inet_pton` first, otherwise a getaddrinfo call; a numeric-only one here, no DNS)."""
    if "%" in host:  # asyncio sends any zone id through getaddrinfo: an address nobody judged
        return UNKNOWN
    try:
        return ipaddress.ip_address(socket.inet_ntop(family, socket.inet_pton(family, host)))
    except (OSError, ValueError):
        pass
    try:
        answers = socket.getaddrinfo(host.encode("ascii", "replace"), 0, family, socket.SOCK_STREAM,
                                     flags=socket.AI_NUMERICHOST)
        return ipaddress.ip_address(answers[0][4][0])
    except (OSError, ValueError, UnicodeError):
        return UNKNOWN


def refused(address: Address | str, allow_loopback: bool) -> bool:
    return address == UNKNOWN or policy.refused_address(str(address), allow_loopback) is not None


class NoDnsResolver(aiohttp_abc.AbstractResolver):
    """Numbers as getaddrinfo reads them (AI_NUMERICHOST: never a DNS query), then NAMES;
    records every address it answers with and whether a name (not a number) was looked up."""

    def __init__(self) -> None:
        self.answered: list[Address] = []
        self.by_name = False

    async def resolve(self, host: str, port: int = 0,
                      family: socket.AddressFamily = socket.AF_INET) -> list[aiohttp_abc.ResolveResult]:
        try:
            infos = socket.getaddrinfo(host.encode("ascii"), port, family, socket.SOCK_STREAM, flags=socket.AI_NUMERICHOST)
            addresses = [str(info[4][0]) for info in infos]
        except (OSError, UnicodeError, ValueError):
            if host.lower() not in NAMES:
                raise OSError(socket.EAI_NONAME, "no such name (the test resolver asks no DNS server)") from None
            self.by_name = True
            addresses = NAMES[host.lower()]
        results: list[aiohttp_abc.ResolveResult] = []
        for address in addresses:
            self.answered.append(ipaddress.ip_address(address.split("%")[0]))
            results.append({"hostname": host, "host": address, "port": port,
                            "family": socket.AF_INET6 if ":" in address else socket.AF_INET, "proto": 0,
                            "flags": socket.AI_NUMERICHOST | socket.AI_NUMERICSERV})
        return results

    async def close(self) -> None:
        pass


class Sandbox:
    """The socket factory under both clients: records where each connection goes, and lets
    only a numeric address of a loopback listener of this test (that port) be connected."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.dialled: list[Address | str] = []

    def __call__(self, addr_info: egress.AddrInfo) -> socket.socket:
        family, type_, proto, _, sockaddr = addr_info
        address = os_address(family, sockaddr[0])
        self.dialled.append(address)
        numeric = address != UNKNOWN and "%" not in sockaddr[0]
        if numeric and str(address) in ("127.0.0.1", "::1", "::ffff:127.0.0.1") and sockaddr[1] == self.port:
            try:
                socket.inet_pton(family, sockaddr[0])  # asyncio connects it without a lookup
                return socket.socket(family=family, type=type_, proto=proto)
            except OSError:
                pass
        raise OSError(errno.ENETUNREACH, "sandbox: only this test's loopback listeners are reachable")


class Lab:
    """Loopback listeners on 127.0.0.1 and ::1 (one port) and a loop to drive clients on."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.accepted = 0
        self.servers: list[asyncio.base_events.Server] = []
        for _ in range(20):
            first = self.loop.run_until_complete(asyncio.start_server(self._answer, "127.0.0.1", 0))
            self.port = first.sockets[0].getsockname()[1]
            try:
                second = self.loop.run_until_complete(asyncio.start_server(self._answer, "::1", self.port))
            except OSError:
                first.close()
                continue
            self.servers = [first, second]
            break
        assert self.servers, "no port free on both 127.0.0.1 and ::1"

    async def _answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        try:
            if await reader.read(1) != b"G":  # a TLS hello (https://): hang up rather than wait for a request
                return
            await reader.readuntil(b"\r\n\r\n")
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 8\r\nConnection: close\r\n\r\nlistener")
            await writer.drain()
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        finally:
            writer.close()

    def close(self) -> None:
        for server in self.servers:
            server.close()
        self.loop.close()


class Outcome(typing.NamedTuple):
    kind: str  # "answered", "refused" (guard) or "failed"
    resolved: list[Address]
    dialled: list[Address | str]
    by_name: bool


async def plain(url: str, port: int) -> Outcome:
    """What aiohttp itself does with `url`, nothing in its way but the sandbox."""
    resolver, sandbox = NoDnsResolver(), Sandbox(port)
    connector = aiohttp.TCPConnector(resolver=resolver, socket_factory=sandbox, force_close=True)
    async with aiohttp.ClientSession(connector=connector, trust_env=False) as session:
        try:
            async with session.get(url, allow_redirects=False, timeout=aiohttp.ClientTimeout(total=5)) as response:
                kind = "answered" if await response.read() == b"listener" else "failed"
        except (aiohttp.ClientError, ValueError, OSError, asyncio.TimeoutError):
            kind = "failed"
    return Outcome(kind, resolver.answered, sandbox.dialled, resolver.by_name)


async def guarded(url: str, port: int, allow_loopback: bool) -> Outcome:
    """The project's guarded client on `url`, with the same resolver and sandbox under it."""
    resolver, sandbox = NoDnsResolver(), Sandbox(port)
    client = egress.GuardedClient(allow_loopback, resolver=resolver, dial=sandbox)
    try:
        response = await client.request("GET", url, deadline=5, body_limit=64)
        kind = "answered" if response.body == b"listener" else "failed"
    except egress.EgressRefused:
        kind = "refused"
    except (aiohttp.ClientError, ValueError, OSError, asyncio.TimeoutError):
        kind = "failed"
    finally:
        await client.close()
    return Outcome(kind, resolver.answered, sandbox.dialled, resolver.by_name)


@pytest.fixture(scope="module")
def lab() -> typing.Iterator[Lab]:
    made = Lab()
    yield made
    made.close()


# -- Hosts as a tenant may write them -------------------------------------------------------------

TARGETS = ["127.0.0.1", "127.0.0.2", "169.254.169.254", "100.100.100.200", "192.0.0.192", "0.0.0.0", "0.0.0.1",
           "10.0.0.7", "93.184.216.34", "224.0.0.1", "255.255.255.255", "240.0.0.1", "169.254.1.1"]
DIGITS = {str(d): [str(d), chr(0xFF10 + d), chr(0x24EA) if d == 0 else chr(0x2460 + d - 1), chr(0x1D7CE + d),
                   "⁰¹²³⁴⁵⁶⁷⁸⁹"[d], chr(0x0660 + d)] for d in range(10)}
DOTS = [".", "。", "．", "｡"]


@st.composite
def ipv4_text(draw: st.DrawFn) -> str:
    """An IPv4 address in any form inet_aton reads (or nearly: a form it refuses is fine too)."""
    ip = ipaddress.IPv4Address(draw(st.sampled_from(TARGETS) | st.ip_addresses(v=4).map(str)))
    value, octets = int(ip), list(ip.packed)

    def part(number: int) -> str:
        return draw(st.sampled_from([str(number), str(number), hex(number), hex(number).upper().replace("0X", "0x"),
                                     "0" + oct(number)[2:]]))

    shape = draw(st.sampled_from(["dotted", "dotted", "one", "two", "three"]))
    if shape == "dotted":
        parts = [part(o) for o in octets]
    elif shape == "one":
        parts = [part(value)]
    elif shape == "two":
        parts = [part(octets[0]), part(value & 0xFFFFFF)]
    else:
        parts = [part(octets[0]), part(octets[1]), part(value & 0xFFFF)]
    return ".".join(parts) + draw(st.sampled_from(["", "", ".", ".."]))


@st.composite
def ipv6_text(draw: st.DrawFn) -> str:
    """An IPv6 literal carrying a tenant-chosen address, in brackets (mostly)."""
    v4 = ipaddress.IPv4Address(draw(st.sampled_from(TARGETS)))
    packed = int(v4)
    form = draw(st.sampled_from([
        f"::ffff:{v4}", f"::ffff:{packed >> 16:x}:{packed & 0xFFFF:x}", f"::{v4}", f"64:ff9b::{v4}",
        f"2002:{packed >> 16:x}:{packed & 0xFFFF:x}::1", f"2001:0:4136:e378:8000:63bf:{(packed ^ 0xFFFFFFFF) >> 16:x}:"
        f"{(packed ^ 0xFFFFFFFF) & 0xFFFF:x}", f"::ffff:0:{v4}", "::1", "::", "fe80::1", "fd00:ec2::254", "2001:db8::1", "0:0:0:0:0:0:0:1",
    ]))
    if draw(st.booleans()):
        form = ipaddress.IPv6Address(form).exploded
    if draw(st.booleans()):
        form = form.upper()
    form += draw(st.sampled_from(["", "", "", "%25lo", "%25eth0", "%lo", "%251"]))
    return f"[{form}]" if draw(st.integers(0, 9)) else form


def disguise(draw: st.DrawFn, text: str) -> str:
    """Unicode digits and dots, full-width letters, percent-encoding: what NFKC/IDNA folds."""
    out = []
    for char in text:
        if char in DIGITS and draw(st.integers(0, 3)) == 0:
            char = draw(st.sampled_from(DIGITS[char]))
        elif char == "." and draw(st.integers(0, 3)) == 0:
            char = draw(st.sampled_from(DOTS))
        elif char.isascii() and char.isalpha() and draw(st.integers(0, 5)) == 0:
            char = chr(ord(char.lower()) - ord("a") + 0xFF41)
        elif char.isascii() and char.isalnum() and draw(st.integers(0, 15)) == 0:
            char = f"%{ord(char):02X}"
        out.append(char)
    return "".join(out)


@st.composite
def hosts(draw: st.DrawFn) -> str:
    kind = draw(st.sampled_from(["ipv4", "ipv4", "ipv6", "name", "text"]))
    if kind == "ipv4":
        host = draw(ipv4_text())
    elif kind == "ipv6":
        host = draw(ipv6_text())
    elif kind == "name":
        host = draw(st.sampled_from([*NAMES, "bücher.test", "unknown.test", "LocalHost"])) + draw(st.sampled_from(["", "."]))
    else:
        host = draw(st.text(min_size=1, max_size=12))
    return disguise(draw, host) if draw(st.booleans()) else host


@st.composite
def urls(draw: st.DrawFn, port: int) -> str:
    userinfo = draw(st.sampled_from(["", "", "", "user@", "user:pw@", "127.0.0.1@", "169.254.169.254@", "a@b@"]))
    written = str(port)
    port_text = draw(st.sampled_from([f":{written}", f":{written}", f":0{written}", "",
                                      ":" + "".join(chr(0xFF10 + int(d)) for d in written)]))
    return f"{draw(st.sampled_from(['http', 'http', 'HTTP', 'https']))}://{userinfo}{draw(hosts())}{port_text}/probe"


# -- The differential: the guard's verdict is the verdict on what the client connects to ----------

BYPASSES = ["*", "①②⑦.0.0.1", "１２７．０．０．１", "127。0。0。1", "１６９．２５４．１６９．２５４", "⓪ｘ７ｆ.1", "[::ffff:127.0.0.1]",
            "0x7f.1", "0177.0.0.1", "2130706433", "127.1", "[::1%25lo]", "LOCALHOST", "rebind.test", "bücher.test", "scoped.test",
            "[64:ff9b::a9fe:a9fe]", "[2002:a9fe:a9fe::1]", "[::7f00:1]", "[::ffff:0:a9fe:a9fe]", "127.0.0.1.",
            "[2001:0:4136:e378:8000:63bf:5601:5601]"]


def carriers(v4: ipaddress.IPv4Address) -> list[str]:
    """Every IPv6 form that routes to `v4`: mapped, compatible, translated, NAT64, 6to4, Teredo."""
    value, obfuscated = int(v4), int(v4) ^ 0xFFFFFFFF
    return [f"::ffff:{v4}", f"::{v4}", f"::ffff:0:{v4}", f"64:ff9b::{v4}", f"2002:{value >> 16:x}:{value & 0xFFFF:x}::1",
            f"2001:0:4136:e378:8000:63bf:{obfuscated >> 16:x}:{obfuscated & 0xFFFF:x}"]


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(TARGETS).map(ipaddress.IPv4Address) | st.ip_addresses(v=4), st.booleans())
def test_an_ipv6_form_is_judged_as_the_ipv4_address_it_carries(v4: ipaddress.IPv4Address, allow_loopback: bool) -> None:
    expected = policy.refused_address(str(v4), allow_loopback) is None
    for form in carriers(v4):
        if form.startswith("::") and not form.startswith("::ffff") and int(v4) <= 1:
            continue  # ::0.0.0.0 and ::0.0.0.1 are :: and ::1 themselves
        assert (policy.refused_address(form, allow_loopback) is None) == expected, (form, v4)


def check(lab: Lab, url: str) -> None:
    if any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in url):
        # Refused whatever the host (header injection): stricter than aiohttp, never laxer.
        outcome = lab.loop.run_until_complete(guarded(url, lab.port, allow_loopback=True))
        assert (outcome.kind, outcome.dialled) == ("refused", []), (url, outcome)
        return
    truth = lab.loop.run_until_complete(plain(url, lab.port))
    addresses = [*truth.resolved, *truth.dialled]
    for allow_loopback in (False, True):
        before = lab.accepted
        outcome = lab.loop.run_until_complete(guarded(url, lab.port, allow_loopback))
        early = policy.refused_url(url, allow_loopback)  # never raises: a reason or None
        assert not [a for a in outcome.dialled if refused(a, allow_loopback)], (url, allow_loopback, outcome)
        if any(refused(a, allow_loopback) for a in addresses):
            assert (outcome.kind, outcome.dialled, lab.accepted) == ("refused", [], before), (url, allow_loopback, outcome)
            if not truth.by_name:  # a literal (or a number): refused before any lookup, with its reason
                assert early is not None, (url, allow_loopback, truth)
        elif truth.dialled:
            assert early is None, (url, allow_loopback, early)
            assert (outcome.kind, outcome.dialled) == (truth.kind, truth.dialled), (url, allow_loopback, outcome, truth)
        else:  # the client itself connects nowhere (no such name, a URL it cannot use)
            assert outcome.dialled == [], (url, allow_loopback, outcome)


@pytest.mark.parametrize("host", BYPASSES)
def test_every_bypass_found_is_judged_on_the_address_connected(lab: Lab, host: str) -> None:
    check(lab, f"http://{host}:{lab.port}/probe")


# `CAPLIQUIFY_EGRESS_EXAMPLES=5000` for a longer, randomised search (unit time: 200, derandomised).
EXAMPLES = int(os.environ.get("CAPLIQUIFY_EGRESS_EXAMPLES", "200"))


@settings(max_examples=EXAMPLES, deadline=None, derandomize=not os.environ.get("CAPLIQUIFY_EGRESS_EXAMPLES"),
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
def test_guard_verdict_equals_the_verdict_on_the_address_the_client_connects_to(lab: Lab, data: st.DataObject) -> None:
    check(lab, data.draw(urls(lab.port)))


def test_unicode_loopback_hosts_reached_the_listener_before_and_are_refused_now(lab: Lab) -> None:
    """The reported read oracle: a full-width loopback host answered with the listener's body."""
    for host in ("①②⑦.0.0.1", "１２７．０．０．１", "127。0。0。1"):
        url = f"http://{host}:{lab.port}/probe"
        assert lab.loop.run_until_complete(plain(url, lab.port)).kind == "answered"  # the client folds it to 127.0.0.1
        assert lab.loop.run_until_complete(guarded(url, lab.port, allow_loopback=False)).kind == "refused"
        assert lab.loop.run_until_complete(guarded(url, lab.port, allow_loopback=True)).kind == "answered"
        refusal = policy.refused_url(url, allow_loopback=False)
        assert refusal is not None and "127.0.0.1 is loopback" in refusal


def test_the_dial_point_alone_refuses_literals_the_early_check_missed(lab: Lab, monkeypatch: pytest.MonkeyPatch) -> None:
    """By construction: with the URL check switched off, the connector's dial point still
    refuses a literal (which aiohttp never gives the resolver) before a socket exists."""
    monkeypatch.setattr(egress.GuardedClient, "refused", lambda self, url: None)
    before = lab.accepted
    for host in ("１２７．０．０．１", "[::ffff:127.0.0.1]", "[::1]", "localhost"):
        outcome = lab.loop.run_until_complete(guarded(f"http://{host}:{lab.port}/", lab.port, allow_loopback=False))
        assert (outcome.kind, outcome.dialled) == ("refused", []), (host, outcome)
    assert lab.accepted == before


def test_a_health_check_admitted_before_the_pattern_tightened_reads_nothing_from_loopback(lab: Lab) -> None:
    """The read oracle of the report: bodyContains on a full-width loopback host. An object
    stored before the URL pattern refused it (model_construct skips validation) still gets
    the egress refusal, not the listener's body."""
    from controller.adapters import http_check
    from controller.api import monitoredservice as api
    checker = http_check.HttpChecker(allow_loopback=False)
    before = lab.accepted
    try:
        for host in ("１２７．０．０．１", "127。0。0。1", "①②⑦.0.0.1"):
            check = api.HttpCheck.model_construct(url=f"http://{host}:{lab.port}/", expectStatus=[200],
                                                  bodyContains="listener", timeoutSeconds=2)
            with pytest.raises(http_check.EgressRefused, match="127.0.0.1 is loopback"):
                lab.loop.run_until_complete(checker.probe(check))
    finally:
        lab.loop.run_until_complete(checker.close())
    assert lab.accepted == before


def test_dial_refusal_takes_only_addresses_connected_without_a_lookup() -> None:
    v4, v6 = socket.AF_INET, socket.AF_INET6
    tcp = (socket.SOCK_STREAM, socket.IPPROTO_TCP, "")
    assert egress.dial_refusal((v4, *tcp, ("10.0.0.7", 80)), allow_loopback=False) is None
    assert "without a lookup" in str(egress.dial_refusal((v4, *tcp, ("127.1", 80)), allow_loopback=True))
    assert "without a lookup" in str(egress.dial_refusal((v6, *tcp, ("::1%lo", 80, 0, 0)), allow_loopback=True))
    assert "cloud metadata" in str(egress.dial_refusal((v6, *tcp, ("::ffff:169.254.169.254", 80, 0, 0)), allow_loopback=True))


# -- The early check: never raises, reads numbers as the C library does ---------------------------

@settings(max_examples=300, deadline=None)
@given(st.text() | st.builds(lambda host, rest: f"http://{host}{rest}", st.text(), st.text(max_size=8)))
@example("http://①/")
@example("http://xn--/")
@example("http://[v1.x]/")
@example("http://a:99999/")
@example("http://ａ＠ｂ/")
def test_refused_url_never_raises(url: str) -> None:
    for allow_loopback in (False, True):
        reason = policy.refused_url(url, allow_loopback)
        assert reason is None or (isinstance(reason, str) and reason)


NUMERIC = st.text(alphabet="0123456789xXabcdefABCDEF.", max_size=24) | ipv4_text()


@settings(max_examples=300, deadline=None)
@given(NUMERIC)
@example("0x")
@example("08")
@example("0x7f.1")
@example("4294967296")
@example("1.16777216")
def test_inet_aton_reads_what_the_c_library_reads(text: str) -> None:
    try:
        expected: int | None = int(ipaddress.IPv4Address(
            socket.getaddrinfo(text.encode(), 0, socket.AF_INET, socket.SOCK_STREAM, flags=socket.AI_NUMERICHOST)[0][4][0]))
    except (OSError, ValueError):
        expected = None
    assert policy.inet_aton(text) == expected


# -- What the CRD admits reads as what is connected --------------------------------------------

@settings(max_examples=200, deadline=None)
@given(hosts())
@example("①②⑦.0.0.1")
@example("１２７．０．０．１")
@example("127。0。0。1")
@example("%31%32%37.0.0.1")
def test_the_url_pattern_admits_only_hosts_the_client_reads_as_written(host: str) -> None:
    url = f"http://{host}:8080/x"
    match = re.fullmatch(common.HTTP_URL, url)
    written = match.group(1) if match else None  # the host as the pattern read it
    if written is not None and "[" not in written:
        assert written.isascii() and "%" not in written, url
        assert policy.dialled(url)[1] in (written.lower(), ""), url  # "" when the client cannot read it at all
    elif not host.isascii():
        assert written is None or written.isascii(), url


def test_the_crd_refuses_unicode_hosts() -> None:
    from controller.api import monitoredservice as api
    for host in ("①②⑦.0.0.1", "１２７．０．０．１", "127。0。0。1", "ｍｅｔａｄａｔａ.test", "[::1%25lo]"):
        with pytest.raises(pydantic.ValidationError):
            api.HttpCheck.model_validate({"url": f"http://{host}/"})
    assert api.HttpCheck.model_validate({"url": "http://web.shop.svc:8080/healthz"}).url


# -- Every tenant-directed connector is the guarded one ------------------------------------------

# The Kubernetes API clients connect to the API server the operator's own kubeconfig names, not
# to any address a tenant wrote: they are the only other connectors, and they are named here.
OTHER_CONNECTORS = {"controller/adapters/kubernetes_watch.py", "controller/adapters/kubernetes_status.py"}


def test_no_connector_is_built_around_the_dial_point() -> None:
    offenders = []
    for path in sorted((REPO / "controller").rglob("*.py")):
        relative = path.relative_to(REPO).as_posix()
        if relative == "controller/adapters/egress.py" or relative in OTHER_CONNECTORS:
            continue
        text = path.read_text()
        if re.search(r"TCPConnector\(|ClientSession\(\s*\)|ClientSession\((?![^)]*connector=)", text):
            offenders.append(relative)
    assert offenders == [], f"build connectors with egress.guarded_connector: {offenders}"

