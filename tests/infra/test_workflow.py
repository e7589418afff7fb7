"""The azd pipeline, .github/workflows/azure-dev.yml: valid against GitHub's workflow schema (vendored, no
network), secretless, checks before any deploy, and the deploy job step for step as azd's template ships it."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from ruamel.yaml import YAML

ROOT = Path(__file__).resolve().parents[2]
WORKFLOW = ROOT / ".github" / "workflows" / "azure-dev.yml"
# SchemaStore's github-workflow.json as check-jsonschema 0.39.0 vendors it (check_jsonschema/builtin_schemas/
# vendor/github-workflows.json); the digest is the one that package records beside it.
SCHEMA = Path(__file__).parent / "schemas" / "github-workflow.json"
SCHEMA_SHA256 = "d10c9f4656e1bd5bc6727e9b35080e017dc167154726fca93da33c7a6bd1c4f3"
# The steps of the job `azd pipeline config` writes for a Bicep project with federated credentials
# (Azure/azure-dev, cli/azd/resources/pipeline/.github/azure-dev.ymlt): name -> what it uses or runs.
AZD_TEMPLATE_STEPS = [
    ("Checkout", "actions/checkout@v4"),
    ("Install azd", "Azure/setup-azd@v2"),
    ("Log in with Azure (Federated Credentials)",
     'azd auth login `\n  --client-id "$Env:AZURE_CLIENT_ID" `\n  --federated-credential-provider "github" `\n'
     '  --tenant-id "$Env:AZURE_TENANT_ID"\n'),
    ("Provision Infrastructure", "azd provision --no-prompt"),
    ("Deploy Application", "azd deploy --no-prompt"),
]
AZD_VARIABLES = ["AZURE_CLIENT_ID", "AZURE_TENANT_ID", "AZURE_SUBSCRIPTION_ID", "AZURE_ENV_NAME", "AZURE_LOCATION"]


@pytest.fixture(scope="module")
def workflow() -> dict[str, Any]:
    # YAML 1.2 (ruamel): `on:` stays the key GitHub reads, where YAML 1.1 loaders turn it into True.
    loaded: dict[str, Any] = json.loads(json.dumps(YAML(typ="safe", pure=True).load(WORKFLOW.read_text())))
    return loaded


def test_the_workflow_is_valid_against_github_workflow_schema(workflow: dict[str, Any]) -> None:
    raw = SCHEMA.read_bytes()
    assert hashlib.sha256(raw).hexdigest() == SCHEMA_SHA256, "the vendored schema changed"
    schema = json.loads(raw)
    jsonschema.Draft7Validator.check_schema(schema)
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in jsonschema.Draft7Validator(schema).iter_errors(workflow)]
    assert not errors


def test_the_schema_catches_a_broken_workflow(workflow: dict[str, Any]) -> None:
    broken = json.loads(json.dumps(workflow))
    broken["jobs"]["build"]["steps"][0]["uses"] = 42
    del broken["jobs"]["checks"]["runs-on"]
    assert not jsonschema.Draft7Validator(json.loads(SCHEMA.read_text())).is_valid(broken)


def test_no_secret_is_needed_and_the_token_is_federated(workflow: dict[str, Any]) -> None:
    assert "secrets." not in WORKFLOW.read_text()
    assert workflow["permissions"] == {"id-token": "write", "contents": "read"}
    env = workflow["jobs"]["build"]["env"]
    assert env == {name: f"${{{{ vars.{name} }}}}" for name in AZD_VARIABLES}


def test_the_deploy_job_is_azds_template_after_the_checks(workflow: dict[str, Any]) -> None:
    build = workflow["jobs"]["build"]
    assert build["needs"] == "checks"
    assert "refs/heads/main" in build["if"] and "pull_request" in build["if"]
    steps = [(step["name"], step.get("uses") or step["run"]) for step in build["steps"]]
    assert steps == AZD_TEMPLATE_STEPS
    assert workflow["on"]["push"]["branches"] == ["main"]


def test_the_checks_are_lint_types_unit_tests_and_the_audit(workflow: dict[str, Any]) -> None:
    runs = [step.get("run", "") for step in workflow["jobs"]["checks"]["steps"]]
    for target in ("make .venv/.installed", "make lint", "make typecheck", "make unit", "make audit", "make sbom"):
        assert any(run.startswith(target) for run in runs), target
