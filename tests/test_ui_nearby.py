"""The Nearby card in Chromium: invite, accept and the code, each browser inside its
daemon's network namespace."""

from __future__ import annotations

import asyncio
import os
import re
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, async_playwright, expect

from orbitd.control import request_login_link, socket_path
from orbitd.settings import load_config
from tests.browser import ARGS, CHROMIUM, screenshot
from tests.lan_daemons import pair, phase
from tests.netns import Host, NetnsLan, NsDaemon, netns_lan_fixture

__all__ = ["netns_lan_fixture"]  # the fixture, used by name


def chromium_in(host: Host, where: Path) -> Path:
    """A Chromium that runs in `host`'s namespace (so 127.0.0.1 is that daemon's): Playwright
    drives it over pipes, which cross namespaces."""
    wrapper = where / f"chromium-{host.ns}"
    wrapper.write_text(f'#!/bin/sh\nexec ip netns exec {host.ns} {CHROMIUM} "$@"\n')
    wrapper.chmod(0o755)
    return wrapper


async def open_home(browser: Browser, daemon: NsDaemon, home: Path, profile: str) -> Page:
    # A fresh one-time link from the daemon's control socket (a file: any namespace reaches it).
    environ = os.environ | {"XDG_DATA_HOME": str(home / profile / "data")}
    config = load_config(environ={}, overrides={"profile": profile})
    link = await request_login_link(socket_path(config, environ), profile)
    base = daemon.ready["base"]
    context = await browser.new_context(locale="en-US", viewport={"width": 1180, "height": 900})
    page = await context.new_page()
    await page.goto(link.fallback_url)  # logs in, then `/`
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    setattr(page, "problems", problems)  # noqa: B010
    await page.goto(base + "/")
    return page


async def agree_to_terms(page: Page) -> None:
    terms = page.get_by_role("dialog", name="Before you start")
    await expect(terms).to_be_visible()
    await terms.get_by_role("button", name="I agree").click()
    await expect(terms).to_be_hidden()


@pytest.mark.parametrize("netns_lan", [2], indirect=True)
async def test_nearby_card_invite_accept_and_code_in_the_browser(
    netns_lan: NetnsLan, tmp_path: Path
) -> None:
    if not Path(CHROMIUM).exists():
        pytest.skip(f"Chromium not found at {CHROMIUM}")
    alice, bob, alice_fp, bob_fp = await pair(netns_lan, tmp_path)
    h1, h2 = netns_lan.hosts
    try:
        async with async_playwright() as playwright:
            browsers = [
                await playwright.chromium.launch(
                    executable_path=str(chromium_in(host, tmp_path)), headless=True, args=ARGS
                )
                for host in (h1, h2)
            ]
            try:
                alice_page = await open_home(browsers[0], alice, tmp_path, "alice")
                bob_page = await open_home(browsers[1], bob, tmp_path, "bob")
                await run_the_ui_flow(alice_page, bob_page, alice_fp, bob_fp)
                assert getattr(alice_page, "problems") == []  # noqa: B009
                assert getattr(bob_page, "problems") == []  # noqa: B009
            finally:
                for browser in browsers:
                    await browser.close()
        ready = await asyncio.gather(phase(alice, "ready"), phase(bob, "ready"))
        assert ready[0]["sas"] == ready[1]["sas"]
    finally:
        await asyncio.gather(alice.stop(), bob.stop())


