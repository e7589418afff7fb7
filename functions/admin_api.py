"""The admin API under /api/admin/ (docs/admin.md): tenants, keys and usage at run time.

Every route answers only an admin caller (an Entra token with the `AI.Admin` app role, or a key
whose tenant has the `admin` role): 401 without a credential, 403 for anyone else. No answer is
cached by anyone (`Cache-Control: no-store`): one of them carries a new key.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import azure.functions as func
from azurefunctions.extensions.http.fastapi import Request, Response

from functions.http_common import Scope, http_function, ok, read_json, respond
from shared.core.errors import DependencyFailed, NotFound

if TYPE_CHECKING:
    from shared.admin.service import AdminService

bp = func.Blueprint(http_auth_level=func.AuthLevel.ANONYMOUS)
_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")  # tenant names and key ids (TenantConfig, KeyCreate)
NO_STORE = {"Cache-Control": "no-store"}
# The host refuses a route template that starts with "admin" (its own API's prefix), whatever the
# route prefix: so each template starts with "{area:regex(^admin$)}", a segment that takes only
# "admin", and the URLs stay /api/admin/... (DESIGN.md). Literals, as tests/infra reads them.
Work = Callable[["AdminService", Scope], Awaitable[Response]]


def _param(scope: Scope, name: str) -> str:
    value = str(scope.request.path_params.get(name, ""))
    if not _NAME.fullmatch(value):
        raise NotFound(f"There is no {'tenant' if name == 'tenant' else 'key'} {value[:64]!r}.")
    return value


async def _admin(req: Request, work: Work) -> Response:
    async def run(scope: Scope) -> Response:
        service = scope.container.admin
        if service is None:  # only a container built without Cosmos (never the app's)
            raise DependencyFailed("The tenant directory is not available.")
        response = await work(service, scope)
        response.headers.update(NO_STORE)
        return response

    return await respond(req, run, admin=True)


async def _body(scope: Scope) -> dict[str, Any]:
    data: dict[str, Any] = await read_json(scope.request, scope.container.settings.max_request_bytes)
    return data


@http_function(bp, "admin_tenants_list", "{area:regex(^admin$)}/tenants", ["GET"])
async def tenants_list(req: Request) -> Response:
    async def work(admin: AdminService, scope: Scope) -> Response:
        return ok({"tenants": [t.model_dump(mode="json") for t in await admin.list_tenants()]})

    return await _admin(req, work)


@http_function(bp, "admin_tenants_create", "{area:regex(^admin$)}/tenants", ["POST"])
async def tenants_create(req: Request) -> Response:
    async def work(admin: AdminService, scope: Scope) -> Response:
        created = await admin.create_tenant(scope.principal, scope.correlation_id, await _body(scope))
        return ok(created, 201, {"Location": f"/api/admin/tenants/{created.tenant.tenant}"})

    return await _admin(req, work)


@http_function(bp, "admin_tenant_get", "{area:regex(^admin$)}/tenants/{tenant}", ["GET"])
async def tenant_get(req: Request) -> Response:
    async def work(admin: AdminService, scope: Scope) -> Response:
        return ok(await admin.get_tenant(_param(scope, "tenant")))

    return await _admin(req, work)


@http_function(bp, "admin_tenant_update", "{area:regex(^admin$)}/tenants/{tenant}", ["PATCH"])
async def tenant_update(req: Request) -> Response:
    async def work(admin: AdminService, scope: Scope) -> Response:
        tenant = _param(scope, "tenant")
        return ok(await admin.update_tenant(scope.principal, scope.correlation_id, tenant, await _body(scope)))

    return await _admin(req, work)


@http_function(bp, "admin_tenant_disable", "{area:regex(^admin$)}/tenants/{tenant}/disable", ["POST"])
async def tenant_disable(req: Request) -> Response:
    async def work(admin: AdminService, scope: Scope) -> Response:
        return ok(await admin.disable_tenant(scope.principal, scope.correlation_id, _param(scope, "tenant")))

    return await _admin(req, work)


@http_function(bp, "admin_keys_list", "{area:regex(^admin$)}/tenants/{tenant}/keys", ["GET"])
async def keys_list(req: Request) -> Response:
    async def work(admin: AdminService, scope: Scope) -> Response:
        return ok({"keys": [k.model_dump(mode="json") for k in await admin.list_keys(_param(scope, "tenant"))]})

    return await _admin(req, work)


@http_function(bp, "admin_keys_create", "{area:regex(^admin$)}/tenants/{tenant}/keys", ["POST"])
async def keys_create(req: Request) -> Response:
    async def work(admin: AdminService, scope: Scope) -> Response:
        tenant = _param(scope, "tenant")
        key = await admin.create_key(scope.principal, scope.correlation_id, tenant, await _body(scope))
        return ok(key, 201, {"Location": f"/api/admin/tenants/{tenant}/keys"})

    return await _admin(req, work)


@http_function(bp, "admin_key_rotate", "{area:regex(^admin$)}/tenants/{tenant}/keys/{key_id}/rotate", ["POST"])
async def key_rotate(req: Request) -> Response:
    async def work(admin: AdminService, scope: Scope) -> Response:
        tenant, key_id = _param(scope, "tenant"), _param(scope, "key_id")
        body = await _body(scope) if scope.request.headers.get("content-type") else {}  # a body is optional
        return ok(await admin.rotate_key(scope.principal, scope.correlation_id, tenant, key_id, body), 201)

    return await _admin(req, work)


@http_function(bp, "admin_key_revoke", "{area:regex(^admin$)}/tenants/{tenant}/keys/{key_id}", ["DELETE"])
async def key_revoke(req: Request) -> Response:
    async def work(admin: AdminService, scope: Scope) -> Response:
        await admin.revoke_key(scope.principal, scope.correlation_id, _param(scope, "tenant"),
                               _param(scope, "key_id"))
        return Response(status_code=204)

    return await _admin(req, work)


@http_function(bp, "admin_usage", "{area:regex(^admin$)}/tenants/{tenant}/usage", ["GET"])
async def usage(req: Request) -> Response:
    async def work(admin: AdminService, scope: Scope) -> Response:
        return ok(await admin.usage(_param(scope, "tenant")))

    return await _admin(req, work)
