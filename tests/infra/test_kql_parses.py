"""Every query of the workbook, the alerts and the runbook parses and type-checks with Microsoft's Kusto.Language
against the Application Insights tables: a syntax error or an unknown column would only show in Azure otherwise."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest

from tests.infra.test_telemetry_names import alert_queries, runbook_queries, workbook_queries

REPO = Path(__file__).resolve().parents[2]
CHECKER = Path(__file__).with_name("kql_check.js")
# Workbook parameters the portal substitutes before running a query; a typical value stands in.
WORKBOOK_PARAMETERS = {"{TimeRange:grain}": "5m"}

# The session fixture from conftest.py: a Bicep file -> pycep's read-only JSON tree.
ParseBicep = Callable[[Path], Mapping[str, Any]]


def kusto_errors(queries: dict[str, str]) -> dict[str, list[str]]:
    """{where: [error, ...]} from Kusto.Language, for every query."""
    node = shutil.which("node")
    assert node, "node is not on PATH (it runs the Kusto language service)"
    done = subprocess.run([node, str(CHECKER)], input=json.dumps(queries), capture_output=True, text=True,
                          cwd=REPO, timeout=120, check=False)
    assert "Cannot find module" not in done.stderr, "@kusto/language-service-next is not installed: run `make deps`"
    assert done.returncode == 0, done.stderr[-2000:]
    errors: dict[str, list[str]] = json.loads(done.stdout)
    return errors


def _substituted(query: str) -> str:
    for parameter, value in WORKBOOK_PARAMETERS.items():
        query = query.replace(parameter, value)
    return query


PROBES = {  # each one a query Azure refuses, and what Kusto.Language says of it
    "customMetrics | summarize sum(valueSumm)": "valueSumm",
    "requests | summarize count() by bin(timestamp, 5m": "Expected: )",
    "dependencies | summarize refused = count(), last = max(timestamp)": "needs to be bracketed",
    "request | take 1": "request",
}


@pytest.fixture(scope="module")
def checked(parse_bicep: ParseBicep) -> dict[str, list[str]]:
    """One run of the language service (loading it takes seconds) over every query and every probe."""
    queries = {where: _substituted(q)
               for where, q in {**workbook_queries(), **alert_queries(parse_bicep), **runbook_queries()}.items()}
    assert len(queries) >= 30
    return kusto_errors({**queries, **{f"probe:{q}": q for q in PROBES}})


def test_every_query_is_valid_kql(checked: dict[str, list[str]]) -> None:
    bad = {where: found for where, found in checked.items() if found and not where.startswith("probe:")}
    assert not bad, "queries Azure would refuse:\n" + json.dumps(bad, indent=2)


@pytest.mark.parametrize(("query", "expected"), PROBES.items())
def test_the_checker_reports_a_broken_query(checked: dict[str, list[str]], query: str, expected: str) -> None:
    # The check above must be able to fail: each probe is a query Azure refuses.
    assert any(expected in error for error in checked[f"probe:{query}"]), checked[f"probe:{query}"]
