"""What a Responses API request may ask (issue 24): each refusal a 400 naming the field, by tenant policy."""

from __future__ import annotations

from typing import Any

import pytest

from shared.core.errors import BadRequest, ResponseNotFound
from shared.core.responses_policy import ResponsesPolicy
from shared.core.settings import TenantConfig
from shared.pipeline.responses_checks import check_request, response_id

BASE: dict[str, Any] = {"model": "gpt-4o-mini", "input": "hi"}


@pytest.mark.parametrize(("extra", "param"), [
    ({"background": True}, "background"),
    ({"conversation": "conv_1"}, "conversation"),
    ({"conversation": {"id": "conv_1"}}, "conversation"),
    ({"prompt": {"id": "pmpt_1"}}, "prompt"),
    ({"tools": [{"type": "function", "name": "f"}, {"type": "web_search_preview"}]}, "tools[1].type"),
    ({"tools": [{"type": "code_interpreter", "container": {"type": "auto"}}]}, "tools[0].type"),
    ({"tools": [{"type": "mcp", "server_label": "x"}]}, "tools[0].type"),
    ({"tools": [{"type": "computer_use_preview"}]}, "tools[0].type"),
    ({"stream": "yes"}, "stream"),
    ({"max_output_tokens": 0}, "max_output_tokens"),
    ({"previous_response_id": 5}, "previous_response_id"),
])
def test_refused_naming_the_field(extra: dict[str, Any], param: str) -> None:
    with pytest.raises(BadRequest) as refused:
        check_request({**BASE, **extra}, ResponsesPolicy())
    assert refused.value.param == param


def test_function_custom_and_allowed_hosted_tools_pass() -> None:
    tools = [{"type": "function", "name": "f"}, {"type": "custom", "name": "g"}, {"type": "web_search_preview"}]
    check_request({**BASE, "tools": tools, "background": False}, ResponsesPolicy(allowed_hosted_tools=("web_search",)))


def test_a_tenant_that_denies_storage_must_say_store_false() -> None:
    deny = TenantConfig.model_validate({"tenant": "t", "keys": [{"id": "k", "sha256": "0" * 64}],
                                        "responses": {"store": "deny"}}).responses
    for body in (BASE, {**BASE, "store": True}):
        with pytest.raises(BadRequest) as refused:
            check_request(body, deny)
        assert refused.value.param == "store"
    check_request({**BASE, "store": False}, deny)


def test_an_id_that_cannot_be_one_is_the_same_404() -> None:
    assert response_id("resp_abc-1") == "resp_abc-1"
    for bad in ("", "../x", "resp 1", "a" * 201, "resp?x"):
        with pytest.raises(ResponseNotFound):
            response_id(bad)
