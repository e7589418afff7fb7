"""What every HTTP function shares: reading bodies safely, answering with JSON or problem+json."""

from __future__ import annotations

import json
import logging
import re
import traceback
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import azure.functions as func
from azure.core.exceptions import AzureError
from azurefunctions.extensions.http.fastapi import JSONResponse, Request, Response, StreamingResponse
from pydantic import BaseModel, ValidationError

from shared.api.openai_errors import openai_error
from shared.api.problems import PROBLEM_MEDIA_TYPE, problem_body, problem_headers
from shared.container import get_container
from shared.core import safe_json
from shared.core.correlation import correlation_id
from shared.core.errors import (
    AppError,
    BadRequest,
    DependencyFailed,
    PayloadTooLarge,
    UnsupportedMediaType,
    exception_chain,
    validation_failed,
)
from shared.identity.auth import Principal
from shared.observability import names as n
from shared.observability import tracing
from shared.observability.record import Record

if TYPE_CHECKING:
    from shared.composition import Container
    from shared.pipeline.gateway import CallContext  # loaded with the container (shared/container.py)

log = logging.getLogger(__name__)
M = TypeVar("M", bound=BaseModel)
F = TypeVar("F")
ErrorShape = Callable[[AppError, str], Response]

# route template -> methods, as registered; the catch-all function tells 404 from 405 with it.
ROUTES: dict[str, frozenset[str]] = {}
# route template -> the paths it takes, as the host matches them: a {parameter} is one segment,
# case is ignored. Literal templates first, so a path both match names the literal one.
_PATTERNS: dict[str, re.Pattern[str]] = {}
# route template -> how its errors are written, when not problem+json (the OpenAI-compatible routes).
_SHAPES: dict[str, ErrorShape] = {}
# A parameter that takes one literal only ("{area:regex(^admin$)}", functions/admin_api.py) is that literal.
_LITERAL_PARAM = re.compile(r"\{[^}:]+:regex\(\^([A-Za-z0-9_-]+)\$\)\}")


def http_function(bp: func.Blueprint, name: str, route: str, methods: list[str], *,
                  errors: ErrorShape | None = None) -> Callable[[F], F]:
    """Register an HTTP function under an explicit name, and remember its route for 405s and the
    shape of its errors (`errors`: the shape its clients read; problem+json by default)."""
    shown = _LITERAL_PARAM.sub(r"\1", route)  # as clients see it, the name of its spans and records
    ROUTES[shown] = ROUTES.get(shown, frozenset()) | frozenset(methods)
    _PATTERNS[shown] = re.compile(re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(shown.strip("/"))), re.IGNORECASE)
    if errors is not None:
        _SHAPES[shown] = errors

    def decorate(fn: F) -> F:
        return bp.function_name(name)(bp.route(route=route, methods=methods)(fn))  # type: ignore[no-any-return]

    return decorate


@dataclass(frozen=True)
class Scope:
    """One HTTP call as the service sees it."""

    request: Request
    correlation_id: str
    container: Container
    principal: Principal
    context: CallContext


async def authenticate(container: Container, headers: Mapping[str, str], *, admin: bool = False) -> Principal:
    """The one place a request's credentials become a Principal (401 otherwise; `admin`: 403 for
    anyone but an admin API caller)."""
    return await (container.auth.admin if admin else container.auth.authenticate)(headers)


async def authenticate_if_sent(container: Container, headers: Mapping[str, str]) -> Principal | None:
    """None when no credential was sent (an open endpoint's anonymous caller); a wrong one is a 401."""
    if not any(headers.get(name) for name in ("x-api-key", "api-key", "authorization")):
        return None
    return await authenticate(container, headers)


# (exception type, innermost frame) of every unexpected error whose traceback this process logged.
_TRACED: set[tuple[str, str]] = set()
_TRACED_MAX = 1_000  # distinct places are few; past this bound (a bug making many), short lines only


