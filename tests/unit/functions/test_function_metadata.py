"""The functions the host will index: names, routes, methods, auth level, queue bindings."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path
from typing import Any

import pytest

FUNCTION_APP = Path(__file__).resolve().parents[3] / "function_app.py"


@pytest.fixture(scope="module")
def functions() -> dict[str, dict[str, Any]]:
    """The app's functions as the worker indexes them. Loaded under a private module name, so the
    process-wide `function_app` module (which devhost's own tests replace) is left alone, and
    get_functions() runs once on this FunctionApp, as in the host (it refuses a second call)."""
    spec = importlib.util.spec_from_file_location("function_app_under_test", FUNCTION_APP)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return {f.get_function_name(): json.loads(f.get_function_json()) for f in module.app.get_functions()}


def trigger(function: dict[str, Any]) -> dict[str, Any]:
    return next(b for b in function["bindings"] if b["type"].endswith("Trigger"))


EXPECTED_HTTP = {
    "health": ("health", ["GET"]),
    "ready": ("ready", ["GET"]),
    "openapi": ("openapi.json", ["GET"]),
    "summarize": ("v1/summarize", ["POST"]),
    "chat": ("v1/chat", ["POST"]),
    "jobs_submit": ("v1/jobs", ["POST"]),
    "jobs_status": ("v1/jobs/{job_id}", ["GET"]),
    "usage": ("v1/usage", ["GET"]),
    "openai_chat_completions": ("v1/chat/completions", ["POST"]),
    "azure_chat_completions": ("openai/deployments/{deployment}/chat/completions", ["POST"]),
    "openai_embeddings": ("v1/embeddings", ["POST"]),
    "azure_embeddings": ("openai/deployments/{deployment}/embeddings", ["POST"]),
    "openai_models": ("v1/models", ["GET"]),
    "azure_models": ("openai/models", ["GET"]),
    **{name: (route, methods) for family, base in (("openai", "v1/responses"), ("azure", "openai/v1/responses"),
                                                  ("azure_preview", "openai/responses"))
       for name, route, methods in ((f"responses_create_{family}", base, ["POST"]),
                                    (f"responses_input_tokens_{family}", f"{base}/input_tokens", ["POST"]),
                                    (f"responses_item_{family}", f"{base}/{{response_id}}", ["GET", "DELETE"]),
                                    (f"responses_input_items_{family}", f"{base}/{{response_id}}/input_items",
                                     ["GET"]))},
    # The admin API and the console (docs/admin.md).
    "admin_tenants_list": ("{area:regex(^admin$)}/tenants", ["GET"]),
    "admin_tenants_create": ("{area:regex(^admin$)}/tenants", ["POST"]),
    "admin_tenant_get": ("{area:regex(^admin$)}/tenants/{tenant}", ["GET"]),
    "admin_tenant_update": ("{area:regex(^admin$)}/tenants/{tenant}", ["PATCH"]),
    "admin_tenant_disable": ("{area:regex(^admin$)}/tenants/{tenant}/disable", ["POST"]),
    "admin_keys_list": ("{area:regex(^admin$)}/tenants/{tenant}/keys", ["GET"]),
    "admin_keys_create": ("{area:regex(^admin$)}/tenants/{tenant}/keys", ["POST"]),
    "admin_key_rotate": ("{area:regex(^admin$)}/tenants/{tenant}/keys/{key_id}/rotate", ["POST"]),
    "admin_key_revoke": ("{area:regex(^admin$)}/tenants/{tenant}/keys/{key_id}", ["DELETE"]),
    "admin_usage": ("{area:regex(^admin$)}/tenants/{tenant}/usage", ["GET"]),
    "console": ("console", ["GET"]),
    "console_asset": ("console/{asset}", ["GET"]),
}


def test_every_http_function_has_its_contract_route_and_methods(functions: dict[str, dict[str, Any]]) -> None:
    for name, (route, methods) in EXPECTED_HTTP.items():
        binding = trigger(functions[name])
        assert (binding["type"], binding["route"], binding["methods"]) == ("httpTrigger", route, methods), name
        # The app authenticates tenants itself; host keys would lock out OpenAI SDK clients.
        assert binding["authLevel"] == "ANONYMOUS", name


def test_the_catch_all_is_the_only_other_http_function(functions: dict[str, dict[str, Any]]) -> None:
    http = {n for n, f in functions.items() if trigger(f)["type"] == "httpTrigger"}
    assert http - set(EXPECTED_HTTP) == {"zz_not_found"}
    assert trigger(functions["zz_not_found"])["route"] == "{*path}"
    # The host matches HTTP functions in name order (case-insensitive): the catch-all must be last.
    assert max(http, key=str.lower) == "zz_not_found"


def test_queue_bindings_use_app_setting_expressions(functions: dict[str, dict[str, Any]]) -> None:
    assert trigger(functions["jobs_worker"]) == {
        "direction": "IN", "type": "queueTrigger", "name": "msg",
        "queueName": "%JOBS_QUEUE%", "connection": "AzureWebJobsStorage"}
    assert trigger(functions["jobs_poison"])["queueName"] == "%JOBS_QUEUE%-poison"
    # The sweeper's schedule is an app setting too (tests run it every few seconds), off at start-up.
    sweep = trigger(functions["jobs_sweep"])
    assert (sweep["type"], sweep["schedule"], sweep["runOnStartup"]) == ("timerTrigger", "%JOBS_SWEEP_SCHEDULE%", False)
    out = [b for b in functions["jobs_submit"]["bindings"] if b["type"] == "queue"]
    assert out == [{"direction": "OUT", "type": "queue", "name": "outbox", "queueName": "%JOBS_QUEUE%",
                    "connection": "AzureWebJobsStorage"}]


def test_function_names_are_explicit_and_valid(functions: dict[str, dict[str, Any]]) -> None:
    assert len(functions) == 42
    assert all(re.fullmatch(r"[a-z][a-z_]*", name) for name in functions)
