"""App settings and host.json: local.settings.json into the environment, host options, %AppSetting% lookups."""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tools.devhost.errors import StartupError

log = logging.getLogger("devhost")

# The host lets app settings override host.json: AzureFunctionsJobHost__extensions__queues__batchSize=4.
HOST_JSON_OVERRIDE_PREFIX = "AzureFunctionsJobHost__"
DEFAULT_FUNCTION_TIMEOUT_S = 30 * 60.0  # the host's default outside the Consumption plan (Core Tools too)
MIN_POLLING_INTERVAL_S = 0.1  # QueuePollingIntervals.Minimum
MAX_BATCH_SIZE = 32  # the Storage service returns at most 32 messages per receive
_EXPRESSION = re.compile(r"%([^%]+)%")
_TIMESPAN = re.compile(r"^\s*(-)?(?:(\d+)\.)?(\d{1,2}):(\d{1,2})(?::(\d{1,2})(?:\.(\d{1,7}))?)?\s*$")


@dataclass(frozen=True)
class QueueOptions:
    """host.json extensions.queues, with the Storage queues extension's defaults."""

    batch_size: int = 16
    new_batch_threshold: int = 8
    max_polling_interval_s: float = 60.0
    visibility_timeout_s: float = 0.0
    max_dequeue_count: int = 5
    message_encoding: str = "base64"


@dataclass(frozen=True)
class HostOptions:
    """The parts of host.json the devhost honours."""

    route_prefix: str = "api"
    function_timeout_s: float | None = DEFAULT_FUNCTION_TIMEOUT_S
    queues: QueueOptions = field(default_factory=QueueOptions)


@dataclass(frozen=True)
class LocalSettings:
    """What loading local.settings.json did: keys applied, keys the environment already had."""

    applied: tuple[str, ...] = ()
    skipped: tuple[str, ...] = ()
    local_http_port: int | None = None


def is_true_like(value: str | None) -> bool:
    """The worker's reading of boolean app settings."""
    return value is not None and value.strip().lower() in {"1", "true", "t", "yes", "y"}


def load_local_settings(script_root: Path, environ: MutableMapping[str, str]) -> LocalSettings:
    """Copy local.settings.json Values into `environ`; variables already set win, as in Core Tools."""
    path = script_root / "local.settings.json"
    if not path.exists():
        return LocalSettings()
    data = _read_json(path)
    applied: list[str] = []
    skipped: list[str] = []
    for key, value in _values(path, data).items():
        if key in environ:
            # Key name only: values are often secrets.
            log.info("Skipping '%s' from local settings as it's already defined in current environment variables.", key)
            skipped.append(key)
            continue
        environ[key] = value
        applied.append(key)
    host = data.get("Host") or {}
    port = host.get("LocalHttpPort") if isinstance(host, dict) else None
    return LocalSettings(tuple(applied), tuple(skipped), int(port) if port else None)


def read_values(path: Path) -> dict[str, str]:
    """The Values of a local.settings.json file as app-setting text (Core Tools' rules)."""
    return _values(path, _read_json(path))


def _values(path: Path, data: dict[str, Any]) -> dict[str, str]:
    if data.get("IsEncrypted") is True:
        raise StartupError(f"{path}: IsEncrypted is true; devhost cannot decrypt it (Core Tools uses a machine key). "
                           "Store the values unencrypted or pass them as environment variables.")
    values = data.get("Values") or {}
    if not isinstance(values, dict):
        raise StartupError(f"{path}: 'Values' must be an object of app settings")
    return {key: _setting_text(path, key, raw) for key, raw in values.items()}


def load_host_options(script_root: Path, environ: Mapping[str, str]) -> HostOptions:
    """Read host.json (plus AzureFunctionsJobHost__ overrides) and validate it as the host does."""
    path = script_root / "host.json"
    if not path.exists():
        raise StartupError(f"host.json not found in {script_root}: the Functions host needs it at the script root")
    data = _read_json(path)
    for key, value in environ.items():
        if key.upper().startswith(HOST_JSON_OVERRIDE_PREFIX.upper()):
            _set_path(data, key[len(HOST_JSON_OVERRIDE_PREFIX):].split("__"), value)
    if str(_get(data, "version", "")) != "2.0":
        raise StartupError(f"{path}: 'version' must be \"2.0\" (the only host.json schema of Functions v4)")
    extensions = _section(data, "extensions")
    route_prefix = str(_get(_section(extensions, "http"), "routePrefix", "api"))
    timeout = _get(data, "functionTimeout", None)
    timeout_s = DEFAULT_FUNCTION_TIMEOUT_S if timeout is None else parse_timespan(str(timeout), "functionTimeout")
    return HostOptions(route_prefix=route_prefix,
                       function_timeout_s=None if timeout_s < 0 else timeout_s,  # -1: unbounded
                       queues=_queue_options(_section(extensions, "queues")))


def parse_timespan(text: str, setting: str) -> float:
    """A .NET TimeSpan ("00:05:00", "1.02:00:00", "-1" or a day count) in seconds."""
    stripped = text.strip()
    if re.fullmatch(r"-?\d+", stripped):
        return int(stripped) * 86400.0
    match = _TIMESPAN.match(text)
    if not match:
        raise StartupError(f"host.json {setting}: '{text}' is not a TimeSpan (expected hh:mm:ss)")
    sign, days, hours, minutes, seconds, fraction = match.groups()
    if int(hours) > 23 or int(minutes) > 59 or int(seconds or 0) > 59:
        raise StartupError(f"host.json {setting}: '{text}' is out of range (hh < 24, mm and ss < 60)")
    total = (int(days or 0) * 86400 + int(hours) * 3600 + int(minutes) * 60 + int(seconds or 0)
             + (int(fraction) / 10 ** len(fraction) if fraction else 0.0))
    return -total if sign else total


