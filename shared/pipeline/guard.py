"""The guard stage: content safety on every model-bound operation (docs/safety.md).

Before anything is reserved or looked up (a blocked request is neither charged nor cached), the
request's user and tool texts are screened (shared/safety/screening.py) and, under `redact_input`,
masked before they go upstream. Then the model's answer is redacted on its way out
(shared/pipeline/redaction.py), inside the store stage, so the cache keeps what the client received.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from shared.pipeline.redaction import Redactor

if TYPE_CHECKING:
    from shared.moderation.language import Language
    from shared.moderation.screening import Screening
    from shared.pipeline.exchange import Exchange, Next, Reply
    from shared.pipeline.prompt import Prompt

SAFETY_HEADER = "x-aigw-safety"  # what was detected and let through (`annotate`), or left unchecked


class Guard:
    def __init__(self, screening: Screening, language: Language | None) -> None:
        self.screening = screening
        self.language = language

    async def stage(self, ex: Exchange, nxt: Next) -> Reply:
        prompt, policy = ex.prompt, ex.principal.safety
        if prompt is None:
            return await nxt(ex)
        verdict = await self.screening.screen(ex.principal.tenant, policy, prompt.texts(), injection=prompt.injection)
        header = verdict.header()
        if header:
            ex.headers[SAFETY_HEADER] = header
        if policy.redact and prompt.answers_in_text:
            if policy.redact_input:
                await self._mask_input(prompt, Redactor(ex.principal.tenant, policy, self.language))
            ex.source = Redactor(ex.principal.tenant, policy, self.language).source(ex.source)
        return await nxt(ex)

    @staticmethod
    async def _mask_input(prompt: Prompt, redactor: Redactor) -> None:
        """What goes upstream, masked: every text rewrite() would change is redacted first (named
        entities through the service), then the request is rewritten with the results."""
        texts: list[str] = []

        def collect(text: str) -> str:
            texts.append(text)
            return text

        prompt.rewrite(collect)
        masked = {text: await redactor.text(text) for text in dict.fromkeys(texts)}
        prompt.rewrite(lambda text: masked.get(text, text))
        redactor.report()
