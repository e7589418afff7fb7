"""Entra ID access tokens against a local OIDC keys endpoint, with tokens minted per case."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import jwt
import pytest

from shared.core.errors import Forbidden, Unauthorized
from shared.core.settings import EntraPrincipal, TenantConfig, TenantKey, hash_api_key
from shared.identity.auth import Authenticator
from shared.identity.entra import EntraValidator, SigningKeys
from shared.identity.tenants import SettingsTenants
from tests.integration.identity.conftest import APP_CLIENT, APP_OID
from tests.support.identity.issuer import API_AUDIENCE, TENANT_ID, Issuer

USER_OID = "33333333-3333-3333-3333-333333333333"
STRANGER = "44444444-4444-4444-4444-444444444444"
TENANTS = [
    TenantConfig(tenant="apps", entra=[EntraPrincipal(tid=TENANT_ID, client_id=APP_CLIENT)]),
    TenantConfig(tenant="people", keys=[TenantKey(id="k", sha256=hash_api_key("people-key"))],
                 entra=[EntraPrincipal(tid=TENANT_ID, oid=USER_OID)]),
]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


def make_auth(issuer: Issuer, http: httpx.AsyncClient, clock: Clock | None = None,
              cooldown_s: float = 30.0) -> tuple[Authenticator, SigningKeys]:
    keys = SigningKeys(issuer.url, http, cooldown_s=cooldown_s, clock=clock or Clock())
    validator = EntraValidator(keys, authority=issuer.url, audiences=[API_AUDIENCE], tids=[TENANT_ID], leeway_s=60)
    return Authenticator(SettingsTenants(TENANTS), validator, "AI.User"), keys


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def app_token(issuer: Issuer, **claims: Any) -> str:
    return issuer.mint(**{"azp": APP_CLIENT, "oid": APP_OID, "roles": ["AI.User"], **claims})


@pytest.mark.parametrize("version", [1, 2])
async def test_v1_and_v2_app_tokens_with_the_role_map_to_the_apps_tenant(issuer: Issuer, http: httpx.AsyncClient,
                                                                         version: int) -> None:
    auth, _ = make_auth(issuer, http)
    client_claim: dict[str, Any] = {"azp": APP_CLIENT} if version == 2 else {"appid": APP_CLIENT}
    token = issuer.mint(version=version, oid=APP_OID, roles=["AI.User"], **client_claim)
    principal = await auth.authenticate(bearer(token))
    assert (principal.tenant, principal.key_id) == ("apps", f"entra:{APP_OID}")
    assert principal.rate_key == f"apps:entra:{APP_OID}", "limits count per principal, never per token"
    assert principal.client_id == APP_CLIENT


async def test_a_delegated_token_with_the_scope_maps_by_the_users_oid(issuer: Issuer, http: httpx.AsyncClient) -> None:
    auth, _ = make_auth(issuer, http)
    token = issuer.mint(azp=STRANGER, oid=USER_OID, scp="openid AI.User")
    assert (await auth.authenticate(bearer(token))).tenant == "people"


# Times are taken when each test runs, not when the suite is collected: in a long suite a token
# "not valid for ten minutes yet" minted at collection is valid by the time its test runs.
@pytest.mark.parametrize(("claims", "reason"), [
    (lambda: {"aud": "api://someone-else"}, "aud"),
    (lambda: {"iss": f"https://login.example.net/{TENANT_ID}/v2.0"}, "iss"),
    (lambda: {"exp": int(time.time()) - 120}, "expired"),
    (lambda: {"nbf": int(time.time()) + 600}, "nbf"),
    (lambda: {"tid": STRANGER}, "tid"),
])
async def test_bad_claims_are_401_invalid_token(issuer: Issuer, http: httpx.AsyncClient,
                                                claims: Callable[[], dict[str, Any]], reason: str) -> None:
    auth, _ = make_auth(issuer, http)
    with pytest.raises(Unauthorized) as err:
        await auth.authenticate(bearer(app_token(issuer, **claims())))
    assert reason in err.value.detail
    assert err.value.headers["WWW-Authenticate"].startswith('Bearer error="invalid_token"')


def _b64(data: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


async def test_alg_none_and_hs256_signed_with_the_public_key_are_refused(issuer: Issuer,
                                                                         http: httpx.AsyncClient) -> None:
    auth, _ = make_auth(issuer, http)
    good = jwt.decode(app_token(issuer), options={"verify_signature": False})
    unsigned = f"{_b64({'alg': 'none', 'typ': 'JWT', 'kid': issuer.current.kid})}.{_b64(good)}."
    # The classic confusion attack: HMAC keyed with the RSA public key a verifier might hold.
    header = _b64({"alg": "HS256", "typ": "JWT", "kid": issuer.current.kid})
    signing_input = f"{header}.{_b64(good)}"
    mac = hmac.new(issuer.current.public_pem(), signing_input.encode(), hashlib.sha256).digest()
    hs256 = f"{signing_input}.{base64.urlsafe_b64encode(mac).rstrip(b'=').decode()}"
    for forged in (unsigned, hs256):
        with pytest.raises(Unauthorized) as err:
            await auth.authenticate(bearer(forged))
        assert "RS256" in err.value.detail


async def test_a_jwt_is_never_looked_up_as_an_api_key(issuer: Issuer, http: httpx.AsyncClient) -> None:
    jwt_shaped_key = app_token(issuer, exp=int(time.time()) - 3600)
    tenants = [TenantConfig(tenant="keyed", keys=[TenantKey(id="j", sha256=hash_api_key(jwt_shaped_key))]), *TENANTS]
    keys = SigningKeys(issuer.url, http, clock=Clock())
    auth = Authenticator(SettingsTenants(tenants), EntraValidator(keys, authority=issuer.url, audiences=[API_AUDIENCE],
                                                 tids=[TENANT_ID]), "AI.User")
    assert (await auth.authenticate({"x-api-key": jwt_shaped_key})).tenant == "keyed"
    with pytest.raises(Unauthorized):
        await auth.authenticate(bearer(jwt_shaped_key))


async def test_a_valid_token_without_the_role_or_without_a_tenant_is_403(issuer: Issuer,
                                                                         http: httpx.AsyncClient) -> None:
    auth, _ = make_auth(issuer, http)
    for token in (app_token(issuer, roles=["Other.Role"]),  # app-only: scp does not count
                  issuer.mint(azp=STRANGER, oid=USER_OID, scp="openid"),  # delegated without the scope
                  app_token(issuer, azp=STRANGER, oid=STRANGER)):  # role, but in no tenant
        with pytest.raises(Forbidden):
            await auth.authenticate(bearer(token))


async def test_an_unknown_kid_refetches_once_per_cooldown_then_a_rotated_key_works(issuer: Issuer,
                                                                                   http: httpx.AsyncClient) -> None:
    clock = Clock()
    auth, keys = make_auth(issuer, http, clock, cooldown_s=30)
    await auth.authenticate(bearer(app_token(issuer)))
    assert keys.fetches == 1
    new_key = issuer.rotate()
    # Within the cooldown a new kid is refused without asking the directory again...
    clock.now += 10
    with pytest.raises(Unauthorized) as err:
        await auth.authenticate(bearer(app_token(issuer, key=new_key)))
    assert "does not publish" in err.value.detail and keys.fetches == 1
    # ...made-up kids cost nothing more...
    with pytest.raises(Unauthorized):
        await auth.authenticate(bearer(app_token(issuer, headers={"kid": "made-up"})))
    assert keys.fetches == 1
    # ...and after it, the unknown kid refetches the keys and the rotated key is accepted.
    clock.now += 30
    assert (await auth.authenticate(bearer(app_token(issuer, key=new_key)))).tenant == "apps"
    assert keys.fetches == 2
    # Known keys are served from the cache.
    await auth.authenticate(bearer(app_token(issuer, key=new_key)))
    assert keys.fetches == 2


async def test_without_entra_configured_a_token_is_401_and_keys_still_work(issuer: Issuer) -> None:
    auth = Authenticator(SettingsTenants(TENANTS), None)
    with pytest.raises(Unauthorized) as err:
        await auth.authenticate(bearer(app_token(issuer)))
    assert "does not accept Entra" in err.value.detail
    assert (await auth.authenticate({"api-key": "people-key"})).tenant == "people"


async def test_logs_name_the_caller_never_the_token(issuer: Issuer, http: httpx.AsyncClient,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    auth, _ = make_auth(issuer, http)
    caplog.set_level("DEBUG")
    tokens = [app_token(issuer, roles=[]), app_token(issuer, exp=int(time.time()) - 600),
              app_token(issuer, azp=STRANGER)]
    for token in tokens:
        with pytest.raises((Unauthorized, Forbidden)):
            await auth.authenticate(bearer(token))
    assert APP_OID in caplog.text, "refusals of a verified caller name its oid"
    for token in tokens:
        assert token not in caplog.text and token.split(".")[2] not in caplog.text
