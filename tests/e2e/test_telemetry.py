"""What the real azure-monitor-opentelemetry exporter sends from the running app, received by the
local ingestion server (tools/telemetry_sink): spans, metrics and audit records, and no secret."""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from shared.observability import names as n
from tests.conftest import DEV_KEY
from tools.localenv import LocalStack
from tools.telemetry_sink import Sink, appinsights

AUDITED_KEY = "telemetry-audited-key"  # a tenant that opted in to log_content
Envelope = dict[str, Any]


def _tenants(stack: LocalStack) -> str:
    tenants = json.loads(stack.settings["TENANTS"])
    tenants.append({"tenant": "audited", "log_content": True,
                    "keys": [{"id": "audited-1", "sha256": hashlib.sha256(AUDITED_KEY.encode()).hexdigest()}]})
    return json.dumps(tenants)


@pytest.fixture(scope="module")
def sink() -> Iterator[Sink]:
    with Sink(appinsights.handle) as running:
        yield running


@pytest.fixture(scope="module")
def tel_url(stack: LocalStack, sink: Sink) -> Iterator[str]:
    env = {
        **appinsights.app_settings(sink.url),
        "OTEL_BSP_SCHEDULE_DELAY": "200",
        "OTEL_BLRP_SCHEDULE_DELAY": "200",
        "OTEL_METRIC_EXPORT_INTERVAL": "1000",
        "OTEL_TRACES_SAMPLER": "always_on",
        "TENANTS": _tenants(stack),
        # Its TENANTS seed a tenant directory of their own (the session app's `dev` differs).
        "COSMOS_DATABASE": "aigw-telemetry",
    }
    with stack.app_on_free_port("telemetry", env, jobs=True) as url:
        yield url


@pytest.fixture
def client(tel_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=f"{tel_url}/api", headers={"x-api-key": DEV_KEY}, timeout=60) as c:
        yield c


def _traceparent() -> tuple[str, str]:
    trace_id = uuid.uuid4().hex
    return trace_id, f"00-{trace_id}-{uuid.uuid4().hex[:16]}-01"


def _marker() -> str:
    return f"zebra-{uuid.uuid4().hex[:12]}"


def wait_for(sink: Sink, what: str, match: Callable[[Envelope], bool], count: int = 1,
             deadline_s: float = 180) -> list[Envelope]:
    """Poll until `count` envelopes match (a generous deadline for arrival on a loaded machine; nothing is timed)."""
    end = time.monotonic() + deadline_s
    while True:
        found = [e for e in sink.snapshot() if match(e)]
        if len(found) >= count or time.monotonic() > end:
            break
        time.sleep(0.25)
    assert len(found) >= count, f"no {what} arrived; types seen: {sorted({_type(e) for e in sink.snapshot()})}"
    return found


def wait_for_metrics(sink: Sink, wanted: set[str], deadline_s: float = 180) -> None:
    end = time.monotonic() + deadline_s
    while True:
        names = {m["name"] for e in sink.snapshot() if _type(e) == "MetricData" for m in _base(e)["metrics"]}
        if wanted <= names or time.monotonic() > end:
            break
        time.sleep(0.25)
    assert wanted <= names, f"missing metrics: {sorted(wanted - names)}"


def _type(e: Envelope) -> str:
    return str(e.get("data", {}).get("baseType", ""))


def _base(e: Envelope) -> dict[str, Any]:
    base: dict[str, Any] = e["data"]["baseData"]
    return base


def _props(e: Envelope) -> dict[str, Any]:
    props: dict[str, Any] = _base(e).get("properties") or {}
    return props


def _in_trace(trace_id: str, base_type: str) -> Callable[[Envelope], bool]:
    return lambda e: _type(e) == base_type and e.get("tags", {}).get("ai.operation.id") == trace_id


def _attempts(sink: Sink, trace_id: str) -> list[Envelope]:
    return wait_for(sink, "model attempt span", lambda e: _in_trace(trace_id, "RemoteDependencyData")(e)
                    and _props(e).get(n.GEN_AI_OPERATION_NAME) == "chat")


def _audit(sink: Sink, correlation_id: str) -> Envelope:
    return wait_for(sink, "audit record", lambda e: _type(e) == "MessageData"
                    and _props(e).get(n.CORRELATION_ID) == correlation_id)[0]


