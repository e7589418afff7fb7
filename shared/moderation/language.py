"""Azure AI Language's PII recognition (`TextAnalyticsClient.recognize_pii_entities`): named
entities (person, address, ...) replaced by `[REDACTED:<kind>]`, behind the service's breaker and timeout."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import TYPE_CHECKING, Any

from shared.core.safety_policy import LANGUAGE_KINDS
from shared.moderation.service import Guarded, KeyOrIdentity, SafetyServiceError, client_options, pieces

if TYPE_CHECKING:
    from azure.ai.textanalytics.aio import TextAnalyticsClient

    from shared.core.clock import Clock

# The synchronous PII call's limits (API 2023-04-01): 5 documents a request, 5,120 characters each.
MAX_DOCUMENTS = 5
MAX_CHARS = 5_000


class Language:
    def __init__(self, endpoint: str, credentials: KeyOrIdentity, clock: Clock, timeout_s: float) -> None:
        from azure.ai.textanalytics.aio import TextAnalyticsClient  # noqa: PLC0415  only where configured

        self.credentials = credentials
        self.client: TextAnalyticsClient = TextAnalyticsClient(endpoint.rstrip("/"), credentials.credential(),
                                                               **client_options(timeout_s))
        self.guarded = Guarded("language", clock, timeout_s)

    async def redact(self, text: str, kinds: tuple[str, ...]) -> tuple[str, Counter[str]]:
        """`text` with every entity of `kinds` replaced, and the count of each kind replaced."""
        if not text.strip() or not kinds:
            return text, Counter()
        docs = pieces(text, MAX_CHARS)
        batches = [docs[i:i + MAX_DOCUMENTS] for i in range(0, len(docs), MAX_DOCUMENTS)]
        categories = [LANGUAGE_KINDS[k] for k in kinds]
        ours = {v: k for k, v in LANGUAGE_KINDS.items()}

        async def batch(sent: list[str]) -> list[tuple[str, Counter[str]]]:
            async def run() -> list[Any]:
                await self.credentials.refresh()
                return await self.client.recognize_pii_entities(sent, categories_filter=categories,
                                                                string_index_type="UnicodeCodePoint",
                                                                disable_service_logs=True)
            results = await self.guarded.call("recognizePii", run)
            out = []
            for doc, result in zip(sent, results, strict=True):
                if getattr(result, "is_error", False):
                    raise SafetyServiceError("recognizePii: a document failed")
                spans = [(e.offset, e.length, ours[e.category]) for e in result.entities if e.category in ours]
                out.append(_replace(doc, spans))
            return out

        done = [r for found in await asyncio.gather(*(batch(b) for b in batches)) for r in found]
        counts: Counter[str] = Counter()
        for _, found in done:
            counts.update(found)
        return "".join(t for t, _ in done), counts

    async def close(self) -> None:
        await self.client.close()


def _replace(text: str, spans: list[tuple[int, int, str]]) -> tuple[str, Counter[str]]:
    """`text` with each (offset, length, kind) span replaced, from the end so offsets stay true; overlaps skipped."""
    counts: Counter[str] = Counter()
    end = len(text) + 1
    for offset, length, kind in sorted(spans, reverse=True):
        if offset + length > end:
            continue
        text = f"{text[:offset]}[REDACTED:{kind}]{text[offset + length:]}"
        counts[kind] += 1
        end = offset
    return text, counts
