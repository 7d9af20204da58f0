"""The landing page in a real browser: consent, form checks, the daemon's errors, Slovak,
the copyable invite, the report dialog and the way back to a running session."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, Dialog, Page, Request, expect

from tests.browser import browser, open_ui, screenshot
from tests.processes import Daemon, Process, start_daemon, start_rendezvous

__all__ = ["browser"]  # the fixture
expect.set_options(timeout=15_000)


@pytest.fixture
async def rendezvous(tmp_path: Path) -> AsyncIterator[tuple[Process, str]]:
    process, url = await start_rendezvous(tmp_path)
    yield process, url
    await process.stop()


@pytest.fixture
async def alice(tmp_path: Path, rendezvous: tuple[Process, str]) -> AsyncIterator[Daemon]:
    daemon = await start_daemon(tmp_path, "alice", rendezvous[1], api_login=False)
    yield daemon
    await daemon.close()


def api_calls(page: Page) -> list[str]:
    """The state-changing API requests the page makes."""
    calls: list[str] = []

    def seen(request: Request) -> None:
        if "/api/" in request.url and request.method != "GET":
            calls.append(f"{request.method} {request.url.split('/', 3)[-1]}")

    page.on("request", seen)
    return calls


async def test_landing_checks_before_sending_and_shows_the_daemons_errors(
    browser: Browser, alice: Daemon, rendezvous: tuple[Process, str]
) -> None:
    context, page = await open_ui(browser, alice)
    await context.grant_permissions(["clipboard-read", "clipboard-write"])
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(str(error)))
    calls = api_calls(page)
    invite = page.get_by_label("Invite", exact=True)
    terms = page.get_by_role("dialog", name="Before you start")

    # A malformed invite is refused in the page, tied to its field, with no request.
    await invite.fill("hello-world")
    await page.get_by_role("button", name="Join session").click()
    error = page.locator("#invite-error")
    await expect(error).to_contain_text("12-character token")
    await expect(invite).to_have_attribute("aria-invalid", "true")
    await expect(invite).to_have_attribute("aria-describedby", re.compile(r"\binvite-error\b"))
    await expect(invite).to_be_focused()
    await invite.fill("ABCD1234WXYZ-abc")  # re-checked as you type
    await expect(error).to_contain_text("16-character secret")
    await invite.fill("https://example.org/join#ABCD1234WXYZ-k7q2m9x4hd3fabcd")
    await expect(error).to_be_empty()
    await expect(invite).not_to_have_attribute("aria-invalid", "true")

    # The token form checks its bounds.
    await page.get_by_label("Custom").check()
    minutes = page.get_by_label(re.compile(r"^Minutes"))
    await minutes.fill("0")
    limit = page.get_by_label("Message limit (characters)")
    await limit.fill("100")
    await page.get_by_role("button", name="Request token").click()
    await expect(page.locator("#ttl-custom-error")).to_have_text(
        "Enter a whole number of minutes from 1 to 10,000."
    )
    await expect(page.locator("#limit-error")).to_have_text(
        "Enter a whole number from 200 to 16,000."
    )
    await expect(minutes).to_be_focused()
    await expect(limit).to_have_attribute("aria-invalid", "true")
    await expect(terms).to_be_hidden()
    assert calls == []

    # Consent comes first; "Not now" sends nothing.
    await invite.fill("ZZZZZZZZZZZZ-abcdefghijkmnpqr")
    await page.get_by_role("button", name="Join session").click()
    await expect(terms).to_be_visible()
    await expect(terms.get_by_role("link", name="Terms of service")).to_have_attribute(
        "href", "/terms"
    )
    await expect(terms.get_by_role("link", name="Privacy policy")).to_have_attribute(
        "href", "/privacy"
    )
    await terms.get_by_role("button", name="Not now").click()
    await expect(terms).to_be_hidden()
    assert calls == []
    # A well-formed invite nobody made: the daemon's refusal, in plain words.
    await page.get_by_role("button", name="Join session").click()
    await terms.get_by_role("button", name="I agree").click()
    await expect(page.locator("#join-error")).to_have_text(
        "No session exists for this invite. Ask the other person for a new one."
    )
    assert calls == ["POST api/preferences", "POST api/join"]

    # Slovak, through the language switcher; consent is remembered.
    await page.locator("#language").select_option("sk")
    await expect(page.get_by_role("heading", level=1)).to_have_text(
        "Súkromný rozhovor, ktorý po skončení zmizne"
    )
    await expect(page.locator("html")).to_have_attribute("lang", "sk")
    await screenshot(page, "landing-sk")
    await page.get_by_label("Pozvánka", exact=True).fill("zlá pozvánka")
    await page.get_by_role("button", name="Pripojiť sa").click()
    await expect(page.locator("#invite-error")).to_contain_text("12-znakovým tokenom")

    await page.get_by_role("button", name="Vyžiadať token").click()
    await page.wait_for_url("**/session")
    await expect(page.get_by_role("heading", name="Pozvite druhú osobu")).to_be_visible()
    shown = page.get_by_label("Pozvánka", exact=True)
    await expect(shown).to_have_value(re.compile(r"^[A-Z0-9]{12}-[a-z2-9]{16}$"))
    await page.get_by_role("button", name="Kopírovať pozvánku").click()
    await expect(page.locator("#copy-status")).to_have_text("Skopírované do schránky.")
    assert await page.evaluate("navigator.clipboard.readText()") == await shown.input_value()

    # Reporting: only what the user writes is sent.
    await page.get_by_role("button", name="Nahlásiť zneužitie").first.click()
    report = page.get_by_role("dialog", name="Nahlásiť zneužitie")
    await report.get_by_label("Dôvod").select_option("spam")
    await report.get_by_label("Čo sa stalo?").fill("Posiela reklamu.")
    await report.get_by_role("button", name="Odoslať hlásenie").click()
    await expect(report.get_by_text("Ďakujeme. Vaše hlásenie bolo odoslané.")).to_be_visible()
    await report.get_by_role("button", name="Zavrieť").click()
    await expect(report).to_be_hidden()

    # Leaving the running session asks first; the landing page then offers the way back.
    prompts: list[str] = []

    async def accept(dialog: Dialog) -> None:
        prompts.append(dialog.type)
        await dialog.accept()

    page.on("dialog", lambda dialog: asyncio.ensure_future(accept(dialog)))
    await page.goto(page.url.replace("/session", "/"))
    assert prompts == ["beforeunload"]
    back = page.get_by_role("link", name="Späť do relácie")
    await expect(back).to_be_visible()
    await expect(page.locator("#cards")).to_be_hidden()

    # With the rendezvous gone, a report fails with a clear reason.
    await rendezvous[0].stop()
    await back.click()
    await page.get_by_role("button", name="Nahlásiť zneužitie").first.click()
    await report.get_by_role("button", name="Odoslať hlásenie").click()
    await expect(report.locator("#report-error")).to_contain_text(
        "sprostredkujúci server nie je dostupný"
    )
    assert problems == []
