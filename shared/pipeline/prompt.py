"""The request's texts as the guard stage reads them, and masks them before they go upstream (`redact_input`).

Each operation hands the exchange a view of its own request: the native messages, the summarize
text, an OpenAI body (whose string or text-part contents are changed in place, so the model call,
the cache key and the semantic cache's embedding all see the masked text), or embedding inputs.
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


@dataclass
class BodyPrompt:
    """An OpenAI chat body's messages: string contents and text parts, changed in place."""

    body: dict[str, Any]
    injection: bool = True
    answers_in_text: bool = True

    def texts(self) -> list[tuple[str, str]]:
        return [(role, text) for role, holder, key in self._slots() if role in SCREENED_ROLES
                for text in (holder[key],)]

    def rewrite(self, change: Callable[[str], str]) -> None:
        for role, holder, key in self._slots():
            if role not in TENANT_ROLES:
                holder[key] = change(holder[key])

    def _slots(self) -> list[tuple[str, dict[str, Any], str]]:
        """(role, the dict holding a text, its key) for every text of the messages."""
        slots: list[tuple[str, dict[str, Any], str]] = []
        for message in self.body.get("messages") or []:
            if not isinstance(message, dict):
                continue
            role, content = str(message.get("role")), message.get("content")
            if isinstance(content, str):
                slots.append((role, message, "content"))
            elif isinstance(content, list):
                slots += [(role, part, "text") for part in content if isinstance(part, dict)
                          and part.get("type") == "text" and isinstance(part.get("text"), str)]
        return slots


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