async def run_the_ui_flow(alice_page: Page, bob_page: Page, alice_fp: str, bob_fp: str) -> None:
    card = alice_page.get_by_role("region", name="Nearby")
    # both were made visible "for 10 minutes" (tests/ns_daemon.py --visible): the switch
    # says so, with the time left; bob switches to "always on this network"
    switch = card.get_by_role("group", name="Visible to people nearby")
    await expect(switch.get_by_role("radio", name="For 10 minutes")).to_be_checked()
    await expect(switch).to_contain_text(re.compile(r"Visible for [0-9]+:[0-5][0-9] more\."))
    bob_switch = bob_page.get_by_role("group", name="Visible to people nearby")
    await bob_switch.get_by_role("radio", name="Always on this network").check()
    await expect(bob_switch).to_contain_text("Visible whenever you are on this network.")
    remembered = bob_page.get_by_role("list", name="Networks where you are always visible")
    await expect(remembered.get_by_role("listitem")).to_have_count(1)
    peer = card.locator(f'li[data-fingerprint="{bob_fp}"]')
    await expect(peer).to_contain_text("bob")
    await expect(peer).to_contain_text(shortened(bob_fp))

    # alice verifies bob's fingerprint: the badge shows
    await card.get_by_role("button", name="Verify bob").click()
    verify = alice_page.get_by_role("dialog", name="Verify bob")
    await expect(verify).to_contain_text(shortened(bob_fp))
    await verify.get_by_role("button", name="They match").click()
    await expect(verify).to_be_hidden()
    await expect(peer).to_contain_text("Verified before")
    await expect(card.get_by_role("button", name="Forget bob")).to_be_visible()
    await screenshot(alice_page, "nearby")

    # alice invites bob (terms first); bob declines
    await card.get_by_role("button", name="Invite bob").click()
    await agree_to_terms(alice_page)
    invite = alice_page.get_by_role("dialog", name="Invite bob")
    await invite.get_by_role("button", name="Send invite").click()
    await expect(invite.get_by_text("Waiting for bob to accept")).to_be_visible()
    request = bob_page.get_by_role("dialog", name="alice wants to talk")
    await request.get_by_role("button", name="Decline").click()
    await expect(request).to_be_hidden()
    await expect(invite.get_by_text("bob declined the invite.")).to_be_visible()
    await invite.get_by_role("button", name="Close").click()
    await expect(invite).to_be_hidden()

    # again; bob accepts, alice mistypes the code: both see it, the attempt is over
    await card.get_by_role("button", name="Invite bob").click()
    await invite.get_by_role("button", name="Send invite").click()
    await request.get_by_role("button", name="Accept").click()
    await agree_to_terms(bob_page)
    code = bob_page.locator("#lan-code")
    await expect(code).to_have_text(re.compile(r"^[0-9]{3} [0-9]{3}$"))
    shown = (await code.inner_text()).replace(" ", "")
    code_field = invite.get_by_label("Code from bob's screen")
    await code_field.fill(f"{(int(shown) + 1) % 10**6:06d}")
    await invite.get_by_role("button", name="Connect").click()
    wrong = "The code was wrong. This attempt is over: invite again for a new code."
    await expect(invite.get_by_text(wrong)).to_be_visible()
    await expect(request.get_by_text(wrong)).to_be_visible()
    for page, dialog in ((alice_page, invite), (bob_page, request)):
        await dialog.get_by_role("button", name="Close").click()
        await expect(dialog).to_be_hidden()
        await expect(page.get_by_role("region", name="Nearby")).to_be_visible()

    # and again, for real: bob answers with the keyboard
    await card.get_by_role("button", name="Invite bob").click()
    await invite.get_by_label("30 min").check()
    await invite.get_by_role("button", name="Send invite").click()
    await expect(invite.get_by_text("Waiting for bob to accept")).to_be_visible()
    await expect(request).to_be_visible()
    await expect(request).to_contain_text(shortened(alice_fp))
    await expect(request).to_contain_text("Session length: 30 min")
    await expect(bob_page.locator("#lan-request-title")).to_be_focused()
    await bob_page.keyboard.press("Tab")
    await expect(request.get_by_role("button", name="Decline")).to_be_focused()
    await bob_page.keyboard.press("Tab")
    await expect(request.get_by_role("button", name="Accept")).to_be_focused()
    await bob_page.keyboard.press("Enter")
    await expect(code).to_have_text(re.compile(r"^[0-9]{3} [0-9]{3}$"))
    await expect(code).to_be_focused()
    await expect(request.get_by_text("Tell alice this code:")).to_be_visible()
    shown = (await code.inner_text()).replace(" ", "")
    assert len(shown) == 6 and shown.isdigit()
    await screenshot(bob_page, "nearby-code")

    # alice types it: a short one is caught in the page, then the right one connects
    await expect(code_field).to_be_focused()
    await code_field.fill("12345")
    await invite.get_by_role("button", name="Connect").click()
    await expect(invite.locator("#lan-code-error")).to_have_text(
        "Enter the 6 digits shown on the other screen."
    )
    await code_field.fill(f"{shown[:3]} {shown[3:]}")
    await invite.get_by_role("button", name="Connect").click()
    await asyncio.gather(
        alice_page.wait_for_url("**/session", timeout=20_000),
        bob_page.wait_for_url("**/session", timeout=20_000),
    )
    # The session page says it is a LAN session, and offers no report (no server to report to).
    await expect(alice_page.locator("#lan-note")).to_contain_text("LAN session with bob")
    await expect(bob_page.locator("#lan-note")).to_contain_text("LAN session with alice")
    await expect(alice_page.locator("[data-open-report]").first).to_be_hidden()


def shortened(fingerprint: str) -> str:
    return " ".join(fingerprint[i : i + 4] for i in range(0, 32, 4))
