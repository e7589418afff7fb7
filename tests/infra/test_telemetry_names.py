"""Every name the workbook, the alerts and the runbook's queries read is one the app emits: a customDimensions
key, metric or span name, audit message or compared value defined in shared/observability/names.py (or by the
code that emits it), or a built-in table and column of Application Insights."""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from azure.monitor.opentelemetry.exporter._performance_counters._constants import (
    _PERFORMANCE_COUNTER_METRIC_NAME_MAPPINGS,
)

from shared.core import errors
from shared.observability import names
from shared.upstream.resilience.breaker import State
from tests.infra.kql_names import METRIC_COLUMNS, TABLES, extract

REPO = Path(__file__).resolve().parents[2]
INFRA = REPO / "infra"
WORKBOOK = INFRA / "app" / "workbook.json"
ALERTS = INFRA / "app" / "alerts.bicep"
RUNBOOK = REPO / "docs" / "runbook.md"

# The session fixture from conftest.py: a Bicep file -> pycep's read-only JSON tree.
ParseBicep = Callable[[Path], Mapping[str, Any]]

_CONSTANTS = {k: v for k, v in vars(names).items() if k.isupper() and isinstance(v, str)}
METRICS = {v for k, v in _CONSTANTS.items() if k.startswith("METRIC_")}
_NOT_ATTRIBUTES = ("METRIC_", "PROVIDER_", "AUDIT_LOGGER", "AUDIT_EVENT", "JOB_SPAN_PREFIX")
DIMENSIONS = {v for k, v in _CONSTANTS.items() if not k.startswith(_NOT_ATTRIBUTES)} | set(names.AUDIT_FIELDS)
# The Functions host's own log line when it moves a message to the poison queue (WebJobs SDK
# QueueProcessor: "Message has reached MaxDequeueCount of {0}. Moving message to queue '{1}'."; devhost logs the same).
HOST_LOG_PHRASES = {"Moving message to queue"}
# The process counters the exporter sends (to performanceCounters, whose `name` is the counter's last part).
PERFORMANCE_COUNTERS = {breeze.rsplit("\\", 1)[-1] for breeze in _PERFORMANCE_COUNTER_METRIC_NAME_MAPPINGS.values()}
# Storage platform metrics the workbook charts (namespace--metric).
PLATFORM_METRICS = {"microsoft.storage/storageaccounts/queueservices--QueueMessageCount"}


def _routes() -> set[str]:
    """Route templates as registered with http_function(bp, name, route, methods) in functions/*.py."""
    found: set[str] = set()
    for path in (REPO / "functions").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "http_function":
                route = node.args[2]
                assert isinstance(route, ast.Constant) and isinstance(route.value, str), (
                    f"{path.name}: a route that is not a string literal")
                found.add(route.value)
    return found


def _refusal_types() -> set[str]:
    return {cls.type_slug for cls in vars(errors).values()
            if isinstance(cls, type) and issubclass(cls, errors.TooManyRequests) and cls is not errors.TooManyRequests}


# Values a query may compare a dimension with, from the code that sets them. Where names.py has no
# constant yet (windows, units, job outcomes), the values its comments name, until it does.
VALUES: dict[str, set[str]] = {
    names.ROUTE: _routes(),
    names.CACHE_RESULT: set(names.CACHE_RESULTS),
    names.REFUSAL_TYPE: _refusal_types(),
    names.BREAKER_STATE: {s.value for s in State},
    names.GEN_AI_TOKEN_TYPE: {"input", "output"},
    names.GEN_AI_OPERATION_NAME: {"chat", "embeddings", "text_completion"},
    names.GEN_AI_PROVIDER_NAME: {names.PROVIDER_AZURE_OPENAI, names.PROVIDER_OPENAI},
    names.BUDGET_WINDOW: set(getattr(names, "BUDGET_WINDOWS", ("day", "month"))),
    names.BUDGET_UNIT: set(getattr(names, "BUDGET_UNITS", ("tokens", "usd"))),
    names.OUTCOME: set(names.JOB_OUTCOMES),
}

