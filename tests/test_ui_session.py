"""The web UI in a real browser (Debian's chromium): two people, two daemons, one rendezvous.

Each test starts its own processes and logs in through the daemons' one-time links.
Screenshots of the main screens: tests/browser.py `screenshot` (`make screenshots`
refreshes docs/screenshots/).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, Locator, Page, expect

from tests.browser import browser, open_ui, screenshot
from tests.processes import Daemon, Process, start_daemon, start_rendezvous

__all__ = ["browser"]  # the fixture

WAIT = 15_000  # ms: connecting two daemons on a loaded machine
expect.set_options(timeout=WAIT)


@pytest.fixture
async def rendezvous(tmp_path: Path) -> AsyncIterator[tuple[Process, str]]:
    process, url = await start_rendezvous(tmp_path)
    yield process, url
    await process.stop()


@pytest.fixture
async def pair(
    tmp_path: Path, rendezvous: tuple[Process, str]
) -> AsyncIterator[tuple[Daemon, Daemon]]:
    alice, bob = await asyncio.gather(
        start_daemon(tmp_path, "alice", rendezvous[1], api_login=False),
        start_daemon(tmp_path, "bob", rendezvous[1], api_login=False),
    )
    yield alice, bob
    await asyncio.gather(alice.close(), bob.close())


def watch(page: Page) -> list[str]:
    """Collect the page's script errors and CSP violations (the test asserts there are none)."""
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.on(
        "console",
        lambda message: problems.append(message.text) if message.type == "error" else None,
    )
    return problems


async def agree(page: Page) -> None:
    terms = page.get_by_role("dialog", name="Before you start")
    await expect(terms).to_be_visible()
    await terms.get_by_role("button", name="I agree").click()


async def request_token(
    page: Page, *, ttl: int | None = None, limit: int | None = None, first_time: bool = True
) -> str:
    """Fill the token form (agreeing to the terms the first time) and return the invite shown."""
    if ttl is not None:
        await page.get_by_label("Custom").check()
        await page.get_by_label(re.compile(r"^Minutes")).fill(str(ttl))
    if limit is not None:
        await page.get_by_label("Message limit (characters)").fill(str(limit))
    await page.get_by_role("button", name="Request token").click()
    if first_time:
        await agree(page)
    await page.wait_for_url("**/session")
    invite = page.get_by_label("Invite", exact=True)
    await expect(invite).to_have_value(re.compile(r"^[A-Z0-9]{12}-[a-z2-9]{16}$"))
    return await invite.input_value()


async def join(page: Page, invite: str, *, first_time: bool = True) -> None:
    await page.goto(f"{origin(page)}/join#{invite}")
    await expect(page.get_by_label("Invite", exact=True)).to_have_value(invite)
    await page.get_by_role("button", name="Join session").click()
    if first_time:
        await agree(page)
    await page.wait_for_url("**/session")


def origin(page: Page) -> str:
    return "/".join(page.url.split("/", 3)[:3])


async def send(page: Page, text: str) -> None:
    box = page.get_by_label("Message", exact=True)
    await box.fill(text)
    await box.press("Enter")
    await expect(box).to_have_value("")


def conversation(page: Page) -> Locator:
    return page.get_by_role("list", name="Conversation")


