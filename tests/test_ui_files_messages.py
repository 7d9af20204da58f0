"""The file panel's messages and upload loop, with the daemon's answers played by the test.

The page is the real session page of a real orbitd, but its events socket and its
/api/files calls are answered by Playwright routes: this reaches what two real daemons
rarely produce on demand (a peer without the feature, a checksum mismatch, a wrong
offset, the limit) and checks every text in both languages. Two real daemons moving
real files: tests/test_ui_files.py.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, Page, Route, WebSocketRoute, expect

from tests.browser import browser, open_ui
from tests.processes import Daemon, start_daemon
from tests.test_ui_session import origin, tab_to, watch

__all__ = ["browser"]  # the fixture

WAIT = 10_000  # ms
expect.set_options(timeout=WAIT)
MIB = 1024 * 1024


def session(**changes: Any) -> dict[str, Any]:
    """A connected session as /api/events describes it."""
    base: dict[str, Any] = {
        "token": "TOKEN",
        "role": "host",
        "phase": "ready",
        "participants": {"host": {"connected": True}, "guest": {"connected": True}},
        "remaining_seconds": 3000,
        "max_message_length": 2000,
        "sas": "1234 5678",
        "attempt": None,
        "ended": None,
        "messages": [],
        "call": None,
        "lan": None,
        "protocol": {
            "version": "1.4",
            "peer_version": "1.4",
            "features": ["calls", "chat", "files"],
            "compatible": True,
        },
        "path": "loopback",
        "relay_only": False,
        "files": [],
    }
    return base | changes


def file(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "id": "f-1",
        "direction": "incoming",
        "name": "report.pdf",
        "size": 2_500_000,
        "type": "application/pdf",
        "state": "offered",
        "transferred": 0,
        "rate": 0,
        "eta_seconds": None,
        "error": None,
        "cancelled_by": None,
        "download": False,
    }
    return base | changes


class FakeEvents:
    """The page's /api/events socket, answered by the test."""

    def __init__(self) -> None:
        self.socket: WebSocketRoute | None = None
        self.first: dict[str, Any] = {"type": "state", "state": {"session": session()}}

    def accept(self, socket: WebSocketRoute) -> None:
        self.socket = socket
        socket.send(json.dumps(self.first))

    def push(self, event: dict[str, Any]) -> None:
        assert self.socket is not None, "the page has not opened its events socket"
        self.socket.send(json.dumps(event))


@pytest.fixture
async def daemon(tmp_path: Path) -> AsyncIterator[Daemon]:
    # No rendezvous: the page's session is played by the test.
    started = await start_daemon(tmp_path, "alice", "http://127.0.0.1:9", api_login=False)
    yield started
    await started.close()


async def session_page(
    browser: Browser, daemon: Daemon, first: dict[str, Any], locale: str = "en-US", init: str = ""
) -> tuple[Page, FakeEvents]:
    _, page = await open_ui(browser, daemon, locale=locale)
    if init:
        await page.add_init_script(init)
    events = FakeEvents()
    events.first = {"type": "state", "state": {"session": first}}
    await page.route_web_socket("**/api/events", events.accept)
    await page.goto(f"{origin(page)}/session")
    return page, events


def json_route(status: int, body: dict[str, Any]) -> Any:
    async def answer(route: Route) -> None:
        await route.fulfill(status=status, json=body)

    return answer


TWO_DROPPED = """() => {
  const transfer = new DataTransfer();
  transfer.items.add(new File(["one"], "one.txt", { type: "text/plain" }));
  transfer.items.add(new File(["two"], "two.txt", { type: "text/plain" }));
  const init = { dataTransfer: transfer, bubbles: true, cancelable: true };
  document.body.dispatchEvent(new DragEvent("drop", init));
}"""


