"""The request's texts as the guard stage reads them, and masks them before they go upstream (`redact_input`).

Each operation hands the exchange a view of its own request: the native messages, the summarize
text, an OpenAI chat or Responses body (whose string or text-part contents are changed in place,
so the model call, the cache key and the semantic cache's embedding all see the masked text), or
embedding inputs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from shared.core.models import ChatMessage

# Roles whose text is screened for injection (what users and tools bring); system and developer
# messages are the tenant's own. Assistant turns are neither screened nor trusted: only masked.
SCREENED_ROLES = frozenset({"user", "tool", "function"})
TENANT_ROLES = frozenset({"system", "developer"})


class Prompt(Protocol):
    """What the guard stage needs of a request."""

    @property
    def injection(self) -> bool:
        """Whether the texts are screened for injection (embeddings: only for harm)."""

    @property
    def answers_in_text(self) -> bool:
        """Whether the answer is text to redact (embeddings: vectors)."""

    def texts(self) -> list[tuple[str, str]]:
        """(role, text) of every screened text, in order."""

    def rewrite(self, change: Callable[[str], str]) -> None:
        """Every text that is not the tenant's own, changed (masked) before it goes upstream."""


@dataclass
class MessagesPrompt:
    """The native chat's messages: the model call reads `messages` when it starts."""

    messages: list[ChatMessage]
    injection: bool = True
    answers_in_text: bool = True

    def texts(self) -> list[tuple[str, str]]:
        return [(m.role, m.content) for m in self.messages if m.role in SCREENED_ROLES]

    def rewrite(self, change: Callable[[str], str]) -> None:
        self.messages[:] = [m if m.role in TENANT_ROLES else m.model_copy(update={"content": change(m.content)})
                            for m in self.messages]


@dataclass
class TextPrompt:
    """A text the client sent to be worked on (summarize): the user's."""

    text: str
    injection: bool = True
    answers_in_text: bool = True

    def texts(self) -> list[tuple[str, str]]:
        return [("user", self.text)]

    def rewrite(self, change: Callable[[str], str]) -> None:
        self.text = change(self.text)


Slot = tuple[str, dict[str, Any], str]  # (role, the dict holding a text, its key)


class SlotPrompt:
    """A JSON body whose texts sit in slots: screened by role, changed in place (so the model call,
    the cache key and the semantic cache's embedding all see the masked text)."""

    injection: bool = True
    answers_in_text: bool = True

    def texts(self) -> list[tuple[str, str]]:
        return [(role, holder[key]) for role, holder, key in self.slots() if role in SCREENED_ROLES]

    def rewrite(self, change: Callable[[str], str]) -> None:
        for role, holder, key in self.slots():
            if role not in TENANT_ROLES:
                holder[key] = change(holder[key])

    def slots(self) -> list[Slot]:
        """Every text of the body, with the role it speaks for."""
        raise NotImplementedError


@dataclass
class BodyPrompt(SlotPrompt):
    """An OpenAI chat body's messages: string contents and text parts."""

    body: dict[str, Any]

    def slots(self) -> list[Slot]:
        slots: list[Slot] = []
        for message in self.body.get("messages") or []:
            if isinstance(message, dict):
                slots += _content(str(message.get("role")), message, "content", {"text"})
        return slots


@dataclass
class ResponsesPrompt(SlotPrompt):
    """A Responses API body: `input` as a string (the user's), or its items: messages (string
    content or input_text/output_text parts) and function_call_output outputs (the tool's).
    `instructions` is the tenant's own, like system and developer messages: never screened or masked."""

    body: dict[str, Any]

    def slots(self) -> list[Slot]:
        value = self.body.get("input")
        if isinstance(value, str):
            return [("user", self.body, "input")]
        slots: list[Slot] = []
        for role, item, key in _items(value):
            slots += _content(role, item, key, {"input_text", "output_text"})
        return slots

    def messages(self) -> list[dict[str, Any]]:
        """The instructions and input as OpenAI chat messages (role and text), as the route scorer reads them."""
        instructions = self.body.get("instructions")
        messages = [{"role": "system", "content": instructions}] if isinstance(instructions, str) else []
        value = self.body.get("input")
        if isinstance(value, str):
            return [*messages, {"role": "user", "content": value}]
        for role, item, key in _items(value):
            text = "\n".join(holder[k] for _, holder, k in _content(role, item, key, {"input_text", "output_text"}))
            messages.append({"role": "system" if role in TENANT_ROLES else role, "content": text})
        return messages


def _items(value: object) -> list[Slot]:
    """The input items that carry text: (role, the item, the key of its content)."""
    found: list[Slot] = []
    for item in value if isinstance(value, list) else []:
        if not isinstance(item, dict):
            continue
        kind = item.get("type", "message")
        if kind == "message" and "role" in item:
            found.append((str(item["role"]), item, "content"))
        elif kind == "function_call_output":
            found.append(("tool", item, "output"))
    return found


def _content(role: str, holder: dict[str, Any], key: str, text_parts: set[str]) -> list[Slot]:
    """A content as slots: itself when a string, else its text parts (of the types named)."""
    content = holder.get(key)
    if isinstance(content, str):
        return [(role, holder, key)]
    if isinstance(content, list):
        return [(role, part, "text") for part in content if isinstance(part, dict)
                and part.get("type") in text_parts and isinstance(part.get("text"), str)]
    return []


@dataclass
class EmbeddingPrompt:
    """Embedding inputs: screened only for harm categories, never masked (a vector is not redacted)."""

    body: dict[str, Any]
    injection: bool = False
    answers_in_text: bool = False

    def texts(self) -> list[tuple[str, str]]:
        value = self.body.get("input")
        values = value if isinstance(value, list) else [value]
        return [("user", v) for v in values if isinstance(v, str)]

    def rewrite(self, change: Callable[[str], str]) -> None:
        return None
