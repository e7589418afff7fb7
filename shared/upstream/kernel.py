"""The shared Semantic Kernel of the native endpoints and jobs, built once per worker over the model groups."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any, cast

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

from shared.core.models import ChatMessage, Usage
from shared.core.values import Completion, Delta, SamplingParams
from shared.upstream.clients import build_client
from shared.upstream.routing import RoutedChatCompletion

if TYPE_CHECKING:
    from shared.identity.secrets import SecretProvider
    from shared.upstream.groups import ModelGroups


async def build_engine(groups: ModelGroups, *, credential: AsyncTokenCredential | None, secrets: SecretProvider,
                       timeout_s: float) -> KernelEngine:
    """The kernel over the groups: one Semantic Kernel chat service per endpoint, over its own SDK
    client, and one routed service per model behind the groups' resilience policy."""
    services: dict[str, ChatCompletionClientBase] = {}
    for endpoint in groups.endpoints():
        config = endpoint.config
        client = await build_client(config, credential=credential, secrets=secrets, timeout_s=timeout_s)
        if isinstance(client, AsyncAzureOpenAI):
            services[config.name] = AzureChatCompletion(service_id=config.name, deployment_name=config.deployment,
                                                        async_client=client)
        else:
            services[config.name] = OpenAIChatCompletion(service_id=config.name, ai_model_id=config.model,
                                                         async_client=client)
    return KernelEngine(groups, services)


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
    """Runs the kernel for the native endpoints and jobs and returns our own types, not Semantic Kernel's."""

    def __init__(self, groups: ModelGroups, services: dict[str, ChatCompletionClientBase]) -> None:
        self.kernel = Kernel()
        self._services = services
        self._routers: dict[str, RoutedChatCompletion] = {}
        for model in groups.models():
            router = RoutedChatCompletion(model=model, endpoints=groups.group(model), services=services,
                                          policy=groups.policy)
            self.kernel.add_service(router)
            self._routers[model] = router

    def router(self, model: str) -> RoutedChatCompletion:
        return self._routers[model]

    async def close(self) -> None:
        """The services' SDK clients (an unclosed one is closed by the garbage collector after its
        event loop, with a traceback)."""
        for service in self._services.values():
            await cast(Any, service).client.close()

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
