"""Composition only: telemetry, the FunctionApp, and one blueprint per trigger family."""
# ruff: noqa: E402  (the imports follow the collector's switch)

import gc
import os

# The index and the background load create a few hundred thousand objects that live as long as the
# process; the cyclic collector would walk them again and again while they are made (about a fifth
# of the start's CPU). The loader freezes them and switches it back on (shared/container.py).
gc.disable()

import azure.functions as func

from functions import admin_api, console, fallback, http_api, openai_api, queue_jobs, responses_api
from shared.container import start_loading
from shared.observability.telemetry import setup_telemetry

setup_telemetry()

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)
app.register_functions(http_api.bp)
app.register_functions(openai_api.bp)
app.register_functions(responses_api.bp)
app.register_functions(queue_jobs.bp)
app.register_functions(admin_api.bp)
app.register_functions(console.bp)
app.register_functions(fallback.bp)
if os.environ.get("LOCAL_CONTROL", "").strip().lower() == "true":
    # A developer's machine and the tests only; the settings refuse it in Azure (docs/breakers.md).
    from functions import local_control

    app.register_functions(local_control.bp)
# The SDKs and the tokenizers load in the background from here on, so the index is built without
# them and the first request finds them loaded, or nearly (shared/container.py).
start_loading()
