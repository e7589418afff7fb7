"""Composition root: the worker's one container, built on first use from modules loaded in the background.

Importing this module is cheap on purpose: the function index imports it. The builders and the
SDKs they need live in shared/composition.py, which `start_loading` imports in a background thread
right after the index is built, so the first request finds them loaded, or nearly.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import gc
import importlib
import logging
import threading
import time
from typing import TYPE_CHECKING

from shared.core.errors import ConfigError, NotConfigured
from shared.core.settings import load_settings

if TYPE_CHECKING:
    from shared.composition import Container

log = logging.getLogger(__name__)

# What the first request needs and the index does not: imported by the loader thread only.
SERVICE_MODULES = ("shared.composition", "shared.pipeline.openai_path")


class _Loader:
    """The one background load of SERVICE_MODULES per process."""

    future: concurrent.futures.Future[None] | None = None
    lock = threading.Lock()


def start_loading() -> concurrent.futures.Future[None]:
    """Start importing the service modules and building the TLS context, the injection detector and
    the configured models' tokenizers in a daemon thread (once per process); the future is done when they are loaded or
    the load failed."""
    with _Loader.lock:
        if _Loader.future is None:
            future: concurrent.futures.Future[None] = concurrent.futures.Future()
            future.set_running_or_notify_cancel()  # a waiter that gives up cannot cancel the load
            _Loader.future = future
            threading.Thread(target=_load, args=(future,), name="aigw-load", daemon=True).start()
        return _Loader.future


def _load(future: concurrent.futures.Future[None]) -> None:
    started = time.perf_counter()
    try:
        for name in SERVICE_MODULES:
            importlib.import_module(name)
        from shared.core.tokens import counter_for  # noqa: PLC0415  loaded with the services above
        from shared.upstream.pool import tls_context  # noqa: PLC0415

        tls_context()  # the CA bundle, read here rather than by the first container
        from shared.safety.detector import default_detector  # noqa: PLC0415

        default_detector()  # the injection rules compiled here (tens of ms), not on the first request

        try:
            settings = load_settings()
        except ConfigError:
            pass  # get_container reports it, to every request, naming the setting
        else:
            for endpoint in settings.ai_endpoints:
                counter_for(endpoint.model)
    except BaseException as exc:  # noqa: BLE001  handed to the waiters: get_container imports again and raises
        _collect_again()
        future.set_exception(exc)
    else:
        _collect_again()
        # How long a cold start waits for its modules, in the logs of every instance.
        log.info("service modules loaded in %.2f s", time.perf_counter() - started)
        future.set_result(None)


def _collect_again() -> None:
    """The collector back on (function_app.py switches it off for the start), with everything the
    start made frozen: modules, classes and clients are never garbage, and later collections then
    skip them instead of walking them each time."""
    gc.freeze()
    gc.enable()


async def loaded() -> None:
    """Wait, without blocking the event loop, until the service modules are loaded: the code that
    imports them after this never races the loader thread for an import lock."""
    try:
        await asyncio.wrap_future(start_loading())
    except Exception:  # noqa: BLE001  the caller's own import raises it again, where it is handled
        log.warning("loading the service modules in the background failed; loading them on first use")


class _Root:
    """The worker's one container; a class attribute rather than a module global."""

    container: Container | None = None
    lock = asyncio.Lock()


async def get_container() -> Container:
    """The worker's container, built on first use. A bad setting fails every request with a
    503 (NotConfigured, naming the setting but not its value); the next request tries again."""
    if _Root.container is None:
        async with _Root.lock:
            if _Root.container is None:
                await loaded()
                from shared.composition import build_container  # noqa: PLC0415  loaded by the loader thread

                started = time.perf_counter()
                try:
                    _Root.container = await build_container(load_settings())
                except ConfigError as exc:
                    log.error("the app is not configured: %s", exc)
                    raise NotConfigured(exc.settings) from None
                log.info("container built in %.2f s", time.perf_counter() - started)
    return _Root.container
