"""What a client sees of the cache, the budgets and the rate limits over HTTP."""

from __future__ import annotations

import uuid

import httpx
import openai
import pytest

from tests.conftest import DEV_KEY, LIMITED_KEY, OTHER_KEY
from tools.localenv import LocalStack

pytestmark = pytest.mark.e2e


def unique_chat(max_tokens: int = 200) -> dict[str, object]:
    # A long max_tokens lets the simulator finish ("stop"), so the answer is complete and cacheable.
    return {"messages": [{"role": "user", "content": f"Describe the harbour, visit {uuid.uuid4().hex}"}],
            "max_tokens": max_tokens}


def test_a_repeated_request_is_served_from_cache_at_no_cost(api: httpx.Client, stack: object) -> None:
    body = unique_chat()
    first = api.post("/v1/chat", json=body).json()
    second = api.post("/v1/chat", json=body).json()
    assert first["cached"] is False and second["cached"] is True
    assert second["content"] == first["content"] and second["usage"] == first["usage"]
    assert second["correlation_id"] != first["correlation_id"]


def test_a_cut_answer_is_never_cached(api: httpx.Client) -> None:
    body = unique_chat(max_tokens=3)
    assert api.post("/v1/chat", json=body).json()["finish_reason"] == "length"
    assert api.post("/v1/chat", json=body).json()["cached"] is False


def test_cache_control_from_the_client(api: httpx.Client) -> None:
    body = unique_chat()
    api.post("/v1/chat", json=body, headers={"cache-control": "no-store"})
    assert api.post("/v1/chat", json=body).json()["cached"] is False, "no-store: nothing was stored"
    assert api.post("/v1/chat", json=body, headers={"cache-control": "no-cache"}).json()["cached"] is False
    assert api.post("/v1/chat", json=body).json()["cached"] is True


def test_a_stream_is_served_from_cache_as_a_stream(app_url: str) -> None:
    client = openai.OpenAI(base_url=f"{app_url}/api/v1", api_key=DEV_KEY, max_retries=0)
    messages: list[openai.types.chat.ChatCompletionMessageParam] = [
        {"role": "user", "content": f"Describe the lighthouse {uuid.uuid4().hex}"}]
    whole = client.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=messages, max_tokens=200)
    assert whole.headers["x-cache"] == "MISS"
    chunks = list(client.chat.completions.create(model="gpt-4o-mini", messages=messages, max_tokens=200,
                                                 stream=True, stream_options={"include_usage": True}))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == whole.parse().choices[0].message.content
    streamed, plain = chunks[-1].usage, whole.parse().usage
    assert streamed is not None and plain is not None and streamed.total_tokens == plain.total_tokens


def billed(stack: LocalStack) -> int:
    """Tokens both simulator regions billed so far: chats and the semantic cache's embeddings."""
    stats = [httpx.get(f"{stack.sim_url(r)}/_sim/stats").json() for r in ("primary", "secondary")]
    return sum(s["prompt_tokens"] + s["completion_tokens"] for s in stats)


def test_usage_reports_the_tenants_windows(anonymous: httpx.Client, stack: LocalStack) -> None:
    headers = {"x-api-key": LIMITED_KEY}
    before, billed_before = anonymous.get("/v1/usage", headers=headers).json(), billed(stack)
    response = anonymous.post("/v1/chat", headers=headers, json=unique_chat(max_tokens=5))
    assert response.status_code == 200
    after = anonymous.get("/v1/usage", headers=headers).json()
    spent, provider_billed = response.json()["usage"]["total_tokens"], billed(stack) - billed_before
    assert after["tenant"] == "limited"
    assert provider_billed > spent, "the semantic lookup's embedding is billed too"
    assert after["daily"]["tokens_used"] - before["daily"]["tokens_used"] == provider_billed, \
        "the tenant is charged the chat and the embedding, exactly"
    assert after["daily"]["token_limit"] == 50000 and after["daily"]["usd_limit"] == 1.0
    assert after["daily"]["usd_spent"] > before["daily"]["usd_spent"]
    assert after["daily"]["resets_at"].endswith("T00:00:00Z") and after["monthly"]["token_limit"] is None


def test_rate_limit_headers_tell_the_client_what_is_left(anonymous: httpx.Client) -> None:
    response = anonymous.post("/v1/chat", headers={"x-api-key": LIMITED_KEY}, json=unique_chat(max_tokens=5))
    assert int(response.headers["x-ratelimit-remaining-requests"]) < 1000
    assert int(response.headers["x-ratelimit-remaining-tokens"]) < 100000


def test_the_allow_list_admits_every_endpoint_of_an_allowed_model(anonymous: httpx.Client) -> None:
    # (A model outside the list is refused with 403: tests/unit/shared/test_gateway.py; this
    # deployment has one model only.)
    response = anonymous.post("/openai/deployments/secondary/chat/completions", headers={"api-key": LIMITED_KEY},
                              json={"messages": [{"role": "user", "content": "hi"}], "max_tokens": 5})
    assert response.status_code == 200


def test_a_rephrased_question_is_served_by_the_semantic_cache_within_the_tenant(api: httpx.Client) -> None:
    system = {"role": "system", "content": f"You are the support desk of shop {uuid.uuid4().hex}."}

    def ask(question: str, key: str = DEV_KEY) -> dict[str, object]:
        response = api.post("/v1/chat", headers={"x-api-key": key},
                            json={"messages": [system, {"role": "user", "content": question}], "max_tokens": 200})
        assert response.status_code == 200, response.text
        return dict(response.json())

    first = ask("How do I reset my password?")
    assert first["cached"] is False and first["finish_reason"] == "stop"
    again = ask("How can I reset my password, please?")
    assert again["cached"] is True and again["content"] == first["content"]
    assert ask("How do I reset my username?")["cached"] is False, "another key term never shares an answer"
    assert ask("How can I reset my password, please?", OTHER_KEY)["cached"] is False, "never across tenants"
