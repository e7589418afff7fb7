"""Azure AI Content Safety: Prompt Shields (REST, api-version 2024-09-01, which the SDK does not cover)
and harm analysis (`ContentSafetyClient.analyze_text`), both through the SDK's one client."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from shared.moderation.service import Guarded, KeyOrIdentity, SafetyServiceError, client_options, pieces

if TYPE_CHECKING:
    from azure.ai.contentsafety.aio import ContentSafetyClient

    from shared.core.clock import Clock

SHIELD_API_VERSION = "2024-09-01"
# The service's limits (docs/safety.md, "What is not caught"): a prompt and the documents together
# up to 10,000 characters, at most 5 documents; text analysis 10,000 characters a call.
SHIELD_MAX_CHARS = 10_000
SHIELD_MAX_DOCUMENTS = 5
ANALYZE_MAX_CHARS = 10_000
# Our category names (TENANTS safety.harm) and the service's.
CATEGORIES = {"hate": "Hate", "sexual": "Sexual", "violence": "Violence", "self_harm": "SelfHarm"}


@dataclass(frozen=True)
class Shield:
    """Prompt Shields' verdict: an attack in the user's prompt, in a document (tool result)."""

    user_attack: bool
    document_attack: bool


class ContentSafety:
    """The two calls the guard makes, each behind the service's breaker and timeout."""

    def __init__(self, endpoint: str, credentials: KeyOrIdentity, clock: Clock, timeout_s: float) -> None:
        from azure.ai.contentsafety.aio import ContentSafetyClient  # noqa: PLC0415  only where configured

        self.credentials = credentials
        self.client: ContentSafetyClient = ContentSafetyClient(endpoint.rstrip("/"), credentials.credential(),
                                                               **client_options(timeout_s))
        self.guarded = Guarded("content_safety", clock, timeout_s)

    async def shield(self, user: list[str], documents: list[str]) -> Shield:
        """`POST /contentsafety/text:shieldPrompt`: the user's texts as the prompt, tool results as documents."""
        from azure.core.rest import HttpRequest  # noqa: PLC0415

        prompt = "\n".join(user)[-SHIELD_MAX_CHARS:]  # the latest text counts most: the end is kept
        room = max(0, SHIELD_MAX_CHARS - len(prompt))
        docs = [d[-room:] if room else "" for d in documents[-SHIELD_MAX_DOCUMENTS:]]
        body = {"userPrompt": prompt, "documents": [d for d in docs if d]}

        async def run() -> Shield:
            await self.credentials.refresh()
            request = HttpRequest("POST", f"/text:shieldPrompt?api-version={SHIELD_API_VERSION}", json=body)
            response = await self.client.send_request(request)
            if response.status_code != 200:
                raise SafetyServiceError(f"shieldPrompt answered {response.status_code}")
            answer: dict[str, Any] = response.json()
            documents_found = any(d.get("attackDetected") for d in answer.get("documentsAnalysis") or [])
            return Shield(bool(answer["userPromptAnalysis"]["attackDetected"]), documents_found)

        return await self.guarded.call("shieldPrompt", run)

    async def harm(self, texts: list[str], categories: list[str]) -> dict[str, int]:
        """The highest severity (0-7) of each category over the texts, each call at most ANALYZE_MAX_CHARS."""
        from azure.ai.contentsafety.models import AnalyzeTextOptions, AnalyzeTextOutputType  # noqa: PLC0415

        wanted = [CATEGORIES[c] for c in categories]
        ours = {v: k for k, v in CATEGORIES.items()}

        async def one(text: str) -> dict[str, int]:
            async def run() -> dict[str, int]:
                await self.credentials.refresh()
                result = await self.client.analyze_text(AnalyzeTextOptions(
                    text=text, categories=wanted, output_type=AnalyzeTextOutputType.EIGHT_SEVERITY_LEVELS))
                named = ((str(getattr(a.category, "value", a.category)), a.severity)
                         for a in result.categories_analysis)
                return {ours[name]: int(severity or 0) for name, severity in named if name in ours}
            return await self.guarded.call("analyzeText", run)

        severities: dict[str, int] = {}
        for found in await asyncio.gather(*(one(p) for p in pieces("\n".join(texts), ANALYZE_MAX_CHARS) if p.strip())):
            for category, severity in found.items():
                severities[category] = max(severity, severities.get(category, 0))
        return severities

    async def close(self) -> None:
        await self.client.close()