async def test_a_peer_without_files_the_limit_an_offer_a_mismatch_and_the_end(
    browser: Browser, daemon: Daemon
) -> None:
    without = session(protocol={**session()["protocol"], "features": ["calls", "chat"]})
    page, events = await session_page(browser, daemon, without)
    problems = watch(page)  # (the 4xx answers below show up as "Failed to load resource")
    panel = page.get_by_role("region", name="Files")
    await expect(panel).to_be_visible()
    await expect(panel).to_contain_text("The other person's ChatOrbit cannot receive files")
    choose = page.get_by_role("button", name="Send files…")
    await expect(choose).to_be_disabled()
    # Two files dropped all the same: the daemon refuses each, the page says it once.
    unavailable = {"error": "feature_unavailable", "reason": "No files."}
    await page.route("**/api/files", json_route(409, unavailable))
    await page.evaluate(TWO_DROPPED)
    await expect(page.locator("#files-error")).to_have_text(
        "The other person's ChatOrbit cannot receive files: ask them to update it."
    )
    await expect(page.locator("#files-error p")).to_have_count(1)
    await page.unroute("**/api/files")

    # Both announce files: the button works; over the limit, the daemon's 422 is explained.
    events.push({"type": "session", "session": session()})
    await expect(choose).to_be_enabled()
    await expect(panel).not_to_contain_text("cannot receive files")
    await page.route(
        "**/api/files",
        json_route(422, {"error": "file_too_large", "reason": "Too big.", "limit": 1_000_000}),
    )
    async with page.expect_file_chooser() as chooser:
        await choose.click()
    await (await chooser.value).set_files(
        {"name": "big.bin", "mimeType": "application/octet-stream", "buffer": b"x" * 1_000_001}
    )
    await expect(page.locator("#files-error")).to_have_text(
        "big.bin is too large: at most 1 MB can be sent in this session."
    )

    # An offer: name, size and type, announced; accepted with the keyboard alone.
    events.push({"type": "file", "file": file()})
    offer = page.get_by_role("list", name="File transfers").get_by_role("listitem")
    await expect(offer).to_contain_text("report.pdf")
    await expect(offer).to_contain_text("From the other person · 2.5 MB · application/pdf")
    await expect(page.locator("#live")).to_have_text(
        "The other person wants to send you report.pdf (2.5 MB). Accept or decline it under Files."
    )
    accepted = file(state="transferring", download=True)
    await page.route("**/api/files/f-1/accept", json_route(200, {"file": accepted}))
    await tab_to(page, ".transfer__accept")
    accept = page.get_by_role("button", name="Accept report.pdf")
    await expect(accept).to_be_focused()
    # Accepting starts the browser's download from the daemon (Playwright's routes do not see
    # downloads: the real daemon, which has no such file, answers and the download fails).
    async with page.expect_download() as saved:
        await page.keyboard.press("Enter")
    download = await saved.value
    assert download.url.endswith("/api/files/f-1/data")
    assert download.suggested_filename == "report.pdf"
    cancel = page.get_by_role("button", name="Cancel the transfer of report.pdf")
    await expect(cancel).to_be_focused()  # the focus stays on the file, not the page's top
    await expect(accept).to_be_hidden()

    # Progress: a progress bar with the figures in words.
    events.push(
        {
            "type": "file",
            "file": file(
                state="transferring",
                transferred=1_000_000,
                rate=500_000,
                eta_seconds=3,
                download=True,
            ),
        }
    )
    bar = page.get_by_role("progressbar", name="Progress of report.pdf")
    await expect(bar).to_have_attribute("aria-valuenow", "40")
    await expect(bar).to_have_attribute(
        "aria-valuetext", "40 % · 1 MB of 2.5 MB · 500 kB/s · 00:03 left"
    )

    # The checksum did not match: an error on the file, announced.
    broken = {"code": "hash_mismatch", "reason": "The file arrived damaged."}
    events.push({"type": "file", "file": file(state="failed", error=broken, transferred=2_000_000)})
    damaged = "the file arrived damaged (its checksum did not match) and was discarded."
    await expect(offer).to_contain_text(f"Failed: {damaged}")
    await expect(page.locator("#live")).to_have_text(f"report.pdf: {damaged}")
    await expect(cancel).to_be_hidden()

    # One of ours is declined, another still on its way when the session ends.
    ours = file(id="f-2", direction="outgoing", name="notes.txt", type="text/plain", size=10)
    events.push({"type": "file", "file": ours})
    events.push({"type": "file", "file": {**ours, "state": "declined"}})
    await expect(page.get_by_text("The other person declined this file.")).to_be_visible()
    await expect(page.locator("#live")).to_have_text("The other person declined notes.txt.")
    events.push({"type": "file", "file": file(id="f-3", name="more.bin", type="")})
    await expect(page.get_by_text("unknown type")).to_be_visible()
    events.push({"type": "session-ended", "reason": "manually_ended"})
    await expect(page.get_by_role("heading", name="The session has ended")).to_be_visible()
    await expect(page.locator("#ended-files")).to_have_text(
        "Unfinished file transfers stopped with the session; nothing of them was kept."
    )
    await expect(page.get_by_text("report.pdf")).to_have_count(0)
    assert [p for p in problems if not p.startswith("Failed to load resource")] == []


