"""Session fixtures: the local stack (real emulators, simulators, the app) on free ports."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from shared.core.settings import Settings, hash_api_key, load_settings
from tools.appsettings import environment
from tools.localenv import LocalStack, Ports, share_ports

__all__ = ["environment"]  # bench/cache.py imports it from here

DEV_KEY = "local-dev-key"  # the dev tenant's key, defined in local.settings.example.json
OTHER_KEY = "other-tenant-key"
LIMITED_KEY = "limited-tenant-key"
ADMIN_KEY = "ops-admin-key"  # a tenant with the `admin` role: sees /api/ready's details
# The dev tenant without limits (so tests do not run into them), a second tenant to prove tenants
# never see each other's data, and one with limits and a model allow-list.
TEST_TENANTS = json.dumps([
    {"tenant": "dev", "keys": [{"id": "dev-local", "sha256": hash_api_key(DEV_KEY)}]},
    {"tenant": "other", "keys": [{"id": "other-1", "sha256": hash_api_key(OTHER_KEY)}]},
    {"tenant": "limited", "keys": [{"id": "limited-1", "sha256": hash_api_key(LIMITED_KEY)}],
     "limits": {"rpm": 1000, "tpm": 100000, "daily_tokens": 50000, "daily_usd": 1.0,
                "allowed_models": ["gpt-4o-mini"]}},
    {"tenant": "ops", "keys": [{"id": "ops-1", "sha256": hash_api_key(ADMIN_KEY)}], "roles": ["admin"]},
])
# The model route of docs/routing.md over the example settings' two chat models (tests/e2e/test_routing.py).
TEST_ROUTES = json.dumps({"auto": {"simple": "gpt-4o-mini", "complex": "gpt-4o", "threshold": 0.5}})


def pytest_configure(config: pytest.Config) -> None:
    """Under pytest-xdist every worker starts a whole stack of its own on free ports: each picks
    them from a part of the range no other worker picks from."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")  # gw0, gw1, ...
    if worker:
        share_ports(int(worker.removeprefix("gw")), int(os.environ["PYTEST_XDIST_WORKER_COUNT"]))


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    """Azurite, the Cosmos emulator and both simulator regions, started once per test session."""
    data_dir = tmp_path_factory.mktemp("stack")
    local = LocalStack(ports=Ports.free(), data_dir=data_dir, log_to_files=True)
    try:
        local.start_dependencies()
        yield local
    finally:
        local.stop()
        _show_logs_on_failure(data_dir)


@pytest.fixture(scope="session")
def app_url(stack: LocalStack) -> str:
    """The app itself, served by tools/devhost from function_app.py (as `make run` does)."""
    stack.start_app(extra_env={"TENANTS": TEST_TENANTS, "ROUTES": TEST_ROUTES})
    return stack.app_url


@pytest.fixture(scope="session")
def stack_settings(stack: LocalStack) -> Settings:
    """The app's settings for this stack, read the way the app reads them (from the environment)."""
    with environment(stack.settings):
        return load_settings()


def _show_logs_on_failure(data_dir: Path) -> None:
    if os.environ.get("SHOW_STACK_LOGS"):
        for log in sorted((data_dir / "logs").glob("*.log")):
            print(f"\n===== {log.name} =====\n{log.read_text(errors='replace')[-4000:]}")
