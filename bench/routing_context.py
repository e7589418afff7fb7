"""The realistic routing set: each bare request of requests.jsonl sent as the application that would
send it sends it, with its system prompt, retrieved passages and earlier turns.

Deterministic: which application, which passages and which earlier turns a request gets follow from
its id alone (bench/data/routing/README.md, "The realistic set"). Labels, reasons, output lengths,
tools and response_format are the bare request's: context changes what is billed, not how hard the ask is.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

CONTEXT = Path(__file__).resolve().parent / "data" / "routing" / "context"


@dataclass(frozen=True)
class App:
    """An application sending one category's requests: its system prompt and how it uses retrieval."""

    name: str
    system: tuple[str, ...]  # files joined into the system prompt
    passages: int = 0  # retrieved passages per request (0: no retrieval)
    placement: str = "system"  # where they go: "system", "xml" (user, in tags) or "query" (user, LlamaIndex)
    rag_share: int = 1  # 1 in rag_share requests retrieves (1: every request)


# Two applications per category, one with a long prompt and one with a short one; a request goes to
# one of them by its id's digest. Support bots and extraction pipelines retrieve on every request
# and put what they find in the system message (as Azure OpenAI "On your data" does); analysis
# assistants retrieve for half their questions and put the documents in the user message, in the
# two shapes common frameworks use.
APPS: dict[str, tuple[App, ...]] = {
    "support": (App("support-web", ("system-support-web.md",), passages=3),
                App("support-inapp", ("system-support-inapp.md",), passages=2)),
    "coding": (App("coding-ide", ("system-coding-ide.md", "ide-open-file.md")),
               App("coding-chat", ("system-coding-chat.md",))),
    "extraction": (App("extraction-pipeline", ("system-extraction-pipeline.md",), passages=2),
                   App("extraction-short", ("system-extraction-short.md",))),
    "analysis": (App("analysis-research", ("system-analysis-research.md",), passages=3, placement="xml",
                     rag_share=2),
                 App("analysis-bi", ("system-analysis-bi.md",), passages=2, placement="query", rag_share=2)),
    "writing": (App("writing-suite", ("system-writing-suite.md",)),),
    "chitchat": (App("chitchat-consumer", ("system-chitchat-consumer.md",)),
                 App("chitchat-widget", ("system-chitchat-widget.md",))),
}
# Chat applications resend the whole conversation each turn: one single-turn request in HISTORY_SHARE
# of these categories gets an earlier exchange in the same application, on another topic, before its ask.
HISTORY_SHARE = 3


def _pick(request_id: str, salt: str, n: int) -> int:
    """A stable choice among n, from the request's id (sha256, so it ignores the id's numbering)."""
    return int(hashlib.sha256(f"{salt}:{request_id}".encode()).hexdigest(), 16) % n


@cache
def _text(name: str) -> str:
    return (CONTEXT / name).read_text(encoding="utf-8")


@cache
def _passages(category: str) -> tuple[str, ...]:
    path = CONTEXT / f"passages-{category}.md"
    return tuple(p.strip() for p in path.read_text(encoding="utf-8").split("\n---\n")) if path.exists() else ()


@cache
def _histories() -> dict[str, list[list[list[str]]]]:
    loaded: dict[str, list[list[list[str]]]] = json.loads(_text("history.json"))
    return loaded


def app_for(request_id: str, category: str) -> App:
    """The application that sends this request."""
    apps = APPS[category]
    return apps[_pick(request_id, "app", len(apps))]


def retrieved(request_id: str, category: str, app: App) -> list[str]:
    """The passages the application's retrieval returns for this request (none if it does not retrieve)."""
    pool = _passages(category)
    if not app.passages or not pool or _pick(request_id, "rag", app.rag_share):
        return []
    first = _pick(request_id, "passage", len(pool))
    return [pool[(first + k) % len(pool)] for k in range(min(app.passages, len(pool)))]


def _with_documents(ask: str, passages: Sequence[str], placement: str) -> str:
    """The user message as the framework sends it: the documents, then the ask."""
    if placement == "xml":  # Anthropic's long-context layout: documents first, in tags, the question last
        docs = "\n".join(f'<document index="{i}">\n<document_content>\n{p}\n</document_content>\n</document>'
                         for i, p in enumerate(passages, 1))
        return f"<documents>\n{docs}\n</documents>\n\n{ask}"
    # LlamaIndex's default text_qa_template.
    context = "\n\n".join(passages)
    return (f"Context information is below.\n---------------------\n{context}\n---------------------\n"
            f"Given the context information and not prior knowledge, answer the query.\nQuery: {ask}\nAnswer: ")


def realistic_messages(request_id: str, category: str, messages: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The bare request's messages as its application sends them."""
    app = app_for(request_id, category)
    passages = retrieved(request_id, category, app)
    system = "".join(_text(name) for name in app.system)
    if passages and app.placement == "system":
        system += "\n\n".join(passages) + "\n"
    # The bare set's one-line support prompt is that app's prompt, shortened: the app's own replaces it.
    turns = [dict(m) for m in messages if m.get("role") != "system"]
    history = _histories().get(category, [])
    if history and len(turns) == 1 and not _pick(request_id, "history", HISTORY_SHARE):
        earlier = history[_pick(request_id, "which-history", len(history))]
        turns = [{"role": role, "content": text} for role, text in earlier] + turns
    if passages and app.placement != "system":
        last = turns[-1]
        turns[-1] = {**last, "content": _with_documents(str(last.get("content", "")), passages, app.placement)}
    return [{"role": "system", "content": system.rstrip("\n")}, *turns]
