"""`POST /api/_local/reset` (docs/breakers.md): the resilience state of this process as after a
start, for a developer's machine and the tests, which then share one app process where each
scenario would otherwise start its own. Registered only with `LOCAL_CONTROL=true`, which the
settings refuse in Azure; an admin caller only, like the admin API.
"""

from __future__ import annotations

import logging

import azure.functions as func
from azurefunctions.extensions.http.fastapi import Request, Response

from functions.http_common import Scope, http_function, respond

bp = func.Blueprint(http_auth_level=func.AuthLevel.ANONYMOUS)
log = logging.getLogger(__name__)


@http_function(bp, "local_reset", "_local/reset", ["POST"])
async def local_reset(req: Request) -> Response:
    async def work(scope: Scope) -> Response:
        scope.container.groups.policy.reset()
        log.warning("resilience state reset by %s (LOCAL_CONTROL): breakers closed, retry budget full",
                    scope.principal.tenant)
        return Response(status_code=204)

    return await respond(req, work, admin=True)
