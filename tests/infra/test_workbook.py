"""The workbook: valid workbook JSON, every per-deployment placeholder replaced by its Bicep module, deployed by
main.bicep on every `azd up` (not only with alerts), and linked to the Application Insights component."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

INFRA = Path(__file__).resolve().parents[2] / "infra"
WORKBOOK_JSON = INFRA / "app" / "workbook.json"
MODULE = INFRA / "app" / "workbook.bicep"

# The session fixture from conftest.py: a Bicep file -> pycep's read-only JSON tree.
ParseBicep = Callable[[Path], Mapping[str, Any]]


def _workbook() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(WORKBOOK_JSON.read_text())
    return data


def test_the_json_is_a_workbook_whose_queries_run_against_app_insights() -> None:
    workbook = _workbook()
    assert workbook["version"] == "Notebook/1.0"
    queries = [item["content"] for item in workbook["items"] if item["type"] == 3]
    assert len(queries) >= 15
    for content in queries:
        assert content["resourceType"] == "microsoft.insights/components", content["title"]
        assert content["crossComponentResources"] == ["__APP_INSIGHTS_ID__"], content["title"]
        assert content["timeContextFromParameter"] == "TimeRange", content["title"]
    names = [item["name"] for item in workbook["items"]]
    assert len(names) == len(set(names)), "item names must be unique (the portal keys items by name)"


def test_every_placeholder_is_replaced_by_the_module() -> None:
    placeholders = set(re.findall(r"__[A-Z_]+__", WORKBOOK_JSON.read_text()))
    replaced = set(re.findall(r"'(__[A-Z_]+__)'", MODULE.read_text()))
    assert placeholders == {"__APP_INSIGHTS_ID__", "__QUEUE_SERVICE_ID__"}
    assert placeholders == replaced, f"left in the deployed JSON: {sorted(placeholders - replaced)}"


def test_the_module_links_the_workbook_to_app_insights(parse_bicep: ParseBicep) -> None:
    tree = parse_bicep(MODULE)
    [res] = [r["config"] for r in tree["resources"].values() if r["type"] == "Microsoft.Insights/workbooks"]
    assert res["kind"] == "shared"
    assert res["properties"]["sourceId"] == "appInsightsId"
    assert res["properties"]["category"] == "workbook"
    assert res["name"]["function"]["type"] == "guid", "workbook names must be GUIDs"


def test_main_deploys_it_every_time(parse_bicep: ParseBicep) -> None:
    modules = parse_bicep(INFRA / "main.bicep")["modules"]
    [call] = [m for m in modules.values() if m["detail"]["path"] == "./app/workbook.bicep"]
    assert "condition" not in call["config"], "the workbook is deployed without a condition"
    params = json.dumps(call["config"]["params"])
    for output in ('"appInsights"', '"storage"'):
        assert output in params, f"the workbook is not given {output}'s outputs"
