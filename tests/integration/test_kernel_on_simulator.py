"""The shared kernel against the simulator: real SDK clients, real HTTP, real token counts."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import httpx
import pytest

from shared.composition import Container
from shared.core.errors import ServiceUnavailable
from shared.core.models import ChatMessage
from shared.core.tokens import prompt_tokens
from shared.core.values import SamplingParams
from shared.upstream.prompts import render_summarize

if TYPE_CHECKING:  # Semantic Kernel is loaded by the tests that run, not by every worker's collection
    from semantic_kernel.filters import FunctionInvocationContext

HELLO = [ChatMessage(role="system", content="You are terse."),
         ChatMessage(role="user", content="Tell me about the quiet harbour town at dawn.")]


async def test_chat_reports_the_simulators_model_and_exact_usage(container: Container,
                                                                 sim: httpx.AsyncClient) -> None:
    completion = await container.engine.chat(container.engine.default_model, HELLO, SamplingParams(max_tokens=200))
    assert completion.model.startswith("simulator-")
    assert completion.endpoint == "primary" and completion.content
    stats = (await sim.get("/_sim/stats")).json()
    assert stats["requests"] == 1
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (
        stats["prompt_tokens"], stats["completion_tokens"])


async def test_max_tokens_caps_the_answer(container: Container, sim: httpx.AsyncClient) -> None:
    completion = await container.engine.chat(container.engine.default_model, HELLO, SamplingParams(max_tokens=3))
    assert completion.usage.completion_tokens == 3 and completion.finish_reason == "length"


async def test_a_summarize_prompt_reaches_the_model_exactly_as_counted(container: Container,
                                                                      sim: httpx.AsyncClient) -> None:
    # Template syntax, markup and entities in the user's text: none of it is substituted or encoded.
    text = ("{{$max_words}} {{$style}} {{ $text }} {{}} The committee met on Tuesday <b>and</b> agreed the "
            "harbour budget &amp; the new ferry timetable. " * 20)
    prompt = render_summarize(text, "concise", 20)
    assert prompt.count("{{$max_words}}") == 20 and "Use at most 20 words" in prompt
    model = container.engine.default_model
    await sim.delete("/_sim/stats")
    completion = await container.engine.summarize(model, text, "concise", 20, SamplingParams(max_tokens=60))
    stats = (await sim.get("/_sim/stats")).json()
    counted = prompt_tokens(model, [("user", prompt)])
    assert completion.usage.prompt_tokens == stats["prompt_tokens"] == counted


async def test_the_native_operations_are_kernel_functions_that_the_kernels_filters_see(
        container: Container, sim: httpx.AsyncClient) -> None:
    from semantic_kernel.filters import FilterTypes

    seen: list[str] = []

    async def watch(context: FunctionInvocationContext,
                    next: Callable[[FunctionInvocationContext], Awaitable[None]]) -> None:
        seen.append(context.function.fully_qualified_name)
        await next(context)

    kernel = (await container.engine.kernel()).kernel
    kernel.add_filter(FilterTypes.FUNCTION_INVOCATION, watch)
    try:
        model = container.engine.default_model
        await container.engine.chat(model, HELLO, SamplingParams(max_tokens=5))
        await container.engine.summarize(model, "A text about ferries.", "concise", 10, SamplingParams(max_tokens=20))
    finally:
        kernel.function_invocation_filters.clear()
    assert seen == ["gateway-chat", "gateway-summarize"]


async def test_streaming_yields_content_then_usage(container: Container, sim: httpx.AsyncClient) -> None:
    deltas = [d async for d in container.engine.stream(container.engine.default_model, HELLO,
                                                       SamplingParams(max_tokens=30))]
    text = "".join(d.content for d in deltas)
    usage = next(d.usage for d in deltas if d.usage)
    # The simulator's tokenizer: words and punctuation marks each count one.
    assert text and usage.completion_tokens == len(re.findall(r"\w+|[^\w\s]", text))
    assert any(d.finish_reason for d in deltas)


async def test_a_throttled_primary_fails_over_at_once_and_stays_parked(
        container: Container, sims: dict[str, httpx.AsyncClient]) -> None:
    await sims["primary"].post("/_sim/faults", json={"status": 429, "rate": 1.0, "retry_after_s": 30})
    first = await container.engine.chat(container.engine.default_model, HELLO, SamplingParams(max_tokens=5))
    second = await container.engine.chat(container.engine.default_model, HELLO, SamplingParams(max_tokens=5))
    assert first.endpoint == second.endpoint == "secondary"
    primary = (await sims["primary"].get("/_sim/stats")).json()
    assert primary["requests"] == 1, "parked for its Retry-After, and the SDK's own retries are off"


async def test_when_every_region_throttles_the_client_gets_a_503_with_retry_after(
        container: Container, sims: dict[str, httpx.AsyncClient]) -> None:
    for client in sims.values():
        await client.post("/_sim/faults", json={"status": 429, "rate": 1.0, "retry_after_s": 1})
    with pytest.raises(ServiceUnavailable) as err:
        await container.engine.chat(container.engine.default_model, HELLO, SamplingParams(max_tokens=10))
    assert err.value.retry_after_s is not None and err.value.retry_after_s >= 1
    assert "429" not in err.value.detail and "Rate limit" not in err.value.detail
    calls = [(await c.get("/_sim/stats")).json()["requests"] for c in sims.values()]
    assert sum(calls) == 3, "three attempts: primary, secondary at once, then one after Retry-After"


async def test_the_model_group_resolves_by_model_deployment_or_endpoint_name(container: Container) -> None:
    engine = container.engine
    assert engine.resolve_model("gpt-4o-mini") == engine.resolve_model("chat") == engine.resolve_model("secondary")
    assert engine.resolve_model("gpt-5-imaginary") is None
