"""The login cookie is useless elsewhere (Chromium): logged in at the daemon's own name,
`<profile>.orbitd.localhost`, the browser sends nothing to another server on 127.0.0.1."""

from __future__ import annotations

import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from playwright.async_api import Browser, expect

from orbitd.control import request_login_link, socket_path
from orbitd.settings import load_config
from tests.browser import browser
from tests.processes import Daemon, start_daemon

__all__ = ["browser"]  # the fixture, used by name


@pytest.fixture
async def alice(tmp_path: Path) -> AsyncIterator[tuple[Daemon, Path]]:
    with tempfile.TemporaryDirectory(prefix="n4b-run-") as runtime:
        daemon = await start_daemon(
            tmp_path,
            "alice",
            "http://127.0.0.1:9",
            api_login=False,
            environ={"XDG_RUNTIME_DIR": runtime},
        )
        config = load_config(environ={}, overrides={"profile": "alice"})
        yield daemon, socket_path(config, {"XDG_RUNTIME_DIR": runtime})
        await daemon.close()


@pytest.fixture
async def other_server() -> AsyncIterator[tuple[int, list[dict[str, str]]]]:
    """Another local web server the user opens: it records every request's headers."""
    seen: list[dict[str, str]] = []

    async def record(request: web.Request) -> web.Response:
        seen.append({"path": request.path_qs, **request.headers})
        return web.Response(text="<!doctype html><title>other</title><p>another local app")

    app = web.Application()
    app.router.add_get("/{tail:.*}", record)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    yield int(runner.addresses[0][1]), seen
    await runner.cleanup()


async def test_another_local_server_never_gets_the_login(
    browser: Browser, alice: tuple[Daemon, Path], other_server: tuple[int, list[dict[str, str]]]
) -> None:
    daemon, sock = alice
    port, seen = other_server
    link = await request_login_link(sock, "alice")
    assert link.url.startswith("http://alice.orbitd.localhost:")
    context = await browser.new_context(locale="en-US")
    page = await context.new_page()
    await page.goto(link.url)
    await expect(page.locator("body[data-page='home']")).to_be_visible()
    cookies = await context.cookies()
    assert [(c["name"], c["domain"]) for c in cookies] == [
        ("orbit_ui_alice", "alice.orbitd.localhost")
    ]
    for url in (
        f"http://127.0.0.1:{port}/",
        f"http://localhost:{port}/",
        f"http://other.localhost:{port}/",
        f"http://orbitd.localhost:{port}/",
    ):
        await page.goto(url)
        await expect(page.get_by_text("another local app")).to_be_visible()
    assert len(seen) >= 4
    assert not [h for h in seen if "Cookie" in h], seen
    assert not [h for h in seen if link.url.rsplit("=", 1)[1] in str(h)]  # nor the link
    # The logged-in page still works (the daemon's own name on its own port).
    await page.goto(f"http://alice.orbitd.localhost:{daemon.base.rsplit(':', 1)[1]}/")
    await expect(page.locator("body[data-page='home']")).to_be_visible()

    # The contrast, why the name matters: a login on 127.0.0.1 is sent to every port there
    # (a session cookie, so it dies with the daemon, but a live bearer credential meanwhile).
    other = await browser.new_context(locale="en-US")
    page = await other.new_page()
    fresh = await request_login_link(sock, "alice")
    await page.goto(fresh.fallback_url)
    seen.clear()
    await page.goto(f"http://127.0.0.1:{port}/")
    assert "orbit_ui_alice=" in seen[0].get("Cookie", "")
    await other.close()
    await context.close()
