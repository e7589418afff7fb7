"""Timer triggers on their NCRONTAB schedule, the host's page on '/', and the invocation id header."""

from __future__ import annotations

import httpx

from tests.integration.devhost.conftest import Devhost, eventually


def test_a_timer_runs_on_its_schedule_with_a_timer_request(streams_host: Devhost) -> None:
    runs = eventually(lambda: streams_host.records("tick")[:3] if len(streams_host.records("tick")) >= 3 else None,
                      what="three runs of the every-second timer")
    assert {r["type"] for r in runs} == {"TimerRequest"}
    assert not any(r["past_due"] for r in runs)
    assert runs[0]["schedule"] == {"AdjustForDST": True}
    assert runs[1]["status"]["Last"] and runs[1]["status"]["Next"] > runs[1]["status"]["Last"]
    assert "tick: timerTrigger '*/1 * * * * *'" in streams_host.log()


def test_without_the_setting_the_root_serves_the_hosts_page(streams_host: Devhost) -> None:
    response = httpx.get(f"{streams_host.url}/")
    assert response.status_code == 200 and response.headers["content-type"] == "text/html"


def test_azure_web_jobs_disable_homepage_makes_the_root_an_empty_204(plain_host: Devhost) -> None:
    response = httpx.get(f"{plain_host.url}/")
    assert (response.status_code, response.content) == (204, b"")
    assert httpx.get(f"{plain_host.url}/elsewhere").status_code == 404


def test_a_client_sent_invocation_id_is_replaced_by_the_hosts_own(streams_host: Devhost) -> None:
    body = httpx.get(f"{streams_host.url}/api/items/7", headers={"x-ms-invocation-id": "forged"}).json()
    assert body["invocation_header"] and body["invocation_header"] != "forged"
