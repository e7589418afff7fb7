"""The upstream error tree, raised where the failure is known: by the wire over httpx2, and by the
kernel adapter for what the real openai SDK (under Semantic Kernel) raised over the same transport."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable

import httpx2
import pytest
from openai import AsyncOpenAI, DefaultAsyncHttpxClient
from semantic_kernel.connectors.ai.open_ai import OpenAIChatCompletion, OpenAIChatPromptExecutionSettings
from semantic_kernel.contents import ChatHistory

from shared.core.settings import EndpointConfig
from shared.upstream.errors import (
    AnswerCut,
    ConnectionDropped,
    CredentialsRefused,
    EndpointFailed,
    EndpointRefused,
    EndpointThrottled,
    EndpointTimedOut,
    EndpointUnreachable,
    ErrorStatus,
    StreamErrorEvent,
    UpstreamError,
)
from shared.upstream.routing import sdk_error
from shared.upstream.wire import ModelWire

BODY = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
# h11's words for a body cut after it began, and for a keep-alive connection the server had closed.
CUT = "peer closed connection without sending complete message body (incomplete chunked read)"
STALE = "Server disconnected without sending a response."
PRIVATE = {"error": {"message": "private words of the provider", "type": "invalid_request_error",
                     "param": "messages", "code": "bad"}}
Handler = Callable[[httpx2.Request], httpx2.Response]


def status(code: int, headers: dict[str, str] | None = None) -> Handler:
    return lambda request: httpx2.Response(code, json=PRIVATE, headers=headers or {})


def raises(exc: Exception) -> Handler:
    def handle(request: httpx2.Request) -> httpx2.Response:
        raise exc

    return handle


def cut_after_200(request: httpx2.Request) -> httpx2.Response:
    async def body() -> AsyncIterator[bytes]:
        if json.loads(request.content).get("stream"):
            yield b'data: {"id": "c", "choices": [{"index": 0, "delta": {"content": "a"}}]}\n\n'
        else:
            yield b'{"id": "c", "choi'
        raise httpx2.RemoteProtocolError(CUT)

    return httpx2.Response(200, headers={"content-type": "text/event-stream"}, content=body())


def error_event(request: httpx2.Request) -> httpx2.Response:
    return httpx2.Response(200, headers={"content-type": "text/event-stream"},
                           content=b'data: {"error": {"message": "overloaded"}}\n\n')


# The failure, and the error the wire raises for it.
CASES: dict[str, tuple[Handler, type[UpstreamError]]] = {
    "400": (status(400), EndpointRefused),
    "401": (status(401), CredentialsRefused),
    "403": (status(403), CredentialsRefused),
    "429": (status(429, {"retry-after": "7", "x-request-id": "req-9"}), EndpointThrottled),
    "500": (status(500), EndpointFailed),
    "408": (status(408), EndpointFailed),
    "501": (status(501), EndpointRefused),  # as before the tree: not retried elsewhere
    "connect-error": (raises(httpx2.ConnectError("connection refused")), EndpointUnreachable),
    "read-timeout": (raises(httpx2.ReadTimeout("timed out")), EndpointTimedOut),
    "stale-keep-alive": (raises(httpx2.RemoteProtocolError(STALE)), ConnectionDropped),
    "cut-after-200": (cut_after_200, AnswerCut),
}


def wire(handler: Handler) -> ModelWire:
    config = EndpointConfig(name="e", kind="openai", endpoint="http://model/v1", model="m")
    transport = httpx2.MockTransport(handler)
    return ModelWire(config, httpx2.AsyncClient(transport=transport), transport=transport,
                     auth_name="authorization", auth=None, static_auth="Bearer k")


@pytest.mark.parametrize("case", CASES)
async def test_the_wire_raises_the_trees_error_for_each_failure(case: str) -> None:
    handler, expected = CASES[case]
    client = wire(handler)
    with pytest.raises(UpstreamError) as whole:
        await client.post("/chat/completions", BODY)
    with pytest.raises(UpstreamError) as streamed:
        async for _ in client.stream("/chat/completions", {**BODY, "stream": True}):
            pass
    await client.close()
    for info in (whole, streamed):
        assert type(info.value) is expected
        assert "private" not in str(info.value)  # the provider's words stay in `body`
        if not isinstance(info.value, ErrorStatus):
            assert isinstance(info.value.__cause__, httpx2.HTTPError)  # raised `from` httpx2's own


async def test_an_error_status_carries_what_is_read_from_it_once() -> None:
    client = wire(CASES["429"][0])
    with pytest.raises(EndpointThrottled) as throttled:
        await client.post("/chat/completions", BODY)
    await client.close()
    assert (throttled.value.status, throttled.value.retry_after_s, throttled.value.request_id) == (429, 7.0, "req-9")
    refusing = wire(status(400))
    with pytest.raises(EndpointRefused) as refused:
        await refusing.post("/chat/completions", BODY)
    await refusing.close()
    assert refused.value.refusal == PRIVATE["error"] and refused.value.body == PRIVATE


async def test_an_error_event_in_a_stream_is_raised_with_its_body() -> None:
    client = wire(error_event)
    with pytest.raises(StreamErrorEvent) as info:
        async for _ in client.stream("/chat/completions", {**BODY, "stream": True}):
            pass
    await client.close()
    assert info.value.body == {"message": "overloaded"} and "overloaded" not in str(info.value)


# --- The kernel's door: the openai SDK under Semantic Kernel, over the same transport -------------

def service(handler: Handler) -> OpenAIChatCompletion:
    http = DefaultAsyncHttpxClient(transport=httpx2.MockTransport(handler))
    client = AsyncOpenAI(base_url="http://model/v1", api_key="k", max_retries=0, http_client=http)
    return OpenAIChatCompletion(service_id="e", ai_model_id="m", async_client=client)


async def sdk_failure(handler: Handler, *, stream: bool) -> Exception:
    """What Semantic Kernel's service raised for the failure."""
    chat, history, settings = service(handler), ChatHistory(), OpenAIChatPromptExecutionSettings()
    history.add_user_message("hi")
    try:
        if stream:
            async for _ in chat.get_streaming_chat_message_contents(history, settings):
                pass
        else:
            await chat.get_chat_message_contents(history, settings)
    except Exception as exc:  # noqa: BLE001  the test inspects whatever it was
        return exc
    finally:
        await chat.client.close()
    raise AssertionError("the service did not fail")


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
@pytest.mark.parametrize("case", CASES)
async def test_the_sdks_failure_becomes_the_same_error_at_the_kernel_adapter(case: str, stream: bool) -> None:
    handler, expected = CASES[case]
    ours = sdk_error(await sdk_failure(handler, stream=stream))
    assert type(ours) is expected
    if isinstance(ours, ErrorStatus):
        wired = wire(handler)
        with pytest.raises(ErrorStatus) as info:
            await wired.post("/chat/completions", BODY)
        await wired.close()
        assert vars(ours) == vars(info.value)  # status, request id, Retry-After and body alike


async def test_the_sdks_stream_error_event_becomes_the_wires() -> None:
    ours = sdk_error(await sdk_failure(error_event, stream=True))
    assert isinstance(ours, StreamErrorEvent) and ours.body == {"message": "overloaded"}


async def test_a_content_filter_refusal_is_refused_and_passes_none_of_its_text_on() -> None:
    filtered = {"error": {"message": "private filter words", "code": "content_filter", "param": "prompt",
                          "innererror": {"code": "ResponsibleAIPolicyViolation"}}}
    ours = sdk_error(await sdk_failure(lambda r: httpx2.Response(400, json=filtered), stream=False))
    assert type(ours) is EndpointRefused and (ours.status, ours.refusal, ours.request_id) == (400, None, None)


def test_anything_else_is_left_as_it_came() -> None:
    odd = ValueError("a malformed answer")
    assert sdk_error(odd) is odd
