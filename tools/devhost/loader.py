"""Imports the function app as the Python worker does and checks each function as worker and host do."""

from __future__ import annotations

import importlib
import inspect
import json
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import azure.functions as func
from azure.functions.decorators.function_app import Function

from tools.devhost.errors import FunctionLoadError, StartupError
from tools.devhost.routes import Route, RouteTable, host_order, parse_template, routes_conflict
from tools.devhost.schedules import Schedule, parse_schedule
from tools.devhost.settings import (
    is_true_like,
    lookup_setting,
    parse_timespan,
    resolve_connection,
    resolve_expression,
)
from tools.devhost.signature import Signature, check_signature

_FUNCTION_NAME = re.compile(r"^[a-z][a-z0-9_\-]{0,127}$", re.IGNORECASE)  # the host's rule
_QUEUE_NAME = re.compile(r"^[a-z0-9](?!.*--)[a-z0-9-]{1,61}[a-z0-9]$")  # Storage: 3-63, no leading/trailing/double dash


@dataclass(frozen=True)
class HttpTrigger:
    """An httpTrigger: its route (before the prefix) and methods (None: all)."""

    route: str
    methods: frozenset[str] | None


@dataclass(frozen=True)
class QueueBinding:
    """A queueTrigger or queue output, with its %settings% resolved."""

    param: str  # the parameter, or "$return"
    queue_name: str
    connection_name: str
    connection: str  # the connection string
    data_type: str | None = None


@dataclass(frozen=True)
class TimerTrigger:
    """A timerTrigger: its schedule (%settings% resolved) and whether it also runs when the host starts."""

    schedule: Schedule
    run_on_startup: bool = False
    use_monitor: bool = True


@dataclass(frozen=True)
class FunctionSpec:
    """One indexed function and everything needed to invoke it."""

    name: str
    fn: Callable[..., Any]
    directory: str
    trigger: HttpTrigger | QueueBinding | TimerTrigger
    trigger_param: str
    signature: Signature
    outputs: tuple[QueueBinding, ...]
    return_queue: QueueBinding | None
    disabled: bool


@dataclass(frozen=True)
class LoadedApp:
    """The app's functions in the host's order, its HTTP model and its route table."""

    functions: tuple[FunctionSpec, ...]
    http_streams: bool
    routes: RouteTable[FunctionSpec]


def load_app(script_root: Path, environ: Mapping[str, str], route_prefix: str,
             *, http_streams: Callable[[Mapping[str, str]], bool] | None = None) -> LoadedApp:
    """Import the script, find its FunctionApp and validate every function; raises StartupError."""
    script = script_root / environ.get("PYTHON_SCRIPT_FILE_NAME", "function_app.py")
    if not script.exists():
        raise StartupError(f"{script} not found (the app setting PYTHON_SCRIPT_FILE_NAME names the script)")
    root = str(script_root.resolve())
    if root not in sys.path:
        sys.path.insert(0, root)
    module = importlib.import_module(script.stem)
    app = _find_app(module, script.name)
    try:
        indexed = app.get_functions()
    except ValueError as exc:  # the library's own duplicate-name check
        raise StartupError(str(exc)) from None
    streams = (http_streams or detect_http_streams)(environ)
    specs = sorted((_spec(f, environ, streams) for f in indexed), key=lambda s: host_order(s.name))
    _check_names(specs)
    return LoadedApp(tuple(specs), streams, _route_table(specs, route_prefix))


def detect_http_streams(environ: Mapping[str, str]) -> bool:
    """HTTP streams are on when the app imported a web extension and init indexing is enabled."""
    try:
        from azurefunctions.extensions.base import ModuleTrackerMeta
    except ImportError:
        return False
    if not ModuleTrackerMeta.module_imported():
        return False
    setting = environ.get("PYTHON_ENABLE_INIT_INDEXING")
    if setting is None:
        # The worker would enable HTTP streams at invocation but never start its HTTP server: requests hang.
        raise StartupError(f"the app imports {ModuleTrackerMeta.get_module()} (HTTP streams) but the app setting "
                           "PYTHON_ENABLE_INIT_INDEXING is not set; set it to 1 as the extension requires")
    return is_true_like(setting)


def _find_app(module: Any, script_name: str) -> func.FunctionRegister:
    apps = [getattr(module, n) for n in dir(module) if isinstance(getattr(module, n, None), func.FunctionRegister)]
    if len(apps) > 1:
        raise StartupError(f"More than one {type(apps[0]).__name__} or other top level function app instances "
                           f"are defined in {script_name}.")
    if not apps:
        raise StartupError(f"Could not find top level function app instances in {script_name}.")
    app: func.FunctionRegister = apps[0]
    return app


