"""Who may call the admin API with an Entra token: the `AI.Admin` app role, with or without a tenant."""

from __future__ import annotations

import httpx
import pytest

from shared.core.errors import Forbidden, Unauthorized
from tests.integration.identity.conftest import APP_CLIENT, APP_OID
from tests.integration.identity.test_entra_tokens import STRANGER, bearer, http, make_auth  # noqa: F401  fixture
from tests.support.identity.issuer import Issuer


async def test_a_token_with_the_admin_role_is_an_admin_whatever_its_tenant(issuer: Issuer,
                                                                          http: httpx.AsyncClient) -> None:  # noqa: F811
    auth, _ = make_auth(issuer, http)
    mapped = issuer.mint(azp=APP_CLIENT, oid=APP_OID, roles=["AI.User", "AI.Admin"])
    assert (await auth.admin(bearer(mapped))).key_id == f"entra:{APP_OID}"
    unmapped = issuer.mint(azp=STRANGER, oid=STRANGER, roles=["AI.Admin"])  # no tenant, no AI.User
    principal = await auth.admin(bearer(unmapped))
    assert (principal.tenant, principal.roles) == ("", ("AI.Admin",))
    with pytest.raises(Forbidden):  # not an ordinary caller, though: it is in no tenant
        await auth.authenticate(bearer(unmapped))


async def test_a_user_token_is_forbidden_and_a_bad_one_unauthorized(issuer: Issuer,
                                                                     http: httpx.AsyncClient) -> None:  # noqa: F811
    auth, _ = make_auth(issuer, http)
    with pytest.raises(Forbidden, match=r"AI\.Admin"):
        await auth.admin(bearer(issuer.mint(azp=APP_CLIENT, oid=APP_OID, roles=["AI.User"])))
    with pytest.raises(Unauthorized):
        await auth.admin(bearer(issuer.mint(azp=APP_CLIENT, oid=APP_OID, roles=["AI.Admin"], aud="api://other")))
