"""Loading function_app.py the way the worker indexes it, and the start-time checks of worker and host."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Protocol

import pytest

from tools.devhost.errors import StartupError
from tools.devhost.loader import HttpTrigger, LoadedApp, QueueBinding, detect_http_streams, load_app

STORAGE = {"AzureWebJobsStorage": "UseDevelopmentStorage=true"}
HEADER = """
import typing
import azure.functions as func
app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)
"""


class Load(Protocol):
    def __call__(self, body: str, env: Mapping[str, str] | None = None, *, streams: bool = False) -> LoadedApp: ...


@pytest.fixture
def load(tmp_path: Path) -> Iterator[Load]:
    """Write a function_app.py and load it; the import is undone afterwards."""

    def _load(body: str, env: Mapping[str, str] | None = None, *, streams: bool = False) -> LoadedApp:
        (tmp_path / "function_app.py").write_text(HEADER + textwrap.dedent(body))
        return load_app(tmp_path, {**STORAGE, **(env or {})}, "api", http_streams=lambda _: streams)

    yield _load
    sys.modules.pop("function_app", None)
    if str(tmp_path) in sys.path:
        sys.path.remove(str(tmp_path))


def test_functions_come_sorted_with_resolved_bindings(load: Load) -> None:
    app = load("""
        @app.route(route="items/{id:int}", methods=["GET", "post"])
        @app.queue_output(arg_name="out", queue_name="%OUT%", connection="AzureWebJobsStorage")
        def Items(req: func.HttpRequest, out: func.Out[str]) -> func.HttpResponse: ...

        @app.queue_trigger(arg_name="msg", queue_name="%JOBS%", connection="")
        async def jobs(msg: func.QueueMessage) -> None: ...
    """, {"OUT": "Out-Box", "JOBS": "ai-jobs"})
    assert [f.name for f in app.functions] == ["Items", "jobs"]
    items, jobs = app.functions
    assert items.trigger == HttpTrigger("items/{id:int}", frozenset({"GET", "POST"}))
    assert items.outputs == (QueueBinding("out", "out-box", "AzureWebJobsStorage", "UseDevelopmentStorage=true"),)
    assert isinstance(jobs.trigger, QueueBinding) and jobs.trigger.queue_name == "ai-jobs"
    assert jobs.signature.is_async and not items.signature.is_async
    assert app.routes.match("/api/items/7", "POST") is not None


def test_an_unset_app_setting_fails_the_start_naming_setting_and_function(load: Load) -> None:
    with pytest.raises(StartupError, match=r"'jobs' function is in error: '%JOBS_QUEUE%'.*'JOBS_QUEUE'"):
        load("""
            @app.queue_trigger(arg_name="msg", queue_name="%JOBS_QUEUE%", connection="AzureWebJobsStorage")
            def jobs(msg: func.QueueMessage) -> None: ...
        """)


def test_names_differing_only_in_case_are_duplicates(load: Load) -> None:
    with pytest.raises(StartupError, match="unique"):
        load("""
            @app.function_name("Health")
            @app.route(route="a")
            def a(req: func.HttpRequest) -> func.HttpResponse: ...

            @app.function_name("health")
            @app.route(route="b")
            def b(req: func.HttpRequest) -> func.HttpResponse: ...
        """)


@pytest.mark.parametrize("body", [
    """
    @app.blob_trigger(arg_name="b", path="c/{name}", connection="AzureWebJobsStorage")
    def on_blob(b: func.InputStream) -> None: ...
    """,
    """
    @app.route(route="x")
    @app.blob_output(arg_name="blob", path="c/x.txt", connection="AzureWebJobsStorage")
    def x(req: func.HttpRequest, blob: func.Out[str]) -> func.HttpResponse: ...
    """,
])
def test_bindings_devhost_cannot_run_fail_the_start(load: Load, body: str) -> None:
    with pytest.raises(StartupError, match="not supported by devhost"):
        load(body)


def test_a_timer_trigger_loads_with_its_schedule_and_run_on_startup_off(load: Load) -> None:
    from tools.devhost.loader import TimerTrigger

    loaded = load("""
        @app.timer_trigger(arg_name="t", schedule="0 */5 * * * *")
        def tick(t: func.TimerRequest) -> None: ...
        """)
    trigger = loaded.functions[0].trigger
    assert isinstance(trigger, TimerTrigger) and trigger.schedule.text == "0 */5 * * * *"
    assert trigger.run_on_startup is False


def test_builtin_generic_out_annotation_is_refused_like_the_worker(load: Load) -> None:
    with pytest.raises(StartupError, match="binding out has invalid non-type annotation"):
        load("""
            @app.route(route="x")
            @app.queue_output(arg_name="out", queue_name="q-out", connection="AzureWebJobsStorage")
            def x(req: func.HttpRequest, out: func.Out[list[str]]) -> func.HttpResponse: ...
        """)


def test_typing_list_out_annotation_is_accepted(load: Load) -> None:
    app = load("""
        @app.route(route="x")
        @app.queue_output(arg_name="out", queue_name="q-out", connection="AzureWebJobsStorage")
        def x(req: func.HttpRequest, out: func.Out[typing.List[str]]) -> func.HttpResponse: ...
    """)
    assert app.functions[0].signature.params["out"].binding == "queue"


def test_http_functions_annotated_none_are_refused_like_the_worker(load: Load) -> None:
    with pytest.raises(StartupError, match='return annotation "NoneType" does not match binding type "http"'):
        load("""
            @app.route(route="x")
            def x(req: func.HttpRequest) -> None: ...
        """)


def test_the_request_type_must_fit_the_http_model(load: Load) -> None:
    fastapi_app = """
        from azurefunctions.extensions.http.fastapi import Request, Response

        @app.route(route="x")
        async def x(req: Request) -> Response: ...
    """
    assert load(fastapi_app, streams=True).http_streams
    sys.modules.pop("function_app", None)
    with pytest.raises(StartupError, match='"httpTrigger" does not match its Python annotation "Request"'):
        load(fastapi_app, streams=False)


def test_str_annotated_queue_trigger_binds_as_generic_text(load: Load) -> None:
    app = load("""
        @app.queue_trigger(arg_name="msg", queue_name="jobs", connection="AzureWebJobsStorage")
        def jobs(msg: str) -> None: ...
    """)
    assert app.functions[0].signature.params["msg"].binding == "generic"


@pytest.mark.parametrize(("routes", "message"), [
    (["admin/stats"], "built in routes"),
    (["things", "/Things/"], "conflicts with the route defined by function 'f0'"),
])
def test_host_route_rules_fail_the_start(load: Load, routes: list[str], message: str) -> None:
    body = "".join(f"""
        @app.route(route="{route}", methods=["GET"])
        def f{i}(req: func.HttpRequest) -> func.HttpResponse: ...
    """ for i, route in enumerate(routes))
    with pytest.raises(StartupError, match=message):
        load(body)


def test_disabled_functions_are_marked(load: Load) -> None:
    app = load("""
        @app.route(route="x")
        def x(req: func.HttpRequest) -> func.HttpResponse: ...
    """, {"AzureWebJobs.x.Disabled": "true"})
    assert app.functions[0].disabled


def test_http_streams_need_init_indexing() -> None:
    import azurefunctions.extensions.http.fastapi  # noqa: F401  registers the web extension, as an app does

    assert detect_http_streams({"PYTHON_ENABLE_INIT_INDEXING": "1"})
    assert not detect_http_streams({"PYTHON_ENABLE_INIT_INDEXING": "0"})
    with pytest.raises(StartupError, match="PYTHON_ENABLE_INIT_INDEXING"):
        detect_http_streams({})
