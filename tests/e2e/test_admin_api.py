"""The admin API over HTTP (docs/admin.md): who may call it, what it changes, what it never shows."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import httpx
import openai
import pytest

from functions import admin_api
from functions.http_common import ROUTES as REGISTERED
from shared.api.openapi import openapi_document
from shared.core.settings import hash_api_key
from tests.e2e.admin_stack import ADMIN_KEY, REFRESH_S, USER_KEY, admin, app_log, app_settings, chat, documents
from tests.e2e.conftest import assert_problem
from tools.appsettings import SettingsProblem
from tools.localenv import LocalStack
from tools.tenants import add_through_api, add_to_directory

pytestmark = pytest.mark.e2e
APP, DATABASE = "admin-api", "aigw-admin-api"
# Every admin route, with a body where it takes one: each must refuse the anonymous and the non-admin.
ROUTES = [
    ("GET", "/tenants", None),
    ("POST", "/tenants", {"tenant": "intruder"}),
    ("GET", "/tenants/team", None),
    ("PATCH", "/tenants/team", {"limits": {"daily_tokens": 1}}),
    ("POST", "/tenants/team/disable", None),
    ("GET", "/tenants/team/keys", None),
    ("POST", "/tenants/team/keys", {}),
    ("POST", "/tenants/team/keys/team-1/rotate", {}),
    ("DELETE", "/tenants/team/keys/team-1", None),
    ("GET", "/tenants/team/usage", None),
]


@pytest.fixture(scope="module")
def url(stack: LocalStack) -> Iterator[str]:
    with stack.app_on_free_port(APP, app_settings(DATABASE)) as running:
        yield running


def test_every_admin_route_is_described_and_tested() -> None:
    assert admin_api.bp  # importing it registered its routes
    admin_routes = {(m, f"/{t}") for t, methods in REGISTERED.items() if t.startswith("admin/") for m in methods}
    described = {(m.upper(), p) for p, item in openapi_document()["paths"].items() if p.startswith("/admin/")
                 for m in item if m != "parameters"}
    assert admin_routes == described
    assert len(admin_routes) == len(ROUTES)


@pytest.mark.parametrize(("method", "path", "body"), ROUTES, ids=[f"{m} {p}" for m, p, _ in ROUTES])
def test_no_admin_route_answers_without_an_admin(url: str, method: str, path: str, body: object) -> None:
    anonymous = httpx.request(method, f"{url}/api/admin{path}", json=body, timeout=30)
    assert_problem(anonymous, 401)
    assert "WWW-Authenticate" in anonymous.headers
    user = httpx.request(method, f"{url}/api/admin{path}", json=body, headers={"x-api-key": USER_KEY}, timeout=30)
    assert_problem(user, 403)
    wrong = httpx.request(method, f"{url}/api/admin{path}", json=body, headers={"x-api-key": "nope"}, timeout=30)
    assert_problem(wrong, 401)
    # None of them changed anything: the user's key still works and its tenant is as seeded.
    assert chat(url, USER_KEY).status_code == 200


def test_a_tenant_made_at_run_time_works_and_its_secret_is_shown_once(stack: LocalStack, url: str) -> None:
    with admin(url) as api:
        created = api.post("/tenants", json={"tenant": "acme", "limits": {"rpm": 50}, "key": {"id": "acme-main"}})
        assert created.status_code == 201, created.text
        assert created.headers["cache-control"] == "no-store"
        secret = created.json()["key"]["key"]
        assert secret.startswith("aigw-") and created.json()["key"]["id"] == "acme-main"
        # The openai SDK, as a client of the new tenant would use it.
        client = openai.OpenAI(base_url=f"{url}/api/v1", api_key=secret, max_retries=0)
        answer = client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}],
                                                max_tokens=8)
        assert answer.choices[0].message.content
        later = [api.get("/tenants"), api.get("/tenants/acme"), api.get("/tenants/acme/keys"),
                 api.get("/tenants/acme/usage")]
        for response in later:
            assert response.status_code == 200, response.text
            assert secret not in response.text and hash_api_key(secret) not in response.text
        keys = api.get("/tenants/acme/keys").json()["keys"]
        assert [k["id"] for k in keys] == ["acme-main"] and keys[0]["created"]
    stored = json.dumps(documents(stack, DATABASE, "tenants"))
    assert secret not in stored and hash_api_key(secret) in stored  # only the digest is kept
    time.sleep(1)  # the log file is written by another process
    log = app_log(stack, APP)
    assert secret not in log
    assert "aigw.admin action=tenant.create tenant=acme key=acme-main by=ops/ops-1" in log


def test_a_change_keeps_every_other_field_of_the_tenant(url: str) -> None:
    with admin(url) as api:
        changed = api.patch("/tenants/team", json={"limits": {"rpm": 500, "daily_tokens": None}})
        assert changed.status_code == 200, changed.text
        config = changed.json()["config"]
        assert config["limits"]["rpm"] == 500 and config["limits"]["daily_tokens"] is None  # null: no limit
        assert config["limits"]["cache_ttl_s"] == 0 and config["log_content"] is True  # untouched
        assert [k["id"] for k in changed.json()["keys"]] == ["team-1"]
        refused = [api.patch("/tenants/team", json={"keys": []}), api.patch("/tenants/team", json={"tenant": "x"}),
                   api.patch("/tenants/team", json={"limits": {"rpm": -1}}),
                   api.patch("/tenants/team", json={"surprise": 1}),
                   # Unknown, even set to null (which a merge patch would drop unseen); nested too.
                   api.patch("/tenants/team", json={"": None}), api.patch("/tenants/team", json={"surprise": None}),
                   api.patch("/tenants/team", json={"limits": {"rmp": None}}),
                   api.post("/tenants", json={"tenant": "bad name!"}),
                   api.post("/tenants/team/keys", json={"id": "has space"})]
        for response in refused:
            assert_problem(response, 400)
        # The checks TENANTS gets at start: a route to a model this app does not serve is refused.
        unserved = api.patch("/tenants/team", json={"routes": {"auto": {"simple": "gpt-4o-mini", "complex": "gpt-9"}}})
        assert "'gpt-9' is not a model of AI_ENDPOINTS" in assert_problem(unserved, 400)["detail"]
        judge = {"simple": "gpt-4o-mini", "complex": "gpt-4o", "second_opinion": {"model": "gpt-9"}}
        unjudged = api.patch("/tenants/team", json={"routes": {"auto": judge}})
        assert "second_opinion model 'gpt-9' is not a model" in assert_problem(unjudged, 400)["detail"]
        typo = api.patch("/tenants/team", json={"routes": {"auto": {**judge, "second_opinon": None}}})
        assert "no field 'routes.auto.second_opinon'" in assert_problem(typo, 400)["detail"]
        assert_problem(api.post("/tenants", json={"tenant": "team"}), 409)
        assert_problem(api.get("/tenants/nobody"), 404)
        assert_problem(api.delete("/tenants/team/keys/nokey"), 404)
        # The tenant's last key cannot be revoked (disable the tenant instead).
        assert_problem(api.delete("/tenants/team/keys/team-1"), 409)
        # Nor can an admin key lock itself out: its tenant disabled, its role gone, itself ended.
        for locked_out in (api.post("/tenants/ops/disable"), api.patch("/tenants/ops", json={"roles": ["user"]}),
                           api.post("/tenants/ops/keys/ops-1/rotate", json={"grace_s": 0})):
            assert "lock out" in assert_problem(locked_out, 409)["detail"]
        assert api.get("/tenants/ops").json()["config"]["roles"] == ["admin"]
    assert chat(url, USER_KEY).status_code == 200


def test_rotation_keeps_the_old_key_for_its_grace_and_revocation_ends_a_key(url: str) -> None:
    with admin(url) as api:
        first = api.post("/tenants/team/keys", json={"id": "rotating"}).json()
        assert chat(url, first["key"]).status_code == 200
        kept = api.post("/tenants/team/keys/rotating/rotate", json={"grace_s": 3600, "id": "rotated"})
        assert kept.status_code == 201, kept.text
        assert chat(url, first["key"]).status_code == 200 and chat(url, kept.json()["key"]).status_code == 200
        listed = {k["id"]: k for k in api.get("/tenants/team/keys").json()["keys"]}
        assert listed["rotating"]["expires"] and listed["rotated"]["expires"] is None
        assert listed["rotating"]["last_used"]  # it authenticated today
        ended = api.post("/tenants/team/keys/rotated/rotate", json={"grace_s": 0}).json()
        assert_problem(chat(url, kept.json()["key"]), 401)  # no grace: refused at once (this instance)
        assert chat(url, ended["key"]).status_code == 200
        assert api.delete(f"/tenants/team/keys/{ended['id']}").status_code == 204
        assert_problem(chat(url, ended["key"]), 401)
        assert api.delete("/tenants/team/keys/rotating").status_code == 204


def test_a_disabled_tenant_is_refused_and_usage_counts_per_key(url: str) -> None:
    with admin(url) as api:
        made = api.post("/tenants", json={"tenant": "brief", "key": {"limits": {"daily_tokens": 100000}}}).json()
        assert chat(url, made["key"]["key"]).status_code == 200
        usage = api.get("/tenants/brief/usage").json()
        assert usage["daily"]["tokens_used"] > 0
        key = usage["keys"][0]
        assert key["daily"]["tokens_used"] == usage["daily"]["tokens_used"]  # its own window, the same use
        assert key["daily"]["token_limit"] == 100000 and key["monthly"]["tokens_used"] == usage["daily"]["tokens_used"]
        assert api.post("/tenants/brief/disable").json()["disabled"] is True
        assert_problem(chat(url, made["key"]["key"]), 401)
        assert api.patch("/tenants/brief", json={"disabled": False}).status_code == 200
        assert chat(url, made["key"]["key"]).status_code == 200


def test_make_tenant_uses_the_admin_api_when_the_app_is_up_and_the_directory_otherwise(
        stack: LocalStack, url: str) -> None:
    through_api = add_through_api(url, ADMIN_KEY, "cli-api", {"rpm": 30})
    assert through_api is not None and chat(url, through_api).status_code == 200  # this instance: at once
    assert add_through_api("http://127.0.0.1:9", ADMIN_KEY, "nobody", {}) is None  # no app there
    with pytest.raises(SettingsProblem, match="403"):
        add_through_api(url, USER_KEY, "cli-user", {})
    # The app down (here: not asked), Cosmos up: straight into the directory, seen within the bound.
    direct = add_to_directory({**stack.settings, "COSMOS_DATABASE": DATABASE}, "cli-direct", {"daily_tokens": 9000})
    assert direct is not None
    time.sleep(REFRESH_S + 0.05)
    assert chat(url, direct).status_code == 200
    with admin(url) as api:
        assert api.get("/tenants/cli-direct").json()["config"]["limits"]["daily_tokens"] == 9000
    assert direct not in json.dumps(documents(stack, DATABASE, "tenants"))
