"""Every billed token is charged (issue #8): four app processes, one Cosmos, the simulators' own bills.

Each scenario runs alone against the simulators, so what both regions billed is what this
scenario's tenant caused; the tenant's `/api/v1/usage` must match it within 1%, never below.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from shared.core.settings import hash_api_key
from tools.localenv import NO_JOBS, LocalStack, free_port

pytestmark = pytest.mark.e2e
DAILY = 3_000_000
# A long history: about 2,000 prompt tokens, so a request is mostly prompt, as real chats are.
HISTORY = [{"role": "user" if i % 2 == 0 else "assistant",
            "content": f"Note {i}: the pier {i} tide gauge read {i % 7 + 1}.{i % 10} metres at {i % 24}:00 "
                       "and the harbour master logged a calm sea with light westerly winds, no swell and clear skies."}
           for i in range(40)]
SCENARIOS = ("abandon", "cut", "close", "failover", "kill", "mixed")
DEADLINE_S = 10  # the killed instance's lease: this deadline + LEASE_MARGIN_S (+ up to one SLOT_S bucket)
# Short leases in short buckets on every instance (they share the budget documents, so they share the
# bucket width): the killed instance's room comes back in about 20 s instead of a minute. The others'
# deadline (30 s) + margin still fits the ring of 14 slots (BUDGET_SLOT_S in docs/settings.md).
LEASE_MARGIN_S, SLOT_S = 5, 4
SHORT_LEASES = {"BUDGET_LEASE_MARGIN_S": str(LEASE_MARGIN_S), "BUDGET_SLOT_S": str(SLOT_S)}


def key(name: str) -> str:
    return f"acct-{name}-key"


def tenant(name: str, **limits: object) -> dict[str, object]:
    return {"tenant": f"acct-{name}", "keys": [{"id": name, "sha256": hash_api_key(key(name))}],
            "limits": {"daily_tokens": DAILY, "cache_ttl_s": 0, **limits}}


TENANTS = json.dumps([*(tenant(n) for n in SCENARIOS if n != "mixed"),
                      tenant("mixed", daily_tokens=3000, cache_ttl_s=3600)])


@pytest.fixture(scope="module")
def apps(stack: LocalStack) -> Iterator[list[str]]:
    """Four instances; a fifth with a short deadline is the one the kill test kills."""
    names = [f"acct-{i}" for i in range(5)]
    urls = []
    for i, name in enumerate(names):
        port = free_port()
        env = {"TENANTS": TENANTS, **SHORT_LEASES, **NO_JOBS,
               **({"REQUEST_DEADLINE_S": str(DEADLINE_S)} if i == 4 else {})}
        stack.start_app(extra_env=env, name=name, port=port)
        urls.append(f"http://127.0.0.1:{port}")
    yield urls
    for name in names:
        stack.stop(name)


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=60, limits=httpx.Limits(max_connections=100)) as c:
        yield c


def sims(stack: LocalStack, method: str, path: str, body: object = None) -> list[httpx.Response]:
    return [httpx.request(method, f"{stack.sim_url(r)}{path}", json=body) for r in ("primary", "secondary")]


def billed(stack: LocalStack) -> int:
    return sum(r.json()["prompt_tokens"] + r.json()["completion_tokens"] for r in sims(stack, "GET", "/_sim/stats"))


@pytest.fixture
def clean_sims(stack: LocalStack) -> Iterator[None]:
    sims(stack, "DELETE", "/_sim/faults")
    sims(stack, "DELETE", "/_sim/stats")
    yield
    sims(stack, "DELETE", "/_sim/faults")


async def usage(client: httpx.AsyncClient, url: str, name: str) -> dict[str, int]:
    response = await client.get(f"{url}/api/v1/usage", headers={"x-api-key": key(name)})
    return dict(response.json()["daily"])


async def settled(client: httpx.AsyncClient, url: str, name: str, within_s: float = 10) -> tuple[dict[str, int], float]:
    """The tenant's day once nothing is reserved, and how long that took."""
    start = time.monotonic()
    while True:
        day = await usage(client, url, name)
        waited = time.monotonic() - start
        if day["tokens_reserved"] == 0 or waited > within_s:
            return day, waited
        await asyncio.sleep(0.25)


