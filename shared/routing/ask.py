"""The user's ask inside a message an application built around it: retrieved documents set apart."""

from __future__ import annotations

import re

# Retrieval-augmented apps put what they retrieved into the user message in a few common layouts;
# the documents are context the app chose, not what the user asks, and must not make an easy
# question look long, numeric or analytical:
# - in tags (Anthropic's long-context layout, many hand-written prompts): <documents>...</documents>;
_TAGGED = re.compile(r"<(documents?|context|contexts|search_results|sources|retrieved_context|knowledge|passages?)"
                     r"\b[^>]*>.*?</\1\s*>", re.DOTALL | re.IGNORECASE)
# - between lines of dashes (LlamaIndex's default text_qa_template);
_FENCED = re.compile(r"^[-=]{10,}[ \t]*\n.*?^[-=]{10,}[ \t]*$", re.DOTALL | re.MULTILINE)
# - after a label, the question under another (LangChain's rag-prompt: "Question: ... Context: ... Answer:").
_LINE_START = re.IGNORECASE | re.MULTILINE
_ASK_LABEL = re.compile(r"^[ \t]*(?:question|query|user question|user query)[ \t]*:[ \t]*", _LINE_START)
_OTHER_LABEL = re.compile(r"^[ \t]*(?:context|answer|helpful answer|documents?|sources?)[ \t]*:", _LINE_START)
# Cheap tests first: most messages carry none of these, and the scorer has 1 ms for everything.
_MARKERS = ("<", "----------", "==========", ":")


def split_ask(text: str) -> tuple[str, str]:
    """The message's ask, and the documents and template lines around it ("" when there are none).
    A message with none of the layouts above is all ask: a document the user pasted is part of the ask."""
    if not any(marker in text for marker in _MARKERS):
        return text, ""
    context: list[str] = []

    def set_apart(match: re.Match[str]) -> str:
        context.append(match.group(0))
        return ""

    rest = _FENCED.sub(set_apart, _TAGGED.sub(set_apart, text))
    label = _ASK_LABEL.search(rest)  # the first: documents after it may hold questions of their own
    if label:
        end = _OTHER_LABEL.search(rest, label.end())
        context.append(rest[:label.start()] + (rest[end.start():] if end else ""))
        rest = rest[label.end():end.start() if end else len(rest)]
    return rest.strip(), "\n".join(part for part in context if part.strip())


def own_text(role: str, text: str) -> str:
    """What a message says of its own: a user message's ask, the documents an application set into it
    left out; any other message whole. The scorer and the second opinion read the conversation so."""
    return split_ask(text)[0] if role == "user" else text
