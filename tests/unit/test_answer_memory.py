"""Answers and memory (issue 21, "Starvation and memory"), over real loopback servers: an
oversize answer is a typed error without being held; a large one is parsed in the parser
process (off the loop) and comes back narrowed to the series the round uses; a dead parser is
that answer's error; a body is searched as it streams; and the arithmetic of
adapters/budget.py holds against the manifest's limit and the measured growth of parsed JSON.
`python -m bench --suites memory` measures the whole operator against the same caps.
"""

from __future__ import annotations

import asyncio
import json
import pathlib
import time
import tracemalloc

import yaml
from aiohttp import web
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from controller.adapters import answers
from controller.adapters import budget
from controller.adapters import egress
from controller.adapters import http_check
from controller.adapters import prometheus
from tests.unit.test_fair_shares import Servers
from tests.unit.test_fair_shares import vector

REPO = pathlib.Path(__file__).resolve().parents[2]


# -- size and parsing ---------------------------------------------------------------------

def test_an_oversize_answer_is_a_typed_error_and_never_held() -> None:
    size = 64 * budget.MiB

    async def flood(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        if request.path.startswith("/told"):
            response.content_length = size
        await response.prepare(request)
        chunk = b" " * (256 * 1024)
        try:
            for _ in range(size // len(chunk)):
                await response.write(chunk)
        except (ConnectionError, RuntimeError):
            pass  # the client hung up: what we wanted
        return response

    async def run() -> tuple[list[str | None], int]:
        async with Servers({"/flood/api/v1/query": flood, "/told/api/v1/query": flood}) as base:
            client = egress.GuardedClient(True, limit=2)
            tracemalloc.start()
            try:
                errors = [(await prometheus.PrometheusSource(client, f"{base}/flood").query("up")).error,
                          (await prometheus.PrometheusSource(client, f"{base}/told").query("up")).error]
                peak = tracemalloc.get_traced_memory()[1]
            finally:
                tracemalloc.stop()
                await client.close()
        return errors, peak

    errors, peak = asyncio.run(run())
    assert all(error is not None and "larger than 2.8 MiB" in error for error in errors), errors
    assert peak < 3 * budget.PROMETHEUS_ANSWER, f"{peak / budget.MiB:.1f} MiB held for a refused answer"


def test_a_large_answer_is_parsed_off_the_loop_and_narrowed_to_what_the_round_uses() -> None:
    """CPU time of this process, not wall time (the machine is shared): parsed here, the answer
    would cost this process at least what json.loads costs; parsed in the parser process, a
    small part of it (reading, handing over, the narrowed result)."""
    pairs = [(f"ns{i % 50}", f"w{i}") for i in range(25_000)]
    body = vector(pairs)
    assert budget.INLINE_PARSE < len(body) <= budget.PROMETHEUS_ANSWER
    cpu = time.process_time()
    json.loads(body)
    parse_here = time.process_time() - cpu

    async def answer(request: web.Request) -> web.Response:
        return web.Response(body=body, content_type="application/json")

    async def run() -> tuple[prometheus.queries.QueryResult, float]:
        lane = answers.ParseLane()
        async with Servers({"/p/api/v1/query": answer}) as base:
            client = egress.GuardedClient(True, limit=2)
            source = prometheus.PrometheusSource(client, f"{base}/p", lane=lane)
            await source.query("warm-up", wanted={("ns1", "w1")})  # the parser process starts once
            cpu = time.process_time()
            result = await source.query("up", wanted={("ns3", "w3"), ("ns7", "w7"), ("nowhere", "x")})
            spent = time.process_time() - cpu
            await client.close()
        await lane.aclose()
        return result, spent

    result, spent = asyncio.run(run())
    assert result.error is None
    assert sorted((s.labels["namespace"], s.labels["workload"]) for s in result.series) == [("ns3", "w3"), ("ns7", "w7")]
    # (the loopback server answering is in this process too, and counted)
    assert spent < parse_here / 2, f"{spent:.3f}s of this process' CPU for an answer json.loads parses in {parse_here:.3f}s"


def test_series_beyond_the_cap_are_that_querys_error() -> None:
    body = vector((f"n{i}", "w") for i in range(budget.PROMETHEUS_SERIES + 1))
    result = prometheus.parse_narrowed(200, body, False, frozenset({("n1", "w")}))
    assert result.error is not None and "more than" in result.error and not result.series


# -- the arithmetic ---------------------------------------------------------------------

def test_the_memory_budget_adds_up_against_the_manifests_limit() -> None:
    documents = yaml.safe_load_all((REPO / "manifests/base/deployment.yaml").read_text())
    deployment = next(d for d in documents if d and d.get("kind") == "Deployment")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    limit = container["resources"]["limits"]["memory"]
    assert limit in (f"{budget.POD_LIMIT // budget.MiB}Mi", f"{budget.POD_LIMIT // 1024 // budget.MiB}Gi"), \
        f"the manifest's limit is {limit}: budget.py's arithmetic must be done again"
    assert budget.IN_FLIGHT <= budget.ANSWERS
    per_byte = 2 * budget.PROMETHEUS_CONNECTIONS + 1 + (1 + budget.JSON_EXPANSION) * budget.PROMETHEUS_PARSERS
    assert budget.PROMETHEUS_ANSWER * per_byte <= budget.PROMETHEUS_BUDGET
    assert prometheus.BODY_LIMIT == budget.PROMETHEUS_ANSWER and http_check.BODY_LIMIT == budget.HEALTH_BODY


def test_json_growth_stays_within_the_budgets_expansion() -> None:
    """The worst shapes a hostile answer can take, measured: the budget's factor holds above them."""
    n = 256 * 1024
    shapes = [b"[" + b",".join([b"{}"] * (n // 3)) + b"]", b"[" + b",".join([b"[]"] * (n // 3)) + b"]",
              b"[" + b",".join([b"[0]"] * (n // 4)) + b"]", b"[" + b",".join([b"1.5"] * (n // 4)) + b"]",
              b"{" + b",".join(b'"%d":{}' % i for i in range(n // 10)) + b"}", vector((f"n{i}", "w") for i in range(n // 80))]
    for body in shapes:
        tracemalloc.start()
        document = json.loads(body)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        del document
        assert peak / len(body) < budget.JSON_EXPANSION, (body[:20], peak / len(body))


def test_a_parser_process_that_dies_is_that_answers_error_and_the_next_answer_gets_a_new_one() -> None:
    async def run() -> tuple[object, str, object]:
        lane = answers.ParseLane()
        first = await lane.run("t", answers.echo, "one")
        lane._idle[0].process.kill()  # as the kernel's OOM killer would
        await lane._idle[0].process.wait()
        try:
            await lane.run("t", answers.echo, "two")
            failed = "no error"
        except answers.ParserFailed as error:
            failed = str(error)
        third = await lane.run("t", answers.echo, "three")
        await lane.aclose()
        return first, failed, third

    first, failed, third = asyncio.run(run())
    assert (first, failed, third) == ("one", "the parser process ended", "three")


class _Chunks:
    """A StreamReader's `read(n)`: returns at most n bytes of what has arrived, piece by piece."""

    def __init__(self, pieces: list[bytes]) -> None:
        self.pieces = list(pieces)

    async def read(self, n: int) -> bytes:
        while self.pieces and not self.pieces[0]:
            self.pieces.pop(0)
        if not self.pieces:
            return b""
        head, self.pieces[0] = self.pieces[0][:n], self.pieces[0][n:]
        return head


@settings(max_examples=300, deadline=None)
@given(body=st.binary(max_size=200), needle=st.one_of(st.none(), st.binary(max_size=6)),
       cuts=st.lists(st.integers(0, 200), max_size=8), limit=st.integers(0, 220), read_size=st.integers(1, 16))
def test_a_body_searched_as_it_streams_finds_exactly_what_the_whole_body_holds(
        body: bytes, needle: bytes | None, cuts: list[int], limit: int, read_size: int) -> None:
    bounds = [0, *sorted(c for c in cuts if c <= len(body)), len(body)]
    pieces = [body[a:b] for a, b in zip(bounds, bounds[1:], strict=False)]
    found = asyncio.run(egress.contains(_Chunks(pieces), needle, limit, read_size))  # type: ignore[arg-type]
    assert found == (needle is None or needle in body[:limit])