def chat_body(i: int, *, stream: bool = True, max_tokens: int = 300) -> dict[str, object]:
    return {"model": "gpt-4o-mini", "stream": stream, "max_tokens": max_tokens,
            "messages": [*HISTORY, {"role": "user", "content": f"Summarise the log for reader {i}."}]}


async def stream_chunks(client: httpx.AsyncClient, url: str, name: str, i: int, *, stop_after: int | None = None,
                        stop_at_finish: bool = False) -> list[dict[str, object]]:
    """Read a stream's events; stop after `stop_after` content chunks or at the finish chunk by
    closing the connection, as a client that goes away does."""
    events: list[dict[str, object]] = []
    async with client.stream("POST", f"{url}/api/v1/chat/completions", headers={"x-api-key": key(name)},
                             json=chat_body(i)) as response:
        assert response.status_code == 200, await response.aread()
        contents = 0
        async for line in response.aiter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            event = json.loads(line[6:])
            events.append(event)
            choices = event.get("choices") or [{}]
            choice = choices[0] if isinstance(choices, list) and choices else {}
            if isinstance(choice, dict) and (choice.get("delta") or {}).get("content"):
                contents += 1
            if stop_after is not None and contents >= stop_after:
                break
            if stop_at_finish and isinstance(choice, dict) and choice.get("finish_reason"):
                break
    return events


async def check(client: httpx.AsyncClient, stack: LocalStack, url: str, name: str) -> None:
    day, waited = await settled(client, url, name)
    provider = billed(stack)
    print(f"{name}: billed={provider} tokens_used={day['tokens_used']} reserved={day['tokens_reserved']} "
          f"settled_in={waited:.1f}s")
    assert day["tokens_reserved"] == 0, "every reservation was settled within 10 s"
    assert provider <= day["tokens_used"] <= provider * 1.01, "charged what the providers billed"
    assert day["tokens_used"] <= DAILY


async def test_abandoned_streams_are_charged_what_was_billed(apps: list[str], stack: LocalStack,
                                                             client: httpx.AsyncClient, clean_sims: None) -> None:
    await asyncio.gather(*(stream_chunks(client, apps[i % 4], "abandon", i, stop_after=2) for i in range(30)))
    await check(client, stack, apps[1], "abandon")


async def test_streams_cut_upstream_are_charged_the_prompt_and_what_came(apps: list[str], stack: LocalStack,
                                                                        client: httpx.AsyncClient,
                                                                        clean_sims: None) -> None:
    sims(stack, "POST", "/_sim/faults", {"status": "drop_stream", "rate": 1.0, "after_tokens": 3})
    results = await asyncio.gather(*(stream_chunks(client, apps[i % 4], "cut", i) for i in range(10)))
    assert all("error" in r[-1] for r in results), "a cut stream ends in an error event, never a clean finish"
    await check(client, stack, apps[2], "cut")


async def test_streams_closed_after_their_last_chunk_leave_nothing_reserved(apps: list[str], stack: LocalStack,
                                                                           client: httpx.AsyncClient,
                                                                           clean_sims: None) -> None:
    await asyncio.gather(*(stream_chunks(client, apps[i % 4], "close", i, stop_at_finish=True) for i in range(30)))
    await check(client, stack, apps[3], "close")


async def test_an_attempt_that_broke_before_content_is_charged_and_failed_over(
        apps: list[str], stack: LocalStack, client: httpx.AsyncClient, clean_sims: None) -> None:
    await client.post(f"{stack.sim_url('primary')}/_sim/faults",
                      json={"status": "drop_stream", "rate": 1.0, "after_tokens": 0})
    results = await asyncio.gather(*(stream_chunks(client, apps[i % 4], "failover", i) for i in range(10)))
    assert all(r[-1]["choices"] for r in results), "each stream finished on the secondary"
    primary = (await client.get(f"{stack.sim_url('primary')}/_sim/stats")).json()
    assert primary["prompt_tokens"] > 0, "the broken attempts were billed by the primary"
    await check(client, stack, apps[0], "failover")