def log_unexpected(what: str, cid: str, exc: BaseException) -> None:
    """One log line per unexpected error: the traceback the first time this process meets its type
    at its innermost code location, then only type, location and correlation id, so a request that
    fails the same way a thousand times writes a thousand short lines, not a thousand tracebacks.
    A pydantic error is shown by location and error type only, since its text quotes the input; the
    short line never carries an exception's text at all."""
    kind, where = type(exc).__name__, _innermost(exc)
    if (kind, where) in _TRACED or len(_TRACED) >= _TRACED_MAX:
        log.error("%s (correlation_id=%s): %s at %s; traceback logged before", what, cid, kind, where)
        return
    _TRACED.add((kind, where))
    chain = exception_chain(exc)
    if not any(isinstance(e, ValidationError) for e in chain):
        log.error("%s (correlation_id=%s): %s at %s", what, cid, kind, where, exc_info=exc)
        return
    parts = []
    for e in reversed(chain):  # innermost first, as Python prints a chain
        if isinstance(e, ValidationError):
            fields = ", ".join(f"{'.'.join(map(str, err['loc'])) or 'value'} ({err['type']})" for err in e.errors())
            summary = f"ValidationError of {e.title}: {fields}"
        else:
            summary = f"{type(e).__name__} (text withheld)"
        parts.append("".join(traceback.format_tb(e.__traceback__)) + summary)
    log.error("%s (correlation_id=%s): %s at %s; input values withheld:\n%s", what, cid, kind, where,
              "\n".join(parts))


def _innermost(exc: BaseException) -> str:
    """Where `exc` was raised: file, line and function of its traceback's last frame."""
    tb = exc.__traceback__
    if tb is None:
        return "an unknown place"
    while tb.tb_next is not None:
        tb = tb.tb_next
    code = tb.tb_frame.f_code
    return f"{code.co_filename.rsplit('/', 1)[-1]}:{tb.tb_lineno} in {code.co_name}"


def call_context(req: Request, principal: Principal, cid: str) -> CallContext:
    """The caller's Cache-Control: no-cache skips the lookup, no-store also the store."""
    from shared.pipeline.gateway import CallContext  # noqa: PLC0415  loaded with the container, before this runs

    directives = {d.strip() for d in req.headers.get("cache-control", "").lower().split(",")}
    return CallContext(principal, cid, cache_lookup="no-cache" not in directives and "no-store" not in directives,
                       cache_store="no-store" not in directives)


def problem(err: AppError, cid: str, extra: dict[str, Any] | None = None) -> Response:
    return JSONResponse({**problem_body(err, cid), **(extra or {})}, status_code=err.status,
                        headers=problem_headers(err, cid), media_type=PROBLEM_MEDIA_TYPE)


def openai_problem(err: AppError, cid: str) -> Response:
    """The error in OpenAI's shape (the OpenAI-compatible routes); same status and headers as problem()."""
    return JSONResponse(openai_error(err), status_code=err.status, headers=problem_headers(err, cid))


def error_shape(path: str) -> ErrorShape:
    """How errors on `path` (relative to /api) are written: as its route registered, else problem+json."""
    return next((_SHAPES[t] for t in matching_routes(path) if t in _SHAPES), problem)


def unexpected(exc: Exception, cid: str, shape: ErrorShape = problem) -> Response:
    """An error nobody expected: one log record (log_unexpected), and a generic 500 in the route's
    error shape that names nothing but the correlation id."""
    log_unexpected("unhandled error", cid, exc)
    return shape(AppError("An unexpected error occurred. Quote the correlation id if you report it."), cid)


def ok(body: BaseModel | dict[str, Any], status: int = 200, headers: dict[str, str] | None = None) -> Response:
    content = body.model_dump(mode="json") if isinstance(body, BaseModel) else body
    return JSONResponse(content, status_code=status, headers=headers)


