"""The kernel's chat service: every model call of one model group goes through the resilience
policy (retry, breakers, failover), so the HTTP, OpenAI-compatible and queue paths behave alike."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, Awaitable, Iterator
from typing import Any, ClassVar, TypeVar

import httpx2
import openai
from pydantic import ConfigDict, PrivateAttr
from semantic_kernel.connectors.ai.chat_completion_client_base import ChatCompletionClientBase
from semantic_kernel.connectors.ai.open_ai import OpenAIChatPromptExecutionSettings
from semantic_kernel.connectors.ai.prompt_execution_settings import PromptExecutionSettings
from semantic_kernel.contents import ChatHistory, ChatMessageContent, StreamingChatMessageContent
from semantic_kernel.exceptions import ServiceContentFilterException

from shared.core.errors import exception_chain
from shared.upstream.attempts import held_stream, metered, retry_gate
from shared.upstream.endpoints import Endpoint
from shared.upstream.errors import (
    EndpointRefused,
    EndpointTimedOut,
    EndpointUnreachable,
    StreamErrorEvent,
    UpstreamError,
    status_error,
    transport_error,
)
from shared.upstream.resilience.policy import ResiliencePolicy

StreamParts = AsyncGenerator[list[StreamingChatMessageContent], Any]
R = TypeVar("R")


class RoutedChatCompletion(ChatCompletionClientBase):
    """A chat service over the endpoints of one model group."""

    SUPPORTS_FUNCTION_CALLING: ClassVar[bool] = False
    model_config = ConfigDict(arbitrary_types_allowed=True)

    _endpoints: list[Endpoint] = PrivateAttr(default_factory=list)
    _services: dict[str, ChatCompletionClientBase] = PrivateAttr(default_factory=dict)
    _policy: ResiliencePolicy = PrivateAttr()

    def __init__(self, *, model: str, endpoints: list[Endpoint], services: dict[str, ChatCompletionClientBase],
                 policy: ResiliencePolicy, **kwargs: Any) -> None:
        super().__init__(ai_model_id=model, service_id=model, **kwargs)
        self._endpoints = sorted(endpoints, key=lambda e: e.config.priority)
        self._services = services  # each endpoint's own service, by endpoint name
        self._policy = policy

    @property
    def endpoints(self) -> list[Endpoint]:
        return list(self._endpoints)

    @property
    def policy(self) -> ResiliencePolicy:
        return self._policy

    def get_prompt_execution_settings_class(self) -> type[PromptExecutionSettings]:
        return OpenAIChatPromptExecutionSettings

    async def _inner_get_chat_message_contents(
        self, chat_history: ChatHistory, settings: PromptExecutionSettings
    ) -> list[ChatMessageContent]:
        async def attempt(endpoint: Endpoint) -> list[ChatMessageContent]:
            service = self._services[endpoint.name]
            results = await metered(_translated(service.get_chat_message_contents(chat_history,
                                                                                   _for_endpoint(settings))))
            for message in results:
                message.metadata["endpoint"] = endpoint.name
            return results

        cap = getattr(settings, "max_tokens", None)
        work = cap * (getattr(settings, "number_of_responses", None) or 1) if cap else None
        return await self._policy.call(self._endpoints, attempt, work_tokens=work, before_retry=retry_gate())

    async def _inner_get_streaming_chat_message_contents(
        self,
        chat_history: ChatHistory,
        settings: PromptExecutionSettings,
        function_invoke_attempt: int = 0,
    ) -> StreamParts:
        def open_stream(endpoint: Endpoint) -> StreamParts:
            service = self._services[endpoint.name]
            return _translated_stream(service.get_streaming_chat_message_contents(chat_history,
                                                                                  _for_endpoint(settings)))

        async for endpoint, chunks in held_stream(
            self._policy, self._endpoints, open_stream,
            started=lambda chunks: any(c.content or c.finish_reason for c in chunks),
            text=lambda chunks: "".join(c.content or "" for c in chunks),
        ):
            yield _tag(chunks, endpoint)


def _tag(chunks: list[StreamingChatMessageContent], endpoint: Endpoint) -> list[StreamingChatMessageContent]:
    for chunk in chunks:
        chunk.metadata["endpoint"] = endpoint.name
    return chunks


def _for_endpoint(settings: PromptExecutionSettings) -> PromptExecutionSettings:
    """A copy without the model-group id, so each endpoint sends its own deployment or model."""
    copy = settings.model_copy(deep=True)
    if hasattr(copy, "ai_model_id"):
        copy.ai_model_id = None
    copy.service_id = None
    return copy


@contextlib.contextmanager
def _as_upstream_errors() -> Iterator[None]:
    """An SDK service's failure inside, raised as the upstream error tree (sdk_error)."""
    try:
        yield
    except Exception as exc:
        ours = sdk_error(exc)
        if ours is exc:
            raise
        raise ours from exc


async def _translated(call: Awaitable[R]) -> R:
    """An SDK service's call, its failure raised as the upstream error tree."""
    with _as_upstream_errors():
        return await call


async def _translated_stream(parts: StreamParts) -> StreamParts:
    """An SDK service's stream, its failure raised as the upstream error tree."""
    try:
        with _as_upstream_errors():
            async for chunks in parts:
                yield chunks
    finally:
        await parts.aclose()


def sdk_error(exc: Exception) -> Exception:
    """The openai SDK's failure, as Semantic Kernel wraps it, as the wire raises the same one
    (shared/upstream/errors.py); anything else (a malformed answer, a connector's bug) as it came."""
    if isinstance(exc, ServiceContentFilterException):
        # Azure's content filter, taken apart by Semantic Kernel: refused, none of its text passed on.
        return EndpointRefused(400, {}, None)
    chain = exception_chain(exc)
    for e in chain:
        if isinstance(e, openai.APIStatusError):
            # The SDK's `body` is the error object already taken out of {"error": ...}.
            return status_error(e.status_code, e.response.headers, {"error": e.body})
    if any(isinstance(e, openai.APITimeoutError | httpx2.TimeoutException) for e in chain):
        return EndpointTimedOut("the model endpoint timed out")
    return _unanswered(chain) or exc


def _unanswered(chain: list[BaseException]) -> UpstreamError | None:
    """A failure with no error status: httpx2's (under the SDK's APIConnectionError, or a stream's
    read), the SDK's connection error without it, or its error for a stream's error event."""
    transport = next((e for e in chain if isinstance(e, httpx2.HTTPError)), None)
    if transport is not None:
        return transport_error(transport)
    if any(isinstance(e, openai.APIConnectionError) for e in chain):
        return EndpointUnreachable("the model endpoint could not be reached")
    event = next((e for e in chain if type(e) is openai.APIError), None)
    return None if event is None else StreamErrorEvent(event.body)
