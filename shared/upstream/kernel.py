"""The shared Semantic Kernel of the native endpoints and jobs, built once per worker over the model groups."""

from __future__ import annotations

import logging
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
from semantic_kernel.exceptions import KernelInvokeException
from semantic_kernel.functions import KernelArguments, kernel_function

from shared.core.errors import AppError, exception_chain
from shared.core.models import ChatMessage, Usage
from shared.core.values import Completion, Delta, SamplingParams
from shared.upstream.clients import build_client
from shared.upstream.prompts import render_summarize
from shared.upstream.routing import RoutedChatCompletion

if TYPE_CHECKING:
    from shared.identity.secrets import SecretProvider
    from shared.upstream.groups import ModelGroups

PLUGIN = "gateway"  # the native operations' plugin
# The kernel logs each invocation (info), its arguments and result (debug: the prompt and the answer)
# and each failure's text (error), which our own lines already say once: none of it is to be logged.
for _name in ("semantic_kernel.kernel", "semantic_kernel.functions"):
    logging.getLogger(_name).setLevel(logging.CRITICAL)


async def build_engine(groups: ModelGroups, *, credential: AsyncTokenCredential | None, secrets: SecretProvider,
                       timeout_s: float) -> KernelEngine:
    """The kernel over the groups: one Semantic Kernel chat service per endpoint, over its own SDK
    client, and one routed service per model behind the groups' resilience policy."""
    services: dict[str, ChatCompletionClientBase] = {}
    for endpoint in groups.endpoints():
        config = endpoint.config
        client = await build_client(config, transport=endpoint.wire.transport, credential=credential, secrets=secrets,
                                    timeout_s=timeout_s)
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


class GatewayPlugin:
    """The native operations as Semantic Kernel functions, invoked through `kernel.invoke` (so the
    kernel's filters see every call), each over its model group's routed chat service, which sends
    through the one resilience policy. The summarize prompt is rendered by shared/upstream/prompts.py,
    the same one pass the budget counted, and sent as one user message."""

    def __init__(self, routers: dict[str, RoutedChatCompletion]) -> None:
        self._routers = routers

    @kernel_function(name="chat", description="One chat completion on a model group.")
    async def chat(self, model: str, history: ChatHistory,
                   execution: OpenAIChatPromptExecutionSettings) -> ChatMessageContent:
        return await self._complete(model, history, execution)

    @kernel_function(name="summarize", description="A summary of a text, in a style, within a number of words.")
    async def summarize(self, model: str, text: str, style: str, max_words: int,
                        execution: OpenAIChatPromptExecutionSettings) -> ChatMessageContent:
        history = ChatHistory()
        history.add_message(ChatMessageContent(role=AuthorRole.USER, content=render_summarize(text, style, max_words)))
        return await self._complete(model, history, execution)

    async def _complete(self, model: str, history: ChatHistory,
                        execution: OpenAIChatPromptExecutionSettings) -> ChatMessageContent:
        result = await self._routers[model].get_chat_message_content(history, execution)
        assert result is not None  # noqa: S101  the routed service always returns one choice
        return result


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
        self.kernel.add_plugin(GatewayPlugin(self._routers), plugin_name=PLUGIN)

    def router(self, model: str) -> RoutedChatCompletion:
        return self._routers[model]

    async def close(self) -> None:
        """The services' SDK clients (an unclosed one is closed by the garbage collector after its
        event loop, with a traceback)."""
        for service in self._services.values():
            await cast(Any, service).client.close()

    async def chat(self, model: str, messages: list[ChatMessage], params: SamplingParams) -> Completion:
        return await self._invoke("chat", model=model, history=_history(messages),
                                  execution=_settings(params, model))

    async def summarize(self, model: str, text: str, style: str, max_words: int, params: SamplingParams) -> Completion:
        return await self._invoke("summarize", model=model, text=text, style=style, max_words=max_words,
                                  execution=_settings(params, model))

    async def _invoke(self, function: str, **arguments: Any) -> Completion:
        try:
            result = await self.kernel.invoke(plugin_name=PLUGIN, function_name=function,
                                              arguments=KernelArguments(**arguments))
        except KernelInvokeException as exc:
            # The kernel wraps what the function raised: our typed error (a 503, a 429) is the answer.
            cause = next((e for e in exception_chain(exc) if isinstance(e, AppError)), None)
            if cause is None:
                raise
            raise cause from None
        message = result.value if result is not None else None
        if not isinstance(message, ChatMessageContent):
            raise TypeError(f"the kernel function {function!r} returned no chat message")
        return self._completion(message, arguments["model"])

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
