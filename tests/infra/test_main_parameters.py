"""infra/main.parameters.json feeds main.bicep from azd environment variables: no unknown parameter,
no required one missing (azd would prompt, CI would hang), no literal value where a variable belongs."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

INFRA = Path(__file__).resolve().parents[2] / "infra"
AZD_VAR = re.compile(r"^\$\{[A-Z][A-Z0-9_]*(=[^}]*)?\}$")

# The session fixture from conftest.py: a Bicep file -> pycep's read-only JSON tree.
ParseBicep = Callable[[Path], Mapping[str, Any]]


def _parameters() -> dict[str, dict[str, Any]]:
    parameters: dict[str, dict[str, Any]] = json.loads((INFRA / "main.parameters.json").read_text())["parameters"]
    return parameters


def test_every_parameter_exists_in_main(parse_bicep: ParseBicep) -> None:
    declared = parse_bicep(INFRA / "main.bicep")["parameters"].keys()
    unknown = sorted(_parameters().keys() - declared)
    assert not unknown, f"main.parameters.json sets parameters main.bicep does not declare: {unknown}"


def test_every_required_parameter_is_set(parse_bicep: ParseBicep) -> None:
    params = parse_bicep(INFRA / "main.bicep")["parameters"]
    required = {name for name, p in params.items() if p.get("default") is None}
    missing = sorted(required - _parameters().keys())
    assert not missing, f"required parameters of main.bicep missing from main.parameters.json: {missing}"


def test_values_come_from_azd_environment() -> None:
    literal = {name: p["value"] for name, p in _parameters().items() if not AZD_VAR.match(str(p.get("value")))}
    assert not literal, f"parameters not read from azd environment variables: {literal}"
    used = {p["value"] for p in _parameters().values()}
    for variable in ("${AZURE_ENV_NAME}", "${AZURE_LOCATION}", "${AZURE_PRINCIPAL_ID}"):
        assert variable in used, f"{variable} is not passed to main.bicep"


def test_main_is_subscription_scoped_and_tags_for_azd(parse_bicep: ParseBicep) -> None:
    main = parse_bicep(INFRA / "main.bicep")
    assert main["globals"]["scope"]["value"] == "subscription"
    groups = [r for r in main["resources"].values() if r["type"] == "Microsoft.Resources/resourceGroups"]
    assert len(groups) == 1, "main.bicep creates the resource group"
    # pycep keeps the quotes of a quoted object key.
    assert main["variables"]["tags"]["value"] == {"'azd-env-name'": "environmentName"}
    assert groups[0]["config"]["tags"] == "tags"
