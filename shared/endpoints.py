"""A configured model endpoint together with the Semantic Kernel service that calls it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

from openai import AsyncOpenAI
from semantic_kernel.connectors.ai.chat_completion_client_base import ChatCompletionClientBase

from shared.config import EndpointConfig


@dataclass(frozen=True)
class Endpoint:
    config: EndpointConfig
    service: ChatCompletionClientBase

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def client(self) -> AsyncOpenAI:
        """The endpoint's own SDK client (auth, base URL, SDK retries off), which the Semantic
        Kernel service holds: the pass-through sends through it, so both paths share one client."""
        return cast(AsyncOpenAI, cast(Any, self.service).client)

    @property
    def upstream_model(self) -> str:
        """What this endpoint is asked for: its deployment (Azure) or its model (OpenAI)."""
        return self.config.deployment if self.config.kind == "azure_openai" else self.config.model


def embedding_endpoint_name(name: str) -> str:
    """The name an endpoint's embedding deployment has in the pool: a breaker apart from the chat's."""
    return f"{name}/embeddings"


def embedding_endpoint(endpoint: Endpoint) -> Endpoint:
    """The endpoint as its embedding deployment, over the same SDK client."""
    deployment = endpoint.config.embedding_deployment or ""
    config = endpoint.config.model_copy(update={"name": embedding_endpoint_name(endpoint.name),
                                                "deployment": deployment, "model": deployment})
    return Endpoint(config=config, service=endpoint.service)
