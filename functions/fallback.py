"""Any request no other function takes: 404, or 405 with Allow when the path exists."""

from __future__ import annotations

import azure.functions as func
from azurefunctions.extensions.http.fastapi import Request, Response

from functions.http_common import ROUTES, error_shape, matching_routes
from shared.core.correlation import correlation_id
from shared.core.errors import MethodNotAllowed, NotFound

bp = func.Blueprint(http_auth_level=func.AuthLevel.ANONYMOUS)
_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]


def _allowed_methods(path: str) -> list[str]:
    """Methods of the most literal registered routes whose template matches `path` (a literal
    segment names the path: `v1/responses/input_tokens` is not a response id)."""
    routes = matching_routes(path)
    fewest = min((route.count("{") for route in routes), default=0)
    return sorted({method for route in routes if route.count("{") == fewest for method in ROUTES[route]})


# The host tries HTTP functions in name order and the first match wins (not ASP.NET precedence:
# azure-functions-host#9876), so the catch-all's name must sort after every other function's.
@bp.function_name("zz_not_found")
@bp.route(route="{*path}", methods=_METHODS)
async def not_found(req: Request) -> Response:
    cid = correlation_id(req.headers)
    path = str(req.path_params.get("path", "")).strip("/")
    allowed = _allowed_methods(path)
    shape = error_shape(path)  # an OpenAI-compatible route's 405 is in OpenAI's shape
    if allowed:
        response = shape(MethodNotAllowed(f"Use {', '.join(allowed)} for this path."), cid)
        response.headers["Allow"] = ", ".join(allowed)
    else:
        response = shape(NotFound("There is nothing at this path."), cid)
    return response
