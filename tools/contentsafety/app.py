"""The local server's ASGI app: Content Safety (`/contentsafety/text:shieldPrompt`, `/contentsafety/text:analyze`),
Language (`/language/:analyze-text`), their auth and api-versions, and a `/_cs` control surface for tests."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tools.contentsafety import rules

log = logging.getLogger("tools.contentsafety")
SHIELD_VERSIONS = ("2024-02-15-preview", "2024-09-01")
ANALYZE_VERSIONS = ("2023-10-01", "2024-09-01")
LANGUAGE_VERSIONS = ("2022-05-01", "2023-04-01", "2023-11-15-preview", "2024-11-01")
MAX_TEXT = 10_000
MAX_DOCUMENTS = 5
MAX_LANGUAGE_DOCUMENTS = 5
MAX_LANGUAGE_CHARS = 5_120
COGNITIVE_AUDIENCES = ("https://cognitiveservices.azure.com", "https://cognitiveservices.azure.com/")
DENIED = ("Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key for "
          "an active subscription and use a correct regional API endpoint for your resource.")


@dataclass
class State:
    key: str
    calls: Counter[str] = field(default_factory=Counter)
    fault: dict[str, Any] | None = None  # {"mode": "error"} (500s) or {"mode": "slow", "seconds": s}


class Service:
    """The three operations and the control surface, over one State."""

    def __init__(self, key: str) -> None:
        self.state = State(key)

    async def guarded(self, request: Request, operation: str, versions: tuple[str, ...]) -> Response | dict[str, Any]:
        """The checks every call passes, in the service's order: auth, api-version, a JSON body; then a fault."""
        if not _authorized(request, self.state.key):
            return _error(401, "401", DENIED)
        if request.query_params.get("api-version") not in versions:
            return _error(404, "404", "Resource not found")
        try:
            body = json.loads(await request.body())
        except ValueError:
            return _error(400, "InvalidRequestBody", "The request body is not valid JSON.")
        if not isinstance(body, dict):
            return _error(400, "InvalidRequestBody", "The request body must be a JSON object.")
        self.state.calls[operation] += 1
        if self.state.fault is not None:
            if self.state.fault.get("mode") == "slow":
                await asyncio.sleep(float(self.state.fault.get("seconds", 30)))
            else:
                return _error(500, "InternalServerError", "The service encountered an internal error.")
        return body

    async def shield(self, request: Request) -> Response:
        body = await self.guarded(request, "shieldPrompt", SHIELD_VERSIONS)
        if isinstance(body, Response):
            return body
        prompt, documents = body.get("userPrompt", ""), body.get("documents") or []
        if not isinstance(prompt, str) or not isinstance(documents, list) or not all(isinstance(d, str)
                                                                                     for d in documents):
            return _error(400, "InvalidRequestBody", "userPrompt must be a string and documents a list of strings.")
        if len(documents) > MAX_DOCUMENTS or len(prompt) + sum(map(len, documents)) > MAX_TEXT:
            return _error(400, "InvalidRequestBody", "The prompt and documents exceed the maximum length of "
                                                     f"{MAX_TEXT} characters or {MAX_DOCUMENTS} documents.")
        return JSONResponse({"userPromptAnalysis": {"attackDetected": rules.attack(prompt)},
                             "documentsAnalysis": [{"attackDetected": rules.attack(d)} for d in documents]})

    async def analyze(self, request: Request) -> Response:
        body = await self.guarded(request, "analyzeText", ANALYZE_VERSIONS)
        if isinstance(body, Response):
            return body
        text, categories = body.get("text"), body.get("categories") or list(rules.CATEGORIES)
        if not isinstance(text, str) or not text:
            return _error(400, "InvalidRequestBody", "text is required.")
        if len(text) > MAX_TEXT:
            return _error(400, "InvalidRequestBody", f"The text exceeds the maximum length of {MAX_TEXT} characters.")
        if not isinstance(categories, list) or any(c not in rules.CATEGORIES for c in categories):
            return _error(400, "InvalidRequestBody", f"categories must be among {', '.join(rules.CATEGORIES)}.")
        eight = body.get("outputType", "FourSeverityLevels") == "EightSeverityLevels"
        found = rules.severities(text, eight)
        return JSONResponse({"blocklistsMatch": [],
                             "categoriesAnalysis": [{"category": c, "severity": found[c]} for c in categories]})

    async def language(self, request: Request) -> Response:
        body = await self.guarded(request, "analyzeText.language", LANGUAGE_VERSIONS)
        if isinstance(body, Response):
            return body
        if body.get("kind") != "PiiEntityRecognition":
            return _error(400, "InvalidRequest", "This local server supports kind PiiEntityRecognition only.")
        documents = (body.get("analysisInput") or {}).get("documents") or []
        parameters = body.get("parameters") or {}
        if len(documents) > MAX_LANGUAGE_DOCUMENTS:
            return _error(400, "InvalidRequest", f"Batch request contains too many records. Max "
                                                 f"{MAX_LANGUAGE_DOCUMENTS} records are permitted.")
        wanted = set(parameters.get("piiCategories") or []) or None
        code_points = parameters.get("stringIndexType") == "UnicodeCodePoint"
        results, errors = [], []
        for doc in documents:
            text = str(doc.get("text") or "")
            if len(text) > MAX_LANGUAGE_CHARS:
                errors.append({"id": doc.get("id"), "error": {"code": "InvalidArgument", "message": "Invalid document",
                                                              "innererror": {"code": "InvalidDocument"}}})
                continue
            results.append(_pii_document(str(doc.get("id")), text, wanted, code_points))
        return JSONResponse({"kind": "PiiEntityRecognitionResults",
                             "results": {"documents": results, "errors": errors, "modelVersion": "2023-09-01"}})

    async def faults(self, request: Request) -> Response:
        if request.method == "POST":
            self.state.fault = json.loads(await request.body())
        elif request.method == "DELETE":
            self.state.fault = None
        return JSONResponse({"fault": self.state.fault})

    async def stats(self, request: Request) -> Response:
        if request.method == "DELETE":
            self.state.calls.clear()
        return JSONResponse(dict(self.state.calls))