DROP = """async ({ name, size, type }) => {
  const bytes = new Uint8Array(size);
  for (let i = 0; i < size; i += 1) bytes[i] = i % 251;
  const transfer = new DataTransfer();
  transfer.items.add(new File([bytes], name, { type }));
  const target = document.querySelector("#chat-title");
  const zone = document.getElementById("drop-zone");
  const init = { dataTransfer: transfer, bubbles: true, cancelable: true };
  target.dispatchEvent(new DragEvent("dragenter", init));
  const shown = !zone.hidden;
  const drop = new DragEvent("drop", init);
  target.dispatchEvent(drop);
  return { shown, prevented: drop.defaultPrevented, hidden: zone.hidden };
}"""


async def test_the_upload_follows_the_daemons_offsets_and_stops_when_told(
    browser: Browser, daemon: Daemon
) -> None:
    page, _ = await session_page(browser, daemon, session())
    problems = watch(page)
    size = 3 * MIB + MIB // 2
    offered = file(
        id="f-9",
        direction="outgoing",
        name="data.bin",
        size=size,
        type="application/octet-stream",
        upload_offset=0,
    )
    await page.route("**/api/files", json_route(201, {"file": offered}))
    puts: list[tuple[int, int, bytes]] = []
    told = asyncio.Event()

    async def take(route: Route) -> None:
        offset = int(route.request.url.split("offset=")[1])
        data = route.request.post_data_buffer or b""
        puts.append((offset, len(data), data[:4]))
        if offset == 0:  # the daemon already has the first bytes (a resumed transfer)
            await route.fulfill(
                status=409, json={"error": "wrong_offset", "reason": "No.", "next_offset": 600_000}
            )
        elif offset + len(data) < size:
            await route.fulfill(json={"next_offset": offset + len(data)})
        else:  # the receiver cancelled meanwhile: the page stops, quietly
            stop = {"error": "file_not_sending", "reason": "Cancelled."}
            await route.fulfill(status=409, json=stop)
            told.set()

    await page.route("**/api/files/f-9/data?offset=*", take)
    made = {"name": "data.bin", "size": size, "type": "application/octet-stream"}
    dropped = await page.evaluate(DROP, made)
    # Dragging files over the page shows the drop target; the drop is the page's, not a navigation.
    assert dropped == {"shown": True, "prevented": True, "hidden": True}
    item = page.get_by_role("listitem").filter(has_text="data.bin")
    await expect(item).to_contain_text("To the other person · 3.7 MB · application/octet-stream")
    await asyncio.wait_for(told.wait(), WAIT / 1000)
    pattern = bytes(i % 251 for i in range(4 * MIB))
    # From 0, sent again from where the daemon said, one slice after another, the last short.
    start = 600_000
    assert [(offset, length) for offset, length, _ in puts] == [
        (0, MIB),
        (start, MIB),
        (start + MIB, MIB),
        (start + 2 * MIB, size - start - 2 * MIB),
    ]
    for offset, _, head in puts:
        assert head == pattern[offset : offset + 4]  # each slice is the file's own bytes there
    await expect(page.locator("#files-error")).to_be_empty()
    assert [p for p in problems if not p.startswith("Failed to load resource")] == []


