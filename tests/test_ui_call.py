"""Video calls in two real browsers (Debian chromium, fake camera and microphone).

Each page links its camera to its own daemon over WebRTC on 127.0.0.1 (hence the
loopback flag in CALL_ARGS); the daemons forward the media to each other. A video
"plays" when it has a size, its clock advances and its pixels change between two
canvas grabs 500 ms apart.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from playwright.async_api import Browser, Locator, Page, Request, Response, expect

from tests.browser import call_browser, open_ui, screenshot
from tests.processes import Daemon, start_daemon, start_rendezvous
from tests.test_ui_session import join, origin, request_token

__all__ = ["call_browser"]  # the fixture

WAIT = 15_000  # ms
expect.set_options(timeout=WAIT)
PAGE_BUDGET = 100_000  # bytes moved to show the session page

FRAMES = """async (id) => {
  const video = document.getElementById(id);
  const canvas = document.createElement("canvas");
  canvas.width = 160;
  canvas.height = 120;
  const context = canvas.getContext("2d", { willReadFrequently: true });
  const grab = () => {
    context.drawImage(video, 0, 0, canvas.width, canvas.height);
    return context.getImageData(0, 0, canvas.width, canvas.height).data;
  };
  const t0 = video.currentTime;
  const before = grab();
  await new Promise((resolve) => setTimeout(resolve, 500));
  const after = grab();
  let changed = 0;
  let lit = 0;
  for (let i = 0; i < after.length; i += 4) {
    const [r, g, b] = [after[i], after[i + 1], after[i + 2]];
    if (r !== before[i] || g !== before[i + 1] || b !== before[i + 2]) changed += 1;
    if (r + g + b > 60) lit += 1;
  }
  const { videoWidth: width, videoHeight: height, currentTime: t1 } = video;
  return { width, height, t0, t1, changed, lit };
}"""


def watch(page: Page) -> list[str]:
    """Script errors and console errors, except the daemon's refusals the page handles."""
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(str(error)))

    def console(message: Any) -> None:
        if message.type == "error" and not re.search(r"status of 4\d\d", message.text):
            problems.append(message.text)

    page.on("console", console)
    return problems


async def connected(browser: Browser, ui_pair: tuple[Daemon, Daemon]) -> tuple[Page, Page]:
    alice_daemon, bob_daemon = ui_pair
    _, alice = await open_ui(browser, alice_daemon)
    _, bob = await open_ui(browser, bob_daemon)
    invite = await request_token(alice)
    await join(bob, invite)
    for page in (alice, bob):
        await expect(page.locator("#phase")).to_have_text("Connected")
        await expect(page.get_by_role("heading", name="Video call")).to_be_visible()
    return alice, bob


def panel(page: Page) -> Locator:
    return page.locator("#call-panel")


async def in_call(*pages: Page) -> str:
    """Wait until every page's call is active; they must share one call_id."""
    for page in pages:
        await expect(panel(page)).to_have_attribute("data-state", "active")
    ids = {await panel(page).get_attribute("data-call-id") for page in pages}
    assert len(ids) == 1 and re.fullmatch(r"[0-9a-f]{32}", ids.pop() or ""), ids
    return await panel(pages[0]).get_attribute("data-call-id") or ""


async def frames(page: Page, video: str = "call-remote") -> dict[str, Any]:
    state: dict[str, Any] = await page.evaluate(FRAMES, video)
    return state


async def playing(page: Page, video: str = "call-remote") -> dict[str, Any]:
    """Wait until the video plays: a size, an advancing clock, changing lit pixels."""
    deadline = asyncio.get_running_loop().time() + WAIT / 1000
    state: dict[str, Any] = {}
    while asyncio.get_running_loop().time() < deadline:
        state = await frames(page, video)
        if state["width"] > 0 and state["t1"] > state["t0"] and state["changed"] > 0:
            assert state["lit"] > 0, state
            return state
        await asyncio.sleep(0.2)
    raise AssertionError(f"#{video} never played on {page.url}: {state}")


async def idle(*pages: Page) -> None:
    """The call is over: no camera, no link, nothing playing."""
    for page in pages:
        await expect(panel(page)).to_have_attribute("data-state", "idle")
        await expect(page.get_by_role("button", name="Start a video call")).to_be_enabled()
        assert await page.evaluate(
            "['call-local', 'call-remote'].every(id => !document.getElementById(id).srcObject)"
        )


