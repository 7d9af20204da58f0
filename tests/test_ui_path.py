"""The path and "hide my address" in a real browser: the session page's header says how
the chat runs, and the switch on the landing page is saved, applies to the next session
and, with no TURN server known, ends it with a message that says why."""

from __future__ import annotations

from playwright.async_api import Browser, Page, expect

from tests.browser import browser, open_ui
from tests.processes import Daemon
from tests.test_ui_session import join, pair, rendezvous, request_token, watch

__all__ = ["browser", "pair", "rendezvous"]  # the fixtures

SWITCH = "Hide my address from the other person"


async def test_the_session_header_shows_the_path_of_the_chat(
    browser: Browser, pair: tuple[Daemon, Daemon]
) -> None:
    _, alice = await open_ui(browser, pair[0])
    _, bob = await open_ui(browser, pair[1])
    problems = watch(alice) + watch(bob)
    await expect(alice.get_by_role("switch", name=SWITCH)).not_to_be_checked()

    invite = await request_token(alice)
    await expect(alice.locator("#path")).to_have_text("not connected yet")
    await join(bob, invite)
    await expect(alice.locator("#phase")).to_have_text("Connected")
    await expect(alice.locator("#path")).to_have_text("on this machine")
    await expect(bob.locator("#path")).to_have_text("on this machine")
    assert problems == []


async def switch_on(page: Page) -> None:
    switch = page.get_by_role("switch", name=SWITCH)
    await switch.check()
    await expect(page.get_by_text("Saved. It applies from your next session.")).to_be_visible()
    await page.reload()
    await expect(page.get_by_role("switch", name=SWITCH)).to_be_checked()


async def test_hide_my_address_is_saved_and_refused_clearly_without_a_turn_server(
    browser: Browser, pair: tuple[Daemon, Daemon]
) -> None:
    _, alice = await open_ui(browser, pair[0])
    _, bob = await open_ui(browser, pair[1])
    problems = watch(alice) + watch(bob)
    await bob.goto(bob.url)  # the landing page, where the switch is
    await switch_on(bob)

    invite = await request_token(alice)
    await join(bob, invite)
    await expect(bob.locator("#ended-reason")).to_have_text(
        "No relay server was available to hide your address."
    )
    await expect(bob.locator("#session-error")).to_contain_text(
        "Hiding your address needs a relay (TURN) server"
    )
    await expect(alice.locator("#ended-view")).to_be_visible()  # not left waiting
    assert problems == []