# Dimensions whose values are data (a tenant's name, an id): a query may compare them with anything.
FREE_VALUES = {names.TENANT, names.KEY_ID, names.CORRELATION_ID, names.JOB_ID, names.GEN_AI_REQUEST_MODEL,
               names.GEN_AI_RESPONSE_MODEL, names.ENDPOINT, names.REGION}


def problems(query: str) -> list[str]:
    """Every name in `query` the app does not emit, as one line each; empty when all are known."""
    found = extract(query)
    unknown = sorted(found.dimensions - DIMENSIONS)
    bad = [f"customDimensions key {d!r} is not in shared/observability/names.py" for d in unknown]
    if found.unnamed_dimension_uses:
        bad.append("customDimensions used without a key (write customDimensions[\"name\"] so it can be checked)")
    for op, literal in sorted(found.names):
        span_prefix = op in ("startswith", "!startswith") and literal == f"{names.JOB_SPAN_PREFIX} "
        equal = op in ("==", "!=", "in", "!in")
        if not span_prefix and not (equal and (literal in METRICS or literal in PERFORMANCE_COUNTERS)):
            bad.append(f"name {op} {literal!r} is no metric (or span prefix) in shared/observability/names.py")
    for op, literal in sorted(found.messages):
        if not (literal == names.AUDIT_EVENT or literal in HOST_LOG_PHRASES or literal.endswith("-poison")):
            bad.append(f"message {op} {literal!r} is neither AUDIT_EVENT nor a known host log line")
    for dim, literal in sorted(found.values):
        allowed = VALUES.get(dim)
        if dim in FREE_VALUES:
            continue
        if allowed is None:
            bad.append(f"{dim} compared with {literal!r}, but no code defines its values")
        elif literal not in allowed:
            bad.append(f"{dim} compared with {literal!r}, not one of {sorted(allowed)}")
    bad += [f"table {t!r} is not an Application Insights table" for t in sorted(found.tables - TABLES)]
    bad += [f"column {c!r} is not a customMetrics column" for c in sorted(found.metric_columns - METRIC_COLUMNS)]
    if not found.tables:
        bad.append("no table found: a query starts with one")
    return bad


def _walk(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value)


def workbook_queries() -> dict[str, str]:
    workbook = json.loads(WORKBOOK.read_text())
    return {f"workbook:{item['name']}": item["content"]["query"]
            for item in _walk(workbook) if item.get("type") == 3 and "content" in item}


def _interpolate(text: str, values: Mapping[str, str]) -> str:
    return re.sub(r"\$\{(\w+)\}", lambda m: values.get(m.group(1), f"<{m.group(1)}>"), text)


def alert_queries(parse_bicep: ParseBicep) -> dict[str, str]:
    """Each rule's query as Azure gets it: join() resolved, ${param} replaced by its default (or main's value)."""
    tree = parse_bicep(ALERTS)
    main = parse_bicep(INFRA / "main.bicep")
    values = {n: str(p["default"]) for n, p in tree["parameters"].items() if p.get("default") is not None}
    main_vars = {n: v["value"] for n, v in main["variables"].items() if isinstance(v["value"], str)}
    values["poisonQueueName"] = _interpolate(main_vars["poisonQueueName"], main_vars)

    def text(expr: Any) -> str:
        if isinstance(expr, str):
            return text(tree["variables"][expr]["value"]) if expr in tree["variables"] else _interpolate(expr, values)
        join = expr["function"]
        assert join["type"] == "join", f"alert query built with {join['type']}(), not join()"
        return "\n".join(text(part) for part in join["parameters"]["input_array"])

    return {f"alert:{rule['name']}": text(rule["query"]) for rule in tree["variables"]["rules"]["value"]}


