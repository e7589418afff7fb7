"""The tenant's content-safety policy (TENANTS `safety`): its defaults, and a bad one refused at start
naming the field; Language kinds refused without LANGUAGE_ENDPOINT; the error shapes of a block."""

from __future__ import annotations

import json
from typing import Any

import pytest

from shared.api.openai_errors import openai_error
from shared.api.problems import problem_body
from shared.core.errors import ConfigError, ContentFiltered
from shared.core.safety_policy import BUILTIN_KINDS, SafetyPolicy
from shared.core.settings import TenantConfig, hash_api_key, load_settings, policy_problems
from shared.safety.redact import KINDS
from tools.appsettings import environment

ENDPOINTS = json.dumps([{"name": "e", "kind": "openai", "endpoint": "http://x", "model": "m"}])


def settings_with(safety: dict[str, Any], **extra: str) -> None:
    tenants = json.dumps([{"tenant": "t1", "keys": [{"id": "k", "sha256": hash_api_key("k")}], "safety": safety}])
    with environment({"AI_ENDPOINTS": ENDPOINTS, "COSMOS_ENDPOINT": "http://c", "TENANTS": tenants, **extra}):
        load_settings()


def test_the_defaults_are_the_issues() -> None:
    policy = SafetyPolicy()
    assert (policy.prompt_shield, policy.harm.active(), policy.redact, policy.redact_input, policy.on_error) == (
        "block", {}, ("secrets",), False, "open")


@pytest.mark.parametrize(("safety", "named"), [
    ({"prompt_shield": "warn"}, "TENANTS.0.safety.prompt_shield"),
    ({"harm": {"hate": 8}}, "TENANTS.0.safety.harm.hate"),
    ({"harm": {"gore": 2}}, "TENANTS.0.safety.harm.gore"),
    ({"redact": ["secrets", "passwords"]}, "TENANTS.0.safety.redact"),
    ({"on_error": "retry"}, "TENANTS.0.safety.on_error"),
    ({"redact_inputs": True}, "TENANTS.0.safety.redact_inputs"),
])
def test_a_bad_policy_is_refused_at_start_naming_the_field(safety: dict[str, Any], named: str) -> None:
    with pytest.raises(ConfigError, match=named.replace(".", r"\.")):
        settings_with(safety)


def test_language_kinds_without_language_endpoint_are_refused_naming_them() -> None:
    with pytest.raises(ConfigError, match=r"LANGUAGE_ENDPOINT \(tenant 't1': person, address\)"):
        settings_with({"redact": ["secrets", "person", "address"]})
    settings_with({"redact": ["person"]}, LANGUAGE_ENDPOINT="https://lang.cognitiveservices.azure.com")


def test_the_policy_knows_exactly_the_redactors_kinds() -> None:
    assert BUILTIN_KINDS == KINDS


def test_a_block_is_azure_openais_content_filter_shape_and_a_problem_on_the_native_routes() -> None:
    result: dict[str, dict[str, object]] = {"jailbreak": {"filtered": True, "detected": True}}
    err = ContentFiltered("blocked", result)
    assert openai_error(err) == {"error": {
        "message": "blocked", "type": "invalid_request_error", "param": "prompt", "code": "content_filter",
        "innererror": {"code": "ResponsibleAIPolicyViolation", "content_filter_result": result}}}
    problem = problem_body(err, "cid")
    assert problem["type"] == "https://aigw.dev/problems/content-filtered" and problem["status"] == 400
    assert problem["content_filter_result"] == result


def test_a_tenant_written_at_run_time_gets_the_checks_tenants_gets_at_start() -> None:
    """The admin API validates a tenant with policy_problems: a route to a model the app lacks, and
    Language kinds without LANGUAGE_ENDPOINT (which would otherwise go unredacted), each named."""
    prices = json.dumps({"m": {"input_per_1m": 1, "output_per_1m": 1}})
    with environment({"AI_ENDPOINTS": ENDPOINTS, "COSMOS_ENDPOINT": "http://c", "MODEL_PRICES": prices}):
        settings = load_settings()
    tenant = TenantConfig.model_validate({
        "tenant": "t2", "keys": [{"id": "k2", "sha256": hash_api_key("k2")}],
        "routes": {"auto": {"simple": "m", "complex": "big"}}, "safety": {"redact": ["secrets", "person"]}})
    problems = policy_problems(settings, tenant)
    assert [field for field, _ in problems] == ["routes", "safety"]
    assert "'big' is not a model of AI_ENDPOINTS" in problems[0][1] and "person" in problems[1][1]
    fine = tenant.model_copy(update={"routes": {}, "safety": SafetyPolicy()})
    assert policy_problems(settings, fine) == []
