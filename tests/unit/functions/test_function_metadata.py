"""The functions the host will index: names, routes, methods, auth level, queue bindings."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

import function_app


@pytest.fixture(scope="module")
def functions() -> dict[str, dict[str, Any]]:
    # get_functions() may run once per app (it records names to refuse duplicates), as in the host.
    return {f.get_function_name(): json.loads(f.get_function_json()) for f in function_app.app.get_functions()}


def trigger(function: dict[str, Any]) -> dict[str, Any]:
    return next(b for b in function["bindings"] if b["type"].endswith("Trigger"))


EXPECTED_HTTP = {
    "health": ("health", ["GET"]),
    "ready": ("ready", ["GET"]),
    "summarize": ("v1/summarize", ["POST"]),
    "chat": ("v1/chat", ["POST"]),
    "jobs_submit": ("v1/jobs", ["POST"]),
    "jobs_status": ("v1/jobs/{job_id}", ["GET"]),
    "openai_chat_completions": ("v1/chat/completions", ["POST"]),
    "azure_chat_completions": ("openai/deployments/{deployment}/chat/completions", ["POST"]),
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
    out = [b for b in functions["jobs_submit"]["bindings"] if b["type"] == "queue"]
    assert out == [{"direction": "OUT", "type": "queue", "name": "outbox", "queueName": "%JOBS_QUEUE%",
                    "connection": "AzureWebJobsStorage"}]


def test_function_names_are_explicit_and_valid(functions: dict[str, dict[str, Any]]) -> None:
    assert len(functions) == 11
    assert all(re.fullmatch(r"[a-z][a-z_]*", name) for name in functions)
