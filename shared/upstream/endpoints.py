"""A configured model endpoint together with the client that calls it over the OpenAI wire protocol."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from shared.core.settings import EndpointConfig

if TYPE_CHECKING:
    from shared.upstream.wire import ModelWire


@dataclass(frozen=True)
class Endpoint:
    config: EndpointConfig
    # The endpoint's own client (auth, URL, no retries): the pass-through sends through it; the
    # Semantic Kernel services of the native paths have their own SDK clients (shared/upstream/kernel.py).
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
    """The endpoint as its embedding deployment, over the same client."""
    deployment = endpoint.config.embedding_deployment or ""
    config = endpoint.config.model_copy(update={"name": embedding_endpoint_name(endpoint.name),
                                                "deployment": deployment, "model": deployment})
    return Endpoint(config=config, wire=endpoint.wire)
