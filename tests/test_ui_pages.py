"""The help, privacy and terms pages in real Chromium, served by a real orbitd.

Languages (English, Slovak, the browser's language on a first visit, the
switcher, which survives a reload and a daemon restart), keyboard use, and no
script or CSP error. Screenshots (tests/browser.py `screenshot`): help-en.png, privacy-sk.png.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, BrowserContext, Page

from orbitcore.i18n import catalog
from tests.processes import Daemon, Process, start_daemon

# The `browser` fixture. Its module is imported by pytest itself (imported here first, it
# could not be assert-rewritten); `shot` imports it late for the same reason.

PAGES = {"/help": "help.title", "/privacy": "legal.privacy.title", "/terms": "legal.terms.title"}


def text(language: str, dotted: str) -> str:
    node = catalog(language)
    for part in dotted.split("."):
        node = node[part]
    assert isinstance(node, str)
    return node


@pytest.fixture
async def daemon(tmp_path: Path, rendezvous: str) -> AsyncIterator[Daemon]:
    started = await start_daemon(tmp_path, "alice", rendezvous, api_login=False)
    yield started
    await started.close()


class Problems:
    """Uncaught script errors and console errors (CSP violations show up there) of a page."""

    def __init__(self, page: Page) -> None:
        self.found: list[str] = []
        page.on("pageerror", lambda error: self.found.append(f"pageerror: {error}"))
        page.on(
            "console",
            lambda message: (
                self.found.append(f"console: {message.text}") if message.type == "error" else None
            ),
        )


async def log_in(
    browser: Browser, daemon: Daemon, *, locale: str = "en-US"
) -> tuple[BrowserContext, Page, Problems]:
    """A fresh browser context that has spent the daemon's login link.

    The link redirects to "/", which is not under test here: only the cookie matters.
    """
    context = await browser.new_context(locale=locale, viewport={"width": 1280, "height": 860})
    page = await context.new_page()
    await page.goto(daemon.link)
    assert any(c["name"] == "orbit_ui_alice" for c in await context.cookies())
    return context, page, Problems(page)


async def shot(page: Page, name: str) -> None:
    from tests.browser import screenshot

    await screenshot(page, name)


async def open_page(page: Page, base: str, path: str) -> None:
    response = await page.goto(base + path)
    assert response is not None and response.status == 200, path
    assert "default-src 'self'" in response.headers["content-security-policy"]


async def expect_language(page: Page, language: str, path: str) -> None:
    assert await page.get_attribute("html", "lang") == language
    assert (await page.inner_text("h1")).strip() == text(language, PAGES[path])
    assert await page.title() == f"{text(language, PAGES[path])} · ChatOrbit"


async def test_help_privacy_and_terms_in_english(browser: Browser, daemon: Daemon) -> None:
    context, page, problems = await log_in(browser, daemon)
    for path in PAGES:
        await open_page(page, daemon.base, path)
        await expect_language(page, "en", path)
        # Every heading and question of the catalog is on the page.
        body = await page.inner_text("main")
        if path == "/help":
            wanted = [
                question["q"]
                for section in catalog("en")["help"]["sections"].values()
                for question in section["questions"].values()
            ]
        else:
            document = catalog("en")["legal"][path.strip("/")]
            wanted = [section["title"] for section in document["sections"].values()]
        assert wanted and all(heading in body for heading in wanted)
        # Footer links to the three pages from every page.
        for target in PAGES:
            assert await page.locator(f"footer a[href='{target}']").count() == 1

    await open_page(page, daemon.base, "/help")
    questions = sum(len(s["questions"]) for s in catalog("en")["help"]["sections"].values())
    assert await page.locator("details.faq__item").count() == questions
    assert await page.locator("details[open]").count() == 0
    first = page.locator("details.faq__item").first
    await first.locator("summary").click()
    assert await first.get_attribute("open") is not None
    answer = catalog("en")["help"]["sections"]["basics"]["questions"]["what"]["a"]["p1"]
    assert await page.get_by_text(answer).is_visible()

    await shot(page, "help-en")  # with the first answer open
    await first.locator("summary").click()
    assert await first.get_attribute("open") is None
    assert problems.found == []
    await context.close()


async def test_slovak_pages_when_the_browser_speaks_slovak(
    browser: Browser, daemon: Daemon
) -> None:
    """No saved preference yet: the daemon follows Accept-Language (sent from the locale)."""
    context, page, problems = await log_in(browser, daemon, locale="sk-SK")
    assert await page.evaluate("navigator.language") == "sk-SK"
    for path in PAGES:
        await open_page(page, daemon.base, path)
        await expect_language(page, "sk", path)
    # Slovak throughout the page chrome too.
    assert await page.inner_text(".skip-link") == text("sk", "common.skipToContent")
    assert await page.locator("footer a[href='/terms']").inner_text() == text(
        "sk", "common.nav.terms"
    )
    await open_page(page, daemon.base, "/privacy")
    await shot(page, "privacy-sk")
    assert problems.found == []
    await context.close()


async def test_the_switcher_survives_a_reload_and_a_daemon_restart(
    browser: Browser, daemon: Daemon, tmp_path: Path, rendezvous: str
) -> None:
    context, page, problems = await log_in(browser, daemon)
    await open_page(page, daemon.base, "/help")
    await expect_language(page, "en", "/help")

    async with page.expect_navigation():
        await page.select_option("#language", "sk")  # saves the preference, then reloads
    await expect_language(page, "sk", "/help")
    await page.reload()
    await expect_language(page, "sk", "/help")

    # Restart orbitd with the same data dir: the preference is on disk.
    process: Process = daemon.process
    assert await process.stop() == 0
    restarted = await start_daemon(tmp_path, "alice", rendezvous, api_login=False)
    try:
        assert restarted.link != daemon.link
        await page.goto(restarted.link)  # the browser still has its cookie; the link is fresh
        for path in PAGES:
            await open_page(page, restarted.base, path)
            await expect_language(page, "sk", path)
        # And back to English, with the switcher in Slovak.
        assert await page.locator("#language option[value='en']").count() == 1
        async with page.expect_navigation():
            await page.select_option("#language", "en")
        await expect_language(page, "en", "/terms")
    finally:
        await restarted.close()
    assert problems.found == []
    await context.close()


async def test_keyboard_reaches_the_skip_link_the_switcher_and_the_questions(
    browser: Browser, daemon: Daemon
) -> None:
    context, page, problems = await log_in(browser, daemon)
    await open_page(page, daemon.base, "/help")

    await page.keyboard.press("Tab")
    focused = await page.evaluate("document.activeElement.className")
    assert "skip-link" in focused
    box = await page.locator(".skip-link").bounding_box()
    assert box is not None and box["y"] >= 0, "the focused skip link is on screen"
    await page.keyboard.press("Enter")
    assert await page.evaluate("document.activeElement.id") == "main"

    # From the top again: Tab through the header until the language switcher.
    await page.goto(daemon.base + "/help")
    reached = []
    for _ in range(10):
        await page.keyboard.press("Tab")
        reached.append(
            await page.evaluate("document.activeElement.id || document.activeElement.tagName")
        )
        if reached[-1] == "language":
            break
    assert reached[-1] == "language", reached

    # The questions open and close from the keyboard.
    summary = page.locator("details.faq__item summary").first
    await summary.focus()
    await page.keyboard.press("Enter")
    assert await page.locator("details.faq__item").first.get_attribute("open") is not None
    await page.keyboard.press("Space")
    assert await page.locator("details.faq__item").first.get_attribute("open") is None
    assert problems.found == []
    await context.close()
