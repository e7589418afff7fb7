"""OpenAI's error shape: one row per error type, the field at fault named, a provider's refusal cleaned."""

from __future__ import annotations

import pytest
from openai.types import ErrorObject

import shared.pipeline.gateway  # noqa: F401  StreamInterrupted is one of the tree's types
from shared.api.openai_errors import OPENAI_ERRORS, openai_error
from shared.core.errors import (
    AppError,
    BudgetBusy,
    BudgetExhausted,
    ContextLengthExceeded,
    ModelNotFound,
    ProviderError,
    RateLimited,
    Unauthorized,
    UpstreamRefused,
    UpstreamThrottled,
    ValidationFailed,
)
from shared.upstream.failures import provider_error

HIDDEN = {"primary", "chat-prod-eu", "aoai-prod-westeu.openai.azure.com", "aoai-prod-westeu"}


def _subclasses(cls: type[AppError]) -> list[type[AppError]]:
    return [cls, *(sub for direct in cls.__subclasses__() for sub in _subclasses(direct))]


def test_every_error_type_of_the_tree_has_its_row() -> None:
    missing = {c.__name__ for c in _subclasses(AppError) if c.type_slug not in OPENAI_ERRORS}
    assert missing == set()


@pytest.mark.parametrize(("err", "kind", "param", "code"), [
    (ValidationFailed("bad", [{"field": "messages.0.role", "message": "required"}]), "invalid_request_error",
     "messages.0.role", "invalid_value"),
    (ContextLengthExceeded("too long", param="messages"), "invalid_request_error", "messages",
     "context_length_exceeded"),
    (ModelNotFound("no such model"), "invalid_request_error", "model", "model_not_found"),
    (Unauthorized("no key"), "invalid_request_error", None, "invalid_api_key"),
    (RateLimited("slow down", retry_after_s=3), "rate_limit_error", None, "rate_limit_exceeded"),
    (BudgetBusy("busy", retry_after_s=3), "rate_limit_error", None, "rate_limit_exceeded"),
    (UpstreamThrottled("throttled", retry_after_s=3), "rate_limit_error", None, "rate_limit_exceeded"),
    (BudgetExhausted("spent", retry_after_s=3), "insufficient_quota", None, "insufficient_quota"),
    (AppError("boom"), "server_error", None, "internal_error"),
])
def test_each_error_has_openai_s_members_and_the_code_clients_branch_on(err: AppError, kind: str,
                                                                         param: str | None, code: str) -> None:
    body = openai_error(err)
    assert body == {"error": {"message": err.detail, "type": kind, "param": param, "code": code}}
    ErrorObject.model_validate(body["error"], strict=True)


def test_a_provider_refusal_speaks_in_the_provider_s_words_the_native_detail_stays_generic() -> None:
    refused = UpstreamRefused("generic", provider=ProviderError("Invalid 'tools[0].name'.", "tools[0].name",
                                                                "invalid_value"))
    assert openai_error(refused)["error"] == {"message": "Invalid 'tools[0].name'.", "type": "invalid_request_error",
                                              "param": "tools[0].name", "code": "invalid_value"}
    assert refused.detail == "generic"
    assert openai_error(UpstreamRefused("generic"))["error"]["message"] == "generic"


LEAKY = [
    "The API deployment chat-prod-eu does not exist on https://aoai-prod-westeu.openai.azure.com/openai.",
    "Incorrect API key provided: sk-proj-AbC123xyz987QWE. You can find your API key at platform.openai.com.",
    "Access denied for key 0123456789abcdef0123456789abcdef on aoai-prod-westeu.",
    "Key ab12***********yz89 was rejected by PRIMARY for /subscriptions/0000-1111/resourceGroups/rg.",
]
SECRETS = ["chat-prod-eu", "aoai-prod-westeu", "sk-proj", "0123456789abcdef", "ab12", "yz89", "primary",
           "subscriptions", "0000-1111", "platform.openai.com", "https://"]


@pytest.mark.parametrize("message", LEAKY)
def test_a_provider_message_loses_our_deployment_hosts_and_anything_shaped_like_a_key(message: str) -> None:
    cleaned = provider_error({"message": message, "param": "messages", "code": "invalid_value"}, 400, HIDDEN)
    assert cleaned is not None and "[redacted]" in cleaned.message
    assert not [s for s in SECRETS if s.lower() in cleaned.message.lower()], cleaned.message
    assert (cleaned.param, cleaned.code) == ("messages", "invalid_value")


def test_a_param_or_code_naming_our_deployment_or_not_an_identifier_is_dropped() -> None:
    cleaned = provider_error({"message": "No.", "param": "chat-prod-eu", "code": "bad code with spaces"}, 400,
                             HIDDEN)
    assert cleaned == ProviderError("No.", None, None)


def test_only_a_400_with_a_message_is_passed_on() -> None:
    assert provider_error({"message": "Not found", "code": "DeploymentNotFound"}, 404, HIDDEN) is None
    assert provider_error({"code": "x"}, 400, HIDDEN) is None
    assert provider_error(None, 400, HIDDEN) is None
    long = provider_error({"message": "why " * 1000}, 400, HIDDEN)
    assert long is not None and len(long.message) == 1000
