"""The shared Semantic Kernel: built once per worker from AI_ENDPOINTS, with the prompt functions."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from typing import Any

from azure.core.credentials_async import AsyncTokenCredential
from openai import AsyncAzureOpenAI
from semantic_kernel import Kernel
from semantic_kernel.connectors.ai.chat_completion_client_base import ChatCompletionClientBase
from semantic_kernel.connectors.ai.open_ai import (
    AzureChatCompletion,
    OpenAIChatCompletion,
    OpenAIChatPromptExecutionSettings,
)
from semantic_kernel.contents import AuthorRole, ChatHistory, ChatMessageContent, StreamingChatMessageContent

from shared.clients import build_client
from shared.config import EndpointConfig
from shared.endpoints import Endpoint
from shared.models import ChatMessage, Usage
from shared.resilience.policy import ResiliencePolicy
from shared.routing import RoutedChatCompletion
from shared.secrets import SecretProvider
from shared.values import Completion, Delta, SamplingParams
from shared.wire import build_wire

SUMMARIZE_PROMPT = """Summarize the text below. Style: {{$style}}. Use at most {{$max_words}} words.
Reply with the summary only.

Text:
{{$text}}"""


async def build_endpoint(
    config: EndpointConfig, *, credential: AsyncTokenCredential | None, secrets: SecretProvider,
    timeout_s: float,
) -> Endpoint:
    """One endpoint's chat service over its own SDK client, and the pass-through's wire beside it."""
    client = await build_client(config, credential=credential, secrets=secrets, timeout_s=timeout_s)
    wire = await build_wire(config, credential=credential, secrets=secrets, timeout_s=timeout_s)
    service: ChatCompletionClientBase
    if isinstance(client, AsyncAzureOpenAI):
        service = AzureChatCompletion(service_id=config.name, deployment_name=config.deployment,
                                      async_client=client)
    else:
        service = OpenAIChatCompletion(service_id=config.name, ai_model_id=config.model, async_client=client)
    return Endpoint(config=config, service=service, wire=wire)


def build_kernel(endpoints: list[Endpoint], policy: ResiliencePolicy) -> Kernel:
    """One routed chat service per model, all behind the one resilience policy."""
    kernel = Kernel()
    by_model = itertools.groupby(sorted(endpoints, key=lambda e: e.config.model), key=lambda e: e.config.model)
    for model, group in by_model:
        kernel.add_service(RoutedChatCompletion(model=model, endpoints=list(group), policy=policy))
    return kernel


def _settings(params: SamplingParams, model: str) -> OpenAIChatPromptExecutionSettings:
    """The sampling parameters as Semantic Kernel's execution settings for `model`'s service."""
    return OpenAIChatPromptExecutionSettings(
        service_id=model, max_tokens=params.max_tokens, temperature=params.temperature, top_p=params.top_p,
        stop=list(params.stop) if params.stop else None, presence_penalty=params.presence_penalty,
        frequency_penalty=params.frequency_penalty, seed=params.seed,
    )


def _usage(metadata: dict[str, Any]) -> Usage | None:
    raw = metadata.get("usage")
    if raw is None:
        return None
    prompt, completion = int(raw.prompt_tokens or 0), int(raw.completion_tokens or 0)
    return Usage(prompt_tokens=prompt, completion_tokens=completion, total_tokens=prompt + completion)


def _model_name(message: ChatMessageContent | StreamingChatMessageContent, fallback: str) -> str:
    inner = getattr(message.inner_content, "model", None)
    return inner if isinstance(inner, str) and inner else fallback


def _history(messages: list[ChatMessage]) -> ChatHistory:
    history = ChatHistory()
    for message in messages:
        history.add_message(ChatMessageContent(role=AuthorRole(message.role), content=message.content))
    return history


class KernelEngine:
    """Runs the kernel for the request path and returns our own types, not Semantic Kernel's."""

    def __init__(self, kernel: Kernel) -> None:
        self.kernel = kernel
        services = kernel.get_services_by_type(RoutedChatCompletion)
        self._routers: dict[str, RoutedChatCompletion] = {s.ai_model_id: s for s in services.values()}
        self.policy = next(iter(self._routers.values())).policy
        # Native endpoints name no model: they use the model of the best-priority endpoint.
        self.default_model = min(self.endpoints(), key=lambda e: e.config.priority).config.model

    def endpoints(self) -> list[Endpoint]:
        return [e for router in self._routers.values() for e in router.endpoints]

    def resolve_model(self, requested: str | None) -> str | None:
        """The model group a requested model, deployment or endpoint name refers to."""
        if not requested:
            return self.default_model
        for model, router in self._routers.items():
            if requested == model or any(requested in (e.config.deployment, e.name) for e in router.endpoints):
                return model
        return None

    def router(self, model: str) -> RoutedChatCompletion:
        return self._routers[model]

    async def chat(self, model: str, messages: list[ChatMessage], params: SamplingParams) -> Completion:
        result = await self.router(model).get_chat_message_content(
            _history(messages), _settings(params, model)
        )
        assert result is not None  # noqa: S101  the routed service always returns one choice
        return self._completion(result, model)

    async def prompt(self, model: str, prompt: str, params: SamplingParams) -> Completion:
        """A rendered prompt (the native endpoints' and jobs' prompt functions) as one user message.

        Rendered by the caller in one pass and sent as it is: Semantic Kernel's template engine would
        HTML-encode the inserted text and re-parse the result as chat XML, so what the model received
        (and billed) would differ from what the budget counted.
        """
        history = ChatHistory()
        history.add_message(ChatMessageContent(role=AuthorRole.USER, content=prompt))
        result = await self.router(model).get_chat_message_content(history, _settings(params, model))
        assert result is not None  # noqa: S101  the routed service always returns one choice
        return self._completion(result, model)

    async def stream(self, model: str, messages: list[ChatMessage], params: SamplingParams) -> AsyncIterator[Delta]:
        async for chunks in self.router(model).get_streaming_chat_message_contents(
            _history(messages), _settings(params, model)
        ):
            for chunk in chunks:
                finish = chunk.finish_reason.value if chunk.finish_reason else None
                yield Delta(content=chunk.content or "", finish_reason=finish, usage=_usage(chunk.metadata),
                            model=_model_name(chunk, model))

    @staticmethod
    def _completion(message: ChatMessageContent, model: str) -> Completion:
        finish = message.finish_reason.value if message.finish_reason else "stop"
        return Completion(
            content=message.content or "",
            finish_reason=finish,
            model=_model_name(message, model),
            usage=_usage(message.metadata) or Usage(),
            endpoint=str(message.metadata.get("endpoint", "")),
        )
