"""The model groups of AI_ENDPOINTS behind the one resilience policy (the Semantic Kernel engine over
them is shared/upstream/engine.py, loaded on first use)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from shared.upstream.endpoints import Endpoint

if TYPE_CHECKING:
    from shared.upstream.resilience.policy import ResiliencePolicy

log = logging.getLogger(__name__)


class ModelGroups:
    """The endpoints of each model, best priority first, and the policy every call goes through."""

    def __init__(self, endpoints: list[Endpoint], policy: ResiliencePolicy) -> None:
        if not endpoints:
            raise ValueError("no model endpoint is configured")
        self.policy = policy
        ordered = sorted(endpoints, key=lambda e: e.config.priority)
        self._groups: dict[str, list[Endpoint]] = {}
        for endpoint in ordered:
            self._groups.setdefault(endpoint.config.model, []).append(endpoint)
        # Native endpoints name no model: they use the model of the best-priority endpoint.
        self.default_model = ordered[0].config.model

    def models(self) -> list[str]:
        return list(self._groups)

    def endpoints(self) -> list[Endpoint]:
        return [e for group in self._groups.values() for e in group]

    def group(self, model: str) -> list[Endpoint]:
        return list(self._groups[model])

    def time_limit_s(self, model: str, work_tokens: int) -> float:
        """The longest a non-streamed call of `work_tokens` (cap x n) may take on this model's
        endpoints (the slowest one's limit: docs/accounting.md, "Time limits")."""
        return self.policy.call_limit_s(self._groups[model], work_tokens) or 0.0

    def long_after_s(self, model: str, work_tokens: int) -> float | None:
        """For a non-streamed call that may outlast the request deadline, the deadline: past it the
        call counts as long (bounded per tenant; its lease is renewed). None for any other call."""
        deadline = self.policy.settings.deadline_s
        return deadline if self.time_limit_s(model, work_tokens) > deadline else None

    def resolve_model(self, requested: str | None) -> str | None:
        """The model group a requested model, deployment or endpoint name refers to."""
        if not requested:
            return self.default_model
        for model, group in self._groups.items():
            if requested == model or any(requested in (e.config.deployment, e.name) for e in group):
                return model
        return None