async def respond(req: Request, work: Callable[[Scope], Awaitable[Response]], *, admin: bool = False) -> Response:
    """Authenticate (`admin`: as an admin API caller, docs/admin.md), run `work`, and turn every
    failure into problem+json (or the shape the route registered: openai_problem). No exception's
    text ever reaches the client; unexpected ones are logged with the correlation id."""
    record = Record(route=route_of(req.url.path))
    shape = _SHAPES.get(record.route, problem)
    trace_id = tracing.server_span(record, f"{req.method} /api/{record.route}", req.headers.get("traceparent"), {
        n.HTTP_REQUEST_METHOD: req.method, n.HTTP_ROUTE: f"/api/{record.route}", n.URL_PATH: req.url.path,
        n.URL_SCHEME: req.url.scheme})
    cid = record.correlation_id = correlation_id(req.headers, trace_id)
    with tracing.active(record):
        try:
            container = await get_container()
            principal = await authenticate(container, req.headers, admin=admin)
            record.tenant, record.key_id, record.log_content = principal.tenant, principal.key_id, principal.log_content
            context = call_context(req, principal, cid)
            response = await work(Scope(req, cid, container, principal, context))
        except AppError as err:
            tracing.refused(err.type_slug)
            response = shape(err, cid)
        except AzureError as exc:
            # Cosmos, Storage or Key Vault failed after the SDK's own retries: ours to fix, not the
            # caller's, and worth retrying later.
            log.error("dependency failed (correlation_id=%s): %s", cid, type(exc).__name__)
            response = shape(DependencyFailed("A storage dependency is unavailable. Try again later."), cid)
        except Exception as exc:  # noqa: BLE001  logged by log_unexpected; the client gets a generic 500
            response = unexpected(exc, cid, shape)
    response.headers["x-correlation-id"] = response.headers["x-request-id"] = cid
    if isinstance(response, StreamingResponse):
        # A stream's record closes when its body has been sent (its model attempt closes with the pump).
        response.body_iterator = _finished_after(response.body_iterator, record, response.status_code)
    else:
        tracing.finish(record, response.status_code)
    return response


async def _finished_after(body: AsyncIterable[Any], record: Record, status: int) -> AsyncIterator[Any]:
    try:
        async for chunk in body:
            yield chunk
    finally:
        tracing.finish(record, status)


def matching_routes(path: str) -> list[str]:
    """The registered route templates that take `path` (relative to /api), literal ones first."""
    path = path.strip("/")
    found = [template for template, pattern in _PATTERNS.items() if pattern.fullmatch(path)]
    return sorted(found, key=lambda t: t.count("{"))


def route_of(path: str) -> str:
    """The registered route template a path matched (bounded, unlike the path): a span name and a dimension."""
    return next(iter(matching_routes(path.removeprefix("/api/"))), "unmatched")


async def read_model(scope: Scope, model: type[M]) -> M:
    """The body as `model`: 415 unless JSON, 413 over the size limit, 400 naming each bad field."""
    data = await read_json(scope.request, scope.container.settings.max_request_bytes)
    return validate(model, data)


def validate(model: type[M], data: Any, prefix: str = "") -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise validation_failed(exc, prefix) from None


async def read_json(req: Request, limit: int) -> Any:
    """The body as a JSON object, within the bounds of docs/api-limits.md (depth, numbers, Unicode)."""
    media_type = req.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != "application/json" and not media_type.endswith("+json"):
        raise UnsupportedMediaType("Send the body as JSON with Content-Type: application/json.")
    declared = req.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"The body is larger than the limit of {limit} bytes.")
    body = bytearray()
    async for chunk in req.stream():
        body.extend(chunk)
        if len(body) > limit:
            raise PayloadTooLarge(f"The body is larger than the limit of {limit} bytes.")
    try:
        data = safe_json.loads(body)
    except UnicodeDecodeError:
        raise BadRequest("The body is not UTF-8 text.") from None
    except json.JSONDecodeError as exc:
        raise BadRequest(f"The body is not valid JSON (line {exc.lineno}, column {exc.colno}).") from None
    except safe_json.UnsafeJson as exc:
        raise BadRequest(str(exc)) from None
    if not isinstance(data, dict):
        raise BadRequest("The body must be a JSON object.")
    return data
