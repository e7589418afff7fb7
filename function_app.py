"""Composition only: telemetry, the FunctionApp, and one blueprint per trigger family."""

import azure.functions as func

from functions import fallback, http_api, openai_api, queue_jobs
from shared.container import start_loading
from shared.telemetry import setup_telemetry

setup_telemetry()

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)
app.register_functions(http_api.bp)
app.register_functions(openai_api.bp)
app.register_functions(queue_jobs.bp)
app.register_functions(fallback.bp)
# Semantic Kernel, the SDKs and the tokenizers load in the background from here on, so the index is
# built without them and the first request finds them loaded, or nearly (shared/container.py).
start_loading()
