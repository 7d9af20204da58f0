"""The rendezvous's admin page in real Chromium, against a real rendezvous process.

A report is filed through the API; in the page a wrong password is refused, the
right one lists the report, "mark handled" moves it to the handled list, and
logging out forgets the token (in the page and on the server). Screenshot:
admin-reports.png (see tests/browser.py `screenshot`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from playwright.async_api import Browser, Page, expect

from orbitcore.i18n import catalog
from rendezvous.admin_page import CSP
from rendezvous.passwords import hash_password
from tests.processes import start_rendezvous

# The `browser` fixture; its module is left for pytest to import (see test_ui_pages).

PASSWORD = "correct horse battery staple"
HOSTILE = 'Spam <img src=x id=injected> & "quotes"'
STORAGE_KEY = "chatorbit.admin.session"


def text(language: str, dotted: str, **values: Any) -> str:
    node: Any = catalog(language)
    for part in dotted.split("."):
        node = node[part]
    assert isinstance(node, str)
    result: str = node
    for name, value in values.items():
        result = result.replace(f"{{{name}}}", str(value))
    return result


@pytest.fixture
async def rendezvous(tmp_path: Path) -> AsyncIterator[str]:
    process, url = await start_rendezvous(
        tmp_path, "--admin-password-hash", hash_password(PASSWORD)
    )
    try:
        async with aiohttp.ClientSession() as http, http.get(f"{url}/admin") as response:
            assert response.status == 200, "rendezvous/app.py must call admin_page.setup(app)"
        yield url
    finally:
        await process.stop()


async def file_report(url: str, reason: str, details: str, contact: str | None) -> int:
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{url}/api/tokens/issue", json={}) as response:
            assert response.status == 200
            token = (await response.json())["token"]
        body = {"token": token, "reason": reason, "details": details}
        if contact is not None:
            body["contact"] = contact
        async with http.post(f"{url}/api/reports", json=body) as response:
            assert response.status == 201, await response.text()
            report_id: int = (await response.json())["id"]
            return report_id


async def api_reports(url: str, token: str) -> tuple[int, Any]:
    async with (
        aiohttp.ClientSession() as http,
        http.get(
            f"{url}/api/admin/reports?include_handled=1",
            headers={"Authorization": f"Bearer {token}"},
        ) as response,
    ):
        return response.status, await response.json()


def watch(page: Page) -> list[str]:
    """Script errors and CSP violations (failed requests, such as the 401 of a wrong
    password, are logged by Chromium too: those are expected)."""
    found: list[str] = []
    page.on("pageerror", lambda error: found.append(str(error)))
    page.on(
        "console",
        lambda message: (
            found.append(message.text) if "Content Security Policy" in message.text else None
        ),
    )
    return found


async def shot(page: Page, name: str) -> None:
    from tests.browser import screenshot

    await screenshot(page, name)


async def test_admin_logs_in_handles_a_report_and_logs_out(
    browser: Browser, rendezvous: str
) -> None:
    first = await file_report(rendezvous, HOSTILE, "It started at 10:02.\nThen it got worse.", None)
    second = await file_report(
        rendezvous, "Threats", "Said they know where I live.", "me@example.org"
    )

    context = await browser.new_context(locale="en-US", viewport={"width": 1100, "height": 900})
    page = await context.new_page()
    problems = watch(page)
    response = await page.goto(f"{rendezvous}/admin")
    assert response is not None and response.status == 200
    headers = response.headers
    assert headers["content-security-policy"] == CSP
    assert headers["x-frame-options"] == "DENY"
    assert headers["cache-control"] == "no-store"
    assert await page.get_attribute("html", "lang") == "en"
    assert (await page.inner_text("h1")).strip() == text("en", "admin.title")
    assert await page.locator("#reports").is_hidden()
    # Without the script the form could only POST: a password never lands in a URL.
    assert await page.get_attribute("#login-form", "method") == "post"

    # A wrong password: an error, nothing stored, still the form.
    await page.fill("#password", "not the password")
    await page.click("#login-submit")
    await expect(page.locator("#login-error")).to_have_text(text("en", "admin.login.wrong"))
    assert await page.get_attribute("#password", "aria-invalid") == "true"
    assert await page.evaluate(f"sessionStorage.getItem('{STORAGE_KEY}')") is None
    assert await page.locator("#reports").is_hidden()

    # The right password: both reports, newest first, hostile text shown as text.
    await page.fill("#password", PASSWORD)
    await page.click("#login-submit")
    await page.wait_for_selector("#open-list [data-report]")
    assert await page.locator("#login").is_hidden()
    assert await page.evaluate("document.activeElement.id") == "reports-title"
    ids = await page.eval_on_selector_all(
        "#open-list [data-report]", "items => items.map(i => Number(i.dataset.reportId))"
    )
    assert ids == [second, first]
    hostile = page.locator(f"[data-report-id='{first}']")
    assert await hostile.locator("[data-field='reason']").inner_text() == HOSTILE
    assert await page.locator("#injected").count() == 0
    assert "Then it got worse." in await hostile.locator("[data-field='details']").inner_text()
    assert await hostile.locator("[data-field='contact']").inner_text() == text(
        "en", "admin.report.noContact"
    )
    assert await page.inner_text("#handled-empty") == text("en", "admin.reports.emptyHandled")

    # The token is in this tab's sessionStorage, never in the URL.
    saved = await page.evaluate(f"JSON.parse(sessionStorage.getItem('{STORAGE_KEY}'))")
    token = saved["token"]
    assert token and token not in page.url and "token" not in page.url

    # A reload keeps the login (same tab).
    await page.reload()
    await page.wait_for_selector("#open-list [data-report]")
    assert await page.locator("#login").is_hidden()

    # Mark the hostile one handled: it moves to the handled list.
    button = hostile.locator("[data-action='handled']")
    assert await button.get_attribute("aria-label") == text(
        "en", "admin.reports.markHandledLabel", id=first
    )
    await button.click()
    await page.wait_for_selector(f"#handled-list [data-report-id='{first}']")
    assert await page.locator(f"#open-list [data-report-id='{first}']").count() == 0
    assert await page.locator("#open-list [data-report]").count() == 1
    handled = page.locator(f"#handled-list [data-report-id='{first}']")
    assert await handled.locator("[data-action]").count() == 0
    assert await handled.locator("time[data-field='handled']").get_attribute("datetime")
    status, body = await api_reports(rendezvous, token)
    assert status == 200
    assert {r["id"]: r["handled"] for r in body["reports"]} == {first: True, second: False}

    await shot(page, "admin-reports")

    # Log out: the form again, the token forgotten here and refused by the server.
    await page.click("#logout")
    await page.wait_for_selector("#login:not([hidden])")
    assert await page.inner_text("#login-notice") == text("en", "admin.login.loggedOut")
    assert await page.locator("#reports").is_hidden()
    assert await page.evaluate(f"sessionStorage.getItem('{STORAGE_KEY}')") is None
    status, _ = await api_reports(rendezvous, token)
    assert status == 401
    await page.reload()
    assert await page.locator("#login").is_visible()

    assert problems == []
    await context.close()


async def test_admin_page_in_slovak(browser: Browser, rendezvous: str) -> None:
    context = await browser.new_context(locale="sk-SK")
    page = await context.new_page()
    problems = watch(page)
    await page.goto(f"{rendezvous}/admin")
    assert await page.get_attribute("html", "lang") == "sk"
    assert (await page.inner_text("h1")).strip() == text("sk", "admin.title")
    # The language links switch without a reload of anything but the page.
    await page.click("a[hreflang='en']")
    await page.wait_for_url("**/admin?lang=en")
    assert await page.get_attribute("html", "lang") == "en"
    await page.click("a[hreflang='sk']")
    await page.wait_for_url("**/admin?lang=sk")
    await page.click("#login-submit")  # empty password: refused in the page
    assert await page.inner_text("#login-error") == text("sk", "admin.login.required")
    assert problems == []
    await context.close()


async def test_admin_page_says_when_admin_is_disabled(browser: Browser, tmp_path: Path) -> None:
    process, url = await start_rendezvous(tmp_path)  # no password hash
    try:
        context = await browser.new_context(locale="en-US")
        page = await context.new_page()
        await page.goto(f"{url}/admin")
        assert await page.inner_text("#admin-disabled") == text("en", "admin.login.disabled")
        assert await page.locator("#login-form").count() == 0
        await context.close()
    finally:
        await process.stop()


async def test_static_files_are_served_read_only(rendezvous: str) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{rendezvous}/static/js/admin.js") as response:
            assert response.status == 200
            assert "javascript" in response.headers["Content-Type"]
        for path in ("/static/../rendezvous/app.py", "/static/%2e%2e/rendezvous/app.py"):
            async with http.get(f"{rendezvous}{path}") as response:
                assert response.status in {403, 404}, path
        async with http.post(f"{rendezvous}/static/js/admin.js") as response:
            assert response.status == 405