def lookup_setting(environ: Mapping[str, str], key: str) -> str | None:
    """An app setting as .NET configuration reads it: `a:b` is `a__b`, and names ignore case."""
    candidates = [key, key.replace(":", "__")]
    for candidate in candidates:
        if candidate in environ:
            return environ[candidate]
    folded = {c.upper() for c in candidates}
    return next((value for name, value in environ.items() if name.upper() in folded), None)


def resolve_expression(value: str, environ: Mapping[str, str], *, function: str, prop: str) -> str:
    """Replace every %Setting% in a binding property, failing the start when one is not set."""

    def setting(match: re.Match[str]) -> str:
        key = match.group(1)
        found = lookup_setting(environ, key)
        if found is None:
            raise StartupError(f"The '{function}' function is in error: '%{key}%' does not resolve to a value "
                               f"(binding property '{prop}' needs the app setting '{key}').")
        return found

    return _EXPRESSION.sub(setting, value)


def resolve_connection(name: str, environ: Mapping[str, str], *, function: str) -> str:
    """The connection string a binding's `connection` names (AzureWebJobsStorage when empty)."""
    setting = name or "AzureWebJobsStorage"
    for candidate in (setting, f"AzureWebJobs{setting}"):
        value = lookup_setting(environ, candidate)
        if value:
            return value
    if any(lookup_setting(environ, f"{setting}__{suffix}") for suffix in ("serviceUri", "queueServiceUri")):
        raise StartupError(f"The '{function}' function is in error: connection '{setting}' is identity-based; "
                           "devhost needs a connection string (Azurite) in that app setting.")
    raise StartupError(f"The '{function}' function is in error: Storage account connection string '{setting}' "
                       "does not exist. Make sure that it is a defined App Setting.")


def _queue_options(section: Mapping[str, Any]) -> QueueOptions:
    batch_size = _int(section, "batchSize", 16)
    if not 1 <= batch_size <= MAX_BATCH_SIZE:
        raise StartupError(f"host.json extensions.queues.batchSize must be 1..{MAX_BATCH_SIZE}, not {batch_size}")
    # The extension's default scales with the processor count outside the Consumption plan.
    threshold = _int(section, "newBatchThreshold", (batch_size // 2) * _processor_count())
    if threshold < 0:
        raise StartupError("host.json extensions.queues.newBatchThreshold must not be negative")
    polling = parse_timespan(str(_get(section, "maxPollingInterval", "00:01:00")),
                             "extensions.queues.maxPollingInterval")
    if polling < MIN_POLLING_INTERVAL_S:
        raise StartupError("host.json extensions.queues.maxPollingInterval must not be less than 00:00:00.1")
    visibility = parse_timespan(str(_get(section, "visibilityTimeout", "00:00:00")),
                                "extensions.queues.visibilityTimeout")
    dequeues = _int(section, "maxDequeueCount", 5)
    if dequeues < 1:
        raise StartupError("host.json extensions.queues.maxDequeueCount must not be less than 1")
    encoding = str(_get(section, "messageEncoding", "base64")).lower()
    if encoding not in {"base64", "none"}:
        raise StartupError(f"host.json extensions.queues.messageEncoding must be base64 or none, not '{encoding}'")
    return QueueOptions(batch_size, threshold, polling, max(visibility, 0.0), dequeues, encoding)


def _processor_count() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def _int(section: Mapping[str, Any], key: str, default: int) -> int:
    value = _get(section, key, default)
    try:
        return int(value)
    except (TypeError, ValueError):
        raise StartupError(f"host.json {key}: '{value}' is not a whole number") from None


def _get(section: Mapping[str, Any], key: str, default: Any) -> Any:
    """.NET configuration keys ignore case."""
    return next((value for name, value in section.items() if name.lower() == key.lower()), default)


def _section(section: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = _get(section, key, {})
    return value if isinstance(value, dict) else {}


def _set_path(data: dict[str, Any], parts: list[str], value: str) -> None:
    node = data
    for part in parts[:-1]:
        name = next((k for k in node if k.lower() == part.lower()), part)
        if not isinstance(node.get(name), dict):
            node[name] = {}
        node = node[name]
    name = next((k for k in node if k.lower() == parts[-1].lower()), parts[-1])
    node[name] = value


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except json.JSONDecodeError as exc:
        raise StartupError(f"{path}: not valid JSON ({exc.msg}, line {exc.lineno})") from None
    if not isinstance(data, dict):
        raise StartupError(f"{path}: expected a JSON object")
    return data


def _setting_text(path: Path, key: str, raw: object) -> str:
    if isinstance(raw, str):
        return raw
    if isinstance(raw, bool):  # before int: Newtonsoft writes booleans as True/False
        return str(raw)
    if raw is None:
        return ""
    if isinstance(raw, int | float):
        return json.dumps(raw)
    # Core Tools reads Values as strings and cannot read this file at all (it then runs without it).
    kind = "a JSON list" if isinstance(raw, list) else "a JSON object" if isinstance(raw, dict) else "not a string"
    raise StartupError(f"{path.name}: Values.{key} is {kind}, but every value must be a string: write it as "
                       "its JSON text inside one string (json.dumps of the value), as local.settings.example.json does")
