"""Local settings: the environment wins, Core Tools' string rule, and one-line start-up errors."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from shared.core.settings import hash_api_key
from tools.appsettings import EXAMPLE_SETTINGS, ROOT, SettingsProblem, effective, file_values, validate
from tools.localenv import python_worker_env
from tools.tenants import add_tenant

OLLAMA = json.dumps([{"name": "ollama", "kind": "openai", "endpoint": "http://127.0.0.1:11434/v1",
                      "model": "llama3.2", "priority": 0}])


# Given in the environment, so a developer's own local.settings.json cannot change the outcome.
DEV_WITH_USD = json.dumps([{"tenant": "dev", "keys": [{"id": "k", "sha256": hash_api_key("k")}],
                            "limits": {"daily_usd": 5.0}}])


def _settings_file(tmp_path: Path, **values: object) -> Path:
    data = json.loads(EXAMPLE_SETTINGS.read_text())
    data["Values"].update(values)
    path = tmp_path / "local.settings.json"
    path.write_text(json.dumps(data))
    return path


def test_environment_variables_win_over_the_file(tmp_path: Path) -> None:
    values = effective(file_values(_settings_file(tmp_path)), {"AI_ENDPOINTS": OLLAMA})
    assert values["AI_ENDPOINTS"] == OLLAMA
    assert values["COSMOS_ENDPOINT"] == "http://127.0.0.1:8081"  # the file still fills the rest


def test_a_json_list_instead_of_a_string_names_the_key(tmp_path: Path) -> None:
    path = _settings_file(tmp_path, TENANTS=[{"tenant": "dev"}])
    with pytest.raises(SettingsProblem) as err:
        file_values(path)
    assert str(err.value).startswith(
        "local.settings.json: Values.TENANTS is a JSON list, but every value must be a string")
    assert "\n" not in str(err.value)


def test_numbers_and_booleans_read_as_text_as_core_tools_does(tmp_path: Path) -> None:
    values = file_values(_settings_file(tmp_path, MODEL_TIMEOUT_S=30, COSMOS_CREATE_CONTAINERS=True))
    assert (values["MODEL_TIMEOUT_S"], values["COSMOS_CREATE_CONTAINERS"]) == ("30", "True")


def test_a_usd_limit_on_a_model_without_a_price_is_one_line_naming_the_setting() -> None:
    values = effective(file_values(EXAMPLE_SETTINGS), {"AI_ENDPOINTS": OLLAMA})
    with pytest.raises(SettingsProblem) as err:
        validate(values)
    assert str(err.value) == (
        "invalid app settings: MODEL_PRICES has no price for llama3.2, but tenant 'dev' has a USD limit: "
        "add the price to MODEL_PRICES, or remove daily_usd and monthly_usd from the tenant")


def test_invalid_json_names_the_setting_never_the_value() -> None:
    values = effective(file_values(EXAMPLE_SETTINGS), {"LOCAL_SECRETS": "{not json: s3cret"})
    with pytest.raises(SettingsProblem) as err:
        validate(values)
    assert str(err.value).startswith("invalid app settings: LOCAL_SECRETS: not valid JSON")
    assert "s3cret" not in str(err.value)


def test_the_example_settings_are_valid() -> None:
    validate(file_values(EXAMPLE_SETTINGS))


def test_make_run_refuses_a_bad_setting_before_starting_anything() -> None:
    # The real command `make run` runs; validation comes before any port is opened.
    env = {"PATH": "/usr/bin:/bin", "AI_ENDPOINTS": OLLAMA, "TENANTS": DEV_WITH_USD, "MODEL_PRICES": "{}"}
    proc = subprocess.Popen([sys.executable, "-m", "tools.localenv", "run"], cwd=ROOT, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        _, stderr = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.terminate()  # SIGTERM: localenv stops whatever it started
        proc.communicate()
        pytest.fail("make run started although a setting is invalid")
    assert proc.returncode == 2
    lines = [line for line in stderr.splitlines() if not line.startswith("created local.settings.json")]
    assert lines == ["cannot start: invalid app settings: MODEL_PRICES has no price for llama3.2, but tenant "
                     "'dev' has a USD limit: add the price to MODEL_PRICES, or remove daily_usd and monthly_usd "
                     "from the tenant"]


def test_core_tools_gets_the_projects_interpreter_unless_one_is_chosen() -> None:
    python = "/repo/.venv/bin/python"
    env = python_worker_env(python, {"PATH": "/usr/bin"})
    assert env["languageWorkers:python:defaultExecutablePath"] == python
    assert env["languageWorkers__python__defaultExecutablePath"] == python
    assert env["PATH"] == "/repo/.venv/bin:/usr/bin"  # python3 on PATH is the venv's too
    chosen = python_worker_env(python, {"PATH": "/usr/bin", "languageWorkers:python:defaultExecutablePath": "/x"})
    assert "languageWorkers:python:defaultExecutablePath" not in chosen


def test_tenant_helper_stores_only_the_hash_and_the_app_accepts_the_result(tmp_path: Path) -> None:
    path = _settings_file(tmp_path)
    key = add_tenant(path, "acme", {"rpm": 60})
    text = path.read_text()
    assert key not in text
    tenants = json.loads(json.loads(text)["Values"]["TENANTS"])  # still a string, as Core Tools needs
    acme = next(t for t in tenants if t["tenant"] == "acme")
    assert acme["keys"][0]["sha256"] == hash_api_key(key) and acme["limits"] == {"rpm": 60}
    validate(file_values(path))
    with pytest.raises(SettingsProblem, match=re.escape("tenant 'acme' is already in local.settings.json")):
        add_tenant(path, "acme", {})


def test_make_help_lists_every_target() -> None:
    makefile = (ROOT / "Makefile").read_text()
    phony = next(line for line in makefile.splitlines() if line.startswith(".PHONY:")).split(":", 1)[1].split()
    make = shutil.which("make") or "make"
    shown = subprocess.run([make, "-s", "help"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    listed = [line.split()[1] for line in shown.splitlines() if line.strip().startswith("make ")]
    assert sorted(listed) == sorted(phony)
