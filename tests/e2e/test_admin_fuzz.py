"""schemathesis over the admin API as an admin, on an app and a database of its own (its tenants are
made and changed by the fuzzer): no server error, no answer outside the document."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.admin_stack import ADMIN_KEY, app_settings
from tests.e2e.test_openapi_fuzz import run_schemathesis
from tools.localenv import LocalStack

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def url(stack: LocalStack) -> Iterator[str]:
    with stack.app_on_free_port("admin-fuzz", app_settings("aigw-admin-fuzz")) as running:
        yield running


def test_schemathesis_finds_no_server_error_in_the_admin_api(url: str, tmp_path: Path) -> None:
    # One worker: with two, hypothesis's lambda descriptions raced in CPython's AST parser
    # ("AST constructor recursion depth mismatch", a schemathesis runtime error, not a finding).
    result = run_schemathesis(url, ADMIN_KEY, tmp_path, ["--include-path-regex", "^/admin/"])
    assert result["operations"]["tested"] == 10
    print(f"schemathesis (admin API): {result['test_cases']['generated']} test cases")
    # Whatever it made and changed, it could not lock the admin out (docs/admin.md).
    assert httpx.get(f"{url}/api/admin/tenants", headers={"x-api-key": ADMIN_KEY}, timeout=30).status_code == 200
