"""Debian's Chromium driven by Playwright, and the UI's steps as a person takes them.

The launch arguments are those of tests/browser.py, plus a few that keep
Chromium's own background traffic off the network; the steps follow
tests/test_ui_session.py (the terms dialog comes before the first token or join).
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from playwright.async_api import Browser, BrowserContext, Locator, Page, async_playwright, expect

from .procs import BenchError

CHROMIUM = os.environ.get("ORBIT_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--no-default-browser-check",
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
    "--autoplay-policy=no-user-gesture-required",
    # not in the tests: nothing but 127.0.0.1
    "--disable-domain-reliability",
    "--disable-client-side-phishing-detection",
    "--disable-features=Translate,MediaRouter,OptimizationHints",
    "--no-pings",
]
WAIT_MS = 15_000
INVITE = re.compile(r"^[A-Z0-9]{12}-[a-z2-9]{16}$")


def find_chromium() -> str:
    if not Path(CHROMIUM).exists():
        raise BenchError(f"Chromium not found at {CHROMIUM} (set ORBIT_CHROMIUM)")
    return CHROMIUM


@asynccontextmanager
async def chromium() -> AsyncIterator[Browser]:
    executable = find_chromium()
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=executable, headless=True, args=ARGS
        )
        try:
            yield browser
        finally:
            await browser.close()


async def logged_in(browser: Browser, link: str) -> tuple[BrowserContext, Page]:
    """A fresh context logged in to a daemon through its one-time link."""
    context = await browser.new_context(locale="en-US", viewport={"width": 1280, "height": 860})
    context.set_default_timeout(WAIT_MS)
    page = await context.new_page()
    response = await page.goto(link)
    if response is None or not response.ok:
        status = "no response" if response is None else response.status
        raise BenchError(f"the login link answered {status}")
    return context, page


async def settled(page: Page) -> None:
    """The page loaded and its network quiet for 500 ms (the events socket aside)."""
    await page.wait_for_load_state("load")
    await page.wait_for_load_state("networkidle")


async def agree(page: Page) -> None:
    terms = page.get_by_role("dialog", name="Before you start")
    await expect(terms).to_be_visible(timeout=WAIT_MS)
    await terms.get_by_role("button", name="I agree").click()


async def request_token(page: Page) -> str:
    """On the landing page: request a token, agree to the terms, return the invite."""
    await page.get_by_role("button", name="Request token").click()
    await agree(page)
    await page.wait_for_url("**/session")
    invite = page.get_by_label("Invite", exact=True)
    await expect(invite).to_have_value(INVITE, timeout=WAIT_MS)
    qr = page.get_by_role("img", name="QR code of the join link with the invite")
    await expect(qr).to_have_attribute("src", "/api/invite.svg", timeout=WAIT_MS)
    await page.wait_for_function(
        "() => { const img = document.getElementById('invite-qr');"
        " return img.complete && img.naturalWidth > 0; }",
        timeout=WAIT_MS,
    )
    return await invite.input_value()


async def join(page: Page, base: str, invite: str) -> None:
    await page.goto(f"{base}/join#{invite}")
    await expect(page.get_by_label("Invite", exact=True)).to_have_value(invite, timeout=WAIT_MS)
    await settled(page)
    await page.get_by_role("button", name="Join session").click()
    await agree(page)
    await page.wait_for_url("**/session")


async def hand_over(page: Page, link: str, port: int, invite: str) -> None:
    """A guest's path from the invite link (the rendezvous's page) to the session page: the
    daemon's port typed in, the invite handed over, joined and the terms agreed to."""
    await page.goto(link)
    await page.get_by_label("orbitd's port").fill(str(port))
    await page.get_by_role("button", name="Open in my ChatOrbit").click()
    await page.wait_for_url(f"http://127.0.0.1:{port}/join", timeout=WAIT_MS)
    await expect(page.get_by_label("Invite", exact=True)).to_have_value(invite, timeout=WAIT_MS)
    await page.get_by_role("button", name="Join session").click()
    await agree(page)
    await page.wait_for_url("**/session")


async def connected(page: Page) -> None:
    await expect(page.locator("#phase")).to_have_text("Connected", timeout=WAIT_MS)


def conversation(page: Page) -> Locator:
    return page.get_by_role("list", name="Conversation")


async def send(page: Page, other: Page, text: str) -> None:
    """Send `text` from `page` and wait until `other` shows it and `page` marks it delivered."""
    box = page.get_by_label("Message", exact=True)
    await box.fill(text)
    await box.press("Enter")
    await expect(box).to_have_value("", timeout=WAIT_MS)
    await expect(conversation(other).get_by_text(text, exact=True)).to_be_visible(timeout=WAIT_MS)
    mine = conversation(page).locator(".message--me").filter(has_text=text)
    await expect(mine).to_have_attribute("data-status", "delivered", timeout=WAIT_MS)
