"""Status patches over aiohttp: the request the generated client sent, and its refusals as ApiException."""

from __future__ import annotations

import asyncio
import json

import kubernetes
import pytest
from aiohttp import web

from controller.adapters import kubernetes_status


async def _serve(handler):  # noqa: ANN001, ANN202
    app = web.Application()
    app.router.add_route("PATCH", "/{tail:.*}", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # noqa: SLF001 - the port the OS chose
    return runner, f"http://127.0.0.1:{port}"


def _patch(handler, writes: list[str] | None = None):  # noqa: ANN001, ANN202
    async def go():  # noqa: ANN202
        runner, url = await _serve(handler)
        configuration = kubernetes.client.Configuration()
        configuration.host = url
        configuration.api_key = {"authorization": "Bearer t0ken"}
        writer = kubernetes_status.StatusWriter(configuration, (writes if writes is not None else []).append)
        try:
            return await writer.patch_status("ScalingPolicy", "shop", "web", {"observedGeneration": 2})
        finally:
            await writer.close()
            await runner.cleanup()
    return asyncio.run(go())


def test_a_merge_patch_of_status_on_the_subresource() -> None:
    seen = {}

    async def handler(request: web.Request) -> web.Response:
        seen.update(path=request.path, type=request.content_type, auth=request.headers.get("Authorization"),
                    body=await request.json())
        return web.json_response({"metadata": {"name": "web", "resourceVersion": "7"}, "status": seen["body"]["status"]})

    writes: list[str] = []
    updated = _patch(handler, writes)
    assert seen == {"path": "/apis/ops.capliquify.io/v1alpha1/namespaces/shop/scalingpolicies/web/status",
                    "type": "application/merge-patch+json", "auth": "Bearer t0ken",
                    "body": {"status": {"observedGeneration": 2}}}
    assert updated["metadata"]["resourceVersion"] == "7" and writes == ["patch"]


def test_a_large_answer_is_read_whole() -> None:
    """An answer that arrives in many pieces (a real object is kilobytes; one read returns what
    has arrived so far) is read to its end before it is parsed."""
    big = {"metadata": {"name": "web", "resourceVersion": "9"}, "status": {"checks": ["x" * 1000] * 600}}

    async def handler(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        await response.prepare(request)
        text = json.dumps(big).encode()
        for start in range(0, len(text), 7000):
            await response.write(text[start:start + 7000])
            await asyncio.sleep(0.001)
        await response.write_eof()
        return response

    assert _patch(handler) == big


@pytest.mark.parametrize("answer,status", [
    (lambda: web.json_response({"kind": "Status", "code": 404}, status=404), 404),
    (lambda: web.Response(text="not json"), 0),
    (lambda: web.json_response([1, 2]), 0),
], ids=["refused", "garbage", "not-an-object"])
def test_refusals_and_garbage_are_api_exceptions(answer, status) -> None:  # noqa: ANN001
    async def handler(request: web.Request) -> web.Response:
        return answer()

    with pytest.raises(kubernetes.client.ApiException) as raised:
        _patch(handler)
    assert raised.value.status == status


def test_a_fenced_writer_sends_nothing() -> None:
    calls = []

    async def handler(request: web.Request) -> web.Response:
        calls.append(request.path)
        return web.json_response({})

    def fence(verb: str) -> None:
        raise RuntimeError("not the leader")

    async def go():  # noqa: ANN202
        runner, url = await _serve(handler)
        configuration = kubernetes.client.Configuration()
        configuration.host = url
        writer = kubernetes_status.StatusWriter(configuration, fence)
        try:
            with pytest.raises(RuntimeError):
                await writer.patch_status("ScalingPolicy", "shop", "web", {})
        finally:
            await writer.close()
            await runner.cleanup()
    asyncio.run(go())
    assert calls == [] and json.dumps(calls) == "[]"
