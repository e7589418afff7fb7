"""Role assignments: one module loops over {principalId, principalType, roleDefinitionId, scope};
names are guid(scope, principal, role); every scope kind main.bicep uses is one the module handles."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

INFRA = Path(__file__).resolve().parents[2] / "infra"
MODULE = INFRA / "core" / "security" / "role-assignments.bicep"
ROLE_ASSIGNMENT = "Microsoft.Authorization/roleAssignments"

# The session fixture from conftest.py: a Bicep file -> pycep's read-only JSON tree.
ParseBicep = Callable[[Path], Mapping[str, Any]]


def _accessor(obj: str, prop: str) -> dict[str, Any]:
    return {"operator": {"type": "property_accessor", "operands": {"operand_1": obj, "operand_2": prop}}}


def _filter_kind(variable: dict[str, Any]) -> str:
    """'storage' from var x = filter(assignments, a => a.scope == 'storage') as pycep 0.5 trees it."""
    expression = variable["value"]["function"]["parameters"]["expression"]
    if "detail" in expression:  # later pycep versions wrap the lambda
        expression = expression["detail"]["expression"]
    # pycep trees `a.scope == 'x'` as a.(scope == 'x')
    equals = expression["operator"]["operands"]["operand_2"]["operator"]
    assert equals["type"] == "equals" and equals["operands"]["operand_1"] == "scope", equals
    kind = equals["operands"]["operand_2"]
    assert isinstance(kind, str), equals
    return kind


def _module_loops(parse_bicep: ParseBicep) -> dict[str, dict[str, Any]]:
    """scope kind -> the roleAssignments resource loop handling it."""
    tree = parse_bicep(MODULE)
    loops: dict[str, dict[str, Any]] = {}
    for res in tree["resources"].values():
        if res["type"] != ROLE_ASSIGNMENT:
            continue
        array = res["config"]["loop_type"]["detail"]["array_name"]
        loops[_filter_kind(tree["variables"][array])] = res["config"]
    return loops


def test_only_the_module_assigns_roles(parse_bicep: ParseBicep) -> None:
    elsewhere = [
        str(path.relative_to(INFRA))
        for path in INFRA.rglob("*.bicep")
        if path != MODULE and any(r["type"] == ROLE_ASSIGNMENT for r in parse_bicep(path).get("resources", {}).values())
    ]
    assert not elsewhere, f"role assignments outside {MODULE.name}: {elsewhere}"


def test_names_are_guid_of_scope_principal_role(parse_bicep: ParseBicep) -> None:
    for kind, loop in _module_loops(parse_bicep).items():
        body = loop["config"]
        item = loop["loop_type"]["detail"]["item_name"]
        guid = body["name"]["function"]
        assert guid["type"] == "guid", kind
        args = list(guid["parameters"].values())
        assert args == [
            _accessor(body["scope"], "id"),
            _accessor(item, "principalId"),
            _accessor(item, "roleDefinitionId"),
        ], kind
        assert body["properties"]["principalType"] == _accessor(item, "principalType"), kind


def test_main_uses_only_scopes_the_module_handles(parse_bicep: ParseBicep) -> None:
    main = parse_bicep(INFRA / "main.bicep")
    used = {role["scope"] for role in main["variables"]["dataRoles"]["value"]}
    handled = set(_module_loops(parse_bicep))
    assert used, "main.bicep grants no data role"
    assert used <= handled, f"scope kinds no loop in {MODULE.name} handles: {sorted(used - handled)}"


def test_the_app_identity_gets_its_data_roles(parse_bicep: ParseBicep) -> None:
    roles = parse_bicep(INFRA / "main.bicep")["variables"]["roles"]["value"]
    granted = {
        (_text(r["roleDefinitionId"]), r["scope"])
        for r in parse_bicep(INFRA / "main.bicep")["variables"]["dataRoles"]["value"]
    }
    expected = {
        ("roles.storageBlobDataOwner", "storage"),
        ("roles.storageQueueDataContributor", "storage"),
        ("roles.keyVaultSecretsUser", "keyVault"),
        ("roles.monitoringMetricsPublisher", "appInsights"),
        ("roles.cognitiveServicesOpenAIUser", "openAiPrimary"),
        ("roles.cognitiveServicesOpenAIUser", "openAiSecondary"),
    }
    assert expected <= granted, f"missing grants: {sorted(expected - granted)}"
    # Built-in role ids, the same in every tenant.
    assert roles["keyVaultSecretsUser"] == "4633458b-17de-408a-b874-0445c86b69e6"
    assert roles["cognitiveServicesOpenAIUser"] == "5e0bd9bd-7b93-4f28-af87-19fc36ad61bd"
    assert roles["monitoringMetricsPublisher"] == "3913510d-42f4-4e42-8a64-420c390055eb"


def _text(expr: Any) -> str:
    if isinstance(expr, dict) and "operator" in expr:
        ops = expr["operator"]["operands"]
        return f"{_text(ops['operand_1'])}.{_text(ops['operand_2'])}"
    return str(expr)
