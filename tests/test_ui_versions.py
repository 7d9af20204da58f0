"""The session page when the two daemons run different protocol versions (the test hooks
ORBITD_ANNOUNCE_*, docs/protocol.md), in a real browser: another major is explained on
both sides, in each side's language; without `calls` on one side nobody gets a call button."""

from __future__ import annotations

import asyncio
from pathlib import Path

from playwright.async_api import Browser, expect

from orbitcore.protocol.version import PROTOCOL_VERSION
from tests.browser import browser, open_ui
from tests.processes import start_daemon, start_rendezvous
from tests.test_ui_session import join, request_token, watch

__all__ = ["browser"]  # the fixture

expect.set_options(timeout=15_000)


async def test_another_major_is_explained_on_both_sides(browser: Browser, tmp_path: Path) -> None:
    process, url = await start_rendezvous(tmp_path)
    alice_daemon, bob_daemon = await asyncio.gather(
        start_daemon(tmp_path, "alice", url, api_login=False),
        start_daemon(
            tmp_path,
            "bob",
            url,
            api_login=False,
            environ={"ORBITD_ANNOUNCE_PROTOCOL_VERSION": "2.0"},
        ),
    )
    try:
        _, alice = await open_ui(browser, alice_daemon)
        _, bob = await open_ui(browser, bob_daemon, locale="sk-SK")
        problems = watch(alice) + watch(bob)
        invite = await request_token(alice)
        await bob.goto(f"{bob_daemon.base}/join#{invite}")  # in Slovak
        await expect(bob.get_by_label("Pozvánka", exact=True)).to_have_value(invite)
        await bob.get_by_role("button", name="Pripojiť sa").click()
        await bob.get_by_role("button", name="Súhlasím").click()
        await bob.wait_for_url("**/session")

        alice_error, bob_error = alice.locator("#session-error"), bob.locator("#session-error")
        await expect(alice_error).to_contain_text(
            f"runs protocol 2.0; this one runs protocol {PROTOCOL_VERSION}"
        )
        await expect(alice_error).to_contain_text("Update orbitd on this computer")
        await expect(bob_error).to_contain_text(
            f"používa protokol {PROTOCOL_VERSION}, tento používa protokol 2.0"
        )
        await expect(bob_error).to_contain_text("Požiadajte druhú osobu")
        await expect(alice.locator("#ended-reason")).to_contain_text("another version")
        await expect(bob.locator("#ended-reason")).to_contain_text("inou verziou protokolu")
        # A page opened afterwards says the same, from the session's state.
        await alice.reload()
        await expect(alice.locator("#session-error")).to_contain_text("runs protocol 2.0")
        assert problems == []
    finally:
        await asyncio.gather(alice_daemon.close(), bob_daemon.close())
        await process.stop()


async def test_no_call_button_when_one_side_has_no_calls(browser: Browser, tmp_path: Path) -> None:
    process, url = await start_rendezvous(tmp_path)
    alice_daemon, bob_daemon = await asyncio.gather(
        start_daemon(tmp_path, "alice", url, api_login=False),
        start_daemon(
            tmp_path, "bob", url, api_login=False, environ={"ORBITD_ANNOUNCE_FEATURES": "chat"}
        ),
    )
    try:
        _, alice = await open_ui(browser, alice_daemon)
        _, bob = await open_ui(browser, bob_daemon)
        invite = await request_token(alice)
        await join(bob, invite)
        for page in (alice, bob):
            await expect(page.locator("#phase")).to_have_text("Connected")
            await expect(page.get_by_role("button", name="Start a video call")).to_be_hidden()
    finally:
        await asyncio.gather(alice_daemon.close(), bob_daemon.close())
        await process.stop()