def runbook_queries() -> dict[str, str]:
    if not RUNBOOK.exists():
        return {}
    blocks = re.findall(r"```kusto\n(.*?)```", RUNBOOK.read_text(), re.S)
    return {f"runbook:{i + 1}": block for i, block in enumerate(blocks)}


@pytest.fixture(scope="module")
def all_queries(parse_bicep: ParseBicep) -> dict[str, str]:
    return {**workbook_queries(), **alert_queries(parse_bicep), **runbook_queries()}


def test_every_queried_name_is_one_the_app_emits(all_queries: dict[str, str]) -> None:
    bad = {where: found for where, query in all_queries.items() if (found := problems(query))}
    assert not bad, "queries read names the app does not emit:\n" + json.dumps(bad, indent=2)


def test_there_are_queries_to_check(all_queries: dict[str, str]) -> None:
    kinds = {where.split(":")[0] for where in all_queries}
    assert kinds == {"workbook", "alert", "runbook"}, kinds
    assert len([w for w in all_queries if w.startswith("alert:")]) == 6


def test_the_workbook_shows_every_panel_of_the_issue() -> None:
    used = set().union(*(extract(q).names for q in workbook_queries().values()))
    metrics = {literal for _, literal in used}
    wanted = {names.METRIC_TOKENS_CHARGED, names.METRIC_COST, names.METRIC_CACHE_LOOKUPS, names.METRIC_REFUSALS,
              names.METRIC_BREAKER_TRANSITIONS, names.METRIC_JOBS, names.METRIC_JOB_AGE, names.METRIC_BUDGET_USED_RATIO}
    assert wanted <= metrics, sorted(wanted - metrics)
    tables = set().union(*(extract(q).tables for q in workbook_queries().values()))
    assert {"requests", "dependencies", "traces", "customMetrics"} <= tables


def test_the_alerts_read_budget_breaker_and_job_metrics(parse_bicep: ParseBicep) -> None:
    queries = alert_queries(parse_bicep)
    budget = extract(queries["alert:budget-used"])
    assert ("==", names.METRIC_BUDGET_USED_RATIO) in budget.names
    assert {names.TENANT, names.BUDGET_WINDOW, names.BUDGET_UNIT} <= budget.dimensions
    assert (names.BREAKER_STATE, State.OPEN.value) in extract(queries["alert:breaker-open"]).values
    poison = queries["alert:poison-jobs"]
    assert "ai-jobs-poison" in poison and "<" not in poison, poison  # every ${...} resolved


def test_the_platform_metrics_of_the_workbook_exist() -> None:
    charted = {m["metric"] for item in _walk(json.loads(WORKBOOK.read_text())) if item.get("type") == 10
               for m in item["content"]["metrics"]}
    assert charted, "the workbook charts no Storage queue metric (the job backlog)"
    assert charted <= PLATFORM_METRICS, sorted(charted - PLATFORM_METRICS)


@pytest.mark.parametrize(("query", "expected"), [
    ('customMetrics | where name == "aigw.cost.usd"', "name == 'aigw.cost.usd'"),
    ('requests | where tostring(customDimensions["aigw.tenat"]) == "a"', "'aigw.tenat'"),
    ('requests | where tostring(customDimensions) contains "x"', "without a key"),
    ('customMetrics | where name == "aigw.cache.lookups"\n| extend r = tostring(customDimensions["aigw.cache.result"])'
     '\n| where r in ("hit", "miss")', "'hit', not one of"),
    ('customMetric | where name == "aigw.cost"', "table 'customMetric'"),
    ('customMetrics | where name == "aigw.cost" | summarize sum(valueSumm)', "column 'valueSumm'"),
    ('traces | where message == "aigw.requests"', "message == 'aigw.requests'"),
    ('requests | where tostring(customDimensions["aigw.route"]) !in ("helth")', "'helth', not one of"),
])
def test_a_misspelt_name_is_caught(query: str, expected: str) -> None:
    # The check must be able to fail: each query here misspells one name.
    assert any(expected in line for line in problems(query)), problems(query)
