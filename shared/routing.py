"""The kernel's chat service: sends each call to the model endpoints of one model group.

Every trigger reaches the model through this class, so this is where the resilience layer
(retry, circuit breakers, failover, fallback) sits. Here it calls the best-priority endpoint and
maps any failure into the error tree; nothing of a provider's own error text goes further.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import Any, ClassVar

from pydantic import ConfigDict, PrivateAttr
from semantic_kernel.connectors.ai.chat_completion_client_base import ChatCompletionClientBase
from semantic_kernel.connectors.ai.open_ai import OpenAIChatPromptExecutionSettings
from semantic_kernel.connectors.ai.prompt_execution_settings import PromptExecutionSettings
from semantic_kernel.contents import ChatHistory, ChatMessageContent, StreamingChatMessageContent

from shared.config import EndpointConfig
from shared.errors import AppError, ServiceUnavailable, UpstreamRefused
from shared.upstream import UpstreamFailure, classify

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Endpoint:
    """One configured endpoint and the Semantic Kernel service that talks to it."""

    config: EndpointConfig
    service: ChatCompletionClientBase

    @property
    def name(self) -> str:
        return self.config.name


def to_app_error(failure: UpstreamFailure) -> AppError:
    """What a client is told: a generic message, never the provider's text."""
    if failure.kind == "refused":
        return UpstreamRefused("The model endpoint refused this request (for example its content or size).")
    return ServiceUnavailable(
        "No model endpoint could answer right now. Try again later.",
        retry_after_s=failure.retry_after_s if failure.retry_after_s is not None else 5.0,
    )


class RoutedChatCompletion(ChatCompletionClientBase):
    """A chat service over the endpoints of one model group, lowest priority first."""

    SUPPORTS_FUNCTION_CALLING: ClassVar[bool] = False
    model_config = ConfigDict(arbitrary_types_allowed=True)

    _endpoints: list[Endpoint] = PrivateAttr(default_factory=list)

    def __init__(self, *, model: str, endpoints: list[Endpoint], **kwargs: Any) -> None:
        super().__init__(ai_model_id=model, service_id=model, **kwargs)
        self._endpoints = sorted(endpoints, key=lambda e: e.config.priority)

    @property
    def endpoints(self) -> list[Endpoint]:
        return list(self._endpoints)

    def get_prompt_execution_settings_class(self) -> type[PromptExecutionSettings]:
        return OpenAIChatPromptExecutionSettings

    def _pick(self) -> Endpoint:
        return self._endpoints[0]

    async def _inner_get_chat_message_contents(
        self, chat_history: ChatHistory, settings: PromptExecutionSettings
    ) -> list[ChatMessageContent]:
        endpoint = self._pick()
        try:
            results = await endpoint.service.get_chat_message_contents(chat_history, _for_endpoint(settings))
        except Exception as exc:
            raise self._failed(endpoint, exc) from exc
        for message in results:
            message.metadata["endpoint"] = endpoint.name
        return results

    async def _inner_get_streaming_chat_message_contents(
        self,
        chat_history: ChatHistory,
        settings: PromptExecutionSettings,
        function_invoke_attempt: int = 0,
    ) -> AsyncGenerator[list[StreamingChatMessageContent], Any]:
        endpoint = self._pick()
        try:
            async for chunks in endpoint.service.get_streaming_chat_message_contents(
                chat_history, _for_endpoint(settings)
            ):
                for chunk in chunks:
                    chunk.metadata["endpoint"] = endpoint.name
                yield chunks
        except Exception as exc:
            raise self._failed(endpoint, exc) from exc

    def _failed(self, endpoint: Endpoint, exc: Exception) -> AppError:
        failure = classify(exc)
        # The exception's type only: provider messages can echo prompt content.
        log.warning(
            "model call failed: endpoint=%s kind=%s status=%s error=%s",
            endpoint.name, failure.kind, failure.status, type(exc).__name__,
        )
        return to_app_error(failure)


def _for_endpoint(settings: PromptExecutionSettings) -> PromptExecutionSettings:
    """A copy without the model-group id, so each endpoint sends its own deployment or model."""
    copy = settings.model_copy(deep=True)
    if hasattr(copy, "ai_model_id"):
        copy.ai_model_id = None
    copy.service_id = None
    return copy
