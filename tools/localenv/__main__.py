"""`python -m tools.localenv run|deps|app`: validate the settings, start the stack, stop it on Ctrl-C."""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import time
from collections.abc import Iterator

from tools.appsettings import SettingsProblem, validate
from tools.localenv import LocalStack, StackError, ensure_local_settings, port_open


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


@contextlib.contextmanager
def _interrupts_stop(stack: LocalStack) -> Iterator[None]:
    # Installed explicitly: a process started with SIGINT ignored (as a background job is) would
    # otherwise never see Ctrl-C, and SIGTERM from a supervisor must stop the stack too.
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        yield
    except KeyboardInterrupt:
        _say("\nstopping the local stack...")
    finally:
        # A second Ctrl-C while stopping must neither leave processes behind nor print a traceback.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        # Stop first: the terminal (or a pipe) may already be gone, and a failed print must not
        # leave the emulators running.
        started = bool(stack.procs)
        stack.stop()
        if started:
            _say("the local stack has stopped")


def _say(line: str) -> None:
    with contextlib.suppress(OSError):
        print(line, file=sys.stderr, flush=True)


def telemetry_lines(settings: dict[str, str]) -> list[str]:
    """Where the app's traces, metrics and logs go (docs/telemetry.md), or how to see them."""
    otlp = settings.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    lines = []
    if otlp:
        lines.append(f"telemetry  OTLP/HTTP to {otlp}: spans in your collector (Jaeger UI: http://localhost:16686), "
                     "or `python -m tools.telemetry_sink otlp` prints them")
    if settings.get("APPLICATIONINSIGHTS_CONNECTION_STRING"):
        lines.append("telemetry  Application Insights: requests, dependencies, traces and customMetrics tables")
    if not lines:
        lines.append("telemetry  off: set OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318 and run "
                     "`python -m tools.telemetry_sink otlp` to see spans (docs/telemetry.md)")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.localenv", description=(__doc__ or "").strip())
    parser.add_argument("command", choices=["run", "deps", "app"],
                        help="run: the whole stack and the app; deps: emulators and simulators only; "
                             "app: only the app, against dependencies already running (`make stack`)")
    args = parser.parse_args(argv)
    settings_file = ensure_local_settings()
    stack = LocalStack(settings_source=settings_file, log_to_files=True, environ=dict(os.environ))
    try:
        # Before anything starts: a bad setting is one line naming it and a non-zero exit.
        validate(stack.settings)
    except SettingsProblem as exc:
        _say(f"cannot start: {exc}")
        return 2
    with _interrupts_stop(stack):
        try:
            return _run(stack, args.command)
        except StackError as exc:
            _say(f"cannot start: {exc}")
            return 1
    return 0  # reached only after Ctrl-C


def _run(stack: LocalStack, command: str) -> int:
    if command in ("run", "deps"):
        stack.start_dependencies()
        _say(f"Azurite    127.0.0.1:{stack.ports.blob}-{stack.ports.table}")
        _say(f"Cosmos     http://127.0.0.1:{stack.ports.cosmos}  (in memory: its data goes when it stops)")
        _say(f"simulators {stack.sim_url('primary')} (primary), {stack.sim_url('secondary')} (secondary)")
        _say(f"safety     http://127.0.0.1:{stack.ports.safety}  (Content Safety and Language, tools/contentsafety)")
        _say(f"logs       {stack.data_dir / 'logs'}")
    elif not port_open(stack.ports.cosmos) or not port_open(stack.ports.queue):
        raise StackError("the dependencies are not running: start them first with `make stack` in another terminal")
    if command == "deps":
        _say("dependencies up (Ctrl-C stops them)")
        while True:
            time.sleep(3600)
    app = stack.start_app(use_func=True, console=True)
    _say(f"app        {stack.app_url}/api  (Ctrl-C stops everything)")
    for line in telemetry_lines(stack.settings):
        _say(line)
    app.wait()
    _say(f"the app exited with code {app.returncode}")
    return app.returncode or 1


if __name__ == "__main__":
    sys.exit(main())