async def test_a_whole_session_in_two_browsers(
    browser: Browser, pair: tuple[Daemon, Daemon], rendezvous: tuple[Process, str]
) -> None:
    alice_daemon, bob_daemon = pair
    alice_context, alice = await open_ui(browser, alice_daemon)
    _, bob = await open_ui(browser, bob_daemon, width=390, height=844)
    await bob.clock.install()  # Bob's countdown is fast-forwarded below
    problems = watch(alice) + watch(bob)

    await expect(alice.get_by_role("heading", level=1)).to_contain_text("disappears")
    await screenshot(alice, "landing")

    invite = await request_token(alice, limit=200)
    await expect(alice.get_by_text("Waiting for the other person")).to_be_visible()
    await expect(alice.get_by_text("Host", exact=True).first).to_be_visible()
    qr = alice.get_by_role("img", name="QR code of the join link with the invite")
    await expect(qr).to_have_attribute("src", "/api/invite.svg")
    loaded_width = await qr.evaluate(
        """img => img.complete ? img.naturalWidth
            : new Promise(done => { img.onload = () => done(img.naturalWidth);
                                    img.onerror = () => done(0); })"""
    )
    assert loaded_width > 0  # the QR code image loaded (waits for it, however slow)
    await expect(alice.get_by_label("Link for their browser")).to_have_value(
        f"{rendezvous[1]}/join#{invite}"  # the rendezvous's invite page
    )
    await screenshot(alice, "invite")

    await join(bob, invite)
    for page in (alice, bob):
        await expect(page.locator("#phase")).to_have_text("Connected")
    sas = await alice.locator("#sas").inner_text()
    assert re.fullmatch(r"\d{4} \d{4}", sas)
    await expect(bob.locator("#sas")).to_have_text(sas)
    await expect(alice.get_by_text("Read these digits to each other")).to_be_visible()
    await expect(alice.get_by_text("Invite the other person")).to_be_hidden()

    # Chat both ways, with delivery ticks.
    await send(alice, "Hello Bob 👋")
    await expect(conversation(bob).get_by_text("Hello Bob 👋")).to_be_visible()
    mine = conversation(alice).locator(".message--me").filter(has_text="Hello Bob")
    await expect(mine).to_have_attribute("data-status", "delivered")
    await expect(mine.locator(".message__ticks")).to_have_text("✓✓")
    await send(bob, "Hi Alice, all good here.")
    await expect(conversation(alice).get_by_text("Hi Alice, all good here.")).to_be_visible()
    await expect(alice.locator("#live")).to_have_text("New message: Hi Alice, all good here.")

    # A long unbroken message does not make the mobile page scroll sideways.
    await send(alice, "x" * 180)
    await send(bob, "https://example.org/" + "averyveryverylongpathsegment" * 6)
    await expect(conversation(bob).locator(".message")).to_have_count(4)
    overflow = await bob.evaluate(
        "() => document.scrollingElement.scrollWidth - document.scrollingElement.clientWidth"
    )
    assert overflow <= 0
    await screenshot(bob, "session-mobile")

    # The counter stops a message at the limit (200 here).
    box = alice.get_by_label("Message", exact=True)
    await box.press_sequentially("y" * 205, delay=0)
    assert len(await box.input_value()) == 200
    await expect(alice.locator("#composer-counter")).to_have_text("200 / 200")
    await expect(alice.get_by_text("Limit reached")).to_be_visible()
    await box.fill("")
    await screenshot(alice, "session")

    # Delete for both, after a confirm.
    await mine.get_by_role("button", name="Delete this message for both of you").click()
    confirm = alice.get_by_role("dialog", name="Delete this message?")
    await confirm.get_by_role("button", name="Delete for both").click()
    for page in (alice, bob):
        await expect(conversation(page).get_by_text("Hello Bob 👋")).to_have_count(0)
        await expect(conversation(page).get_by_text("Message deleted")).to_be_visible()

    # Opt-in notifications: a toggle, never automatic.
    await alice_context.grant_permissions(["notifications"])
    toggle = alice.get_by_role("button", name="Notify me of new messages")
    await expect(toggle).to_have_attribute("aria-pressed", "false")
    await toggle.click()
    await expect(toggle).to_have_attribute("aria-pressed", "true")

    # The countdown ticks locally and announces the last minute (Bob's clock jumps ahead).
    minutes, seconds = (await bob.locator("#countdown").inner_text()).split(":")
    await bob.clock.fast_forward((int(minutes) * 60 + int(seconds) - 62) * 1000)
    await expect(bob.locator("#countdown")).to_have_text(re.compile(r"^01:0[0-2]$"))
    await bob.clock.fast_forward(3000)
    await expect(bob.locator("#live")).to_have_text("One minute left in this session.")
    await expect(bob.locator("#countdown")).to_have_class(re.compile(r"\bis-urgent\b"))
    await bob.clock.fast_forward(30_000)
    await expect(bob.locator("#live")).to_have_text("30 seconds left in this session.")

    # Nothing of the chat is kept in the browser's storage.
    for page in (alice, bob):
        assert await page.evaluate("localStorage.length + sessionStorage.length") == 0

    # End, after a confirm: both see the ended screen, the messages are gone.
    await alice.get_by_role("button", name="End session").click()
    dialog = alice.get_by_role("dialog", name="End the session now?")
    await dialog.get_by_role("button", name="End session").click()
    await expect(alice.get_by_role("heading", name="The session has ended")).to_be_visible()
    await expect(alice.locator("#ended-reason")).to_have_text("You ended the session.")
    await expect(bob.get_by_role("heading", name="The session has ended")).to_be_visible()
    await expect(bob.locator("#ended-reason")).to_have_text("The other person ended the session.")
    for page in (alice, bob):
        await expect(page.get_by_text("Hi Alice, all good here.")).to_have_count(0)
    await screenshot(alice, "ended")
    assert problems == []


