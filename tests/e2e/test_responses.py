"""The Responses API with real clients (issue 24): the openai SDK (OpenAI and AzureOpenAI), the
Agents SDK, tenant-owned ids, affinity to the origin endpoint, refusals, and every call charged
exactly what the simulators billed, with four app processes for the accounting scenarios.

Two simulator regions of this module's own (the origin test stops one) behind four app processes.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import openai
import pytest

from shared.core.settings import hash_api_key
from tools.localenv import NO_JOBS, LocalStack, free_port
from tools.simulator.process import SimulatorProcess

pytestmark = pytest.mark.e2e
KEY, OTHER_KEY, DENY_KEY = "responses-key", "responses-other-key", "responses-deny-key"
SCENARIOS = ("abandon", "cut", "close", "failover")
HISTORY = " ".join(f"Note {i}: the pier {i} tide gauge read {i % 7 + 1}.{i % 10} metres at {i % 24}:00 and the "
                   "harbour master logged a calm sea with light westerly winds." for i in range(30))
WEATHER = {"type": "function", "name": "get_weather", "description": "Current weather for a city",
           "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"],
                          "additionalProperties": False}, "strict": True}


def tenant(name: str, key: str, **extra: object) -> dict[str, object]:
    return {"tenant": name, "keys": [{"id": name, "sha256": hash_api_key(key)}],
            "limits": {"daily_tokens": 5_000_000, "cache_ttl_s": 0}, **extra}


TENANTS = json.dumps([
    tenant("resp", KEY), tenant("resp-other", OTHER_KEY),
    tenant("resp-deny", DENY_KEY, responses={"store": "deny"}),
    *(tenant(f"resp-{s}", f"resp-{s}-key") for s in SCENARIOS),
])


@pytest.fixture(scope="module")
def regions() -> Iterator[dict[str, SimulatorProcess]]:
    sims = {r: SimulatorProcess("--region", r, "--deployments", "chat,embeddings") for r in ("primary", "secondary")}
    for sim in sims.values():
        sim.start()
    yield sims
    for sim in sims.values():
        sim.stop()


@pytest.fixture(scope="module")
def apps(stack: LocalStack, regions: dict[str, SimulatorProcess]) -> Iterator[list[str]]:
    """Four app processes on one Cosmos, both regions behind each (primary first)."""
    endpoints = [{"name": r, "kind": "azure_openai", "endpoint": sim.url, "deployment": "chat", "model": "gpt-4o-mini",
                  "priority": i, "api_key_secret": "sim-api-key", "embedding_deployment": "embeddings",
                  "embedding_model": "text-embedding-3-small"}
                 for i, (r, sim) in enumerate(regions.items())]
    env = {"TENANTS": TENANTS, "AI_ENDPOINTS": json.dumps(endpoints), **NO_JOBS}
    names = [f"responses-{i}" for i in range(4)]
    urls = []
    for name in names:
        port = free_port()
        stack.start_app(extra_env=env, name=name, port=port)
        urls.append(f"http://127.0.0.1:{port}")
    yield urls
    for name in names:
        stack.stop(name)


def sim_stats(regions: dict[str, SimulatorProcess]) -> tuple[int, int]:
    """(requests, billed tokens) of both regions."""
    stats = [httpx.get(f"{s.url}/_sim/stats").json() for s in regions.values()]
    return sum(s["requests"] for s in stats), sum(s["prompt_tokens"] + s["completion_tokens"] for s in stats)


def used(app: str, key: str, within_s: float = 10) -> int:
    """The tenant's tokens used today, once nothing is reserved (settlement runs after the answer)."""
    deadline = time.monotonic() + within_s
    while True:
        day = httpx.get(f"{app}/api/v1/usage", headers={"x-api-key": key}, timeout=30).json()["daily"]
        if day["tokens_reserved"] == 0 or time.monotonic() > deadline:
            assert day["tokens_reserved"] == 0, "every reservation is settled"
            return int(day["tokens_used"])
        time.sleep(0.2)


class Ledger:
    """What the simulators billed and the tenant was charged since it was opened."""

    def __init__(self, regions: dict[str, SimulatorProcess], app: str, key: str) -> None:
        self.regions, self.app, self.key = regions, app, key
        self.billed0, self.used0 = sim_stats(regions)[1], used(app, key)

    def check(self, what: str) -> tuple[int, int]:
        billed, charged = sim_stats(self.regions)[1] - self.billed0, used(self.app, self.key) - self.used0
        print(f"{what}: billed={billed} charged={charged}")
        return billed, charged


