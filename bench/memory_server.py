"""Tenants' endpoints for the memory benchmark, answering with the largest bodies the caps
allow (a process of its own: its memory and CPU are not the operator's).

`/t<i>/api/v1/query` is tenant i's Prometheus. Until `POST /control/large`, every tenant
answers small (one series per asked workload: the baseline). After it, by i % 4:
  0: a vector of real-looking series just under the answer cap (~30,000 series, the asked
     workloads among them);
  1: the same size in the shape that grows most when parsed (`[{},{},...]`, x25);
  2: an answer far past the cap (64 MiB, no Content-Length): refused at the cap;
  3: the same 64 MiB with its Content-Length: refused before a byte is read.
`/health` answers 200 with an 8 MiB body (a check reads 64 KiB of it, as it streams).
`GET /control/served` says how many answer bytes were written.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time

from aiohttp import web

from controller.adapters import budget

HUGE = 64 * budget.MiB
CHUNK = b" " * (256 * 1024)


def vector(pairs: list[tuple[str, str]], stamp: float) -> bytes:
    return json.dumps({"status": "success", "data": {"resultType": "vector", "result": [
        {"metric": {"namespace": ns, "workload": wl}, "value": [stamp, "50"]} for ns, wl in pairs]}},
        separators=(",", ":")).encode()


def largest_vector(tenant: str, workloads: int, stamp: float) -> bytes:
    """Real series for every asked workload, then filler series up to just under the cap."""
    asked = [(tenant, f"w{j}") for j in range(workloads)]
    per_series = len(vector([(tenant, "w99999")], stamp)) - len(vector([], stamp)) + 1
    room = (budget.PROMETHEUS_ANSWER - len(vector(asked, stamp)) - 64) // per_series
    return vector(asked + [(tenant, f"f{k:05d}") for k in range(room)], stamp)


def largest_growth() -> bytes:
    head, tail = b'{"status":"success","data":{"resultType":"vector","result":[', b"{}]}}"
    count = (budget.PROMETHEUS_ANSWER - len(head) - len(tail)) // 3
    return head + b"{}," * count + tail


class Tenants:
    def __init__(self, workloads: int) -> None:
        self.workloads = workloads
        self.large = False
        self.served = 0
        self.growth = largest_growth()
        self.vectors: dict[str, tuple[float, bytes]] = {}

    def answer_for(self, tenant: str) -> bytes:
        # Fresh timestamps (a stale sample is read as absent): rebuilt every 20 s per tenant.
        stamp, body = self.vectors.get(tenant, (0.0, b""))
        if time.time() - stamp > 20:
            stamp = time.time()
            body = largest_vector(tenant, self.workloads, stamp)
            self.vectors[tenant] = (stamp, body)
        return body

    async def query(self, request: web.Request) -> web.StreamResponse:
        tenant = request.match_info["tenant"]
        index = int(tenant[1:])
        if not self.large:
            body = vector([(tenant, f"w{j}") for j in range(self.workloads)], time.time())
        elif index % 4 == 0:
            body = self.answer_for(tenant)
        elif index % 4 == 1:
            body = self.growth
        else:
            return await self.flood(request, told=index % 4 == 3)
        self.served += len(body)
        return web.Response(body=body, content_type="application/json")

    async def flood(self, request: web.Request, told: bool) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        if told:
            response.content_length = HUGE
        await response.prepare(request)
        try:
            for _ in range(HUGE // len(CHUNK)):
                await response.write(CHUNK)
                self.served += len(CHUNK)
        except (ConnectionError, RuntimeError):
            pass  # the operator hung up at its cap
        return response

    async def health(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/plain"})
        await response.prepare(request)
        try:
            for _ in range(8 * budget.MiB // len(CHUNK)):
                await response.write(CHUNK)
                self.served += len(CHUNK)
        except (ConnectionError, RuntimeError):
            pass
        return response

    async def control(self, request: web.Request) -> web.Response:
        if request.method == "POST":
            self.large = request.match_info["what"] == "large"
        return web.json_response({"large": self.large, "served": self.served})


async def serve(port: int, workloads: int) -> None:
    tenants = Tenants(workloads)
    app = web.Application()
    app.router.add_post("/{tenant}/api/v1/query", tenants.query)
    app.router.add_get("/health", tenants.health)
    app.router.add_route("*", "/control/{what}", tenants.control)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    await asyncio.Event().wait()


def main() -> None:
    parser = argparse.ArgumentParser(prog="bench.memory_server")
    parser.add_argument("port", type=int)
    parser.add_argument("--workloads", type=int, default=4)
    args = parser.parse_args()
    asyncio.run(serve(args.port, args.workloads))


if __name__ == "__main__":
    main()
