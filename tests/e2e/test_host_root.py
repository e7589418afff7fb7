"""The app's root as the Functions host serves it with AzureWebJobsDisableHomepage (Azure and local alike)."""

from __future__ import annotations

import httpx
import pytest

pytestmark = pytest.mark.e2e


def test_the_root_is_empty_not_the_hosts_page(app_url: str) -> None:
    response = httpx.get(f"{app_url}/", timeout=30)
    # The host's HomepageMiddleware answers 204 No Content when the page is disabled (200 HTML otherwise).
    assert (response.status_code, response.content) == (204, b"")

