"""The Function App's app settings in the Bicep against shared/core/settings.py: every "azure" setting set, no
"local" one, and no key, connection string with a key, or @secure value in any setting."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
from pydantic import Field, JsonValue
from pydantic_settings import BaseSettings

from shared.core.settings import EndpointConfig, Settings

SCOPES = {"azure", "local", "tuning"}
SITE = "Microsoft.Web/sites"
SITE_CONFIG = "Microsoft.Web/sites/config"

# The session fixture from conftest.py: a Bicep file -> pycep's read-only JSON tree.
ParseBicep = Callable[[Path], Mapping[str, Any]]
# The function_app fixture: the Bicep file declaring the Function App and its tree.
FunctionApp = tuple[Path, Mapping[str, Any]]

# Settings the Functions host (not shared/core/settings.py) reads; anything else in the Bicep is a stale name.
HOST_SETTINGS = {
    "AzureWebJobsStorage__accountName",
    "AzureWebJobsStorage__credential",
    "AzureWebJobsStorage__clientId",
    "APPLICATIONINSIGHTS_AUTHENTICATION_STRING",
    "PYTHON_ENABLE_INIT_INDEXING",
    "AzureWebJobsDisableHomepage",
}

# What must never reach an app setting: account keys, SAS, list*() calls that return keys.
SECRET_PATTERNS = [
    r"AccountKey=",
    r"SharedAccessKey=",
    r"SharedAccessSignature",
    r"DefaultEndpointsProtocol=",
    r"\blist[A-Za-z]*\(",  # listKeys(), listConnectionStrings(), listAccountSas(), ...
    r"(primary|secondary)(Readonly)?(Master)?Key",
    r"\bkey[12]\b",
    r"connectionStrings",
]


def scopes_of(settings_class: type[BaseSettings]) -> dict[str, JsonValue]:
    """App-setting name (the field's alias) -> scope from json_schema_extra, read at run time."""
    scopes: dict[str, JsonValue] = {}
    for name, field in settings_class.model_fields.items():
        extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
        scopes[field.alias or name] = extra.get("scope")
    return scopes


def _names_with_scope(scope: str) -> set[str]:
    return {name for name, s in scopes_of(Settings).items() if s == scope}


def _function_app_file(infra_dir: Path, parse_bicep: ParseBicep) -> Path:
    found = [
        path
        for path in sorted(infra_dir.rglob("*.bicep"))
        for res in parse_bicep(path).get("resources", {}).values()
        if res["type"] == SITE and not res["existing"]
    ]
    assert len(found) == 1, f"expected one {SITE} resource under infra/, found it in {found}"
    return found[0]


def _resolve(expr: Any, variables: Mapping[str, Any]) -> Any:
    """A variable reference (pycep gives identifiers as bare strings) replaced by the variable's value."""
    if isinstance(expr, str) and expr in variables:
        return variables[expr]["value"]
    return expr


def _unquote(key: str) -> str:
    """pycep keeps the quotes of a quoted object key ('COSMOS_KEY': ...); the setting name is without them."""
    return key[1:-1] if len(key) > 1 and key[0] == key[-1] == "'" else key


def _accessor(obj: str, prop: str) -> dict[str, Any]:
    return {"operator": {"type": "property_accessor", "operands": {"operand_1": obj, "operand_2": prop}}}


def _settings_object(expr: Any, variables: Mapping[str, Any]) -> dict[str, Any]:
    """{setting name: value expression} from an appSettings value: a list of {name, value}, a for-loop
    over items(object), or an object literal / union() of objects (as in sites/config appsettings)."""
    expr = _resolve(expr, variables)
    if isinstance(expr, list):
        return {_unquote(item["name"]): item["value"] for item in expr}
    if isinstance(expr, dict) and "loop_type" in expr:
        loop = expr["loop_type"]
        detail = loop["detail"]
        if loop["type"] == "object":  # pycep 0.5: [for s in items(obj): ...]
            source = detail["object_name"]
        else:  # later pycep: array loop over a call to items()
            source = detail["array_name"]["function"]["parameters"]["arg_1"]
        item, body = detail["item_name"], expr["config"]
        # Only the plain mapping {name: item.key, value: item.value} keeps the object's keys as the names.
        assert body.get("name") == _accessor(item, "key") and body.get("value") == _accessor(item, "value"), body
        return _settings_object(source, variables)
    if isinstance(expr, dict) and expr.get("function", {}).get("type") == "union":
        merged: dict[str, Any] = {}
        for arg in expr["function"]["parameters"].values():
            merged.update(_settings_object(arg, variables))
        return merged
    if isinstance(expr, dict) and "function" not in expr and "operator" not in expr:
        return {_unquote(key): value for key, value in expr.items()}
    raise AssertionError(f"cannot read app settings from {json.dumps(expr)[:200]}")


@pytest.fixture(scope="module")
def function_app(infra_dir: Path, parse_bicep: ParseBicep) -> FunctionApp:
    path = _function_app_file(infra_dir, parse_bicep)
    return path, parse_bicep(path)


@pytest.fixture(scope="module")
def app_settings(function_app: FunctionApp) -> dict[str, Any]:
    """Every app setting the Bicep gives the Function App: siteConfig.appSettings plus any sites/config appsettings."""
    _, tree = function_app
    variables = tree.get("variables", {})
    settings: dict[str, Any] = {}
    for res in tree["resources"].values():
        config = res["config"]
        if res["type"] == SITE and not res["existing"]:
            site_config = config.get("properties", {}).get("siteConfig", {})
            assert "appSettings" in site_config, "the Function App has no siteConfig.appSettings"
            settings.update(_settings_object(site_config["appSettings"], variables))
        elif res["type"] == SITE_CONFIG and config.get("name") == "appsettings":
            settings.update(_settings_object(config["properties"], variables))
    return settings


def test_every_setting_has_a_scope() -> None:
    untagged = {name: scope for name, scope in scopes_of(Settings).items() if scope not in SCOPES}
    assert not untagged, (f"settings without a scope tag in shared/core/settings.py (one of {sorted(SCOPES)}): "
                           f"{untagged}")


def test_scope_reader_flags_an_untagged_field() -> None:
    # The check above must be able to fail: a field without json_schema_extra has no scope.
    class Untagged(BaseSettings):
        some_setting: str = Field(default="", alias="SOME_SETTING")

    assert scopes_of(Untagged) == {"SOME_SETTING": None}


def test_every_azure_setting_is_set(app_settings: dict[str, Any]) -> None:
    azure = _names_with_scope("azure")
    assert azure, "shared.core.settings.Settings has no setting with scope azure"
    missing = sorted(azure - app_settings.keys())
    assert not missing, f"settings with scope azure that the Bicep does not set: {missing}"


def test_azure_settings_have_a_value(app_settings: dict[str, Any]) -> None:
    empty = sorted(
        name for name in _names_with_scope("azure") & app_settings.keys() if app_settings[name] in ("", None)
    )
    assert not empty, f"settings set to an empty literal: {empty}"


def test_no_local_setting_is_set(app_settings: dict[str, Any]) -> None:
    leaked = sorted(_names_with_scope("local") & app_settings.keys())
    assert not leaked, f"settings with scope local (emulators only) set in Azure: {leaked}"


def test_no_unknown_setting(app_settings: dict[str, Any]) -> None:
    known = set(scopes_of(Settings)) | HOST_SETTINGS
    unknown = sorted(app_settings.keys() - known)
    assert not unknown, f"settings neither in shared/core/settings.py nor read by the host: {unknown}"


def test_host_storage_uses_the_identity(app_settings: dict[str, Any]) -> None:
    assert "AzureWebJobsStorage" not in app_settings, "AzureWebJobsStorage as a connection string carries a key"
    assert app_settings.get("AzureWebJobsStorage__credential") == "managedidentity"
    assert app_settings.get("AzureWebJobsStorage__clientId")
    assert app_settings.get("AzureWebJobsStorage__accountName")
    assert app_settings.get("PYTHON_ENABLE_INIT_INDEXING") == "1"
    assert "Authorization=AAD" in str(app_settings.get("APPLICATIONINSIGHTS_AUTHENTICATION_STRING"))


def _secure_params(tree: Mapping[str, Any]) -> set[str]:
    return {
        name
        for name, param in tree.get("parameters", {}).items()
        if any(d.get("type") == "secure" for d in param.get("decorators", []))
    }


def _references(text: str, names: set[str]) -> set[str]:
    """Names used in a serialized expression: as a bare identifier or inside ${...} interpolation."""
    return {n for n in names if re.search(rf'(?<![\w.])"{n}"|\${{[^}}]*\b{n}\b', text)}


def _secrets_in(text: str) -> list[str]:
    return [p for p in SECRET_PATTERNS if re.search(p, text)]


def test_no_secret_in_setting_values(app_settings: dict[str, Any], function_app: FunctionApp) -> None:
    _, tree = function_app
    secure = _secure_params(tree)
    bad = {}
    for name, value in app_settings.items():
        text = json.dumps(value)
        problems = _secrets_in(text) + [f"@secure param {p}" for p in _references(text, secure)]
        if problems:
            bad[name] = problems
    assert not bad, f"app settings that would hold a key or secret: {bad}"


def test_no_secret_passed_to_the_function_app_module(
    function_app: FunctionApp, infra_dir: Path, parse_bicep: ParseBicep
) -> None:
    """The values main.bicep feeds into the app module: no key, no @secure parameter of main."""
    path, _ = function_app
    main = parse_bicep(infra_dir / "main.bicep")
    calls = [
        m for m in main.get("modules", {}).values() if (infra_dir / m["detail"]["path"]).resolve() == path.resolve()
    ]
    assert len(calls) == 1, f"main.bicep should deploy {path.name} once"
    text = json.dumps(calls[0]["config"].get("params", {}))
    problems = _secrets_in(text) + [f"@secure param {p}" for p in _references(text, _secure_params(main))]
    assert not problems, f"main.bicep passes secrets to the Function App module: {problems}"


def test_function_app_module_gets_every_required_param(
    function_app: FunctionApp, infra_dir: Path, parse_bicep: ParseBicep
) -> None:
    # A required parameter left out fails the deployment; Bicep's compiler is not available here to say so.
    path, tree = function_app
    main = parse_bicep(infra_dir / "main.bicep")
    call = next(m for m in main["modules"].values() if (infra_dir / m["detail"]["path"]).resolve() == path.resolve())
    required = {n for n, p in tree.get("parameters", {}).items() if "default" not in p or p["default"] is None}
    missing = sorted(required - call["config"].get("params", {}).keys())
    assert not missing, f"main.bicep does not pass these required params of {path.name}: {missing}"


def test_main_outputs_every_azure_setting(infra_dir: Path, parse_bicep: ParseBicep) -> None:
    # Outputs are named as the app settings they feed, so `azd env get-values` can drive a local run.
    outputs = parse_bicep(infra_dir / "main.bicep").get("outputs", {})
    missing = sorted(_names_with_scope("azure") - outputs.keys())
    assert not missing, f"main.bicep outputs missing for settings with scope azure: {missing}"


def test_function_app_runs_python_311_on_flex_for_azd(function_app: FunctionApp) -> None:
    _, tree = function_app
    site = next(r["config"] for r in tree["resources"].values() if r["type"] == SITE and not r["existing"])
    assert site["kind"] == "functionapp,linux"
    assert site["identity"]["type"] == "UserAssigned"
    runtime = site["properties"]["functionAppConfig"]["runtime"]
    assert runtime == {"name": "python", "version": "3.11"}
    storage = site["properties"]["functionAppConfig"]["deployment"]["storage"]
    assert storage["authentication"]["type"] == "UserAssignedIdentity"
    # azd finds the app to deploy `services.api` to by this tag (pycep keeps the key's quotes).
    assert json.dumps({"'azd-service-name'": "api"})[1:-1] in json.dumps(site["tags"]), site["tags"]


def test_ai_endpoints_match_the_config_model(infra_dir: Path, parse_bicep: ParseBicep) -> None:
    """AI_ENDPOINTS built in main.bicep validates as EndpointConfig (extra keys forbidden), two regions for each
    of the two chat tiers (docs/routing.md), no key."""
    endpoints = parse_bicep(infra_dir / "main.bicep")["variables"]["aiEndpoints"]["value"]
    # Expressions (module outputs) become placeholders; literals such as kind and priority stay as written.
    as_config = [
        EndpointConfig.model_validate({k: v if isinstance(v, (str, int)) else "placeholder" for k, v in e.items()})
        for e in endpoints
    ]
    assert [(e.kind, e.priority) for e in as_config] == [("azure_openai", 0), ("azure_openai", 1)] * 2
    assert all(e.api_key_secret is None and e.embedding_deployment for e in as_config)
    assert len({e.name for e in as_config}) == len(as_config)