def test_request_span_attempt_span_audit_record_and_metrics(client: httpx.Client, sink: Sink) -> None:
    trace_id, parent = _traceparent()
    body = {"messages": [{"role": "user", "content": f"Say hello to {_marker()}"}], "max_tokens": 400}
    response = client.post("/v1/chat", json=body, headers={"traceparent": parent})
    assert response.status_code == 200, response.text
    assert response.headers["x-correlation-id"] == trace_id  # the trace id, as the client sent none

    request = wait_for(sink, "request span", _in_trace(trace_id, "RequestData"))[0]
    assert _base(request)["name"] == "POST /api/v1/chat"
    assert _base(request)["responseCode"] == "200"
    props = _props(request)
    assert props[n.TENANT] == "dev" and props[n.KEY_ID] == "dev-local" and props[n.ROUTE] == "v1/chat"
    assert props[n.CACHE_RESULT] == "miss" and props[n.CORRELATION_ID] == trace_id

    attempt = _attempts(sink, trace_id)[0]
    # The native operation is a kernel function: Semantic Kernel's span for it sits between the
    # request and the attempt (docs/telemetry.md).
    kernel = wait_for(sink, "kernel function span", lambda e: _in_trace(trace_id, "RemoteDependencyData")(e)
                      and _base(e)["id"] == attempt["tags"]["ai.operation.parentId"])[0]
    assert _base(kernel)["name"] == "execute_tool gateway-chat"
    assert kernel["tags"]["ai.operation.parentId"] == _base(request)["id"]
    others = [_base(e)["name"] for e in sink.snapshot() if _type(e) == "RequestData" and n.ROUTE not in _props(e)]
    assert not others, f"request rows that are not ours (a framework's span around ours): {others[:3]}"
    a = _props(attempt)
    assert a[n.GEN_AI_OPERATION_NAME] == "chat" and a[n.GEN_AI_PROVIDER_NAME] == n.PROVIDER_AZURE_OPENAI
    assert a[n.GEN_AI_REQUEST_MODEL] and a[n.GEN_AI_RESPONSE_ID] and a[n.GEN_AI_RESPONSE_FINISH_REASONS]
    usage = response.json()["usage"]
    assert int(a[n.GEN_AI_USAGE_INPUT_TOKENS]) == usage["prompt_tokens"]
    assert int(a[n.GEN_AI_USAGE_OUTPUT_TOKENS]) == usage["completion_tokens"]
    assert a[n.ENDPOINT] and a[n.ATTEMPT] == "1" and a[n.BREAKER_STATE] == "closed" and n.RETRY_WAIT_S in a
    assert a[n.GEN_AI_REQUEST_STREAM] in ("False", "false")
    # The HTTP call to the model endpoint is the attempt's child: its instrumentation sent `traceparent`.
    http_calls = wait_for(sink, "model HTTP call", lambda e: _in_trace(trace_id, "RemoteDependencyData")(e)
                          and e["tags"].get("ai.operation.parentId") == _base(attempt)["id"]
                          and "/chat/completions" in str(_base(e).get("name")))
    assert _base(http_calls[0])["type"] == "HTTP"
    # Cosmos calls appear through the Azure SDK's own tracing, in the request's trace.
    wait_for(sink, "Cosmos span", lambda e: _in_trace(trace_id, "RemoteDependencyData")(e)
             and str(_base(e).get("name")).startswith("ContainerProxy."))

    audit = _props(_audit(sink, trace_id))
    assert set(n.AUDIT_FIELDS) <= audit.keys()
    assert audit[n.TENANT] == "dev" and int(audit[n.GEN_AI_USAGE_OUTPUT_TOKENS]) == usage["completion_tokens"]
    assert float(audit[n.COST_USD]) > 0 and audit[n.STATUS] == "200" and audit[n.ENDPOINT] == a[n.ENDPOINT]
    assert n.AUDIT_PROMPT not in audit  # the dev tenant did not opt in

    again = client.post("/v1/chat", json=body)
    assert again.json()["cached"] is True
    cid = again.headers["x-correlation-id"]
    assert _props(_audit(sink, cid))[n.CACHE_RESULT] == "exact_hit"

    wait_for_metrics(sink, {n.METRIC_TOKEN_USAGE, n.METRIC_OPERATION_DURATION, n.METRIC_COST,
                            n.METRIC_TOKENS_CHARGED, n.METRIC_CACHE_LOOKUPS, n.METRIC_BUDGET_USED_RATIO})
    token_types = {_props(e).get(n.GEN_AI_TOKEN_TYPE) for e in sink.snapshot() if _type(e) == "MetricData"
                   and any(m["name"] == n.METRIC_TOKEN_USAGE for m in _base(e)["metrics"])}
    assert token_types == {"input", "output"}


