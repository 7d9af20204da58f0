"""The rendezvous's invite page (`/join`, the invite after "#") for someone who has never
heard of ChatOrbit, in a real browser: the explanation and install steps (EN and SK) with
no orbitd running; then orbitd started on a port typed into the page, the button handing
the invite over, the guest accepting and both chatting. Every request the visitor's
browser makes is recorded: none to the rendezvous carries the secret. The host's QR code
decodes (zxing-cpp) to the same link, which the Web Share button shares too."""

from __future__ import annotations

import asyncio
import re
import socket
from pathlib import Path

import aiohttp
import pytest
import zxingcpp
from playwright.async_api import Browser, Page, Request, expect

from tests.browser import browser, screenshot
from tests.processes import start_daemon, start_rendezvous
from tests.test_ui_session import agree, conversation, request_token, send

__all__ = ["browser"]

# Records what the page hands to navigator.share (headless Linux Chromium has no Web Share).
SHARE_STUB = """
window.__shared = [];
navigator.share = async (data) => { window.__shared.push(data); };
"""
# The QR code as the browser drew it, as grayscale pixels (the red channel) for the decoder.
QR_PIXELS = """async img => {
  const canvas = document.createElement("canvas");
  canvas.width = 400; canvas.height = 400;
  const context = canvas.getContext("2d");
  context.imageSmoothingEnabled = false;
  context.drawImage(img, 0, 0, 400, 400);
  const rgba = context.getImageData(0, 0, 400, 400).data;
  const grey = [];
  for (let i = 0; i < rgba.length; i += 4) grey.push(rgba[i]);
  return grey;
}"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def decode_qr(page: Page) -> list[str]:
    qr = page.locator("#invite-qr")
    await expect(qr).to_have_attribute("src", "/api/invite.svg")
    await qr.evaluate("img => img.decode()")
    grey = await qr.evaluate(QR_PIXELS)
    pixels = memoryview(bytes(grey)).cast("B", (400, 400))
    return [found.text for found in zxingcpp.read_barcodes(pixels)]


async def request_facts(request: Request) -> str:
    """Everything a request carries that a server could read: URL, headers, body."""
    headers = await request.all_headers()
    return " ".join([request.url, *headers.values(), request.post_data or ""])


@pytest.mark.parametrize(
    ("rendezvous_host", "login_host"),
    [
        ("127.0.0.1", "127.0.0.1"),
        # a rendezvous on a site of its own, as in real use: the hand-over to orbitd is a
        # cross-site navigation, which the SameSite=Strict login cookie does not follow
        ("localhost", "127.0.0.1"),
        # and the browser logged in under the UI's own name (the ready line's link), not
        # under 127.0.0.1, where the invite page hands over
        ("localhost", "bob.orbitd.localhost"),
    ],
)
async def test_a_newcomer_follows_the_invite_link_to_a_chat(
    browser: Browser, tmp_path: Path, rendezvous_host: str, login_host: str
) -> None:
    rendezvous, url = await start_rendezvous(tmp_path)
    url = url.replace("127.0.0.1", rendezvous_host)
    alice = await start_daemon(tmp_path, "alice", url, api_login=False)
    bob = None
    try:
        # The host: the link and the QR code point at the rendezvous's invite page.
        host_context = await browser.new_context(locale="en-US")
        await host_context.add_init_script(SHARE_STUB)
        host = await host_context.new_page()
        await host.goto(alice.link)
        invite = await request_token(host)
        secret = invite.split("-")[1]
        link = f"{url}/join#{invite}"
        await expect(host.get_by_label("Link for their browser")).to_have_value(link)
        await expect(host.get_by_label("Invite", exact=True)).to_have_value(invite)
        assert await decode_qr(host) == [link]
        await host.get_by_role("button", name="Share…").click()
        await expect(host.locator("#copy-status")).to_have_text("Shared.")
        shared = await host.evaluate("window.__shared")
        assert shared == [{"title": "Join me on ChatOrbit", "url": link}]

        # A newcomer in Slovak, no orbitd anywhere: what ChatOrbit is and how to get it.
        sk_context = await browser.new_context(locale="sk-SK")
        sk = await sk_context.new_page()
        await sk.goto(link)
        await expect(sk.get_by_role("heading", level=1)).to_have_text(
            "Máte pozvánku na súkromný chat"
        )
        await expect(sk.get_by_text("Nainštalujte ChatOrbit a spustite ho")).to_be_visible()
        await expect(sk.locator("#install-commands")).to_have_text("pipx install chatorbit\norbitd")
        await expect(sk.locator("#join-status")).to_contain_text("Pozvánka platí do")
        english = sk.get_by_role("link", name="English")
        assert (await english.get_attribute("href")) == f"?lang=en#{invite}"
        await sk_context.close()

        # The same in English, every request of the browser recorded.
        context = await browser.new_context(locale="en-US")
        requests: list[Request] = []
        context.on("request", lambda request: requests.append(request))
        page = await context.new_page()
        await page.goto(link)
        await expect(page.get_by_role("heading", level=1)).to_have_text(
            "You are invited to a private chat"
        )
        await expect(
            page.get_by_text("The person who sent you this link is waiting")
        ).to_be_visible()
        await expect(page.get_by_text("Install ChatOrbit and start it")).to_be_visible()
        await expect(page.get_by_text("On a phone or tablet?")).to_be_visible()
        await expect(page.locator("#install-commands")).to_have_text(
            "pipx install chatorbit\norbitd"
        )
        await expect(page.locator("#join-status")).to_contain_text(
            re.compile(r"This invite is valid until .+\. The chat lasts 60 minutes")
        )
        await expect(page.get_by_label("orbitd's port")).to_have_value("7170")
        await expect(page.get_by_label("Invite", exact=True)).to_have_value(invite)
        await expect(page.locator("#join-command")).to_have_text(f"orbitd join {invite}")
        await screenshot(page, "invite-page")
        on_the_page = list(requests)

        # orbitd starts on a port of its own; its login link opened in this browser (as
        # orbitd does on its first start), then the port typed into the invite page.
        port = free_port()
        bob = await start_daemon(tmp_path, "bob", url, "--port", str(port), api_login=False)
        # Not logged in to it yet: the hand-over lands on the page saying how to log in.
        await page.get_by_label("orbitd's port").fill(str(port))
        await page.get_by_role("button", name="Open in my ChatOrbit").click()
        await expect(page.get_by_role("heading", name="Log in to ChatOrbit")).to_be_visible()
        await page.go_back()
        login = await context.new_page()
        await login.goto(bob.link.replace("127.0.0.1", login_host))
        await login.close()
        await page.get_by_label("orbitd's port").fill("70000")
        await page.get_by_role("button", name="Open in my ChatOrbit").click()
        await expect(page.locator("#port-error")).to_have_text("Enter a port between 1 and 65535.")
        await page.get_by_label("orbitd's port").fill(str(port))
        await page.get_by_role("button", name="Open in my ChatOrbit").click()
        await page.wait_for_url(f"http://{login_host}:{port}/join")
        await expect(page.get_by_label("Invite", exact=True)).to_have_value(invite)
        await page.get_by_role("button", name="Join session").click()
        await agree(page)
        await page.wait_for_url("**/session")
        for side in (host, page):
            await expect(side.locator("#phase")).to_have_text("Connected")
        await send(page, "hello from the newcomer")
        await expect(conversation(host)).to_contain_text("hello from the newcomer")
        await send(host, "welcome")
        await expect(conversation(page)).to_contain_text("welcome")

        # The port is remembered for the next invite.
        again = await context.new_page()
        await again.goto(link)
        await expect(again.get_by_label("orbitd's port")).to_have_value(str(port))

        # Nothing of the secret went to the rendezvous, and the invite page itself asked
        # the rendezvous only for its files and the token's public status.
        to_rendezvous = [r for r in requests if r.url.startswith(url)]
        assert to_rendezvous
        for request in to_rendezvous:
            assert secret not in await request_facts(request), request.url
        asked = {r.url.removeprefix(url) for r in on_the_page}
        token = invite.split("-")[0]
        assert all(r.url.startswith(url) for r in on_the_page), asked
        assert {f"/api/session/{token}/status", "/static/js/join.js"} <= asked
        assert {p for p in asked if p.startswith("/api/")} == {f"/api/session/{token}/status"}
        await context.close()
        await host_context.close()
    finally:
        await asyncio.gather(alice.close(), *([bob.close()] if bob else []))
        await rendezvous.stop()
    for log in tmp_path.glob("*.log"):
        assert secret not in log.read_text(), log.name


async def test_the_invite_page_is_served_under_a_strict_csp_in_the_visitors_language(
    tmp_path: Path,
) -> None:
    wheel = "https://chat.example.org/dist/chatorbit-1.0-py3-none-any.whl"
    rendezvous, url = await start_rendezvous(tmp_path, "--install-source", wheel)
    try:
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{url}/join", headers={"Accept-Language": "sk"}) as response:
                assert response.status == 200
                assert response.content_type == "text/html"
                csp = response.headers["Content-Security-Policy"]
                html = await response.text()
            assert "default-src 'none'" in csp and "script-src 'self'" in csp
            assert "connect-src 'self'" in csp and "'unsafe-inline'" not in csp
            assert response.headers["Referrer-Policy"] == "no-referrer"
            assert '<html lang="sk">' in html and "Nainštalujte ChatOrbit" in html
            assert f"pipx install {wheel}\norbitd</pre>" in html  # the operator's wheel
            for path in ("/join", "/static/js/join.js", "/static/css/join.css"):
                async with http.get(url + path, headers={"Accept-Encoding": "gzip"}) as response:
                    assert response.status == 200
                    assert response.headers.get("Content-Encoding") == "gzip", path
            async with http.get(f"{url}/healthz", headers={"Accept-Encoding": "gzip"}) as response:
                assert "Content-Encoding" not in response.headers  # pages and static only
            async with http.get(f"{url}/join?lang=en") as response:
                assert "Install ChatOrbit and start it" in await response.text()
            # The inline scripts are data only (JSON), never code the CSP would have to allow.
            assert re.findall(r"<script(?![^>]*(?:src=|application/json))", html) == []
    finally:
        await rendezvous.stop()


async def test_a_cross_site_link_to_orbitds_join_is_followed_again_from_its_own_origin(
    tmp_path: Path,
) -> None:
    """Only a top-level cross-site GET of /join without login gets the page that follows
    it again (same-site, so with the cookie), then, still without login at 127.0.0.1, the
    UI's own name is tried once; everything else without login stays a 401."""
    rendezvous, url = await start_rendezvous(tmp_path)
    daemon = await start_daemon(tmp_path, "bob", url, api_login=False)
    navigate = {"Sec-Fetch-Mode": "navigate", "Accept": "text/html"}
    try:
        async with aiohttp.ClientSession() as http:

            async def get(path: str, **headers: str) -> tuple[int, str]:
                async with http.get(daemon.base + path, headers=headers) as response:
                    return response.status, await response.text()

            status, html = await get("/join", **navigate, **{"Sec-Fetch-Site": "cross-site"})
            assert status == 200 and '<script src="/static/js/public/same-site.js">' in html
            for site in ("same-origin", "none"):
                status, html = await get("/join", **navigate, **{"Sec-Fetch-Site": site})
                assert status == 401 and "same-site.js" not in html
            # Followed again and still no login at 127.0.0.1: once to the UI's own name.
            port = daemon.base.rsplit(":", 1)[1]
            same = {**navigate, "Sec-Fetch-Site": "same-origin"}
            async with http.get(
                f"{daemon.base}/join?same-site=1", headers=same, allow_redirects=False
            ) as response:
                assert response.status == 303
                assert response.headers["Location"] == (
                    f"http://bob.orbitd.localhost:{port}/join?same-site=2"
                )
            named = {**same, "Host": f"bob.orbitd.localhost:{port}"}
            status, html = await get("/join?same-site=1", **named)
            assert status == 401  # not logged in under that name either: how to log in
            status, html = await get("/", **navigate, **{"Sec-Fetch-Site": "cross-site"})
            assert status == 401 and "same-site.js" not in html
            status, script = await get("/static/js/public/same-site.js")
            assert status == 200 and "location.replace(`/join?same-site=1" in script
            status, _ = await get("/static/js/join.js")
            assert status == 401  # the rest of the scripts still need the login
    finally:
        await daemon.close()
        await rendezvous.stop()