async def test_a_killed_instance_gives_its_held_room_back_within_the_lease(
        apps: list[str], stack: LocalStack, client: httpx.AsyncClient, clean_sims: None) -> None:
    victim, witness = apps[4], apps[0]
    sims(stack, "POST", "/_sim/faults", {"latency_ms": 8000, "rate": 1.0})
    requests = [asyncio.ensure_future(client.post(f"{victim}/api/v1/chat/completions",
                                                  headers={"x-api-key": key("kill")},
                                                  json=chat_body(i, stream=False)))
                for i in range(10)]
    for _ in range(40):
        if (await usage(client, witness, "kill"))["tokens_reserved"] >= 10 * 300:
            break
        await asyncio.sleep(0.25)
    held = (await usage(client, witness, "kill"))["tokens_reserved"]
    assert held == 10 * 300, "ten requests in flight hold their completion allowance"
    os.killpg(stack.procs["acct-4"].pid, signal.SIGKILL)
    await asyncio.gather(*requests, return_exceptions=True)
    killed_at = time.monotonic()
    lease = DEADLINE_S + LEASE_MARGIN_S + SLOT_S
    day, _ = await settled(client, witness, "kill", within_s=lease + 5)
    back_after = time.monotonic() - killed_at
    print(f"SIGKILL with 10 requests in flight: {held} tokens held; back to 0 after {back_after:.1f} s "
          f"(lease {DEADLINE_S + LEASE_MARGIN_S} s + at most one {SLOT_S} s bucket); "
          f"prompts charged: {day['tokens_used']}")
    assert day["tokens_reserved"] == 0


async def test_a_3000_token_day_holds_against_every_kind_of_request(apps: list[str], stack: LocalStack,
                                                                    client: httpx.AsyncClient,
                                                                    clean_sims: None) -> None:
    headers = {"x-api-key": key("mixed")}
    # Template syntax that must reach the model as counted; worded so the default content-safety
    # policy has nothing to screen ("Ignore {{$max_words}}..." reads as an injection and is a 400).
    template_text = "Mind {{$max_words}} and {{$style}}; {{ $text }} {{}} the ferry runs at dawn. " * 30
    history = HISTORY[:8]

    async def summarize(url: str) -> int:
        r = await client.post(f"{url}/api/v1/summarize", headers=headers, json={"text": template_text, "max_words": 20})
        return r.status_code

    async def chat(url: str, i: int) -> int:
        messages = [*history, {"role": "user", "content": f"Which pier read highest, reader {i % 3}?"}]
        r = await client.post(f"{url}/api/v1/chat", headers=headers, json={"messages": messages, "max_tokens": 40})
        return r.status_code

    async def stream(url: str, i: int) -> int:
        body = {"stream": True, "max_tokens": 60, "messages": [{"role": "user", "content": f"Tell me of tides {i}"}]}
        async with client.stream("POST", f"{url}/api/v1/chat/completions", headers=headers, json=body) as r:
            if r.status_code == 200:
                async for line in r.aiter_lines():
                    if '"content"' in line and i % 2:
                        break  # every other stream is abandoned
            return r.status_code

    statuses: list[int] = []
    refusals: set[str] = set()
    for round_ in range(8):
        batch = [summarize(apps[0]), chat(apps[1], round_), stream(apps[2], round_), chat(apps[3], round_ + 1)]
        statuses += await asyncio.gather(*batch)
        refused = await client.post(f"{apps[0]}/api/v1/chat", headers=headers,
                                    json={"messages": [{"role": "user", "content": "one more"}], "max_tokens": 2000})
        if refused.status_code == 429:
            refusals.add(refused.json()["type"].rsplit("/", 1)[-1])
    day, _ = await settled(client, apps[1], "mixed")
    provider = billed(stack)
    print(f"mixed: statuses={sorted(statuses)} refusal types={sorted(refusals)} billed={provider} "
          f"tokens_used={day['tokens_used']} limit=3000")
    assert provider <= 3000, "the providers never billed more than the day allows"
    assert provider <= day["tokens_used"] <= 3000
    assert 429 in statuses and 200 in statuses
    assert "budget-exhausted" in refusals