async def test_the_panel_in_slovak(browser: Browser, daemon: Daemon) -> None:
    offer = file(name="fotka.jpg", type="image/jpeg", size=1_250_000)
    page, _ = await session_page(browser, daemon, session(files=[offer]), locale="sk-SK")
    panel = page.get_by_role("region", name="Súbory")
    await expect(panel).to_contain_text("Posielajte súbory a obrázky priamo druhej osobe")
    await expect(page.get_by_role("button", name="Poslať súbory…")).to_be_enabled()
    await expect(panel).to_contain_text("Od druhej osoby · 1,3 MB · image/jpeg")
    await expect(panel).to_contain_text("Chce vám poslať tento súbor. Kým ho neprijmete")
    await expect(page.get_by_role("button", name="Prijať fotka.jpg")).to_be_visible()
    await expect(page.get_by_role("button", name="Odmietnuť fotka.jpg")).to_be_visible()


PASTE = """({ text, into }) => {
  const transfer = new DataTransfer();
  if (text) transfer.setData("text/plain", text);
  transfer.items.add(new File(["picture of the text"], "image.png", { type: "image/png" }));
  const target = document.querySelector(into);
  target.focus();
  const init = { clipboardData: transfer, bubbles: true, cancelable: true };
  const paste = new ClipboardEvent("paste", init);
  target.dispatchEvent(paste);
  return paste.defaultPrevented;
}"""


async def test_a_paste_sends_its_file_unless_it_is_text_for_the_message_box(
    browser: Browser, daemon: Daemon
) -> None:
    page, _ = await session_page(browser, daemon, session())
    posted: list[str] = []

    async def offer(route: Route) -> None:
        posted.append(json.loads(route.request.post_data or "{}")["name"])
        await route.fulfill(status=409, json={"error": "not_connected", "reason": "Down."})

    await page.route("**/api/files", offer)
    # Cells copied from a spreadsheet: text and a picture of it; in the message box, text.
    assert not await page.evaluate(PASTE, {"text": "a\tb", "into": "#composer-input"})
    # A screenshot pasted anywhere, the message box included: sent as a file.
    assert await page.evaluate(PASTE, {"text": "", "into": "#composer-input"})
    await expect(page.locator("#files-error")).to_have_text(
        "The connection to the other person is down. Try image.png again in a moment."
    )
    assert posted == ["image.png"]


# The browser's notifications, recorded; the tab counts as hidden.
NOTIFICATIONS = """
window.shown = [];
window.Notification = class {
  static permission = "granted";
  static requestPermission() { return Promise.resolve("granted"); }
  constructor(title, options) { window.shown.push([title, options.body]); }
  addEventListener() {}
  close() {}
};
Object.defineProperty(document, "hidden", { get: () => true });
"""


async def test_an_offer_notifies_without_the_files_name(browser: Browser, daemon: Daemon) -> None:
    page, events = await session_page(browser, daemon, session(), init=NOTIFICATIONS)
    toggle = page.get_by_role("button", name="Notify me of new messages")
    await toggle.click()
    await expect(toggle).to_have_attribute("aria-pressed", "true")
    events.push({"type": "file", "file": file(name="secret-plans.pdf")})
    await expect(page.get_by_text("secret-plans.pdf")).to_be_visible()
    shown = await page.evaluate("window.shown")
    assert shown == [["ChatOrbit", "The other person wants to send you a file"]]
