"""The local Entra ID issuer, served over HTTP for the module's tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.identity.issuer import Identity, Issuer
from tests.support.identity.serve import Served

APP_CLIENT = "11111111-1111-1111-1111-111111111111"
APP_OID = "22222222-2222-2222-2222-222222222222"


@pytest.fixture(scope="module")
def issuer() -> Iterator[Issuer]:
    issuer = Issuer([Identity(APP_CLIENT, APP_OID)], default_client_id=APP_CLIENT)
    served = Served(issuer.app())
    issuer.url = served.url
    yield issuer
    served.stop()