def test_streamed_request_span_carries_the_final_usage(client: httpx.Client, sink: Sink) -> None:
    trace_id, parent = _traceparent()
    body = {"model": "gpt-4o-mini", "stream": True, "stream_options": {"include_usage": True}, "max_tokens": 40,
            "messages": [{"role": "user", "content": f"Tell a story about {_marker()}"}]}
    final: dict[str, Any] = {}
    with client.stream("POST", "/v1/chat/completions", json=body, headers={"traceparent": parent}) as response:
        assert response.status_code == 200
        for line in response.iter_lines():
            if line.startswith("data: {"):
                chunk = json.loads(line[6:])
                final = chunk.get("usage") or final
    assert final["completion_tokens"] > 1
    attempt = _props(_attempts(sink, trace_id)[0])
    assert int(attempt[n.GEN_AI_USAGE_OUTPUT_TOKENS]) == final["completion_tokens"]
    assert int(attempt[n.GEN_AI_USAGE_INPUT_TOKENS]) == final["prompt_tokens"]
    assert attempt[n.GEN_AI_REQUEST_STREAM] in ("True", "true") and float(attempt[n.TIME_TO_FIRST_CHUNK_S]) > 0
    audit = _props(_audit(sink, trace_id))
    assert int(audit[n.GEN_AI_USAGE_OUTPUT_TOKENS]) == final["completion_tokens"]


def test_a_queue_job_span_is_in_the_trace_of_the_request_that_submitted_it(client: httpx.Client,
                                                                            sink: Sink) -> None:
    trace_id, parent = _traceparent()
    job = {"kind": "summarize", "input": {"text": f"A long story about {_marker()}. " * 5, "max_words": 20}}
    submitted = client.post("/v1/jobs", json=job, headers={"traceparent": parent})
    assert submitted.status_code == 202, submitted.text
    end = time.monotonic() + 90
    while client.get(submitted.json()["status_url"].removeprefix("/api")).json()["status"] != "succeeded":
        assert time.monotonic() < end, "the job did not finish"
        time.sleep(0.5)
    spans = wait_for(sink, "job span", lambda e: _in_trace(trace_id, "RequestData")(e)
                     and _base(e)["name"].startswith(n.JOB_SPAN_PREFIX))
    job_props = _props(spans[0])
    assert job_props[n.OUTCOME] == "succeeded" and job_props[n.JOB_ID] == submitted.json()["job_id"]
    assert _attempts(sink, trace_id), "the job's model call is in the same trace"
    wait_for_metrics(sink, {n.METRIC_JOBS, n.METRIC_JOB_AGE})


def test_an_opted_in_tenant_gets_its_content_in_the_audit_record(tel_url: str, sink: Sink) -> None:
    marker = _marker()
    response = httpx.post(f"{tel_url}/api/v1/chat", headers={"x-api-key": AUDITED_KEY}, timeout=60,
                          json={"messages": [{"role": "user", "content": f"Repeat {marker}\nplease"}]})
    assert response.status_code == 200, response.text
    audit = _props(_audit(sink, response.headers["x-correlation-id"]))
    assert marker in audit[n.AUDIT_PROMPT] and "\n" not in audit[n.AUDIT_PROMPT]
    assert audit[n.AUDIT_ANSWER] == response.json()["content"].replace("\n", " ")


def test_no_exported_item_holds_a_key_a_token_a_secret_or_prompt_text(client: httpx.Client, sink: Sink,
                                                                        stack: LocalStack) -> None:
    marker = _marker()
    refused = client.post("/v1/chat", json={"messages": [{"role": "user", "content": marker}]},
                          headers={"x-api-key": "", "authorization": f"Bearer wrong-{marker}"})
    assert refused.status_code == 401
    ok = client.post("/v1/chat", json={"messages": [{"role": "user", "content": f"Remember {marker}"}],
                                       "max_tokens": 10})
    assert ok.status_code == 200
    _audit(sink, ok.headers["x-correlation-id"])  # what this request exported has arrived
    wait_for(sink, "request span", lambda e: _type(e) == "RequestData"
             and _props(e).get(n.CORRELATION_ID) == refused.headers["x-correlation-id"])
    settings = stack.settings
    secrets = [DEV_KEY, AUDITED_KEY, settings["COSMOS_KEY"], "local-simulator-key", "Bearer", marker]
    everything = [json.dumps(e) for e in sink.snapshot()]
    assert len(everything) > 10
    for secret in secrets:
        leaked = [e[:300] for e in everything if secret in e]
        assert not leaked, f"{secret[:12]}… was exported: {leaked[:2]}"
