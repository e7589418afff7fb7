"""local.settings.json precedence, host.json options and %AppSetting% resolution."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from tools.devhost.errors import StartupError
from tools.devhost.settings import (
    load_host_options,
    load_local_settings,
    parse_timespan,
    resolve_connection,
    resolve_expression,
)


def write(folder: Path, name: str, data: object) -> None:
    (folder / name).write_text(json.dumps(data))


def test_environment_variables_win_and_skipped_keys_are_logged_without_values(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    write(tmp_path, "local.settings.json", {"IsEncrypted": False, "Values": {
        "API_KEY": "file-secret", "JOBS_QUEUE": "jobs", "WORKERS": 4, "ENABLED": True},
        "Host": {"LocalHttpPort": 7072}})
    env = {"API_KEY": "env-secret"}
    with caplog.at_level(logging.INFO, logger="devhost"):
        loaded = load_local_settings(tmp_path, env)
    assert env == {"API_KEY": "env-secret", "JOBS_QUEUE": "jobs", "WORKERS": "4", "ENABLED": "True"}
    assert loaded.skipped == ("API_KEY",)
    assert loaded.local_http_port == 7072
    assert "'API_KEY'" in caplog.text
    assert "secret" not in caplog.text.replace("'API_KEY'", "")


def test_no_local_settings_file_changes_nothing(tmp_path: Path) -> None:
    env: dict[str, str] = {}
    assert load_local_settings(tmp_path, env).applied == ()
    assert env == {}


def test_encrypted_local_settings_stop_the_start(tmp_path: Path) -> None:
    write(tmp_path, "local.settings.json", {"IsEncrypted": True, "Values": {"A": "xyz"}})
    with pytest.raises(StartupError, match="IsEncrypted"):
        load_local_settings(tmp_path, {})


def test_host_json_defaults_are_the_extension_defaults(tmp_path: Path) -> None:
    write(tmp_path, "host.json", {"version": "2.0"})
    options = load_host_options(tmp_path, {})
    assert options.route_prefix == "api"
    assert options.function_timeout_s == 30 * 60
    queues = options.queues
    assert (queues.batch_size, queues.max_polling_interval_s, queues.visibility_timeout_s) == (16, 60.0, 0.0)
    assert (queues.max_dequeue_count, queues.message_encoding) == (5, "base64")
    assert queues.new_batch_threshold % 8 == 0  # batchSize / 2 per processor


def test_host_json_values_and_app_setting_overrides(tmp_path: Path) -> None:
    write(tmp_path, "host.json", {"version": "2.0", "functionTimeout": "00:05:00", "extensions": {
        "http": {"routePrefix": ""},
        "queues": {"BatchSize": 8, "newBatchThreshold": 4, "maxPollingInterval": "00:00:02",
                   "visibilityTimeout": "00:00:10", "messageEncoding": "None"}}})
    env = {"AzureFunctionsJobHost__extensions__queues__maxDequeueCount": "2"}
    options = load_host_options(tmp_path, env)
    assert (options.route_prefix, options.function_timeout_s) == ("", 300.0)
    queues = options.queues
    assert (queues.batch_size, queues.new_batch_threshold, queues.max_polling_interval_s) == (8, 4, 2.0)
    assert (queues.visibility_timeout_s, queues.max_dequeue_count, queues.message_encoding) == (10.0, 2, "none")


@pytest.mark.parametrize(("queues", "message"), [
    ({"batchSize": 33}, "batchSize"),
    ({"maxPollingInterval": "00:00:00.05"}, "maxPollingInterval"),
    ({"messageEncoding": "utf8"}, "messageEncoding"),
    ({"visibilityTimeout": "ten seconds"}, "visibilityTimeout"),
])
def test_invalid_queue_options_fail_the_start_naming_the_option(
        tmp_path: Path, queues: dict[str, object], message: str) -> None:
    write(tmp_path, "host.json", {"version": "2.0", "extensions": {"queues": queues}})
    with pytest.raises(StartupError, match=message):
        load_host_options(tmp_path, {})


def test_missing_host_json_fails_the_start(tmp_path: Path) -> None:
    with pytest.raises(StartupError, match=r"host\.json"):
        load_host_options(tmp_path, {})


@pytest.mark.parametrize(("text", "seconds"), [
    ("00:05:00", 300), ("1.02:00:00", 93600), ("00:00:01.5", 1.5), ("-1", -86400), ("2", 172800)])
def test_timespans_read_like_dotnet(text: str, seconds: float) -> None:
    assert parse_timespan(text, "x") == seconds


def test_expressions_resolve_from_app_settings() -> None:
    env = {"JOBS_QUEUE": "ai-jobs", "Queues__Suffix": "eu"}
    assert resolve_expression("%JOBS_QUEUE%-poison", env, function="f", prop="queueName") == "ai-jobs-poison"
    assert resolve_expression("%jobs_queue%", env, function="f", prop="queueName") == "ai-jobs"
    assert resolve_expression("%Queues:Suffix%", env, function="f", prop="queueName") == "eu"


def test_an_unset_setting_names_the_setting_and_the_function() -> None:
    with pytest.raises(StartupError, match=r"'jobs_worker'.*'%JOBS_QUEUE%' does not resolve.*'JOBS_QUEUE'"):
        resolve_expression("%JOBS_QUEUE%", {}, function="jobs_worker", prop="queueName")


def test_connections_come_from_the_named_setting() -> None:
    env = {"AzureWebJobsStorage": "UseDevelopmentStorage=true", "AzureWebJobsOther": "other"}
    assert resolve_connection("", env, function="f") == "UseDevelopmentStorage=true"
    assert resolve_connection("Other", env, function="f") == "other"
    with pytest.raises(StartupError, match="'Missing' does not exist"):
        resolve_connection("Missing", env, function="f")
    with pytest.raises(StartupError, match="identity-based"):
        resolve_connection("Ident", {"Ident__queueServiceUri": "https://x"}, function="f")
