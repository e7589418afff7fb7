"""Starts and stops everything: settings, the app, the HTTP server, queue listeners, graceful shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
from collections.abc import Iterator, MutableMapping
from dataclasses import dataclass
from pathlib import Path

import uvicorn

from tools.devhost.errors import StartupError
from tools.devhost.http import HttpHost
from tools.devhost.invoke import Invoker
from tools.devhost.loader import HttpTrigger, LoadedApp, QueueBinding, TimerTrigger, load_app
from tools.devhost.queue_io import QueueClients
from tools.devhost.queues import QueueListener
from tools.devhost.settings import load_host_options, load_local_settings
from tools.devhost.timers import TimerListener

log = logging.getLogger("devhost")

GRACE_S = 5.0  # in-flight requests and invocations get this long after Ctrl-C / SIGTERM
DEFAULT_PORT = 7071


@dataclass(frozen=True)
class Options:
    """Command-line options."""

    host: str = "127.0.0.1"
    port: int | None = None
    script_root: Path = Path()


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: the devhost stops the listeners too, then the server."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def serve(options: Options, environ: MutableMapping[str, str] | None = None) -> int:
    """Run until SIGINT/SIGTERM; raises StartupError when the app cannot start."""
    env = os.environ if environ is None else environ
    root = options.script_root.resolve()
    local = load_local_settings(root, env)
    host_options = load_host_options(root, env)
    os.chdir(root)  # the worker runs with the script root as its working directory
    try:
        app = load_app(root, env, host_options.route_prefix)
    except StartupError:
        raise
    except Exception as exc:
        raise StartupError(f"Worker failed to index functions: {exc!r}") from exc
    port = options.port or local.local_http_port or DEFAULT_PORT
    sock = _bind(options.host, port)
    invoker = Invoker(host_options.function_timeout_s, _thread_count(env))
    clients = QueueClients()
    http = HttpHost(app, invoker, clients, env, message_encoding=host_options.queues.message_encoding,
                    worker_port=_free_port())
    server = _Server(uvicorn.Config(http, lifespan="off", log_config=None, access_log=False, server_header=False,
                                    ws="none", timeout_graceful_shutdown=int(GRACE_S)))
    listeners: list[QueueListener | TimerListener] = [
        QueueListener(spec, clients, host_options.queues, invoker) for spec in app.functions
        if isinstance(spec.trigger, QueueBinding) and not spec.disabled]
    listeners += [TimerListener(spec, invoker) for spec in app.functions
                  if isinstance(spec.trigger, TimerTrigger) and not spec.disabled]
    stop = asyncio.Event()
    _on_signals(stop, server)
    server_task = asyncio.create_task(server.serve(sockets=[sock]))
    for _ in range(1000):  # uvicorn offers no started event; it binds our socket within milliseconds
        if server.started or server_task.done():
            break
        await asyncio.sleep(0.01)
    if not server.started:
        await server_task
        raise StartupError(f"the HTTP server on {options.host}:{port} did not start")
    listener_tasks = [asyncio.create_task(listener.run()) for listener in listeners]
    _log_functions(app, f"http://{options.host}:{port}")
    log.info("Host started. Ctrl-C stops it.")
    stopper = asyncio.create_task(stop.wait())
    await asyncio.wait({server_task, stopper}, return_when=asyncio.FIRST_COMPLETED)
    log.info("Stopping: no new messages are fetched; in-flight work gets %.0f s.", GRACE_S)
    for listener, task in zip(listeners, listener_tasks, strict=True):
        listener.stop()
        task.cancel()  # a poll in flight (or its SDK retries) is abandoned; invocations are drained below
    server.should_exit = True
    await asyncio.gather(server_task, *(listener.drain(GRACE_S) for listener in listeners), *listener_tasks,
                         return_exceptions=True)
    stopper.cancel()
    await clients.close()
    invoker.close()
    log.info("Host stopped.")
    return 0


def _on_signals(stop: asyncio.Event, server: uvicorn.Server) -> None:
    loop = asyncio.get_running_loop()

    def handle() -> None:
        if stop.is_set():
            server.force_exit = True  # a second Ctrl-C: stop waiting for in-flight work
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, handle)


def _bind(host: str, port: int) -> socket.socket:
    # IPPROTO_TCP, not the default 0: asyncio sets TCP_NODELAY only on sockets that say they are
    # TCP, and without it a response's body waits behind its headers for the client's delayed ACK
    # (about 40 ms on every request after the first on a kept-alive connection).
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise StartupError(f"cannot listen on {host}:{port}: {exc.strerror} (is another host running?)") from None
    sock.set_inheritable(True)
    return sock


def _free_port() -> int:
    """The worker's HTTP-streams server picks an unused port; the app sees it in the Host header."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _thread_count(environ: MutableMapping[str, str]) -> int | None:
    value = environ.get("PYTHON_THREADPOOL_THREAD_COUNT")
    if value is None:
        return None
    if value.strip().isdigit() and int(value) >= 1:
        return int(value)
    log.warning("PYTHON_THREADPOOL_THREAD_COUNT must be an integer of at least 1; using the default")
    return None


def _log_functions(app: LoadedApp, base_url: str) -> None:
    lines = ["Functions:", ""]
    for spec in app.functions:
        state = " (disabled)" if spec.disabled else ""
        if isinstance(spec.trigger, HttpTrigger):
            route = next(r for r in app.routes.routes if r.target is spec)
            methods = ",".join(sorted(spec.trigger.methods)) if spec.trigger.methods else "all"
            lines.append(f"        {spec.name}: [{methods}] {base_url}/{route.template.text.lstrip('/')}{state}")
        elif isinstance(spec.trigger, TimerTrigger):
            lines.append(f"        {spec.name}: timerTrigger '{spec.trigger.schedule.text}'{state}")
        else:
            lines.append(f"        {spec.name}: queueTrigger '{spec.trigger.queue_name}'{state}")
        lines.append("")
    log.info("%s", "\n".join(lines))
    log.info("HTTP model: %s", "HTTP streams (FastAPI Request/Response)" if app.http_streams
             else "classic (func.HttpRequest/HttpResponse)")
    for earlier, later, path in app.routes.shadowed():
        methods = ",".join(sorted(later.methods)) if later.methods else "any method"
        log.warning("Function '%s' (route '%s') takes requests meant for '%s' (route '%s'), e.g. %s %s: the Functions "
                    "host tries routes in function-name order (case-insensitive) and the first match wins. Rename "
                    "'%s' to sort after '%s' or narrow its route.", earlier.name, earlier.route, later.name,
                    later.route, methods, path, earlier.name, later.name)
