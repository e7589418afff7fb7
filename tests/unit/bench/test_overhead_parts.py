"""The overhead bench's parts that its figures rest on: the stub's answer, the Cosmos counting proxy, the verdicts."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
import pytest

from bench.cosmos_counter import CosmosCounter, operation
from bench.loadgen import cache_hit
from bench.overhead_report import Target
from bench.stub import Stub
from tools.localenv import free_port

CHAT = {"model": "gpt-4o-mini", "max_tokens": 16,
        "messages": [{"role": "user", "content": "Summarise the harbour office's notice."}]}


@pytest.fixture
async def stub_port() -> AsyncIterator[int]:
    port = free_port()
    server = await asyncio.start_server(Stub(0.0).handle, "127.0.0.1", port)
    async with server:
        yield port


async def post(session: aiohttp.ClientSession, url: str, body: object) -> tuple[int, dict[str, object]]:
    async with session.post(url, json=body) as resp:
        return resp.status, await resp.json(content_type=None)


async def test_the_stub_answers_a_complete_cacheable_chat_completion_with_billed_usage(stub_port: int) -> None:
    async with aiohttp.ClientSession() as session:
        status, answer = await post(session, f"http://127.0.0.1:{stub_port}/v1/chat/completions", CHAT)
        cut_status, cut = await post(session, f"http://127.0.0.1:{stub_port}/v1/chat/completions",
                                     {**CHAT, "max_tokens": 4})
    assert (status, cut_status) == (200, 200)
    usage = answer["usage"]
    assert isinstance(usage, dict)
    assert usage["completion_tokens"] == 16
    assert usage["prompt_tokens"] == 3 + 4 + len(CHAT["messages"][0]["content"]) // 4  # type: ignore[index]
    assert usage["total_tokens"] == usage["prompt_tokens"] + 16
    choices = answer["choices"]
    assert isinstance(choices, list) and choices[0]["finish_reason"] == "stop"
    assert cut["choices"][0]["finish_reason"] == "length"  # type: ignore[index]
    assert cut["usage"]["completion_tokens"] == 4  # type: ignore[index]


async def test_the_stub_keeps_the_connection_and_refuses_other_paths(stub_port: int) -> None:
    connector = aiohttp.TCPConnector(limit=1)
    async with aiohttp.ClientSession(connector=connector) as session:
        missing, _ = await post(session, f"http://127.0.0.1:{stub_port}/v1/embeddings", {})
        answered = [await post(session, f"http://127.0.0.1:{stub_port}/v1/chat/completions", CHAT) for _ in range(3)]
    assert missing == 404
    assert [status for status, _ in answered] == [200, 200, 200]


async def test_the_counting_proxy_forwards_every_request_and_counts_each_once(stub_port: int) -> None:
    with CosmosCounter(stub_port) as counter:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1)) as session:
            answers = [await post(session, f"{counter.endpoint}/dbs/aigw/colls/cache/docs", CHAT) for _ in range(3)]
            async with session.get(f"{counter.endpoint}/dbs/aigw") as resp:
                assert resp.status == 404
            query = {"x-ms-documentdb-isquery": "true", "content-type": "application/query+json"}
            async with session.post(f"{counter.endpoint}/dbs/aigw/colls/cache/docs", data=b"{}", headers=query) as resp:
                assert resp.status == 404
        counts = counter.take()
        again = counter.take()
    assert [status for status, _ in answers] == [404, 404, 404]  # the stub's answer, passed through
    assert counts == {"POST docs": 3, "GET dbs": 1, "query docs": 1}
    assert again == {}


@pytest.mark.parametrize(("method", "path", "query", "expected"), [
    ("PATCH", "/dbs/aigw/colls/budgets/docs/t%3Aday%3A2026-12-01", False, "PATCH docs"),
    ("POST", "/dbs/aigw/colls/cache/docs", True, "query docs"),
    ("GET", "/dbs/aigw/colls/cache/pkranges?x=1", False, "GET pkranges"),
    ("GET", "/", False, "GET account"),
])
def test_operations_are_named_by_the_last_resource_of_the_path(method: str, path: str, query: bool,
                                                               expected: str) -> None:
    assert operation(method, path, query) == expected


def test_cache_hits_are_read_from_either_gateways_headers() -> None:
    assert cache_hit({"x-cache": "HIT"})
    assert not cache_hit({"x-cache": "MISS"})
    assert cache_hit({"x-litellm-cache-key": "abc"})
    assert not cache_hit({"x-litellm-call-id": "abc"})


def test_a_target_passes_only_on_its_side_of_the_limit_and_is_na_without_a_figure() -> None:
    assert Target("cpu", 0.5, "<=", 0.5).verdict == "PASS"
    assert Target("cpu", 0.51, "<=", 0.5).verdict == "MISS"
    assert Target("rps", 1.9, ">=", 2.0).verdict == "MISS"
    assert Target("rps", None, ">=", 2.0).verdict == "n/a"
    assert Target("x", float("nan"), "<=", 1).verdict == "n/a"
