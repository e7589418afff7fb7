"""The simulator as a real HTTP server, driven by the official openai SDK and by raw httpx."""

from __future__ import annotations

import math
import time

import httpx
import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

from tests.integration.simulator.conftest import O200K, o200k
from tools.simulator.process import SimulatorProcess

# Every test starts with no fault, zeroed counters and a cold prompt cache.
pytestmark = pytest.mark.usefixtures("control")

TEXT = "Summarise: revenue grew 12% in Europe while costs fell in Asia."
PROMPT: list[ChatCompletionMessageParam] = [{"role": "user", "content": TEXT}]
PROMPT_TOKENS = 1 + o200k(TEXT) + 3 + 3  # role "user", content, framing, reply priming


def set_fault(control: httpx.Client, **fault: object) -> None:
    response = control.post("/_sim/faults", json=fault)
    assert response.status_code == 200, response.text


def plain_answer(client: openai.OpenAI, model: str = "gpt-4o-mini") -> str:
    content = client.chat.completions.create(model=model, messages=PROMPT).choices[0].message.content
    assert content
    return content


def test_openai_chat_reports_exact_usage_and_a_simulator_model(oai: openai.OpenAI) -> None:
    started = time.monotonic()
    raw = oai.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=PROMPT)
    elapsed = time.monotonic() - started
    completion = raw.parse()

    content = completion.choices[0].message.content or ""
    assert raw.headers["x-sim-region"] == "primary"
    assert completion.model == "simulator-gpt-4o-mini"
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None
    assert completion.usage.prompt_tokens == PROMPT_TOKENS
    assert completion.usage.completion_tokens == o200k(content)
    assert completion.usage.total_tokens == PROMPT_TOKENS + o200k(content)
    # Default latency: 20 ms, then 2 ms per generated token.
    assert elapsed >= (20 + 2 * o200k(content)) / 1000
    assert plain_answer(oai) == content, "same prompt and seed must give the same answer"