def create_app(key: str) -> Starlette:
    service = Service(key)
    return Starlette(routes=[
        Route("/contentsafety/text:shieldPrompt", service.shield, methods=["POST"]),
        Route("/contentsafety/text:analyze", service.analyze, methods=["POST"]),
        Route("/language/:analyze-text", service.language, methods=["POST"]),
        Route("/_cs/faults", service.faults, methods=["GET", "POST", "DELETE"]),
        Route("/_cs/stats", service.stats, methods=["GET", "DELETE"]),
    ])


def _pii_document(doc_id: str, text: str, wanted: set[str] | None, code_points: bool) -> dict[str, Any]:
    found = rules.entities(text, wanted)
    redacted = list(text)
    entities = []
    for e in found:
        redacted[e.offset:e.offset + e.length] = "*" * e.length
        offset = e.offset if code_points else rules.utf16_offset(text, e.offset)
        length = e.length if code_points else rules.utf16_offset(text, e.offset + e.length) - offset
        entities.append({"text": e.text, "category": e.category, "subcategory": None, "offset": offset,
                         "length": length, "confidenceScore": 0.9})
    return {"id": doc_id, "redactedText": "".join(redacted), "entities": entities, "warnings": []}


def _authorized(request: Request, key: str) -> bool:
    """A subscription key equal to the server's, or an Entra bearer token for Cognitive Services (its
    audience read, not its signature: the local server knows no issuer's keys)."""
    presented = request.headers.get("ocp-apim-subscription-key")
    if presented is not None:
        return presented == key
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or token.count(".") != 2:
        return False
    try:
        claims = json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "==="))
    except ValueError:
        return False
    audience = claims.get("aud") if isinstance(claims, dict) else None
    return audience in COGNITIVE_AUDIENCES


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)