@pytest.fixture
def ledger(regions: dict[str, SimulatorProcess], apps: list[str]) -> Iterator[Ledger]:
    for sim in regions.values():
        httpx.delete(f"{sim.url}/_sim/faults")
    book = Ledger(regions, apps[0], KEY)
    yield book
    billed, charged = book.check("this test")
    assert billed > 0 and charged == billed, f"charged {charged}, the simulators billed {billed}"


@pytest.fixture
def client(apps: list[str]) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=f"{apps[0]}/api/v1", api_key=KEY, max_retries=0) as c:
        yield c


def test_create_plain_and_streamed(client: openai.OpenAI, ledger: Ledger) -> None:
    plain = client.responses.create(model="gpt-4o-mini", instructions="Answer briefly.", input="Tell me of tides.")
    assert plain.status == "completed" and plain.output_text and plain.usage is not None
    events = list(client.responses.create(model="gpt-4o-mini", input="Stream me the tides.", stream=True))
    numbers = [e.sequence_number for e in events]
    assert numbers == list(range(len(numbers))), "every event carries its sequence_number, in order"
    assert events[0].type == "response.created" and events[-1].type == "response.completed"
    assert "".join(e.delta for e in events if e.type == "response.output_text.delta") == events[-1].response.output_text
    assert client.responses.retrieve(events[-1].response.id).status == "completed", "the streamed one is recorded"
    short = client.responses.create(model="gpt-4o-mini", input="Tell me a long tale of tides.", max_output_tokens=16)
    assert short.status == "incomplete" and short.incomplete_details is not None


def test_a_streamed_response_is_the_tenants_from_its_first_event(apps: list[str], client: openai.OpenAI,
                                                                 regions: dict[str, SimulatorProcess],
                                                                 ledger: Ledger) -> None:
    for sim in regions.values():  # a slow model: the answer is still being written while the client asks
        httpx.post(f"{sim.url}/_sim/pace", json={"ms_per_token": 100})
    try:
        with client.responses.create(model="gpt-4o-mini", input="Stream me the harbour log.", stream=True) as stream:
            events = iter(stream)
            created = next(e for e in events if e.type == "response.created")
            assert client.responses.retrieve(created.response.id).status == "in_progress"
            other = httpx.get(f"{apps[2]}/api/v1/responses/{created.response.id}", headers={"x-api-key": OTHER_KEY})
            assert other.status_code == 404
            assert list(events)[-1].type == "response.completed"
    finally:
        for sim in regions.values():
            httpx.delete(f"{sim.url}/_sim/pace")


