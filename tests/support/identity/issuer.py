"""A local Entra ID: publishes signing keys (OIDC discovery), mints tokens per test case, and
answers the App Service managed-identity protocol (IDENTITY_ENDPOINT + IDENTITY_HEADER)."""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

TENANT_ID = "72f988bf-86f1-41af-91ab-2d7cd011db47"
IDENTITY_HEADER = "local-identity-header-secret"
API_AUDIENCE = "api://aigw"


@dataclass(frozen=True)
class Identity:
    """A managed identity (or app registration) the issuer can mint tokens for."""

    client_id: str
    oid: str
    # resource (audience) -> app roles granted on it
    roles: dict[str, tuple[str, ...]] = field(default_factory=dict)


@dataclass
class SigningKey:
    kid: str
    private: rsa.RSAPrivateKey

    @classmethod
    def new(cls) -> SigningKey:
        return cls(uuid.uuid4().hex, rsa.generate_private_key(public_exponent=65537, key_size=2048))

    def jwk(self) -> dict[str, Any]:
        data: dict[str, Any] = RSAAlgorithm.to_jwk(self.private.public_key(), as_dict=True)
        return {**data, "kid": self.kid, "use": "sig", "alg": "RS256"}

    def public_pem(self) -> bytes:
        return self.private.public_key().public_bytes(serialization.Encoding.PEM,
                                                      serialization.PublicFormat.SubjectPublicKeyInfo)


class Issuer:
    """The directory `TENANT_ID`: its keys, its identities, and every token it issued."""

    def __init__(self, identities: list[Identity], default_client_id: str) -> None:
        self.url = ""  # set once served
        self.keys = [SigningKey.new()]
        self.identities = {i.client_id: i for i in identities}
        self.default_client_id = default_client_id
        self.lifetime_s: dict[str, int] = {}  # resource -> token lifetime; default one hour
        self.issued: list[dict[str, Any]] = []  # claims of managed-identity tokens, in order
        self.key_fetches = 0
        self._lock = threading.Lock()

    @property
    def current(self) -> SigningKey:
        return self.keys[-1]

    def rotate(self, *, keep_old: bool = True) -> SigningKey:
        """Publish a new signing key and sign with it from now on."""
        key = SigningKey.new()
        self.keys = [*self.keys, key] if keep_old else [key]
        return key

    def v1_issuer(self) -> str:
        return f"https://sts.windows.net/{TENANT_ID}/"

    def v2_issuer(self) -> str:
        return f"{self.url}/{TENANT_ID}/v2.0"

    def mint(self, *, version: int = 2, lifetime_s: int = 3600, key: SigningKey | None = None,
             headers: dict[str, Any] | None = None, **claims: Any) -> str:
        """A signed access token; `claims` override (or, set to None, remove) the defaults."""
        now = int(time.time())
        base: dict[str, Any] = {
            "aud": API_AUDIENCE, "iss": self.v2_issuer() if version == 2 else self.v1_issuer(),
            "tid": TENANT_ID, "oid": str(uuid.uuid4()), "iat": now, "nbf": now, "exp": now + lifetime_s,
            "ver": f"{version}.0", "sub": str(uuid.uuid4()),
        }
        merged = {k: v for k, v in {**base, **claims}.items() if v is not None}
        signer = key or self.current
        return jwt.encode(merged, signer.private, algorithm="RS256", headers={"kid": signer.kid, **(headers or {})})

    def token_for(self, identity: Identity, resource: str) -> tuple[str, dict[str, Any]]:
        """What managed identity hands out: a v1 app-only token for `resource`."""
        lifetime = self.lifetime_s.get(resource, 3600)
        claims: dict[str, Any] = {"aud": resource, "appid": identity.client_id, "oid": identity.oid, "idtyp": "app",
                  "roles": list(identity.roles.get(resource, ()))}
        token = self.mint(version=1, lifetime_s=lifetime, **claims)
        decoded = jwt.decode(token, options={"verify_signature": False})
        with self._lock:
            self.issued.append(decoded)
        return token, decoded

    def verify(self, token: str, audience: str, *, leeway_s: float = 1.0) -> dict[str, Any]:
        """What a resource server (Key Vault, Azure OpenAI) checks: our signature, audience, expiry."""
        kid = jwt.get_unverified_header(token).get("kid")
        key = next((k for k in self.keys if k.kid == kid), None)
        if key is None:
            raise jwt.InvalidSignatureError("unknown kid")
        claims: dict[str, Any] = jwt.decode(token, key.private.public_key(), algorithms=["RS256"],
                                            audience=audience, leeway=leeway_s)
        return claims

    def app(self) -> Starlette:
        return Starlette(routes=[
            Route("/{tid}/discovery/v2.0/keys", self._keys),
            Route("/{tid}/v2.0/.well-known/openid-configuration", self._discovery),
            Route("/msi/token", self._managed_identity),
        ])

    async def _keys(self, request: Request) -> Response:
        if request.path_params["tid"] != TENANT_ID:
            return JSONResponse({"error": "invalid_tenant"}, status_code=400)
        self.key_fetches += 1
        return JSONResponse({"keys": [k.jwk() for k in self.keys]})

    async def _discovery(self, request: Request) -> Response:
        return JSONResponse({"issuer": self.v2_issuer(),
                             "jwks_uri": f"{self.url}/{TENANT_ID}/discovery/v2.0/keys"})

    async def _managed_identity(self, request: Request) -> Response:
        # The App Service / Functions protocol, api-version 2019-08-01.
        if request.headers.get("x-identity-header") != IDENTITY_HEADER:
            return JSONResponse({"error": "unauthorized"}, status_code=401)
        params = request.query_params
        if params.get("api-version") != "2019-08-01" or not params.get("resource"):
            return JSONResponse({"error": "invalid_request"}, status_code=400)
        identity = self.identities.get(params.get("client_id") or self.default_client_id)
        if identity is None:
            return JSONResponse({"error": "identity_not_found"}, status_code=400)
        resource = params["resource"].removesuffix("/.default")
        token, claims = self.token_for(identity, resource)
        return JSONResponse({"access_token": token, "expires_on": str(claims["exp"]), "resource": resource,
                             "token_type": "Bearer", "client_id": identity.client_id})
