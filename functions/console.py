"""The operator console (GET /api/console): one static page, its stylesheet and its script.

No build step and nothing fetched from elsewhere; the content security policy lets the page load
only these files and talk only to this app. The page holds no secret: the operator types the admin
key, which the script keeps in memory and sends to /api/admin (docs/admin.md).
"""

from __future__ import annotations

import functools
from pathlib import Path

import azure.functions as func
from azurefunctions.extensions.http.fastapi import Request, Response

from functions.http_common import http_function, problem
from shared.core.correlation import correlation_id
from shared.core.errors import NotFound

bp = func.Blueprint(http_auth_level=func.AuthLevel.ANONYMOUS)
STATIC = Path(__file__).parent / "static"
ASSETS = {"console.css": "text/css; charset=utf-8", "console.js": "text/javascript; charset=utf-8",
          "favicon.svg": "image/svg+xml"}
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; "
       "base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
HEADERS = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer",
           "X-Frame-Options": "DENY", "Cache-Control": "no-cache"}


@functools.cache
def _read(name: str) -> bytes:
    return (STATIC / name).read_bytes()


def _file(req: Request, name: str, media_type: str) -> Response:
    cid = correlation_id(req.headers)
    return Response(_read(name), media_type=media_type, headers={**HEADERS, "x-correlation-id": cid})


@http_function(bp, "console", "console", ["GET"])
async def console(req: Request) -> Response:
    return _file(req, "console.html", "text/html; charset=utf-8")


@http_function(bp, "console_asset", "console/{asset}", ["GET"])
async def console_asset(req: Request) -> Response:
    name = str(req.path_params.get("asset", ""))
    if name not in ASSETS:
        return problem(NotFound("There is nothing at this path."), correlation_id(req.headers))
    return _file(req, name, ASSETS[name])