def test_a_function_tool_round_trip_chained_then_retrieved_listed_deleted(client: openai.OpenAI,
                                                                         ledger: Ledger) -> None:
    first = client.responses.create(model="gpt-4o-mini", input="What is the weather in Paris?",
                                    tools=[WEATHER])  # type: ignore[list-item]
    call = next(item for item in first.output if item.type == "function_call")
    assert call.name == "get_weather" and json.loads(call.arguments)["city"]
    second = client.responses.create(model="gpt-4o-mini", previous_response_id=first.id, tools=[WEATHER],  # type: ignore[list-item]
                                     input=[{"type": "function_call_output", "call_id": call.call_id,
                                             "output": "sunny, 21 C"}])
    assert "sunny, 21 C" in second.output_text
    assert second.usage is not None and first.usage is not None
    assert second.usage.input_tokens > first.usage.input_tokens, "the previous response's context is billed"
    assert client.responses.retrieve(second.id).output_text == second.output_text
    items = client.responses.input_items.list(second.id)
    assert [i.type for i in items.data] == ["function_call_output"]
    client.responses.delete(first.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(first.id)


def test_azure_clients_on_the_azure_routes(apps: list[str], ledger: Ledger) -> None:
    with openai.AzureOpenAI(azure_endpoint=f"{apps[1]}/api", api_key=KEY, api_version="2025-03-01-preview",
                            max_retries=0) as azure:
        preview = azure.responses.create(model="chat", input="Tell me of harbours.")  # the deployment as model
        assert preview.output_text
        assert azure.responses.retrieve(preview.id).id == preview.id
    with openai.OpenAI(base_url=f"{apps[2]}/api/openai/v1", api_key=KEY, max_retries=0) as v1:
        follow = v1.responses.create(model="gpt-4o-mini", previous_response_id=preview.id, input="And of piers?")
        assert follow.previous_response_id == preview.id and follow.output_text


async def test_the_agents_sdk_runs_a_function_tool_on_its_responses_model(apps: list[str], ledger: Ledger) -> None:
    import agents

    agents.set_tracing_disabled(True)  # a gateway user keeps its traces away from OpenAI (docs/responses.md)
    client = openai.AsyncOpenAI(base_url=f"{apps[3]}/api/v1", api_key=KEY, max_retries=0)
    agents.set_default_openai_client(client, use_for_tracing=False)
    asked: list[str] = []

    @agents.function_tool
    def get_weather(city: str) -> str:
        """Current weather for a city."""
        asked.append(city)
        return f"It is sunny in {city}, 21 C"

    agent = agents.Agent(name="forecaster", instructions="Use the tool.", tools=[get_weather], model="gpt-4o-mini")
    result = await agents.Runner.run(agent, "What is the weather in Paris?")
    assert asked and f"It is sunny in {asked[0]}, 21 C" in result.final_output
    streamed = agents.Runner.run_streamed(agent, "What is the weather in Oslo?")
    kinds = [event.type async for event in streamed.stream_events()]
    assert len(asked) == 2 and f"It is sunny in {asked[1]}, 21 C" in str(streamed.final_output)
    assert "raw_response_event" in kinds
    await client.close()


def test_embeddings_are_addressed_by_the_model_name_clients_send(client: openai.OpenAI, ledger: Ledger) -> None:
    assert "text-embedding-3-small" in [m.id for m in client.models.list()]
    vectors = client.embeddings.create(model="text-embedding-3-small", input=["the north pier", "tide tables"])
    assert len(vectors.data) == 2 and vectors.usage.prompt_tokens > 0


def test_another_tenants_id_is_404_on_every_route_and_never_reaches_the_provider(
        apps: list[str], regions: dict[str, SimulatorProcess], client: openai.OpenAI) -> None:
    mine = client.responses.create(model="gpt-4o-mini", input="A secret of the tides.")
    before = sim_stats(regions)[0]
    app, headers = apps[1], {"x-api-key": OTHER_KEY}
    for base in ("/api/v1/responses", "/api/openai/v1/responses", "/api/openai/responses"):
        query = "?api-version=2025-03-01-preview" if base == "/api/openai/responses" else ""
        answers = [
            httpx.get(f"{app}{base}/{mine.id}{query}", headers=headers),
            httpx.get(f"{app}{base}/{mine.id}/input_items{query}", headers=headers),
            httpx.delete(f"{app}{base}/{mine.id}{query}", headers=headers),
            httpx.post(f"{app}{base}{query}", headers=headers,
                       json={"model": "gpt-4o-mini", "input": "more", "previous_response_id": mine.id}),
            httpx.post(f"{app}{base}/input_tokens{query}", headers=headers,
                       json={"model": "gpt-4o-mini", "input": "more", "previous_response_id": mine.id}),
        ]
        for answer in answers:
            assert answer.status_code == 404, (answer.request.url, answer.text)
            assert answer.json()["error"]["code"] == "response_not_found"
    assert sim_stats(regions)[0] == before, "the simulators saw no request"
    assert client.responses.retrieve(mine.id).id == mine.id, "the owner still has it"


def test_refused_with_a_400_naming_the_field(apps: list[str]) -> None:
    url, headers = f"{apps[0]}/api/v1/responses", {"x-api-key": KEY}
    base = {"model": "gpt-4o-mini", "input": "hi"}
    cases: dict[str, dict[str, Any]] = {"background": {"background": True}, "conversation": {"conversation": "conv_1"},
             "prompt": {"prompt": {"id": "pmpt_1"}}, "tools[0].type": {"tools": [{"type": "web_search_preview"}]}}
    for param, extra in cases.items():
        answer = httpx.post(url, headers=headers, json={**base, **extra})
        assert answer.status_code == 400 and answer.json()["error"]["param"] == param, answer.text
    denied = httpx.post(url, headers={"x-api-key": DENY_KEY}, json=base)
    assert denied.status_code == 400 and denied.json()["error"]["param"] == "store"
    assert httpx.post(url, headers={"x-api-key": DENY_KEY}, json={**base, "store": False}).status_code == 200


def test_the_input_tokens_path_is_not_a_response_id(apps: list[str], client: openai.OpenAI) -> None:
    counted = client.responses.input_tokens.count(model="gpt-4o-mini", input="Tell me of tides.")
    assert counted.input_tokens > 0
    for method in ("GET", "DELETE", "OPTIONS"):
        answer = httpx.request(method, f"{apps[0]}/api/v1/responses/input_tokens", headers={"x-api-key": KEY})
        assert answer.status_code == 405 and answer.headers["allow"] == "POST", (method, answer.text)


def test_a_follow_up_waits_for_its_origin_while_a_first_turn_fails_over(
        apps: list[str], regions: dict[str, SimulatorProcess], client: openai.OpenAI) -> None:
    first = client.responses.create(model="gpt-4o-mini", input="Where is the harbour?")
    # A stateless follow-up: the reasoning item's encrypted_content is readable only where it was sealed.
    sealed = client.responses.create(model="gpt-4o-mini", input="Where is the quay?", store=False,
                                     include=["reasoning.encrypted_content"])
    replay = [item.model_dump(exclude_none=True) for item in sealed.output if item.type == "reasoning"]
    assert replay and replay[0]["encrypted_content"]
    again: dict[str, Any] = {"model": "gpt-4o-mini", "store": False, "include": ["reasoning.encrypted_content"],
                             "input": [*replay, {"role": "user", "content": "And the slipway?"}]}
    assert client.responses.create(**again).output_text, "it went to the endpoint that sealed it"
    foreign = httpx.post(f"{apps[1]}/api/v1/responses", headers={"x-api-key": OTHER_KEY}, json=again)
    assert foreign.status_code == 404 and foreign.json()["error"]["code"] == "response_not_found"
    regions["primary"].stop()
    try:
        for follow_up in ({"previous_response_id": first.id, "input": "And the pier?"}, again):
            with pytest.raises(openai.APIStatusError) as refused:
                client.responses.create(**{"model": "gpt-4o-mini", **follow_up})
            assert refused.value.status_code == 503
            assert refused.value.response.json()["error"]["code"] == "response_origin_unavailable"
            assert int(refused.value.response.headers["retry-after"]) >= 1
        fresh = client.responses.create(model="gpt-4o-mini", input="Where is the lighthouse?")
        assert fresh.output_text, "a first turn fails over to the secondary"
        stored = httpx.get(f"{regions['secondary'].url}/v1/responses/{fresh.id}", headers={"api-key": "x"})
        assert stored.status_code == 200, "the secondary created it"
    finally:
        regions["primary"].start()


# Accounting: each scenario spread over the four processes, its tenant's usage against the bills.


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=60, limits=httpx.Limits(max_connections=100)) as c:
        yield c


