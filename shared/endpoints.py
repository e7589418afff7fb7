"""A configured model endpoint together with the Semantic Kernel service that calls it."""

from __future__ import annotations

from dataclasses import dataclass

from semantic_kernel.connectors.ai.chat_completion_client_base import ChatCompletionClientBase

from shared.config import EndpointConfig


@dataclass(frozen=True)
class Endpoint:
    config: EndpointConfig
    service: ChatCompletionClientBase

    @property
    def name(self) -> str:
        return self.config.name