async def page_weight(browser: Browser, page: Page, locale: str) -> tuple[int, list[str]]:
    """Bytes (headers and bodies) to show `page`'s session page in a fresh tab, cold cache."""
    context = await browser.new_context(
        locale=locale, storage_state=await page.context.storage_state()
    )
    fresh = await context.new_page()
    responses: list[Response] = []
    fresh.on("response", lambda response: responses.append(response))
    await fresh.goto(f"{origin(page)}/session")
    await expect(panel(fresh)).to_be_visible()
    await fresh.wait_for_load_state("networkidle")
    sizes = [await response.request.sizes() for response in responses]
    await context.close()
    loads = [f"{r.url} {s['responseBodySize']}" for r, s in zip(responses, sizes, strict=True)]
    return sum(s["responseBodySize"] + s["responseHeadersSize"] for s in sizes), loads


async def local_enabled(page: Page, kind: str) -> bool:
    enabled: bool = await page.evaluate(
        "kind => document.getElementById('call-local').srcObject"
        ".getTracks().find(t => t.kind === kind).enabled",
        kind,
    )
    return enabled


async def test_call_answer_mute_camera_hang_up_call_again_and_decline(
    call_browser: Browser, ui_pair: tuple[Daemon, Daemon]
) -> None:
    alice, bob = await connected(call_browser, ui_pair)
    problems = watch(alice) + watch(bob)

    # Alice calls; Bob's page rings with the focus on Accept and answers with the keyboard.
    await alice.get_by_role("button", name="Start a video call").click()
    await expect(alice.locator("#call-status")).to_have_text("Calling…")
    await expect(alice.get_by_role("button", name="Cancel call")).to_be_focused()
    ringing = bob.get_by_role("alertdialog", name="The other person is calling you")
    await expect(ringing).to_be_visible()
    await expect(bob.locator("#live")).to_have_text("The other person is calling you")
    await expect(ringing.get_by_role("button", name="Accept")).to_be_focused()
    await bob.keyboard.press("Enter")
    await in_call(alice, bob)
    await expect(ringing).to_be_hidden()
    await expect(bob.get_by_role("button", name="Hang up")).to_be_focused()

    # Both see and hear the other: the remote videos play, so do the previews.
    for page in (alice, bob):
        state = await playing(page)
        assert (state["width"], state["height"]) == (640, 480), state
        await playing(page, "call-local")
        await expect(page.locator("#call-path")).to_have_text(
            re.compile(r"Connection: on this machine\.\s+Media encrypted end to end \(DTLS-SRTP\)")
        )
        await expect(page.locator("#call-note")).to_be_hidden()
    await screenshot(alice, "call")

    # Alice mutes her microphone: her track is off and Bob is told.
    await alice.get_by_role("button", name="Mute microphone").click()
    await expect(alice.get_by_role("button", name="Unmute microphone")).to_be_visible()
    assert not await local_enabled(alice, "audio")
    await expect(bob.get_by_text("Their microphone is muted")).to_be_visible()
    await expect(bob.locator("#live")).to_have_text("The other person muted their microphone.")
    await alice.get_by_role("button", name="Unmute microphone").click()
    await expect(bob.get_by_text("Their microphone is muted")).to_be_hidden()
    assert await local_enabled(alice, "audio")

    # Bob turns his camera off: his preview says so, Alice sees a note instead of a frozen frame.
    await bob.get_by_role("button", name="Turn camera off").click()
    await expect(bob.locator("#call-local-off")).to_have_text("Camera off")
    assert not await local_enabled(bob, "video")
    await expect(alice.locator("#call-note")).to_have_text("Their camera is off")
    await expect(alice.locator("#live")).to_have_text("The other person turned their camera off.")
    await bob.get_by_role("button", name="Turn camera on").click()
    await expect(alice.locator("#call-note")).to_be_hidden()
    await expect(bob.locator("#call-local-off")).to_be_hidden()
    await playing(alice)  # the video comes back (a keyframe was asked for upstream)

    # Alice hangs up: both cameras stop.
    await alice.get_by_role("button", name="Hang up").click()
    await expect(alice.locator("#call-ended")).to_have_text("Call ended: you hung up.")
    await expect(bob.locator("#call-ended")).to_have_text("Call ended: the other person hung up.")
    await idle(alice, bob)
    await expect(alice.get_by_role("button", name="Start a video call")).to_be_focused()

    # A second call, the other way round, on fresh media links.
    await bob.get_by_role("button", name="Start a video call").click()
    await alice.get_by_role("alertdialog").get_by_role("button", name="Accept").click()
    await in_call(alice, bob)
    await expect(alice.locator("#call-ended")).to_be_hidden()
    for page in (alice, bob):
        await playing(page)
    await bob.get_by_role("button", name="Hang up").click()
    await idle(alice, bob)

    # Declined.
    await alice.get_by_role("button", name="Start a video call").click()
    await bob.get_by_role("alertdialog").get_by_role("button", name="Decline").click()
    await expect(alice.locator("#call-ended")).to_have_text("The other person declined the call.")
    await expect(bob.locator("#call-ended")).to_have_text("You declined the call.")
    await idle(alice, bob)

    # Cancelled before the answer: a missed call.
    await bob.get_by_role("button", name="Start a video call").click()
    await expect(alice.get_by_role("alertdialog")).to_be_visible()
    await bob.get_by_role("button", name="Cancel call").click()
    await expect(alice.locator("#call-ended")).to_have_text(
        "Missed call: they hung up before you answered."
    )
    await idle(alice, bob)
    assert problems == []