async def read_stream(http: httpx.AsyncClient, url: str, key: str, i: int, *, stop_after: int | None = None,
                      stop_at_terminal: bool = False) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    body = {"model": "gpt-4o-mini", "stream": True, "max_output_tokens": 300,
            "instructions": HISTORY, "input": f"Summarise the log for reader {i}."}
    async with http.stream("POST", f"{url}/api/v1/responses", headers={"x-api-key": key}, json=body) as response:
        assert response.status_code == 200, await response.aread()
        deltas = 0
        async for line in response.aiter_lines():
            if not line.startswith("data: "):
                continue
            events.append(json.loads(line[6:]))
            deltas += events[-1]["type"] == "response.output_text.delta"
            if stop_after is not None and deltas >= stop_after:
                break
            if stop_at_terminal and events[-1]["type"] in ("response.completed", "response.incomplete"):
                break
    return events


async def settled(scenario: str, apps: list[str], regions: dict[str, SimulatorProcess], billed0: int) -> None:
    key = f"resp-{scenario}-key"
    charged = await asyncio.to_thread(used, apps[1], key)
    billed = sim_stats(regions)[1] - billed0
    print(f"{scenario}: billed={billed} charged={charged}")
    assert billed > 0
    assert billed <= charged <= billed * 1.01, "charged what the providers billed"
    if scenario != "cut":
        assert charged == billed, "the provider's usage arrived: charged exactly"


@pytest.mark.parametrize("scenario", SCENARIOS)
async def test_accounting_is_exact_across_four_processes(scenario: str, apps: list[str],
                                                         regions: dict[str, SimulatorProcess],
                                                         http: httpx.AsyncClient) -> None:
    for sim in regions.values():
        await http.delete(f"{sim.url}/_sim/faults")
    billed0 = sim_stats(regions)[1]
    key = f"resp-{scenario}-key"
    try:
        if scenario == "cut":
            for sim in regions.values():
                await http.post(f"{sim.url}/_sim/faults", json={"status": "drop_stream", "after_tokens": 3})
        if scenario == "failover":
            await http.post(f"{regions['primary'].url}/_sim/faults", json={"status": "drop_stream", "after_tokens": 0})
        runs = [read_stream(http, apps[i % 4], key, i, stop_after=2 if scenario == "abandon" else None,
                            stop_at_terminal=scenario == "close") for i in range(12)]
        results = await asyncio.gather(*runs)
        if scenario == "cut":
            assert all(r[-1]["type"] == "error" for r in results), "a cut stream ends with an error event"
            assert all(r[-1]["sequence_number"] == r[-2]["sequence_number"] + 1 for r in results)
        if scenario == "failover":
            assert all(r[-1]["type"] == "response.completed" for r in results)
    finally:
        for sim in regions.values():
            await http.delete(f"{sim.url}/_sim/faults")
    await settled(scenario, apps, regions, billed0)
