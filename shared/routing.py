"""The kernel's chat service: every model call of one model group goes through the resilience
policy (retry, breakers, failover), so the HTTP, OpenAI-compatible and queue paths behave alike."""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from typing import Any, ClassVar, TypeVar

from pydantic import ConfigDict, PrivateAttr
from semantic_kernel.connectors.ai.chat_completion_client_base import ChatCompletionClientBase
from semantic_kernel.connectors.ai.open_ai import OpenAIChatPromptExecutionSettings
from semantic_kernel.connectors.ai.prompt_execution_settings import PromptExecutionSettings
from semantic_kernel.contents import ChatHistory, ChatMessageContent, StreamingChatMessageContent

from shared.endpoints import Endpoint
from shared.errors import ServiceUnavailable
from shared.metering import current_meter
from shared.resilience.policy import ResiliencePolicy
from shared.tracing_genai import Attempt
from shared.tracing_genai import current as current_attempt
from shared.upstream import billable_failure, classify

log = logging.getLogger(__name__)
StreamParts = AsyncGenerator[list[StreamingChatMessageContent], Any]
T = TypeVar("T")
R = TypeVar("R")


class RoutedChatCompletion(ChatCompletionClientBase):
    """A chat service over the endpoints of one model group."""

    SUPPORTS_FUNCTION_CALLING: ClassVar[bool] = False
    model_config = ConfigDict(arbitrary_types_allowed=True)

    _endpoints: list[Endpoint] = PrivateAttr(default_factory=list)
    _policy: ResiliencePolicy = PrivateAttr()

    def __init__(self, *, model: str, endpoints: list[Endpoint], policy: ResiliencePolicy, **kwargs: Any) -> None:
        super().__init__(ai_model_id=model, service_id=model, **kwargs)
        self._endpoints = sorted(endpoints, key=lambda e: e.config.priority)
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
            results = await metered(endpoint.service.get_chat_message_contents(chat_history, _for_endpoint(settings)))
            for message in results:
                message.metadata["endpoint"] = endpoint.name
            return results

        return await self._policy.call(self._endpoints, attempt)

    async def _inner_get_streaming_chat_message_contents(
        self,
        chat_history: ChatHistory,
        settings: PromptExecutionSettings,
        function_invoke_attempt: int = 0,
    ) -> StreamParts:
        def open_stream(endpoint: Endpoint) -> StreamParts:
            return endpoint.service.get_streaming_chat_message_contents(chat_history, _for_endpoint(settings))

        async for endpoint, chunks in held_stream(
            self._policy, self._endpoints, open_stream,
            started=lambda chunks: any(c.content or c.finish_reason for c in chunks),
            text=lambda chunks: "".join(c.content or "" for c in chunks),
        ):
            yield _tag(chunks, endpoint)


async def held_stream(policy: ResiliencePolicy, endpoints: list[Endpoint],
                      open_stream: Callable[[Endpoint], AsyncGenerator[T, Any]], *,
                      started: Callable[[T], bool], text: Callable[[T], str]) -> AsyncIterator[tuple[Endpoint, T]]:
    """A streamed model call through the policy. An attempt lasts until the first item that
    `started` the answer: a failure before it fails over unseen; after it, the stream is cut and
    ServiceUnavailable is raised (a clean end would pass a partial answer off as whole)."""

    async def attempt(endpoint: Endpoint) -> tuple[Endpoint, list[T], AsyncGenerator[T, Any], Attempt | None]:
        # Held open past the policy: the attempt's span ends with the stream, with its final usage.
        span = current_attempt()
        if span is not None:
            span.hold()
        parts = open_stream(endpoint)
        held: list[T] = []
        try:
            async for item in parts:
                held.append(item)
                if span is not None:
                    span.observe(item)
                if started(item):
                    break
        except BaseException as exc:
            # A 200 that broke before content was billed by the provider: the meter charges it.
            meter_failed_attempt(exc, "".join(text(item) for item in held), answer_started=bool(held))
            await parts.aclose()
            raise
        return endpoint, held, parts, span

    endpoint, held, parts, span = await policy.call(endpoints, attempt)
    failure: BaseException | None = None
    try:
        for item in held:
            yield endpoint, item
        async for item in parts:
            if span is not None:
                span.observe(item)
            yield endpoint, item
    except Exception as exc:
        failure = exc
        policy.pool.record_failure(endpoint, classify(exc))
        log.warning("stream cut after content: endpoint=%s error=%s", endpoint.name, type(exc).__name__)
        raise ServiceUnavailable("The model's answer was cut off.") from exc
    finally:
        await parts.aclose()
        if span is not None:
            span.end(failure)


async def metered(call: Awaitable[R]) -> R:
    """One attempt's call, its failure told to the request's meter (a streamed attempt tells it
    itself, with what it had received: see held_stream)."""
    try:
        return await call
    except BaseException as exc:
        meter_failed_attempt(exc)
        raise


def meter_failed_attempt(exc: BaseException, partial: str = "", *, answer_started: bool = False) -> None:
    """Tell the request's meter about an attempt that failed, charged when the provider may have
    billed it (shared/upstream.billable_failure); never for an error status or a connection that
    did not reach it."""
    meter = current_meter()
    if meter is None:
        return
    meter.attempt_failed(partial, billable=billable_failure(exc, answer_started=answer_started))


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
