"""A configured model endpoint: its wire client, and the Semantic Kernel service that calls it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from shared.config import EndpointConfig

if TYPE_CHECKING:  # the pass-through imports this module and must not load Semantic Kernel
    from semantic_kernel.connectors.ai.chat_completion_client_base import ChatCompletionClientBase

    from shared.wire import ModelWire


@dataclass(frozen=True)
class Endpoint:
    config: EndpointConfig
    service: ChatCompletionClientBase
    # The pass-through's own client for the endpoint (shared/wire.py): same auth and pool limits
    # as the SDK client the service holds, without the SDK on the request path.
    wire: ModelWire

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def upstream_model(self) -> str:
        """What this endpoint is asked for: its deployment (Azure) or its model (OpenAI)."""
        return self.config.deployment if self.config.kind == "azure_openai" else self.config.model


def embedding_endpoint_name(name: str) -> str:
    """The name an endpoint's embedding deployment has in the pool: a breaker apart from the chat's."""
    return f"{name}/embeddings"


def embedding_endpoint(endpoint: Endpoint) -> Endpoint:
    """The endpoint as its embedding deployment, over the same clients (the wire names the
    deployment from the body's model)."""
    deployment = endpoint.config.embedding_deployment or ""
    config = endpoint.config.model_copy(update={"name": embedding_endpoint_name(endpoint.name),
                                                "deployment": deployment, "model": deployment})
    return Endpoint(config=config, service=endpoint.service, wire=endpoint.wire)
