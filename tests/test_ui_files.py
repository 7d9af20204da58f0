"""Sending files between two real browsers through two real daemons (issue #14's UI).

The files are made in the sending page (a File from bytes or a canvas), handed to the page
the ways a person would (a drop on the page, the button's file picker, a paste), and the
receiving browser's download is compared by SHA-256. Every text and the daemon's rarer
answers (a peer without the feature, a checksum mismatch): test_ui_files_messages.py.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import signal
from pathlib import Path

from playwright.async_api import Browser, Download, FilePayload, Locator, Page, Route, expect

from tests.browser import browser, open_ui, screenshot
from tests.processes import Daemon, start_daemon, start_rendezvous
from tests.test_ui_call import watch
from tests.test_ui_session import join, request_token, tab_to

__all__ = ["browser"]  # the fixture

WAIT = 20_000  # ms: a 64 MiB file on a loaded machine
expect.set_options(timeout=WAIT)
MIB = 1024 * 1024
PERCENT_BETWEEN = re.compile(r"^[1-9]\d?$")  # 1..99: moving, neither 0 nor done

# A File of `size` pseudo-random bytes made in the page, kept in window.made[name], with its
# SHA-256; then dropped on the page (`how` = "drop") or pasted ("paste"), or just kept.
MAKE = """async ({ name, size, type, how }) => {
  const bytes = new Uint8Array(size);
  const words = new Uint32Array(bytes.buffer, 0, Math.floor(size / 4));
  let x = 2463534242;
  for (let i = 0; i < words.length; i += 1) {
    x ^= x << 13; x ^= x >>> 17; x ^= x << 5;
    words[i] = x >>> 0;
  }
  const file = new File([bytes], name, { type });
  const digest = await crypto.subtle.digest("SHA-256", bytes);
  const sha = [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
  window.made = { ...(window.made || {}), [name]: { file, sha } };
  hand(file, how);
  return sha;
}"""
PICTURE = """async ({ name, how }) => {
  const canvas = new OffscreenCanvas(96, 64);
  const context = canvas.getContext("2d");
  context.fillStyle = "#6FE7FF";
  context.fillRect(0, 0, 96, 64);
  context.fillStyle = "#EF476F";
  context.fillRect(24, 16, 48, 32);
  const blob = await canvas.convertToBlob({ type: "image/png" });
  const bytes = new Uint8Array(await blob.arrayBuffer());
  const file = new File([bytes], name, { type: "image/png" });
  const digest = await crypto.subtle.digest("SHA-256", bytes);
  hand(file, how);
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}"""
HAND = """() => {
  window.hand = (file, how) => {
    const transfer = new DataTransfer();
    transfer.items.add(file);
    const init = { bubbles: true, cancelable: true };
    if (how === "drop") {
      const target = document.getElementById("chat-title");
      target.dispatchEvent(new DragEvent("dragenter", { ...init, dataTransfer: transfer }));
      target.dispatchEvent(new DragEvent("dragover", { ...init, dataTransfer: transfer }));
      target.dispatchEvent(new DragEvent("drop", { ...init, dataTransfer: transfer }));
    } else if (how === "paste") {
      const target = document.activeElement || document.body;
      target.dispatchEvent(new ClipboardEvent("paste", { ...init, clipboardData: transfer }));
    }
  };
}"""


# Every value the progress bar of file NAME takes, recorded by the page as it changes.
RECORD = """(name) => {
  window.seen = [];
  const observer = new MutationObserver((changes) => {
    for (const change of changes) {
      if (change.target.getAttribute("aria-label") === `Progress of ${name}`) {
        window.seen.push(Number(change.target.getAttribute("aria-valuenow")));
      }
    }
  });
  const list = document.getElementById("transfers");
  observer.observe(list, { attributes: true, subtree: true, attributeFilter: ["aria-valuenow"] });
}"""


async def connected(browser: Browser, ui_pair: tuple[Daemon, Daemon]) -> tuple[Page, Page]:
    alice_daemon, bob_daemon = ui_pair
    _, alice = await open_ui(browser, alice_daemon)
    _, bob = await open_ui(browser, bob_daemon)
    invite = await request_token(alice)
    await join(bob, invite)
    for page in (alice, bob):
        await expect(page.locator("#phase")).to_have_text("Connected")
        await expect(page.get_by_role("button", name="Send files…")).to_be_enabled()
        await page.evaluate(HAND)
    return alice, bob


async def make(page: Page, name: str, size: int, how: str, kind: str = "") -> str:
    sha: str = await page.evaluate(MAKE, {"name": name, "size": size, "type": kind, "how": how})
    return sha


def transfer(page: Page, name: str) -> Locator:
    return (
        page.get_by_role("list", name="File transfers")
        .get_by_role("listitem")
        .filter(has_text=name)
    )


async def sha256(download: Download) -> str:
    path = await download.path()  # waits until the browser has the whole file
    assert download.suggested_filename and path is not None
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


async def test_drop_accept_watch_the_progress_and_save_the_same_bytes(
    browser: Browser, ui_pair: tuple[Daemon, Daemon]
) -> None:
    alice, bob = await connected(browser, ui_pair)
    problems = watch(alice) + watch(bob)

    sent = await make(alice, "orbit-64.bin", 64 * MIB, "drop", "application/octet-stream")
    offer = transfer(bob, "orbit-64.bin")
    await expect(offer).to_contain_text(
        "From the other person · 67.1 MB · application/octet-stream"
    )
    await expect(offer).to_contain_text("Wants to send you this file.")
    await expect(bob.locator("#live")).to_have_text(
        "The other person wants to send you orbit-64.bin (67.1 MB)."
        " Accept or decline it under Files."
    )
    await expect(transfer(alice, "orbit-64.bin")).to_contain_text("Waiting for the other person")
    await screenshot(bob, "files-offer")

    for page in (alice, bob):
        await page.evaluate(RECORD, "orbit-64.bin")
    async with bob.expect_download(timeout=60_000) as saved:
        await offer.get_by_role("button", name="Accept orbit-64.bin").click()
    download = await saved.value
    assert download.suggested_filename == "orbit-64.bin"
    assert await sha256(download) == sent
    await expect(transfer(bob, "orbit-64.bin")).to_contain_text("Received and checked")
    await expect(transfer(alice, "orbit-64.bin")).to_contain_text("Sent and checked")
    await expect(alice.locator("#live")).to_have_text("orbit-64.bin sent.")
    await expect(bob.locator("#live")).to_have_text("orbit-64.bin received.")
    # Both bars moved, forward only: the receiver's download pulls, the sender's page pushes.
    for page in (alice, bob):
        bar = page.get_by_role("progressbar", name="Progress of orbit-64.bin")
        await expect(bar).to_have_attribute("aria-valuenow", "100")
        seen: list[int] = await page.evaluate("window.seen")
        assert seen == sorted(seen) and seen[-1] == 100, seen
        assert any(0 < value < 100 for value in seen), seen
    assert problems == []


async def test_paste_a_picture_decline_and_cancel_by_the_receiver(
    browser: Browser, ui_pair: tuple[Daemon, Daemon]
) -> None:
    alice, bob = await connected(browser, ui_pair)
    problems = watch(alice) + watch(bob)

    # A pasted picture: a preview on both sides once accepted, saved with the same bytes.
    sent: str = await bob.evaluate(PICTURE, {"name": "pasted.png", "how": "paste"})
    offer = transfer(alice, "pasted.png")
    await expect(offer).to_contain_text("image/png")
    await expect(transfer(bob, "pasted.png").get_by_role("img")).to_be_visible()
    async with alice.expect_download() as saved:
        await offer.get_by_role("button", name="Accept pasted.png").click()
    preview = offer.get_by_role("img", name="Preview of pasted.png")
    await expect(preview).to_be_visible()
    assert await preview.evaluate("img => img.complete && img.naturalWidth") == 96
    assert await sha256(await saved.value) == sent
    await expect(offer).to_contain_text("Received and checked")

    # Two files at once through the button's file picker: the receiver declines one with
    # the keyboard and accepts the other (empty) one.
    async with alice.expect_file_chooser() as chooser:
        await alice.get_by_role("button", name="Send files…").click()
    picked: list[FilePayload] = [
        {"name": "notes.txt", "mimeType": "text/plain", "buffer": b"Not for you."},
        {"name": "empty.txt", "mimeType": "text/plain", "buffer": b""},
    ]
    await (await chooser.value).set_files(picked)
    await expect(transfer(bob, "notes.txt")).to_contain_text("text/plain")
    await expect(transfer(bob, "empty.txt")).to_contain_text("From the other person · 0 B")
    await tab_to(bob, '.transfer__decline[aria-label="Decline notes.txt"]')
    await bob.keyboard.press("Enter")
    await expect(transfer(bob, "notes.txt")).to_contain_text("You declined this file.")
    await expect(transfer(alice, "notes.txt")).to_contain_text(
        "The other person declined this file."
    )
    await expect(alice.locator("#live")).to_have_text("The other person declined notes.txt.")
    async with bob.expect_download() as saved:
        await transfer(bob, "empty.txt").get_by_role("button", name="Accept empty.txt").click()
    assert await sha256(await saved.value) == hashlib.sha256(b"").hexdigest()
    await expect(transfer(alice, "empty.txt")).to_contain_text("Sent and checked")

    # The sender's page is held after its first MiB (the test keeps its next PUTs): the
    # receiver's bar stops part way, and the receiver cancels. Both see who did.
    held: list[Route] = []

    async def first_slice_only(route: Route) -> None:
        if "offset=0" in route.request.url:
            await route.continue_()
        else:
            held.append(route)

    await alice.route("**/api/files/*/data?offset=*", first_slice_only)
    await make(alice, "held.bin", 8 * MIB, "drop", "application/octet-stream")
    async with bob.expect_download() as saving:
        await transfer(bob, "held.bin").get_by_role("button", name="Accept held.bin").click()
    bar = transfer(bob, "held.bin").get_by_role("progressbar")
    await expect(bar).to_have_attribute("aria-valuenow", PERCENT_BETWEEN)
    sending = transfer(alice, "held.bin").get_by_role("progressbar")
    await expect(sending).to_have_attribute("aria-valuenow", PERCENT_BETWEEN)
    await expect(sending).to_have_attribute("aria-valuetext", re.compile(r" of 8\.4 MB"))
    await screenshot(alice, "files-progress")
    cancel = transfer(bob, "held.bin").get_by_role("button", name="Cancel the transfer of held.bin")
    await cancel.click()
    await expect(transfer(bob, "held.bin")).to_contain_text("You cancelled this transfer.")
    await expect(transfer(alice, "held.bin")).to_contain_text(
        "The other person cancelled this transfer."
    )
    await expect(alice.locator("#live")).to_have_text("The other person cancelled held.bin.")
    for page in (alice, bob):
        await expect(transfer(page, "held.bin").get_by_role("button")).to_have_count(0)
    # The browser's download fails: no partial file is completed.
    failure = await asyncio.wait_for((await saving.value).failure(), WAIT / 1000)
    assert failure is not None
    # The held slices reach the daemon, which says the file takes no more: the page stops.
    assert held
    for route in held:
        await route.continue_()
    await expect(alice.locator("#files-error")).to_be_empty()

    # The session ends with an offer still open: both are told, and the list is gone.
    await make(alice, "late.bin", 1000, "drop")
    await expect(transfer(bob, "late.bin")).to_contain_text("unknown type")
    await alice.get_by_role("button", name="End session").click()
    dialog = alice.get_by_role("dialog", name="End the session now?")
    await dialog.get_by_role("button", name="End session").click()
    for page in (alice, bob):
        await expect(page.get_by_role("heading", name="The session has ended")).to_be_visible()
        await expect(page.locator("#ended-files")).to_have_text(
            "Unfinished file transfers stopped with the session; nothing of them was kept."
        )
        await expect(page.get_by_text("late.bin")).to_have_count(0)
    assert problems == []


async def test_the_receivers_limit_is_named_before_anything_is_sent(
    browser: Browser, tmp_path: Path
) -> None:
    rendezvous, url = await start_rendezvous(tmp_path)
    alice_daemon, bob_daemon = await asyncio.gather(
        start_daemon(tmp_path, "alice", url, api_login=False),
        start_daemon(tmp_path, "bob", url, "--file-size-max-bytes", "1500000", api_login=False),
    )
    try:
        alice, bob = await connected(browser, (alice_daemon, bob_daemon))
        problems = watch(alice) + watch(bob)
        await make(alice, "big.bin", 2_000_000, "drop", "application/octet-stream")
        await expect(alice.locator("#files-error")).to_have_text(
            "big.bin is too large: at most 1.5 MB can be sent in this session."
        )
        await make(alice, "fits.bin", 1_500_000, "drop", "application/octet-stream")
        await expect(transfer(bob, "fits.bin")).to_contain_text("1.5 MB")
        await expect(transfer(bob, "big.bin")).to_have_count(0)
        assert problems == []
    finally:
        await asyncio.gather(alice_daemon.close(), bob_daemon.close())
        await rendezvous.stop()


async def test_a_transfer_pauses_while_the_peer_is_away_and_completes_after(
    browser: Browser, ui_pair: tuple[Daemon, Daemon]
) -> None:
    alice, bob = await connected(browser, ui_pair)
    problems = watch(alice) + watch(bob)
    # Alice's page sends its first 4 MiB, then the test holds its slices until Bob's daemon
    # is frozen, so the outage falls in the middle of the file.
    held: list[Route] = []
    released = asyncio.Event()

    async def hold_after_4_mib(route: Route) -> None:
        if int(route.request.url.split("offset=")[1]) < 4 * MIB or released.is_set():
            await route.continue_()
        else:
            held.append(route)

    await alice.route("**/api/files/*/data?offset=*", hold_after_4_mib)
    sent = await make(alice, "resumed.bin", 24 * MIB, "drop", "application/octet-stream")
    async with bob.expect_download(timeout=60_000) as saved:
        await transfer(bob, "resumed.bin").get_by_role("button", name="Accept resumed.bin").click()
    bar = transfer(alice, "resumed.bin").get_by_role("progressbar")
    await expect(bar).to_have_attribute("aria-valuenow", PERCENT_BETWEEN)

    pid = ui_pair[1].process.proc.pid
    os.kill(pid, signal.SIGSTOP)
    try:
        await expect(alice.locator("#phase")).to_have_text(re.compile(r"reconnecting"))
        await expect(transfer(alice, "resumed.bin")).to_contain_text(
            "Paused while the connection comes back"
        )
        released.set()
        for route in held:  # into Alice's daemon, which takes them while the link is down
            await route.continue_()
    finally:
        os.kill(pid, signal.SIGCONT)
    for page in (alice, bob):
        await expect(page.locator("#phase")).to_have_text("Connected")
    download = await saved.value
    assert await sha256(download) == sent
    await expect(transfer(alice, "resumed.bin")).to_contain_text("Sent and checked")
    await expect(transfer(bob, "resumed.bin")).to_contain_text("Received and checked")
    assert problems == []
