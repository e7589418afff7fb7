"""Model limits on AI_ENDPOINTS entries: declared, else the model family's; tenants' max_request_tokens."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from shared.core.settings import UNKNOWN_MODEL_LIMITS, EndpointConfig, TenantLimits

BASE = {"name": "e", "kind": "openai", "endpoint": "http://x"}


@pytest.mark.parametrize(("model", "limits"), [
    ("gpt-4o-mini", (128_000, 16_384)), ("gpt-4o-2024-08-06", (128_000, 16_384)),
    ("gpt-4.1-mini", (1_047_576, 32_768)), ("GPT-35-Turbo", (16_385, 4_096)), ("o3-mini", (200_000, 100_000)),
    ("llama3", UNKNOWN_MODEL_LIMITS),
])
def test_a_known_family_has_its_limits_and_an_unknown_model_the_small_default(
        model: str, limits: tuple[int, int]) -> None:
    assert EndpointConfig.model_validate({**BASE, "model": model}).limits == limits


def test_declared_limits_win() -> None:
    config = EndpointConfig.model_validate({**BASE, "model": "llama3", "context_window": 32_000,
                                            "max_output_tokens": 8_000})
    assert config.limits == (32_000, 8_000)


def test_an_output_larger_than_the_window_fails_naming_the_endpoint() -> None:
    with pytest.raises(ValidationError, match="endpoint 'e': max_output_tokens is larger than context_window"):
        EndpointConfig.model_validate({**BASE, "model": "gpt-4o", "context_window": 1000})


def test_tenants_may_cap_a_request() -> None:
    assert TenantLimits().max_request_tokens is None
    assert TenantLimits(max_request_tokens=2000).max_request_tokens == 2000
    with pytest.raises(ValidationError):
        TenantLimits(max_request_tokens=0)
