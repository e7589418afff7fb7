"""Which tools a simulated model calls: forced by tool_choice, or named by the user's last message."""

from __future__ import annotations

import re

from tools.simulator.schemas import AllowedToolsChoice, ChatRequest, FunctionDefinition, NamedToolChoice

# Words of a tool's description too common to mean the user asked for that tool.
_COMMON = frozenset({
    "about", "after", "also", "another", "based", "been", "before", "being", "call", "calls", "could",
    "current", "does", "each", "either", "from", "function", "functions", "given", "have", "into", "just",
    "like", "make", "many", "more", "most", "much", "must", "only", "other", "over", "provide", "provides",
    "returns", "return", "same", "should", "some", "such", "than", "that", "their", "them", "then", "there",
    "these", "they", "this", "those", "tool", "tools", "under", "used", "uses", "using", "value", "values",
    "very", "what", "when", "where", "which", "while", "will", "with", "would", "your",
})
_WORD = re.compile(r"[a-z0-9]+")


class ToolChoiceError(ValueError):
    """A tool_choice the API refuses (400); the message names the field."""


def chosen_tools(request: ChatRequest) -> list[FunctionDefinition]:
    """The functions the model calls this turn, in the order of `tools`; empty for a text answer.

    Forced (`required`, a named function, allowed_tools in mode required): always a call. `auto`
    (the default with tools): a call only when the last message is the user's and names a tool or
    words of its description, so that after a tool result the model answers in text.
    `parallel_tool_calls: false` keeps only the first.
    """
    functions = [tool.function for tool in request.tools or []]
    choice = request.tool_choice or "auto"
    if choice != "none" and not functions:
        if request.tool_choice is not None:
            raise ToolChoiceError("tool_choice: only allowed when tools are specified")
        return []
    if choice == "none":
        return []
    if isinstance(choice, NamedToolChoice):
        return [_find(functions, choice.function.name, "tool_choice.function.name")]
    mode = choice if isinstance(choice, str) else choice.allowed_tools.mode
    if isinstance(choice, AllowedToolsChoice):
        field = "tool_choice.allowed_tools.tools"
        allowed = [_find(functions, tool.function.name, field) for tool in choice.allowed_tools.tools]
        functions = [function for function in functions if function in allowed]
    last = request.messages[-1]
    named = [f for f in functions if _is_named(f, last.text)] if last.role == "user" else []
    if mode == "required" and not named:
        named = functions[:1]
    return named[:1] if request.parallel_tool_calls is False else named


def _find(functions: list[FunctionDefinition], name: str, field: str) -> FunctionDefinition:
    for function in functions:
        if function.name == name:
            return function
    raise ToolChoiceError(f"{field}: no function named {name!r} in tools")


def _is_named(function: FunctionDefinition, text: str) -> bool:
    words = {_stem(word) for word in _WORD.findall(text.lower())}
    spaced = re.sub(r"[_\-]+", " ", function.name).lower()
    if function.name.lower() in text.lower() or spaced in text.lower():
        return True
    described = _WORD.findall((function.description or "").lower())
    purpose = {_stem(word) for word in described if len(word) >= 4 and word not in _COMMON}
    return bool(purpose & words)


def _stem(word: str) -> str:
    # Enough English to match "weather" with "weathers" and "multiply" with "multiplies".
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith("s") and not word.endswith("ss") and len(word) > 3:
        return word[:-1]
    return word
