"""The alert rules: the thresholds of issue 12 as defaults, and each rule split only by columns its query returns."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from tests.infra.test_telemetry_names import alert_queries

INFRA = Path(__file__).resolve().parents[2] / "infra"
ALERTS = INFRA / "app" / "alerts.bicep"

# The session fixture from conftest.py: a Bicep file -> pycep's read-only JSON tree.
ParseBicep = Callable[[Path], Mapping[str, Any]]


def _rules(parse_bicep: ParseBicep) -> dict[str, dict[str, Any]]:
    return {rule["name"]: rule for rule in parse_bicep(ALERTS)["variables"]["rules"]["value"]}


def test_the_thresholds_are_the_issues(parse_bicep: ParseBicep) -> None:
    params = parse_bicep(ALERTS)["parameters"]
    assert params["modelLatencyP95Ms"]["default"] == 5000  # P95 > 5 s
    assert params["failedRequestPercent"]["default"] == 5  # error rate > 5%
    assert params["budgetUsedPercent"]["default"] == 80  # 80% of a budget
    assert set(_rules(parse_bicep)) == {"failed-requests", "model-latency-p95", "throttled-requests", "budget-used",
                                        "breaker-open", "poison-jobs"}


def test_split_columns_are_columns_of_the_query(parse_bicep: ParseBicep) -> None:
    queries = alert_queries(parse_bicep)
    for name, rule in _rules(parse_bicep).items():
        query = queries[f"alert:{name}"]
        last_summarize = query.rsplit("| summarize", 1)[-1]
        for column in rule["dimensions"]:
            # Azure refuses a dimension the result has no column for; the last summarize decides the columns.
            assert re.search(rf"\bby\b[^|]*\b{column}\b", last_summarize), f"{name}: no column {column!r} to split by"


def test_the_module_passes_the_split_on(parse_bicep: ParseBicep) -> None:
    tree = parse_bicep(INFRA / "core" / "monitor" / "log-alert.bicep")
    [rule] = [r["config"] for r in tree["resources"].values() if r["type"] == "Microsoft.Insights/scheduledQueryRules"]
    criterion = rule["properties"]["criteria"]["allOf"][0]
    assert criterion["dimensions"]["loop_type"]["detail"]["array_name"] == "dimensions"
    assert criterion["threshold"] == 0 and criterion["operator"] == "GreaterThan"
