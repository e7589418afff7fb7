"""Issue 10 acceptance: real clients of the gateway. Semantic Kernel (an injected openai client, a
plugin, FunctionChoiceBehavior.Auto()): the tool is really invoked and its result is in the answer.
LangChain's ChatOpenAI: invoke, stream, bind_tools and with_structured_output(method="json_schema").
Each test's tenant is charged what the simulators billed."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Annotated, Any

import openai
import pytest
from pydantic import BaseModel

from tests.e2e.oai_stack import FID_KEY, Ledger

if TYPE_CHECKING:
    from langchain_openai import ChatOpenAI

# Semantic Kernel and LangChain are imported by the tests that use them, not at collection: every
# test worker collects this module, and only one runs it (two seconds of CPU for each of the others).
pytestmark = pytest.mark.e2e


def harbour_plugin() -> Any:
    """A Semantic Kernel plugin with one function, recording the cities it was asked about."""
    from semantic_kernel.functions import kernel_function

    class HarbourPlugin:
        def __init__(self) -> None:
            self.calls: list[str] = []

        @kernel_function(name="get_weather", description="Current weather for a city")
        def get_weather(self, city: Annotated[str, "the city"]) -> str:
            self.calls.append(city)
            return "sleet and four degrees"

    return HarbourPlugin()


@pytest.fixture
async def sk_client(oai_app: str) -> AsyncIterator[openai.AsyncOpenAI]:
    async with openai.AsyncOpenAI(base_url=f"{oai_app}/api/v1", api_key=FID_KEY, max_retries=0) as client:
        yield client


@pytest.mark.parametrize("streamed", [False, True])
async def test_semantic_kernel_auto_function_calling_through_the_gateway(
        sk_client: openai.AsyncOpenAI, ledger: Ledger, streamed: bool) -> None:
    from semantic_kernel import Kernel
    from semantic_kernel.connectors.ai.function_choice_behavior import FunctionChoiceBehavior
    from semantic_kernel.connectors.ai.open_ai import (
        OpenAIChatCompletion,
        OpenAIChatPromptExecutionSettings,
    )
    from semantic_kernel.contents import ChatHistory

    kernel = Kernel()
    service = OpenAIChatCompletion(ai_model_id="gpt-4o-mini", async_client=sk_client, service_id="gw")
    kernel.add_service(service)
    plugin = harbour_plugin()
    kernel.add_plugin(plugin, plugin_name="harbour")
    settings = OpenAIChatPromptExecutionSettings(service_id="gw", max_tokens=200,
                                                 function_choice_behavior=FunctionChoiceBehavior.Auto())
    history = ChatHistory()
    history.add_user_message("What is the weather in Oslo today?")
    if streamed:
        parts = [chunk async for chunks in service.get_streaming_chat_message_contents(history, settings,
                                                                                        kernel=kernel)
                 for chunk in chunks]
        text = "".join(str(p.content or "") for p in parts)
    else:
        answer = await service.get_chat_message_content(history, settings, kernel=kernel)
        assert answer is not None
        text = str(answer.content)
    assert plugin.calls, "the plugin's function was invoked"
    assert "sleet and four degrees" in text, "the tool's result is in the answer"


@pytest.fixture
def chat(oai_app: str) -> ChatOpenAI:
    from langchain_openai import ChatOpenAI

    return ChatOpenAI(model="gpt-4o-mini", base_url=f"{oai_app}/api/v1", api_key=FID_KEY, max_retries=0,
                      max_completion_tokens=60)


class Tide(BaseModel):
    harbour: str
    metres: float


def test_langchain_invoke_and_stream(chat: ChatOpenAI, ledger: Ledger) -> None:
    assert chat.invoke("Describe the north pier").content
    # Long enough to pass the default policy's redaction window (docs/safety.md: a stream's first
    # text is held back up to 256 characters), so the answer shows whether it streams: this prompt's
    # simulated answer is 379 characters.
    longer = chat.bind(max_completion_tokens=200)
    pieces = [chunk.content for chunk in longer.stream("Describe the north pier at dawn in detail")]
    assert len([p for p in pieces if p]) > 1, "streamed in pieces"


def test_langchain_bind_tools_returns_tool_calls(chat: ChatOpenAI, ledger: Ledger) -> None:
    from langchain_core.tools import tool

    @tool
    def get_weather(city: str) -> str:
        """Current weather for a city."""
        return "sleet"

    message = chat.bind_tools([get_weather]).invoke("What is the weather in Oslo?")
    assert [call["name"] for call in message.tool_calls] == ["get_weather"]
    assert isinstance(message.tool_calls[0]["args"].get("city"), str)


def test_langchain_structured_output_with_json_schema(chat: ChatOpenAI, ledger: Ledger) -> None:
    tide = chat.with_structured_output(Tide, method="json_schema").invoke("The tide at Bergen harbour")
    assert isinstance(tide, Tide)
