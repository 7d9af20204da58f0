"""Real Chromium (Debian's package) driven by Playwright, for the UI tests."""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, BrowserContext, Page, async_playwright

from tests.processes import Daemon, start_daemon

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
]
# Calls link the page to its daemon over WebRTC on 127.0.0.1: Chromium gathers no loopback
# candidate without this flag (real users' browsers use their LAN address instead).
CALL_ARGS = [*ARGS, "--allow-loopback-in-peer-connection"]
# Screenshots go to an ignored directory, so that a test run leaves the checkout clean;
# `make screenshots` points this at docs/screenshots to refresh the README's pictures.
SCREENSHOTS = Path(
    os.environ.get("ORBIT_SCREENSHOTS_DIR")
    or Path(__file__).resolve().parent / ".artifacts" / "screenshots"
)


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    assert Path(CHROMIUM).exists(), (
        f"Chromium not found at {CHROMIUM}: run `make test` to install it"
    )
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=ARGS
        )
        yield launched
        await launched.close()


@pytest.fixture
async def call_browser() -> AsyncIterator[Browser]:
    """Chromium with a fake camera and microphone that may make WebRTC links to 127.0.0.1."""
    assert Path(CHROMIUM).exists(), f"Chromium not found at {CHROMIUM}: run `make test`"
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CALL_ARGS
        )
        yield launched
        await launched.close()


async def open_ui(
    browser: Browser, daemon: Daemon, *, locale: str = "en-US", width: int = 1280, height: int = 860
) -> tuple[BrowserContext, Page]:
    """A fresh browser context logged in to `daemon` through its one-time link."""
    context = await browser.new_context(locale=locale, viewport={"width": width, "height": height})
    page = await context.new_page()
    response = await page.goto(daemon.link)
    assert response is not None and response.ok, daemon.link
    return context, page


async def screenshot(page: Page, name: str) -> None:
    """Save SCREENSHOTS/NAME.png (docs/screenshots under `make screenshots`, for the README)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


@pytest.fixture
async def ui_pair(tmp_path: Path, rendezvous: str) -> AsyncIterator[tuple[Daemon, Daemon]]:
    """Alice's and Bob's daemons on one real rendezvous, their UIs open to a browser with no
    login link (`open_ui`)."""
    alice, bob = await asyncio.gather(
        start_daemon(tmp_path, "alice", rendezvous, api_login=False),
        start_daemon(tmp_path, "bob", rendezvous, api_login=False),
    )
    yield alice, bob
    await asyncio.gather(alice.close(), bob.close())