async def tab_to(page: Page, selector: str, presses: int = 60) -> None:
    """Press Tab until the focused element matches `selector`."""
    for _ in range(presses):
        await page.keyboard.press("Tab")
        if await page.evaluate("s => document.activeElement?.matches(s) ?? false", selector):
            return
    raise AssertionError(f"Tab never reached {selector}")


async def test_create_join_send_and_end_with_the_keyboard_alone(
    browser: Browser, pair: tuple[Daemon, Daemon]
) -> None:
    alice_daemon, bob_daemon = pair
    _, alice = await open_ui(browser, alice_daemon)
    _, bob = await open_ui(browser, bob_daemon)
    problems = watch(alice) + watch(bob)

    await tab_to(alice, "#request-submit")
    assert await alice.evaluate("document.activeElement.matches(':focus-visible')")
    await alice.keyboard.press("Enter")
    await expect(alice.get_by_role("dialog", name="Before you start")).to_be_visible()
    await expect(alice.get_by_role("button", name="I agree")).to_be_focused()
    await alice.keyboard.press("Enter")
    await alice.wait_for_url("**/session")
    invite = alice.get_by_label("Invite", exact=True)
    await expect(invite).to_have_value(re.compile(r"-"))
    text = await invite.input_value()

    await tab_to(bob, "#invite")
    await bob.keyboard.type(text)
    await bob.keyboard.press("Enter")
    await expect(bob.get_by_role("button", name="I agree")).to_be_focused()
    await bob.keyboard.press("Space")
    await bob.wait_for_url("**/session")
    for page in (alice, bob):
        await expect(page.locator("#phase")).to_have_text("Connected")

    await tab_to(alice, "#composer-input")
    await alice.keyboard.type("Typed with keys alone")
    await alice.keyboard.press("Shift+Enter")
    await alice.keyboard.type("on two lines")
    await alice.keyboard.press("Enter")
    received = conversation(bob).locator(".message--peer .message__text")
    await expect(received).to_have_text("Typed with keys alone\non two lines")

    await tab_to(bob, "#end-button")
    await bob.keyboard.press("Enter")
    dialog = bob.get_by_role("dialog", name="End the session now?")
    await expect(dialog.get_by_role("button", name="Cancel")).to_be_focused()
    await bob.keyboard.press("Escape")
    await expect(dialog).to_be_hidden()
    await expect(bob.locator("#phase")).to_have_text("Connected")
    await tab_to(bob, "#end-button")
    await bob.keyboard.press("Enter")
    await bob.keyboard.press("Tab")
    await bob.keyboard.press("Enter")
    for page in (alice, bob):
        await expect(page.get_by_role("heading", name="The session has ended")).to_be_visible()
    assert problems == []


async def test_the_countdown_ends_the_session_on_both_sides(
    browser: Browser, tmp_path: Path
) -> None:
    process, url = await start_rendezvous(tmp_path, "--ttl-minute-seconds", "1")
    alice_daemon, bob_daemon = await asyncio.gather(
        start_daemon(tmp_path, "alice", url, api_login=False),
        start_daemon(tmp_path, "bob", url, api_login=False),
    )
    try:
        _, alice = await open_ui(browser, alice_daemon)
        _, bob = await open_ui(browser, bob_daemon)
        # A wrong secret: both daemons refuse it, say so, and the token is burned.
        invite = await request_token(alice, ttl=600)
        token, secret = invite.split("-")
        await join(bob, f"{token}-{secret[::-1]}")
        for page in (alice, bob):
            await expect(page.locator("#session-error")).to_contain_text(
                "The invite was wrong or has been tampered with."
            )
            await expect(page.locator("#ended-reason")).to_contain_text("tampered with")
        await alice.get_by_role("link", name="Back to the home page").click()

        invite = await request_token(alice, ttl=3, first_time=False)  # a "minute" lasts 1 s
        await join(bob, invite, first_time=False)
        for page in (alice, bob):
            await expect(page.get_by_role("heading", name="The session has ended")).to_be_visible()
            await expect(page.locator("#ended-reason")).to_contain_text("Time is up")
    finally:
        await asyncio.gather(alice_daemon.close(), bob_daemon.close())
        await process.stop()
