"""What Azure OpenAI adds to the OpenAI wire: its error bodies, its rate-limit headers and its
content-filter annotations (the prompt's results, each choice's, the filter-only first chunk)."""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable, Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from tools.simulator.responses import openai_error
from tools.simulator.text import InputTooLong

_SAFE = {"filtered": False, "severity": "safe"}
_NOT_DETECTED = {"filtered": False, "detected": False}
_HARMS = ("hate", "self_harm", "sexual", "violence")
DEPLOYMENT_NOT_FOUND = ("The API deployment for this resource does not exist. If you created the deployment "
                        "within the last 5 minutes, please wait a moment and try again.")


def error(status: int, message: str, *, code: str | None = None,
          headers: Mapping[str, str] | None = None) -> JSONResponse:
    """Azure's own errors (401, 404, 429, 5xx): `code` and `message` only, no `type` or `param`."""
    return JSONResponse({"error": {"code": code or str(status), "message": message}}, status_code=status,
                        headers=headers)


def invalid_request(message: str, *, param: str | None, code: str | None = None) -> JSONResponse:
    """A 400 from the model service behind Azure: OpenAI's error object, every member present."""
    body = {"message": message, "type": "invalid_request_error", "param": param, "code": code}
    return JSONResponse({"error": body}, status_code=400)


def prompt_filter_results() -> list[dict[str, Any]]:
    """The prompt's results with nothing filtered (the simulator never filters)."""
    results: dict[str, Any] = {name: dict(_SAFE) for name in _HARMS}
    results["jailbreak"] = dict(_NOT_DETECTED)
    return [{"prompt_index": 0, "content_filter_results": results}]


def choice_filter_results() -> dict[str, Any]:
    """A generated choice's results with nothing filtered or detected."""
    results: dict[str, Any] = {name: dict(_SAFE) for name in _HARMS}
    results["protected_material_code"] = dict(_NOT_DETECTED)
    results["protected_material_text"] = dict(_NOT_DETECTED)
    return results


def filter_only_chunk() -> dict[str, Any]:
    """The first chunk of an Azure stream: the prompt's results, before any choice (empty fields as Azure sends)."""
    return {"choices": [], "created": 0, "id": "", "model": "", "object": "",
            "prompt_filter_results": prompt_filter_results()}


class Quota:
    """A deployment's requests and tokens per minute, for the x-ratelimit-remaining-* headers
    (reported, not enforced: throttling is the fault injector's job). Azure counts a request's
    tokens at admission: its prompt plus its max_tokens."""

    def __init__(self, requests_per_minute: int, tokens_per_minute: int,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._limits = (requests_per_minute, tokens_per_minute)
        self._clock = clock
        self._window = -1
        self._used = [0, 0]

    def spend(self, tokens: int) -> dict[str, str]:
        """Count one request of `tokens`; the headers of its answer."""
        window = math.floor(self._clock() / 60)
        if window != self._window:
            self._window, self._used = window, [0, 0]
        self._used[0] += 1
        self._used[1] += tokens
        return {"x-ratelimit-remaining-requests": str(max(0, self._limits[0] - self._used[0])),
                "x-ratelimit-remaining-tokens": str(max(0, self._limits[1] - self._used[1]))}


def is_azure(request: Request) -> bool:
    """An Azure route (the deployment in the path) answers in Azure's shapes."""
    return "deployment" in request.path_params


def refusal(request: Request, status: int, message: str, headers: Mapping[str, str] | None = None) -> JSONResponse:
    """A 401, 404, 429 or 5xx in the route's shape: Azure's `code` and `message`, else OpenAI's object."""
    if is_azure(request) or request.url.path.startswith("/openai/"):
        return error(status, message, headers=headers)
    return openai_error(status, message, headers)


def bad_request(exc: ValueError) -> JSONResponse:
    """A 400 naming the field: the simulator's messages start with it ("messages.0.role: ..."); a
    text past the tokenizer's limit is past any context window."""
    message = str(exc)
    if isinstance(exc, InputTooLong):
        return invalid_request(message, param="messages", code="context_length_exceeded")
    field, sep, _ = message.partition(": ")
    return invalid_request(message, param=field if sep and _FIELD.fullmatch(field) else None)


_FIELD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_]+|\[\d+\])*")
