"""The session page while the connection is rebuilt, in a real browser: "reconnecting"
with the attempt, a message written meanwhile shown as sending, then delivered."""

from __future__ import annotations

import os
import re
import signal

from playwright.async_api import Browser, expect

from tests.browser import browser, open_ui
from tests.processes import Daemon
from tests.test_ui_session import (
    conversation,
    join,
    pair,
    rendezvous,
    request_token,
    send,
    watch,
)

__all__ = ["browser", "pair", "rendezvous"]  # the fixtures


async def test_the_page_says_reconnecting_and_queues_then_delivers(
    browser: Browser, pair: tuple[Daemon, Daemon]
) -> None:
    alice_daemon, bob_daemon = pair
    _, alice = await open_ui(browser, alice_daemon)
    _, bob = await open_ui(browser, bob_daemon)
    problems = watch(alice) + watch(bob)
    invite = await request_token(alice)
    await join(bob, invite)
    for page in (alice, bob):
        await expect(page.locator("#phase")).to_have_text("Connected")
    sas = await alice.locator("#sas").inner_text()

    os.kill(bob_daemon.process.proc.pid, signal.SIGSTOP)
    try:
        await expect(alice.locator("#phase")).to_have_text(
            re.compile(r"^The other person is unreachable: reconnecting \(attempt \d+\)…$")
        )
        await send(alice, "written while away")
        mine = conversation(alice).locator(".message--me").filter(has_text="written while away")
        await expect(mine).to_have_attribute("data-status", "sending")
        await expect(mine.locator(".message__ticks")).to_have_text("…")
    finally:
        os.kill(bob_daemon.process.proc.pid, signal.SIGCONT)
    for page in (alice, bob):
        await expect(page.locator("#phase")).to_have_text("Connected")
        await expect(page.locator("#sas")).to_have_text(sas)  # nobody compares again
    await expect(conversation(bob).get_by_text("written while away")).to_be_visible()
    await expect(mine).to_have_attribute("data-status", "delivered")
    assert problems == []
