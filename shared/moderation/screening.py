"""Input screening, in the order of docs/safety.md: the offline injection detector, then Azure AI
Content Safety where configured (Prompt Shields, harm categories). The verdict is in Azure OpenAI's
`content_filter_result` shape: what was detected (kinds, rule names, severities), never the text."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from shared.core.errors import ContentFiltered, SafetyUnavailable
from shared.moderation.service import SafetyServiceError
from shared.observability import safety as telemetry
from shared.safety.detector import detect_injection

if TYPE_CHECKING:
    from shared.core.safety_policy import SafetyPolicy
    from shared.moderation.contentsafety import ContentSafety

DOCUMENT_ROLES = frozenset({"tool", "function"})  # retrieved or tool text: an attack there is indirect
# Azure OpenAI reports a severity by name; the 0-7 levels map onto its four.
SEVERITY_NAMES = ((6, "high"), (4, "medium"), (2, "low"), (0, "safe"))


@dataclass
class Verdict:
    """What screening found: `result` per kind (content_filter_result), and the services it could not ask."""

    result: dict[str, dict[str, Any]] = field(default_factory=dict)
    unchecked: list[str] = field(default_factory=list)

    @property
    def blocked(self) -> list[str]:
        return [kind for kind, found in self.result.items() if found.get("filtered")]

    @property
    def flagged(self) -> list[str]:
        return [kind for kind, found in self.result.items() if found.get("detected") or found.get("filtered")]

    def header(self) -> str | None:
        """`x-aigw-safety`: what was detected and let through, and what could not be checked."""
        parts = [_label(kind, found) for kind, found in self.result.items() if found.get("detected")]
        parts += [f"unchecked={service}" for service in self.unchecked]
        return ", ".join(parts) or None


class Screening:
    """The layers of input screening; `service` is None where CONTENT_SAFETY_ENDPOINT is unset."""

    def __init__(self, service: ContentSafety | None) -> None:
        self.service = service

    async def screen(self, tenant: str, policy: SafetyPolicy, texts: list[tuple[str, str]], *,
                     injection: bool) -> Verdict:
        """The verdict on a request's texts; ContentFiltered when the policy blocks, SafetyUnavailable
        when a service failed under `on_error: closed`."""
        verdict = Verdict()
        shield = injection and policy.prompt_shield != "off"
        block = policy.prompt_shield == "block"
        if shield:
            for role, text in texts:
                found = detect_injection(text)
                if found is not None:
                    kind = "indirect_attack" if role in DOCUMENT_ROLES else "jailbreak"
                    verdict.result.setdefault(kind, {"filtered": block, "detected": True, "source": "builtin",
                                                     "family": found.family, "rule": found.rule})
        if not verdict.blocked and self.service is not None:
            await self._ask_service(self.service, tenant, policy, texts, verdict, shield=shield, block=block)
        if verdict.blocked:
            telemetry.blocked(tenant, verdict.blocked)
            raise ContentFiltered(_refusal(verdict.blocked), verdict.result)
        if verdict.flagged:
            telemetry.flagged(verdict.flagged)
        return verdict

    async def _ask_service(self, service: ContentSafety, tenant: str, policy: SafetyPolicy,
                           texts: list[tuple[str, str]], verdict: Verdict, *, shield: bool, block: bool) -> None:
        thresholds = policy.harm.active()
        calls: list[Any] = []
        shield = shield and any(text.strip() for _, text in texts)  # nothing a user or tool wrote: nothing to ask
        if shield:
            calls.append(service.shield([t for r, t in texts if r not in DOCUMENT_ROLES],
                                        [t for r, t in texts if r in DOCUMENT_ROLES]))
        if thresholds:
            calls.append(service.harm([t for _, t in texts], list(thresholds)))
        if not calls:
            return
        try:
            answers = await asyncio.gather(*calls)
        except SafetyServiceError:
            if policy.on_error == "closed":
                raise SafetyUnavailable("The content-safety service is unavailable; the request was not "
                                        "screened and this tenant's policy refuses unscreened requests. "
                                        "Retry shortly.") from None
            verdict.unchecked.append("content_safety")
            telemetry.unchecked(tenant, "content_safety")
            return
        if shield:
            found = answers.pop(0)
            for kind, attack in (("jailbreak", found.user_attack), ("indirect_attack", found.document_attack)):
                if attack and kind not in verdict.result:
                    verdict.result[kind] = {"filtered": block, "detected": True, "source": "prompt_shields"}
        if thresholds:
            severities: dict[str, int] = answers.pop(0)
            for category, threshold in thresholds.items():
                severity = severities.get(category, 0)
                verdict.result[category] = {"filtered": severity >= threshold, "severity": _severity_name(severity),
                                            "level": severity}


def _severity_name(level: int) -> str:
    return next(name for floor, name in SEVERITY_NAMES if level >= floor)


def _label(kind: str, found: dict[str, Any]) -> str:
    detail = found.get("family") or found.get("source") or found.get("severity")
    return f"{kind}={detail}" if detail else kind


def _refusal(kinds: list[str]) -> str:
    return (f"The request was blocked by this tenant's content-safety policy (detected: {', '.join(kinds)}). "
            "Rephrase the request; see content_filter_result for what was detected.")
