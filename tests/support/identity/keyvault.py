"""A local Key Vault over HTTPS: the SDK's auth challenge, bearer tokens from the local issuer,
versioned secrets a test can rotate."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import jwt
import trustme
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.support.identity.issuer import TENANT_ID, Issuer

VAULT_RESOURCE = "https://vault.azure.net"


@dataclass
class LocalCA:
    """A throwaway CA and a server certificate for 127.0.0.1, written where processes can read them."""

    ca_pem: Path
    cert_pem: Path
    key_pem: Path

    @classmethod
    def create(cls, directory: Path) -> LocalCA:
        ca = trustme.CA()
        server = ca.issue_cert("127.0.0.1", "localhost")
        paths = cls(directory / "ca.pem", directory / "server.pem", directory / "server-key.pem")
        ca.cert_pem.write_to_path(str(paths.ca_pem))
        server.private_key_pem.write_to_path(str(paths.key_pem))
        with paths.cert_pem.open("wb") as out:
            for blob in server.cert_chain_pems:
                out.write(blob.bytes())
        return paths


@dataclass
class KeyVault:
    issuer: Issuer
    url: str = ""
    versions: dict[str, list[tuple[str, str]]] = field(default_factory=dict)  # name -> [(version, value)]
    reads: int = 0
    challenges: int = 0

    def set(self, name: str, value: str) -> str:
        """A new current version, as `az keyvault secret set` makes."""
        version = uuid.uuid4().hex
        self.versions.setdefault(name, []).append((version, value))
        return version

    def app(self) -> Starlette:
        return Starlette(routes=[
            Route("/secrets/{name}", self._get), Route("/secrets/{name}/", self._get),
            Route("/secrets/{name}/{version}", self._get),
        ])

    def _challenge(self, error: str | None = None) -> Response:
        self.challenges += 1
        value = f'Bearer authorization="{self.issuer.url}/{TENANT_ID}", resource="{VAULT_RESOURCE}"'
        if error:
            value += f', error="{error}"'
        return JSONResponse({"error": {"code": "Unauthorized", "message": "AKV10000: Request is missing a Bearer."}},
                            status_code=401, headers={"WWW-Authenticate": value})

    async def _get(self, request: Request) -> Response:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            return self._challenge()
        try:
            self.issuer.verify(token, VAULT_RESOURCE)
        except jwt.PyJWTError:
            return self._challenge("invalid_token")
        name, wanted = request.path_params["name"], request.path_params.get("version", "")
        versions = self.versions.get(name, [])
        found = next((v for v in versions if v[0] == wanted), None) if wanted else (versions[-1] if versions else None)
        if found is None:
            return JSONResponse({"error": {"code": "SecretNotFound", "message": f"A secret with (name/id) {name} "
                                           "was not found in this key vault."}}, status_code=404)
        self.reads += 1
        version, value = found
        now = int(time.time())
        return JSONResponse({"value": value, "id": f"{self.url}/secrets/{name}/{version}",
                             "attributes": {"enabled": True, "created": now, "updated": now,
                                            "recoveryLevel": "Recoverable+Purgeable"}})