async def test_both_call_at_once_a_refused_camera_and_the_session_end(
    call_browser: Browser, ui_pair: tuple[Daemon, Daemon]
) -> None:
    alice, bob = await connected(call_browser, ui_pair)
    problems = watch(alice) + watch(bob)

    # The session page with its call panel stays within its budget, in both languages.
    for locale in ("en-US", "sk-SK"):
        weight, loads = await page_weight(call_browser, alice, locale)
        print(f"session page ({locale}): {len(loads)} responses, {weight} bytes")
        assert weight < PAGE_BUDGET, loads

    # Bob's browser refuses the camera: he is told why, and nothing rings at Alice.
    await bob.evaluate(
        """() => {
      window.realGetUserMedia = navigator.mediaDevices.getUserMedia.bind(navigator.mediaDevices);
      navigator.mediaDevices.getUserMedia = () =>
        Promise.reject(new DOMException("Permission denied", "NotAllowedError"));
    }"""
    )
    posted: list[str] = []

    def on_request(request: Request) -> None:
        if request.method == "POST":
            posted.append(urlsplit(request.url).path)

    bob.on("request", on_request)
    await bob.get_by_role("button", name="Start a video call").click()
    await expect(bob.locator("#call-error")).to_contain_text(
        "Your browser blocked the camera and microphone for this page."
    )
    await expect(panel(bob)).to_have_attribute("data-state", "idle")
    bob.remove_listener("request", on_request)
    assert "/api/call" not in posted, posted  # never asked its daemon to ring Alice
    await expect(panel(alice)).to_have_attribute("data-state", "idle")
    await bob.evaluate("() => { navigator.mediaDevices.getUserMedia = window.realGetUserMedia; }")

    # Both press call at the same moment: one call, not two.
    await asyncio.gather(
        alice.get_by_role("button", name="Start a video call").click(),
        bob.get_by_role("button", name="Start a video call").click(),
    )
    await in_call(alice, bob)
    await expect(bob.locator("#call-error")).to_be_empty()
    for page in (alice, bob):
        await playing(page)
        await page.evaluate(
            "window.tracks = document.getElementById('call-local').srcObject.getTracks()"
        )

    # Ending the session ends the call: the cameras and microphones stop on both sides.
    await alice.get_by_role("button", name="End session").click()
    await (
        alice.get_by_role("dialog", name="End the session now?")
        .get_by_role("button", name="End session")
        .click()
    )
    for page in (alice, bob):
        await expect(page.get_by_role("heading", name="The session has ended")).to_be_visible()
        await expect(panel(page)).to_be_hidden()
        await page.wait_for_function("window.tracks.every(t => t.readyState === 'ended')")
        assert await page.evaluate(
            "['call-local', 'call-remote'].every(id => !document.getElementById(id).srcObject)"
        )
    assert problems == []


async def test_the_call_panel_in_slovak(call_browser: Browser, tmp_path: Path) -> None:
    """No session needed: the panel's texts are in the page, translated."""
    process, url = await start_rendezvous(tmp_path)
    daemon = await start_daemon(tmp_path, "solo", url, api_login=False)
    try:
        _, page = await open_ui(call_browser, daemon, locale="sk-SK")
        await page.goto(f"{origin(page)}/session")
        panel_html = await panel(page).inner_html()
        for text in ("Videohovor", "Začať videohovor", "Prijať", "Odmietnuť", "Zavesiť"):
            assert text in panel_html, text
    finally:
        await daemon.close()
        await process.stop()
