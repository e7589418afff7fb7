"""The operator console in a real browser: Debian's chromium, headless, driven by selenium through
chromium-driver (no browser download), against the running app (docs/admin.md#the-console)."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions as ready
from selenium.webdriver.support.ui import WebDriverWait

from tests.conftest import DEV_KEY
from tests.e2e.admin_stack import REFRESH_S, chat
from tools.localenv import LocalStack

pytestmark = pytest.mark.e2e
CHROMIUM, DRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "img" / "console.png"
WAIT_S = 30  # the longest the page may take to show what it was asked for (a bound, not a measure)


@pytest.fixture(scope="module")
def url(stack: LocalStack) -> Iterator[str]:
    """The app as `make run` starts it (local.settings.example.json: the dev tenant's key is an admin
    key), on a database of its own so that those TENANTS are what seeded its directory."""
    settings = {"COSMOS_DATABASE": "aigw-console", "TENANT_REFRESH_S": str(REFRESH_S), "SEMANTIC_CACHE_MODE": "off"}
    with stack.app_on_free_port("console", settings) as running:
        yield running


@pytest.fixture(scope="module")
def browser() -> Iterator[WebDriver]:
    if not (shutil.which(CHROMIUM) and shutil.which(DRIVER)):
        pytest.fail("Debian's chromium and chromium-driver are needed: apt-get install chromium chromium-driver "
                    "(make test installs them)")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1000",
                 "--disable-gpu"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def wait(driver: WebDriver) -> WebDriverWait[WebDriver]:
    # The page redraws its tables after each call: an element read mid-redraw is read again.
    return WebDriverWait(driver, WAIT_S, poll_frequency=0.1, ignored_exceptions=[StaleElementReferenceException])


def settled(driver: WebDriver) -> WebDriver:
    """The page once no call to the admin API is out (the script marks <body data-busy> meanwhile)."""
    wait(driver).until(lambda d: d.execute_script("return !document.body.dataset.busy && document.readyState"
                                                  " === 'complete'"))
    return driver


def click(driver: WebDriver, css: str) -> None:
    """Click what `css` finds once the page has settled (again if a redraw replaced it meanwhile)."""
    settled(driver)
    def clicked(d: WebDriver) -> bool:
        d.find_element(By.CSS_SELECTOR, css).click()
        return True

    wait(driver).until(clicked)


def errors_in(driver: WebDriver) -> list[str]:
    logs: list[dict[str, str]] = driver.get_log("browser")  # type: ignore[attr-defined]  # chromium's own
    return [entry["message"] for entry in logs if entry["level"] == "SEVERE"]


def test_an_operator_sees_spend_makes_a_key_and_revokes_it(url: str, browser: WebDriver) -> None:
    spent = chat(url, DEV_KEY)
    assert spent.status_code == 200, spent.text
    tokens = spent.json()["usage"]["total_tokens"]
    page = httpx.get(f"{url}/api/console")
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert DEV_KEY not in page.text and "<script>" not in page.text  # no inline script, no secret

    browser.get(f"{url}/api/console")
    browser.find_element(By.ID, "admin-key").send_keys(DEV_KEY)
    browser.find_element(By.ID, "login-button").click()
    dev = wait(browser).until(ready.presence_of_element_located((By.CSS_SELECTOR, 'tr[data-tenant="dev"]')))
    # The dev tenant's spend today, as a bar against its daily budget (settled just after the
    # answer: the page is refreshed until it shows).
    def spend_shown(driver: WebDriver) -> bool:
        click(driver, "#refresh")
        cell = settled(driver).find_element(By.CSS_SELECTOR, 'tr[data-tenant="dev"] .spend-day-tokens')
        return f"{tokens:,} of" in cell.text

    assert dev.find_element(By.CSS_SELECTOR, ".spend-day-tokens")
    wait(browser).until(spend_shown)
    today = browser.find_element(By.CSS_SELECTOR, 'tr[data-tenant="dev"] .spend-day-tokens')
    assert today.find_element(By.TAG_NAME, "progress").get_attribute("max") == "2000000"  # daily_tokens

    click(browser, 'tr[data-tenant="dev"] button.open')
    wait(browser).until(ready.visibility_of_element_located((By.ID, "new-key")))
    browser.find_element(By.ID, "new-key-id").send_keys("browser-key")
    browser.find_element(By.ID, "new-key-rpm").send_keys("100")
    click(browser, "#create-key")
    secret_box = wait(browser).until(ready.visibility_of_element_located((By.ID, "secret")))
    secret = secret_box.text.strip()
    assert secret.startswith("aigw-")
    client = openai.OpenAI(base_url=f"{url}/api/v1", api_key=secret, max_retries=0)
    answer = client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hello"}],
                                            max_tokens=8)
    assert answer.choices[0].message.content

    # The limits form: a new daily budget for the tenant, in force through the admin API.
    limit = browser.find_element(By.ID, "limit-daily_tokens")
    limit.clear()
    limit.send_keys("3000000")
    click(browser, "#save-limits")
    wait(browser).until(ready.text_to_be_present_in_element((By.ID, "status"), "Limits of dev saved"))
    assert httpx.get(f"{url}/api/admin/tenants/dev", headers={"x-api-key": DEV_KEY}).json()[
        "config"]["limits"]["daily_tokens"] == 3_000_000

    click(browser, 'tr[data-key="browser-key"] button.revoke')
    wait(browser).until(ready.text_to_be_present_in_element((By.ID, "status"), "Key browser-key revoked"))
    wait(browser).until(ready.invisibility_of_element_located((By.CSS_SELECTOR, 'tr[data-key="browser-key"]')))
    # One app: it re-read the directory when it changed it, so the very next call is refused.
    with pytest.raises(openai.AuthenticationError):
        client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "again"}],
                                       max_tokens=8)
    wait(browser).until(ready.text_to_be_present_in_element(
        (By.CSS_SELECTOR, 'tr[data-key="dev-local"] .last-used'), time.strftime("%Y-%m-%d", time.gmtime())))
    assert errors_in(browser) == []
    screenshot(url, browser)


def screenshot(url: str, browser: WebDriver) -> None:
    """docs/img/console.png, with a second tenant that has spent part of its budget, had a cache hit
    and a refusal in the last hour (the counts are written every few seconds: refreshed until shown)."""
    with httpx.Client(base_url=f"{url}/api/admin", headers={"x-api-key": DEV_KEY}, timeout=30) as api:
        made = api.post("/tenants", json={"tenant": "acme", "limits": {"daily_tokens": 1500, "daily_usd": 0.5}})
        key = made.json()["key"]["key"]
    # A whole answer (finished, not cut at max_tokens) is stored just after it is sent: asked again until a hit.
    whole = {"messages": [{"role": "user", "content": "Name a colour."}], "max_tokens": 200}
    sent: list[bool] = []
    while len(sent) < 10 and not (sent and sent[-1]):
        answer = httpx.post(f"{url}/api/v1/chat", headers={"x-api-key": key}, json=whole, timeout=30)
        assert answer.status_code == 200, answer.text
        sent.append(answer.json()["cached"])
    assert sent[0] is False and sent[-1] is True
    greedy = {"messages": [{"role": "user", "content": "Write a long story."}], "max_tokens": 4000}
    over = httpx.post(f"{url}/api/v1/chat", headers={"x-api-key": key}, json=greedy, timeout=30)
    assert over.status_code == 429 and over.json()["scope"] == "tenant"  # over its daily budget

    def counted(driver: WebDriver) -> bool:
        click(driver, "#refresh")
        settled(driver)
        row = 'tr[data-tenant="acme"]'
        hour = driver.find_element(By.CSS_SELECTOR, f"{row} .last-hour").text
        rate = driver.find_element(By.CSS_SELECTOR, f"{row} .hit-rate").text
        return f"{len(sent) + 1} requests, 1 refused" in hour and rate == f"{round(100 / (len(sent) + 1))} %"

    wait(browser).until(counted)
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(SCREENSHOT))


def test_a_wrong_key_is_told_and_sees_nothing(url: str, browser: WebDriver) -> None:
    browser.get(f"{url}/api/console")
    browser.find_element(By.ID, "admin-key").send_keys("not-a-key")
    browser.find_element(By.ID, "login-button").click()
    wait(browser).until(ready.text_to_be_present_in_element((By.ID, "status"), "Sign-in failed: 401"))
    assert not browser.find_element(By.ID, "main").is_displayed()