def test_azure_stream_with_usage_equals_the_plain_answer(azure: openai.AzureOpenAI) -> None:
    plain = azure.chat.completions.create(model="chat-deployment", messages=PROMPT)

    streamed = list(
        azure.chat.completions.create(
            model="chat-deployment",
            messages=PROMPT,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    # Azure's first chunk carries only the prompt's filter results (no choices, no usage).
    assert not streamed[0].choices and streamed[0].usage is None
    chunks = streamed[1:]

    content_chunks = [c for c in chunks if c.choices and c.choices[0].delta.content]
    assert chunks[0].choices[0].delta.role == "assistant"
    assert all(c.model == "simulator-chat-deployment" for c in chunks)
    pieces = [c.choices[0].delta.content or "" for c in content_chunks]
    assert "".join(pieces) == plain.choices[0].message.content
    # One chunk per o200k token of the answer.
    assert pieces == [O200K.decode([token]) for token in O200K.encode("".join(pieces))]
    assert chunks[-2].choices[0].finish_reason == "stop"
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None and plain.usage is not None
    assert chunks[-1].usage.model_dump() == plain.usage.model_dump()


def test_openai_stream_without_usage_still_finishes(oai: openai.OpenAI) -> None:
    chunks = list(oai.chat.completions.create(model="m", messages=PROMPT, stream=True))

    assert all(c.usage is None for c in chunks)
    assert chunks[-1].choices[0].finish_reason == "stop"


def test_max_tokens_caps_the_answer(oai: openai.OpenAI, azure: openai.AzureOpenAI) -> None:
    capped = oai.chat.completions.create(model="m", messages=PROMPT, max_tokens=5)
    newer = azure.chat.completions.create(model="d", messages=PROMPT, max_completion_tokens=7)

    assert capped.choices[0].finish_reason == "length"
    assert capped.usage is not None and capped.usage.completion_tokens == 5
    assert o200k(capped.choices[0].message.content or "") == 5
    assert newer.usage is not None and newer.usage.completion_tokens == 7
    assert o200k(newer.choices[0].message.content or "") == 7


def test_embeddings_are_the_same_through_both_clients_and_encodings(
    oai: openai.OpenAI, azure: openai.AzureOpenAI
) -> None:
    texts = ["quarterly revenue grew in europe", "revenue in europe grew", "two eggs and flour"]
    # The SDK asks for base64 unless told otherwise, and decodes it.
    default = oai.embeddings.create(model="text-embedding-3-small", input=texts)
    floats = azure.embeddings.create(model="embed-deployment", input=texts, encoding_format="float")
    small = oai.embeddings.create(model="e", input=texts[0], dimensions=64)

    a, b, c = (item.embedding for item in default.data)
    assert default.model == "simulator-text-embedding-3-small"
    assert floats.model == "simulator-embed-deployment"
    assert len(a) == 256 and len(small.data[0].embedding) == 64
    assert [item.embedding for item in floats.data] == [pytest.approx(v, abs=1e-6) for v in (a, b, c)]
    assert cosine(a, b) > 0.5
    assert cosine(a, c) < 0.3
    assert default.usage.prompt_tokens == default.usage.total_tokens == sum(o200k(t) for t in texts)


def cosine(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True)) / (math.hypot(*a) * math.hypot(*b))


def test_429_raises_rate_limit_error_with_readable_retry_headers(oai: openai.OpenAI, control: httpx.Client) -> None:
    set_fault(control, status=429, rate=1, retry_after_s=1.5)

    with pytest.raises(openai.RateLimitError) as caught:
        oai.chat.completions.create(model="m", messages=PROMPT)

    assert caught.value.response.headers["retry-after"] == "2"
    assert caught.value.response.headers["retry-after-ms"] == "1500"
    assert caught.value.response.headers["x-sim-region"] == "primary"
    body = caught.value.body
    assert isinstance(body, dict)
    assert (body["code"], body["type"]) == ("429", "rate_limit_error")
    assert control.get("/_sim/stats").json() == {
        "requests": 1,
        "by_status": {"429": 1},
        "prompt_tokens": 0,
        "completion_tokens": 0,
    }


def test_503_raises_a_server_error_for_chat_and_embeddings(azure: openai.AzureOpenAI, control: httpx.Client) -> None:
    set_fault(control, status=503)

    with pytest.raises(openai.InternalServerError) as chat_error:
        azure.chat.completions.create(model="d", messages=PROMPT)
    with pytest.raises(openai.InternalServerError) as embedding_error:
        azure.embeddings.create(model="e", input="x")

    assert chat_error.value.status_code == embedding_error.value.status_code == 503
    assert control.get("/_sim/stats").json()["by_status"] == {"503": 2}


def test_a_partial_rate_fails_only_some_requests(simulator: SimulatorProcess, control: httpx.Client) -> None:
    set_fault(control, status=500, rate=0.5)

    with httpx.Client(base_url=simulator.url, headers={"api-key": "k"}) as client:
        statuses = [client.post("/v1/embeddings", json={"model": "e", "input": "x"}).status_code for _ in range(30)]

    assert set(statuses) == {200, 500}
    stats = control.get("/_sim/stats").json()
    assert stats["by_status"] == {"200": statuses.count(200), "500": statuses.count(500)}


def test_latency_fault_alone_slows_but_answers(oai: openai.OpenAI, control: httpx.Client) -> None:
    set_fault(control, latency_ms=400)

    started = time.monotonic()
    response = oai.embeddings.create(model="e", input="x")

    assert time.monotonic() - started >= 0.4
    assert len(response.data[0].embedding) == 256


def test_timeout_fault_makes_the_client_timeout_fire(azure: openai.AzureOpenAI, control: httpx.Client) -> None:
    set_fault(control, status="timeout")

    started = time.monotonic()
    with pytest.raises(openai.APITimeoutError):
        azure.chat.completions.create(model="d", messages=PROMPT, timeout=1)
    elapsed = time.monotonic() - started

    assert 0.9 <= elapsed < 3
    assert control.get("/_sim/stats").json()["by_status"] == {"timeout": 1}
    control.delete("/_sim/faults")
    assert azure.embeddings.create(model="e", input="still serving").data, "the hang must not wedge the server"


@pytest.mark.parametrize("after_tokens", [3, 0])
def test_drop_stream_breaks_the_stream_after_n_tokens(
    oai: openai.OpenAI, control: httpx.Client, after_tokens: int
) -> None:
    full = plain_answer(oai, model="m")
    control.delete("/_sim/stats")
    set_fault(control, status="drop_stream", after_tokens=after_tokens)

    received: list[str] = []
    stream = oai.chat.completions.create(
        model="m", messages=PROMPT, stream=True, stream_options={"include_usage": True}
    )
    with pytest.raises(openai.APIConnectionError):
        for chunk in stream:
            assert chunk.choices and chunk.choices[0].finish_reason is None, "no clean end may arrive"
            received.append(chunk.choices[0].delta.content or "")

    assert len(received) == 1 + after_tokens  # the role chunk, then the tokens sent
    assert full.startswith("".join(received))
    assert "".join(received) == O200K.decode(O200K.encode(full)[:after_tokens])
    assert control.get("/_sim/stats").json() == {
        "requests": 1,
        "by_status": {"dropped": 1},
        "prompt_tokens": PROMPT_TOKENS,
        "completion_tokens": after_tokens,
    }


def test_drop_stream_is_a_protocol_error_to_httpx_with_no_done(
    simulator: SimulatorProcess, control: httpx.Client
) -> None:
    set_fault(control, status="drop_stream")
    body = {"model": "m", "messages": PROMPT, "stream": True}

    lines: list[str] = []
    with (
        httpx.Client(base_url=simulator.url, headers={"api-key": "k"}) as client,
        pytest.raises(httpx.RemoteProtocolError),
        client.stream("POST", "/v1/chat/completions", json=body) as response,
    ):
        assert response.status_code == 200
        lines.extend(line for line in response.iter_lines() if line)

    assert len(lines) == 4
    assert "data: [DONE]" not in lines


def test_drop_on_a_plain_request_is_a_connection_error(oai: openai.OpenAI, control: httpx.Client) -> None:
    set_fault(control, status="drop_stream")

    with pytest.raises(openai.APIConnectionError):
        oai.chat.completions.create(model="m", messages=PROMPT)

    assert control.get("/_sim/stats").json()["by_status"] == {"dropped": 1}


def test_stats_count_billed_tokens_and_reset(
    oai: openai.OpenAI, azure: openai.AzureOpenAI, control: httpx.Client
) -> None:
    chat = oai.chat.completions.create(model="m", messages=PROMPT)
    embedding = azure.embeddings.create(model="e", input="three short words")
    assert chat.usage is not None

    assert control.get("/_sim/stats").json() == {
        "requests": 2,
        "by_status": {"200": 2},
        "prompt_tokens": chat.usage.prompt_tokens + embedding.usage.prompt_tokens,
        "completion_tokens": chat.usage.completion_tokens,
    }
    control.delete("/_sim/stats")
    assert control.get("/_sim/stats").json() == {
        "requests": 0,
        "by_status": {},
        "prompt_tokens": 0,
        "completion_tokens": 0,
    }


def test_requests_without_a_key_get_401(simulator: SimulatorProcess, control: httpx.Client) -> None:
    response = httpx.post(f"{simulator.url}/v1/chat/completions", json={"model": "m", "messages": PROMPT})

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "401"
    assert control.get("/_sim/stats").json()["by_status"] == {"401": 1}


def test_bad_fault_is_refused_and_leaves_the_active_one(control: httpx.Client) -> None:
    set_fault(control, status=503, rate=0.25)

    refused = control.post("/_sim/faults", json={"status": 503, "rate": 2})

    assert refused.status_code == 400
    assert control.get("/_sim/faults").json() == {"fault": {"status": 503, "rate": 0.25}}