def _spec(function: Function, environ: Mapping[str, str], streams: bool) -> FunctionSpec:
    name = str(function.get_function_name())
    fn = function.get_user_function()
    bindings = {str(b["name"]): b for b in json.loads(function.get_function_json())["bindings"]}
    signature = check_signature(name, fn, bindings, http_streams=streams)
    trigger = next((b for b in bindings.values() if str(b["type"]).endswith("Trigger")), None)
    if trigger is None:
        raise FunctionLoadError(name, "it has no trigger")
    kind = str(trigger["type"])
    outputs: list[QueueBinding] = []
    return_queue = None
    for binding_name, binding in bindings.items():
        btype = str(binding["type"])
        if binding is trigger or (binding_name == "$return" and btype == "http" and kind == "httpTrigger"):
            continue
        if btype != "queue" or str(binding.get("direction", "")).upper() != "OUT":
            raise StartupError(f"function '{name}': binding '{binding_name}' of type '{btype}' is not supported "
                               "by devhost (it serves httpTrigger and queueTrigger with queue outputs)")
        queue = _queue(name, binding_name, binding, environ)
        if binding_name == "$return":
            return_queue = queue
        else:
            outputs.append(queue)
    if kind == "httpTrigger":
        methods = trigger.get("methods")
        target: HttpTrigger | QueueBinding | TimerTrigger = HttpTrigger(
            str(trigger.get("route") or name), frozenset(str(m).upper() for m in methods) if methods else None)
    elif kind == "queueTrigger":
        target = _queue(name, str(trigger["name"]), trigger, environ)
    elif kind == "timerTrigger":
        target = _timer(name, trigger, environ)
    else:
        raise StartupError(f"function '{name}': trigger '{kind}' is not supported by devhost "
                           "(it serves httpTrigger, queueTrigger and timerTrigger)")
    return FunctionSpec(name, fn, str(Path(inspect.getfile(fn)).parent), target, str(trigger["name"]), signature,
                        tuple(outputs), return_queue, _disabled(environ, name))


def _queue(function: str, param: str, binding: Mapping[str, Any], environ: Mapping[str, str]) -> QueueBinding:
    raw = str(binding.get("queueName") or "")
    if "{" in raw:
        raise StartupError(f"function '{function}': binding '{param}': runtime binding expressions in queueName "
                           f"('{raw}') are not supported by devhost")
    queue = resolve_expression(raw, environ, function=function, prop="queueName").lower()  # the extension lowers it
    if not _QUEUE_NAME.fullmatch(queue):
        raise StartupError(f"The '{function}' function is in error: '{queue}' is not a valid queue name "
                           "(3-63 lowercase letters, digits and single dashes, starting and ending alphanumeric)")
    connection_name = str(binding.get("connection") or "AzureWebJobsStorage")
    connection = resolve_connection(connection_name, environ, function=function)
    data_type = binding.get("dataType")
    return QueueBinding(param, queue, connection_name, connection, str(data_type).lower() if data_type else None)


def _timer(function: str, binding: Mapping[str, Any], environ: Mapping[str, str]) -> TimerTrigger:
    raw = str(binding.get("schedule") or "")
    text = resolve_expression(raw, environ, function=function, prop="schedule")
    schedule = parse_schedule(text, function=function, parse_timespan=parse_timespan)
    use_monitor = binding.get("useMonitor")
    # runOnStartup defaults to false; useMonitor to true (it only matters for persisted schedule status).
    return TimerTrigger(schedule, bool(binding.get("runOnStartup") or False),
                        True if use_monitor is None else bool(use_monitor))


def _disabled(environ: Mapping[str, str], name: str) -> bool:
    """AzureWebJobs.<name>.Disabled=true turns a function off, as in the host."""
    return any(is_true_like(lookup_setting(environ, key))
               for key in (f"AzureWebJobs.{name}.Disabled", f"AzureWebJobs:{name}:Disabled"))


def _check_names(specs: list[FunctionSpec]) -> None:
    seen: dict[str, str] = {}
    for spec in specs:
        if not _FUNCTION_NAME.fullmatch(spec.name):
            raise StartupError(f"'{spec.name}' is not a valid function name: it must start with a letter and hold "
                               "only letters, digits, '_' and '-' (at most 128)")
        if spec.name.upper() in seen:
            raise StartupError(f"The function name '{spec.name}' is used twice (also as '{seen[spec.name.upper()]}'); "
                               "function names must be unique within the function app, ignoring case.")
        seen[spec.name.upper()] = spec.name


def _route_table(specs: list[FunctionSpec], prefix: str) -> RouteTable[FunctionSpec]:
    routes: list[Route[FunctionSpec]] = []
    for spec in specs:
        if not isinstance(spec.trigger, HttpTrigger):
            continue
        route = spec.trigger.route
        if route.strip("/").lower().startswith(("admin", "runtime")):
            raise StartupError(f"The '{spec.name}' function is in error: The specified route conflicts with one or "
                               "more built in routes.")
        # The host checks conflicts while indexing, before it parses any template.
        clash = next((r for r in routes if routes_conflict(r.route, r.methods, route, spec.trigger.methods)), None)
        if clash is not None:
            raise StartupError(f"The '{spec.name}' function is in error: The route specified conflicts with the "
                               f"route defined by function '{clash.name}'.")
        try:
            template = parse_template(f"{prefix}/{route}" if prefix else route)
        except StartupError as exc:
            raise StartupError(f"The '{spec.name}' function is in error: {exc}") from None
        routes.append(Route(spec.name, route, template, spec.trigger.methods, spec))
    return RouteTable(routes)
